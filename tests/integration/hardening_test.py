#!/usr/bin/env python3
"""Least privilege and memory hygiene of a real tkmsd (docs/tkmsd.md,
"Privileges and memory"), seen from outside the process: /proc, the kernel's
view of its memory, and a core file taken with gdb's gcore.

Usage: hardening_test.py CASE SOURCE_DIR TKMSD TKMS_BENCH

CASE:
  refusals   as root: --config without --user or --allow-root is refused
             (exit 1, the reason on stderr, no ready file); --user with an
             unknown account, and --user root, are refused too.
  dropped    tkmsd --dev --user nobody, its Ua listener on a port below
             1024: it serves ticket requests as uid/gid 65534 with no
             capabilities (permitted, effective, bounding, ambient),
             no_new_privs, not dumpable (/proc/PID files owned by root), core
             limit 0; the secret region is locked (VmLck) and reported by
             /metrics; a gcore of the running process contains the KMS
             identity (the dump is real) but neither the PIN nor a user's PSK.
  config     tkmsd --config naming "user": "nobody" and a PIN file only root
             can read: the PIN is read before the drop, the token opened as
             nobody; TKMS_PIN given in the environment is gone from
             /proc/PID/environ.

Needs root (exit 77, skipped, otherwise). Exits 1 at the first failed check.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request

CASE = sys.argv[1]
SOURCE_DIR, TKMSD, TKMS_BENCH = (os.path.abspath(a) for a in sys.argv[2:5])
BUILD = os.path.dirname(os.path.dirname(os.path.dirname(TKMSD)))  # .../build/<preset>
sys.path.insert(0, os.path.join(SOURCE_DIR, "tools", "bench"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "cli"))
from doc_walkthrough import Checks  # noqa: E402
import tkmsd_harness as harness  # noqa: E402

NOBODY = 65534
checks = Checks()
check = checks.check


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def metrics(admin_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=10) as r:
        return r.read().decode()


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def free_privileged_port():
    for port in range(700, 1000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    checks.fail("no free port below 1024 on 127.0.0.1")


def requests_work(d, state_dir):
    out = subprocess.run([TKMS_BENCH, "--url", "http://127.0.0.1:%d" % d.ua_port, "--mode", "request",
                          "--duration", "0.5"] + harness.user_args(state_dir),
                         capture_output=True, text=True, timeout=60)
    served = re.search(r"requests: (\d+) ok, 0 errors", out.stdout)
    check(out.returncode == 0 and served and int(served.group(1)) > 0, "ticket requests are served",
          out.stdout + out.stderr)


def world_writable_dir(work, name):
    path = os.path.join(work, name)
    os.mkdir(path)
    os.chmod(path, 0o777)  # the ready file is written after the drop
    return path


def case_refusals(work):
    state = os.path.join(work, "state")
    harness.provision_dev(BUILD, state, os.path.join(work, "p.ready"))
    config = os.path.join(work, "tkmsd.json")
    with open(config, "w") as f:
        json.dump(harness.dev_token_config(state), f)
    ready = os.path.join(work, "r.ready")
    base = [TKMSD, "--config", config, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
            "--ready-file", ready]
    for extra, expect in [([], "refuses to run as root"),
                          (["--user", "no-such-user-tkms"], "no such user: no-such-user-tkms"),
                          (["--user", "root"], "is root (uid 0)")]:
        p = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and expect in p.stderr, "%s: refused with %r" % (extra or "as root", expect),
              p.stderr)
        check("event=start_failed" in p.stderr, "%s: the refusal is a start_failed line" % extra, p.stderr)
        check(not os.path.exists(ready), "%s: no ready file" % extra)


def has_asan(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def case_dropped(work):
    run_dir = world_writable_dir(work, "run")
    state = os.path.join(work, "state")
    port = free_privileged_port()
    d = harness._start([TKMSD, "--dev", "--state-dir", state, "--user", "nobody",
                        "--listen", "127.0.0.1:%d" % port, "--admin-listen", "127.0.0.1:0",
                        "--tls-listen", "127.0.0.1:0", "--ready-file", os.path.join(run_dir, "ready")],
                       os.path.join(run_dir, "ready"), os.path.join(work, "tkmsd.log"))
    try:
        check(d.ua_port == port, "the Ua listener is on port %d, below 1024" % port)
        pid = d.proc.pid
        st = proc_status(pid)
        check(st["Uid"].split() == [str(NOBODY)] * 4, "uid real/effective/saved/fs = nobody", st["Uid"])
        check(st["Gid"].split() == [str(NOBODY)] * 4, "gid real/effective/saved/fs = nogroup", st["Gid"])
        check(st["Groups"] in ("", str(NOBODY)), "no supplementary groups but nobody's", st["Groups"])
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            check(int(st[cap], 16) == 0, "%s is empty" % cap, st[cap])
        check(st["NoNewPrivs"] == "1", "no_new_privs is set", st["NoNewPrivs"])
        # A non-dumpable process's /proc files belong to root, whoever runs it.
        check(os.stat("/proc/%d/status" % pid).st_uid == 0, "not dumpable: /proc/PID is root's")
        with open("/proc/%d/limits" % pid) as f:
            core = [line for line in f if line.startswith("Max core file size")][0]
        check(core.split()[4:6] == ["0", "0"], "core file size limit 0 (soft and hard)", core)
        check(os.stat(state).st_uid == NOBODY and os.stat(os.path.join(state, "token.pin")).st_uid == NOBODY,
              "the --dev state directory was given to nobody")
        m = metrics(d.admin_port)
        locked = metric_value(m, "tkms_secret_memory_locked")
        check(locked == 1, "the secret region is locked (tkms_secret_memory_locked 1)", m)
        check(int(st["VmLck"].split()[0]) >= 1024, "the kernel counts >= 1024 kB locked", st["VmLck"])
        check(metric_value(m, "tkms_secret_memory_in_use_bytes") > 0, "the PIN is in the secret region", m)
        requests_work(d, state)

        if has_asan(TKMSD):
            print("gcore: skipped in the AddressSanitizer build (its shadow memory makes the dump huge)")
        else:
            core_base = os.path.join(work, "core")
            g = subprocess.run(["gcore", "-o", core_base, str(pid)], capture_output=True, text=True, timeout=180)
            core = "%s.%d" % (core_base, pid)
            check(g.returncode == 0 and os.path.exists(core), "gcore dumps the running tkmsd", g.stdout + g.stderr)
            with open(core, "rb") as f:
                dump = f.read()
            os.unlink(core)
            check(b"kms.example.org" in dump, "the dump is real: it contains the KMS identity")
            with open(os.path.join(state, "token.pin"), "rb") as f:
                pin = f.read().strip()
            check(len(pin) >= 8 and pin not in dump, "the PIN is not in the dump")
            for user in ("alice", "bob"):
                with open(os.path.join(state, "ue", user + ".psk")) as f:
                    psk = bytes.fromhex(f.read().strip())
                check(psk not in dump, "%s's PSK is not in the dump" % user)
            requests_work(d, state)  # gcore detached cleanly
    finally:
        check(d.stop(), "tkmsd stops on SIGTERM")


def case_config(work):
    state = os.path.join(work, "state")
    harness.provision_dev(BUILD, state, os.path.join(work, "p.ready"))
    for root, dirs, files in os.walk(state):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), NOBODY, NOBODY)
    os.chown(state, NOBODY, NOBODY)
    # A copy of the PIN that only root can read.
    root_pin = os.path.join(work, "root-only.pin")
    shutil.copyfile(os.path.join(state, "token.pin"), root_pin)
    os.chmod(root_pin, 0o600)
    config = harness.dev_token_config(state, extra={"user": "nobody", "token": {"pin_file": root_pin}})
    run_dir = world_writable_dir(work, "run")
    env = dict(os.environ, TKMS_PIN="not-the-pin-but-a-secret-all-the-same")
    cmd = [TKMSD, "--config", os.path.join(work, "tkmsd.json"), "--listen", "127.0.0.1:0",
           "--admin-listen", "127.0.0.1:0", "--ready-file", os.path.join(run_dir, "ready")]
    with open(os.path.join(work, "tkmsd.json"), "w") as f:
        json.dump(config, f)
    d = harness._start(cmd, os.path.join(run_dir, "ready"), os.path.join(work, "tkmsd.log"), env=env)
    try:
        st = proc_status(d.proc.pid)
        check(st["Uid"].split()[1] == str(NOBODY), "runs as nobody (the configuration's user)", st["Uid"])
        with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
            environ = f.read()
        # The name stays in the kernel's copy of the start-up block; the value is wiped.
        check(b"not-the-pin" not in environ, "TKMS_PIN's value is wiped from the environment", repr(environ))
        requests_work(d, state)
    finally:
        check(d.stop(), "tkmsd stops on SIGTERM")
    with open(os.path.join(work, "tkmsd.log")) as f:
        log = f.read()
    check("event=privileges" in log and "uid=65534" in log, "the start-up log says whom it runs as", log)


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (tkmsd drops privileges only when started as root)")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="tkms-hardening-")
    os.chmod(work, 0o755)
    try:
        {"refusals": case_refusals, "dropped": case_dropped, "config": case_config}[CASE](work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS: %d checks" % checks.count)


if __name__ == "__main__":
    main()
