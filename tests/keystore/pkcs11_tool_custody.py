#!/usr/bin/env python3
"""Custody as an independent tool sees it.

Creates a throw-away SoftHSM2 token, lets keystore_custody_keys (our code)
create one key of every kind tkms makes, then asks OpenSC's pkcs11-tool
(not our code) about them:

  * --list-objects must show every secret and private key as "sensitive";
    generated keys as "always sensitive, never extractable"; imported keys
    as not extractable; ticket keys as extractable (wrapped only), and
    pkcs11-tool's attempt to read any key value must fail with
    CKR_ATTRIBUTE_SENSITIVE;
  * pkcs11-tool 0.23 does not print CKA_WRAP_WITH_TRUSTED, so that flag is
    checked by behaviour: --wrap of a ticket key under the ordinary wrapping
    key must fail with CKR_KEY_NOT_WRAPPABLE and succeed under the SO's
    trusted key; --wrap of a PSK must fail with CKR_KEY_UNEXTRACTABLE.

PINs: the PINs are random per run. pkcs11-tool only takes a PIN on its
command line (--pin) or from a terminal prompt; this script never uses
--pin: it runs pkcs11-tool on a pseudo-terminal and types the PIN at the
prompt. The helper reads its PINs from stdin.

Exit status 0 if every check passed; the failed checks are printed.
"""
import argparse
import os
import pty
import re
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import time

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
LABEL = "tkms-custody"


def wait_for_no_echo(fd, deadline):
    """Waits until the program has switched its terminal to no-echo mode.

    A password prompt is printed before the terminal is switched, and the
    switch (TCSAFLUSH) discards input typed before it: typing the PIN as soon
    as the prompt appears loses it on a busy machine.
    """
    while time.monotonic() < deadline:
        try:
            if not termios.tcgetattr(fd)[3] & termios.ECHO:
                return
        except termios.error:
            return
        time.sleep(0.005)


