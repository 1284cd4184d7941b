"""What the tests that run a document's walk-through as written share
(tls_walkthrough_test.py, bundle_walkthrough_test.py): counted checks that
stop at the first failure, and the document's first ```sh block after a
heading with its setting lines replaced by this build's values.

A walk-through block starts with lines that set programs and directories
(`T=...`, `DEMO=...`); a test replaces exactly those, in that order, and
runs the rest unchanged, so the document cannot drift from what is tested.

free_ports and run serve the walk-throughs that start daemons on loopback.
"""
import os
import re
import signal
import socket
import subprocess
import sys


class Checks:
    """check(condition, what, output) counts and exits 1 on the first failure."""

    def __init__(self):
        self.count = 0

    def fail(self, what, output=""):
        sys.exit("FAIL: " + what + ("\n--- output ---\n" + output if output else ""))

    def check(self, condition, what, output=""):
        self.count += 1
        if not condition:
            self.fail(what, output)


def sh_block(checks, source_dir, document, heading):
    """The lines of the first ```sh block after `heading` in docs/`document`."""
    text = open(os.path.join(source_dir, "docs", document), encoding="utf-8").read()
    start = text.find(heading)
    checks.check(start >= 0, "docs/%s has the heading %s" % (document, heading))
    match = re.search(r"^```sh\n(.*?)^```$", text[start:], re.S | re.M)
    checks.check(match is not None, "a ```sh block follows the heading")
    return match.group(1).splitlines()


def with_settings(checks, lines, patterns, settings):
    """The block as a script: its first len(patterns) lines (each must match
    its pattern) replaced by `settings`."""
    for i, pattern in enumerate(patterns):
        checks.check(i < len(lines) and re.fullmatch(pattern, lines[i]) is not None,
                     "line %d of the walk-through sets %s (found %r)"
                     % (i + 1, pattern, lines[i] if i < len(lines) else None))
    return "\n".join(list(settings) + lines[len(patterns):]) + "\n"


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run(script, work):
    """Runs `script` with bash -e -o pipefail in `work`, in its own session:
    (exit status, output). Whatever it leaves running is stopped."""
    path = os.path.join(work, "walkthrough.sh")
    with open(path, "w", encoding="utf-8") as f:
        f.write(script)
    env = dict(os.environ)
    for name in ("TKMS_PIN", "TKMS_SO_PIN", "SOFTHSM2_CONF"):
        env.pop(name, None)
    # Output to a file, not a pipe: a tkmsd left running by a failed step
    # must not keep the test waiting for the end of the output.
    log_path = os.path.join(work, "walkthrough.out")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", path], cwd=work, env=env, stdout=log,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        code = proc.wait(timeout=240)
    except subprocess.TimeoutExpired:
        code = -1
    finally:
        # Stop whatever the script left behind in its session (its own group).
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait()
    return code, open(log_path, encoding="utf-8", errors="replace").read()