def run_with_pin(argv, pin, env, timeout=30.0):
    """Runs argv on a pseudo-terminal, answers its PIN prompt with pin."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    output = b""
    answered = False
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.kill(pid, 9)
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"PIN:" in output:
            wait_for_no_echo(fd, deadline)
            os.write(fd, pin.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    code = os.waitstatus_to_exitcode(status)
    return code, output.decode(errors="replace").replace("\r\n", "\n")


def parse_objects(listing):
    """pkcs11-tool --list-objects output -> list of dicts."""
    objects = []
    current = None
    for line in listing.splitlines():
        header = re.match(r"^(Secret Key|Private Key|Public Key|Data|Certificate) Object", line)
        if header:
            current = {"class": header.group(1), "label": None, "id": None, "access": [],
                       "usage": []}
            objects.append(current)
            continue
        if current is None:
            continue
        field = re.match(r"^\s+(label|ID|Access|Usage):\s*(.*)$", line)
        if not field:
            continue
        name, value = field.group(1), field.group(2).strip()
        if name == "label":
            current["label"] = value
        elif name == "ID":
            current["id"] = value.lower()
        else:
            current[name.lower()] = [v.strip() for v in value.split(",") if v.strip()]
    return objects


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def expect(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failures.append(what)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helper", required=True, help="the keystore_custody_keys executable")
    parser.add_argument("--pkcs11-tool", default=shutil.which("pkcs11-tool") or "pkcs11-tool")
    parser.add_argument("--module", default=os.environ.get("TKMS_PKCS11_MODULE") or DEFAULT_MODULE)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="tkms-custody-")
    try:
        tokens = os.path.join(work, "tokens")
        os.mkdir(tokens)
        conf = os.path.join(work, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
        env = dict(os.environ, SOFTHSM2_CONF=conf, TKMS_PKCS11_MODULE=args.module)
        so_pin = "so-" + secrets.token_hex(8)
        user_pin = "user-" + secrets.token_hex(8)

        helper = subprocess.run([args.helper, "--label", LABEL], input=f"{so_pin}\n{user_pin}\n",
                                capture_output=True, text=True, env=env, timeout=60)
        if helper.returncode != 0:
            print("helper failed:", helper.stdout, helper.stderr, file=sys.stderr)
            return 1
        expected = {}
        for line in helper.stdout.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "key":
                expected[parts[1]] = {"id": parts[2], "kind": parts[3]}
        checks = Checks()
        checks.expect(len(expected) == 8, f"helper reported {len(expected)} keys, expected 8")

        tool = [args.pkcs11_tool, "--module", args.module, "--token-label", LABEL, "--login"]
        code, listing = run_with_pin(tool + ["--list-objects"], user_pin, env)
        checks.expect(code == 0, f"pkcs11-tool --list-objects exited {code}")
        checks.expect(user_pin not in listing, "the PIN was echoed")
        objects = parse_objects(listing)
        sensitive_warnings = listing.count("C_GetAttributeValue(VALUE) failed: rv = "
                                           "CKR_ATTRIBUTE_SENSITIVE")
        secret_objects = [o for o in objects if o["class"] == "Secret Key"]
        checks.expect(sensitive_warnings >= len(secret_objects) > 0,
                      f"pkcs11-tool could read a secret value ({sensitive_warnings} refusals for "
                      f"{len(secret_objects)} secret keys)")

        for label, want in expected.items():
            found = [o for o in objects if o["label"] == label and o["class"] != "Public Key"]
            checks.expect(len(found) == 1, f"{label}: listed {len(found)} times")
            if len(found) != 1:
                continue
            access = found[0]["access"]
            kind = want["kind"]
            checks.expect(found[0]["id"] in (None, want["id"]), f"{label}: ID {found[0]['id']}")
            checks.expect("sensitive" in access, f"{label}: not sensitive ({access})")
            if kind == "generated":
                checks.expect("always sensitive" in access, f"{label}: not always sensitive")
                checks.expect("never extractable" in access, f"{label}: not never extractable")
                checks.expect("extractable" not in access, f"{label}: extractable")
            elif kind in ("imported", "trusted"):
                checks.expect("extractable" not in access, f"{label}: extractable")
            elif kind == "ticket":
                checks.expect("extractable" in access, f"{label}: a ticket key not extractable")
                checks.expect("never extractable" not in access, f"{label}: never extractable")

        # CKA_WRAP_WITH_TRUSTED, by behaviour.
        ids = {label: want["id"] for label, want in expected.items()}
        out = os.path.join(work, "wrapped.bin")

        def wrap(wrapping, target):
            return run_with_pin(tool + ["--wrap", "--mechanism", "AES-KEY-WRAP", "--id",
                                        ids[wrapping], "--application-id", ids[target],
                                        "--output-file", out], user_pin, env)

        code, text = wrap("kek", "tkms-ticket-1")
        checks.expect(code != 0 and "CKR_KEY_NOT_WRAPPABLE" in text,
                      f"ticket key wrapped under an untrusted key: {text.strip()}")
        code, text = wrap("kek-trusted", "tkms-ticket-1")
        checks.expect(code == 0 and os.path.getsize(out) == 40,
                      f"ticket key not wrapped under the trusted key: {text.strip()}")
        code, text = wrap("kek-trusted", "psk-gen")
        checks.expect(code != 0 and "CKR_KEY_UNEXTRACTABLE" in text,
                      f"PSK wrapped: {text.strip()}")

        for failure in checks.failures:
            print("FAILED:", failure)
        if checks.failures:
            print("pkcs11-tool --list-objects said:\n" + listing.replace(user_pin, "<PIN>"))
        print(f"pkcs11_tool_custody: {checks.passed} checks passed, {len(checks.failures)} failed "
              f"({len(objects)} objects listed by pkcs11-tool)")
        return 0 if not checks.failures else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
