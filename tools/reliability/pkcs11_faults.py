#!/usr/bin/env python3
"""PKCS#11 fault campaign: every distinct PKCS#11 call site tkmsd reaches on
its request, resolve, HTTPS and reload paths is failed ONCE, with each error
class, one run per (site, class), and the answer is checked.

How (docs/reliability.md, "PKCS#11 faults"):
  - tkmsd --dev on a SoftHSM2 token, loaded through the test-only fault module
    (tests/fault_pkcs11: TKMS_PKCS11_MODULE, TKMS_FAULT_REAL_MODULE,
    TKMS_FAULT_TRIGGER). One tkmsd process per error class.
  - Discovery: the trigger file says `record`; the module appends one line
    per wrapped call (C_X@tkmsd+0xOFF tid=N) while a workload runs. A call
    site is a (PKCS#11 function, return address in tkmsd) pair; addr2line
    names it. The token monitor's thread (found from an idle window) is left
    out of the workloads' sequences and never faulted (skip-tid=).
  - For each workload, each site and each chosen occurrence of it in the
    workload (first and last by default; --occurrences all: every call),
    the trigger says `CODE site=S nth=K skip-tid=M`: exactly that call fails,
    once. The workload's answer is recorded (HTTP status, MIKEY error, or for
    a reload: reloaded / reload_refused) and must be 200-with-a-verified-answer,
    503, or a documented MIKEY error; never 500, a transport error (crash) or
    a time-out (hang).
  - After each run: the module's .fired file must name the site (the fault
    happened); /readyz is polled (bounded) until 200, and the next request
    must succeed (for reload runs, the next reload must be taken); the
    token's object files (SoftHSM2 keeps one file per object) must be
    byte-for-byte what they were before the run; for reload runs the
    tkms_users gauge must be unchanged.
  - At the end of each class: tkmsd must stop with status 0 and its log must
    not contain the token PIN, the SO PIN, or any user PSK (hex, either case).

Prints a table (sites x classes -> outcome), optionally writes it as
Markdown (--markdown FILE); exits 1 on any violation. Standard library only.
"""
import argparse
import collections
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
import tkmsd_harness as harness  # noqa: E402

CLASSES = {
    "device": "CKR_DEVICE_ERROR",
    "removed": "CKR_DEVICE_REMOVED",
    "session": "CKR_SESSION_HANDLE_INVALID",
    "general": "CKR_GENERAL_ERROR",
    "memory": "CKR_HOST_MEMORY",
}
WORKLOADS = ("request", "resolve", "https", "reload")
REAL_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
# MIKEY errors a request may get for a token failure (docs/kms.md): none is
# documented for it; 503 is. Anything in this set would be accepted as
# "its documented MIKEY error" if the refusal table ever maps one.
DOCUMENTED_MIKEY = set()


class Violation(Exception):
    pass


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def poll(predicate, timeout, interval=0.02):
    """Bounded polling: True as soon as predicate() is true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Campaign:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.work = tempfile.mkdtemp(prefix="tkms-p11-faults-")
        self.state = os.path.join(self.work, "state")
        self.trigger = os.path.join(self.work, "trigger")
        self.sites_file = self.trigger + ".sites"
        self.fired_file = self.trigger + ".fired"
        self.module = args.fault_module or os.path.join(self.build, "tests/fault_pkcs11/libtkms_fault_pkcs11.so")
        self.tkmsd_bin = harness.tkmsd_path(self.build)
        self.bench_bin = harness.bench_path(self.build)
        self.proc = None
        self.ready = None
        self.log_path = None
        self.monitor_tid = None
        self.violations = []
        self.symbols = {}

    # ---- tkmsd -------------------------------------------------------------
    def env(self):
        env = dict(os.environ)
        env["TKMS_PKCS11_MODULE"] = self.module
        env["TKMS_FAULT_REAL_MODULE"] = self.args.real_module
        env["TKMS_FAULT_TRIGGER"] = self.trigger
        return env

    def start(self, name):
        self.clear_trigger()
        self.log_path = os.path.join(self.work, "tkmsd-%s.log" % name)
        ready_file = os.path.join(self.work, "ready.json")
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        cmd = [self.tkmsd_bin, "--allow-root", "--dev", "--state-dir", self.state,
               "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
               "--ready-file", ready_file]
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=self.env())
        self.ready = harness.wait_ready(ready_file, self.proc)
        self.monitor_tid = None

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        clean = harness.stop(proc)
        self.log.close()
        return proc.returncode if clean else "killed"

    def admin(self, path):
        return http_get("http://127.0.0.1:%d%s" % (self.ready["admin_port"], path))

    def metric(self, name):
        status, body = self.admin("/metrics")
        if status != 200:
            return None
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- the trigger file --------------------------------------------------
    def set_trigger(self, text):
        tmp = self.trigger + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, self.trigger)  # a new version: the nth count restarts

    def clear_trigger(self):
        for path in (self.trigger,):
            if os.path.exists(path):
                os.unlink(path)

    def read_lines(self, path):
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line.split() for line in f if line.strip()]

    # ---- workloads ---------------------------------------------------------
    def bench(self, mode, https=False):
        if https:
            url = "https://localhost:%d" % self.ready["ua_tls_port"]
            extra = ["--cacert", harness.dev_ca(self.state)]
        else:
            url = "http://127.0.0.1:%d" % self.ready["ua_port"]
            extra = []
        # Exactly one measured request: open loop, request 0 at t=0, the next
        # one would be due after the window.
        cmd = [self.bench_bin, "--url", url, "--mode", mode, "--connections", "1", "--duration", "0.001",
               "--warmup", "0", "--rate", "1000", "--timeout-ms", "5000", "--json"] + extra + \
            harness.user_args(self.state)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return "hang"
        if r.returncode != 0:
            # The trial request before the measured one (or, in resolve mode,
            # the ticket request) got this answer.
            text = (r.stderr or r.stdout).strip()
            if "TLS handshake" in text:
                return "tls-refused"  # no HTTP answer is possible: the handshake was aborted
            m = re.search(r"http_status (\d+)|HTTP (?:status )?(\d+)", text)
            if m:
                return m.group(1) or m.group(2)
            m = re.search(r"(?:mikey_error|MIKEY error)[ _:#]*(\d+)", text)
            if m:
                return "mikey:" + m.group(1)
            return "client-failed: " + text[:80]
        report = json.loads(r.stdout.strip().splitlines()[-1])
        if report["ok"] == 1:
            return "ok"
        kinds = list(report["errors_by_kind"])
        if not kinds:
            return "none-sent"
        kind = kinds[0]
        if kind.startswith("http_"):
            return kind[5:]
        if kind.startswith("mikey_error_"):
            return "mikey:" + kind[12:]
        return kind

    def reload_events(self):
        """(users reloads, TLS reloads) decided after a SIGHUP so far: the
        `reloaded reason=token_recovered` lines of the monitor are not."""
        users = tls = 0
        last_users = last_tls = None
        for line in self.log_text().splitlines():
            if "event=reload_refused" in line or ("event=reloaded" in line and "reason=token_recovered" not in line):
                users += 1
                last_users = "refused" if "event=reload_refused" in line else "reloaded"
            elif "event=tls_reload_refused" in line or "event=tls_reloaded" in line:
                tls += 1
                last_tls = "tls_refused" if "refused" in line else "tls_reloaded"
        return users, tls, last_users, last_tls

    def reload(self):
        """SIGHUP; the answer is the users' reload (reloaded / refused), with
        "+tls_refused" if the TLS part was refused."""
        users, tls, _, _ = self.reload_events()
        self.proc.send_signal(signal.SIGHUP)
        state = {}

        def seen():
            u, t, lu, lt = self.reload_events()
            state.update(u=u, t=t, lu=lu, lt=lt)
            return (u > users and t > tls) or not self.alive()

        if not poll(seen, 20):
            return "hang"
        if not self.alive():
            return "crash"
        return state["lu"] + ("+tls_refused" if state["lt"] == "tls_refused" else "")

    def run_workload(self, workload):
        if workload == "request":
            return self.bench("request")
        if workload == "resolve":
            return self.bench("resolve")
        if workload == "https":
            return self.bench("request", https=True)
        if workload == "reload":
            return self.reload()
        raise ValueError(workload)

    # ---- discovery ---------------------------------------------------------
    def find_monitor_tid(self):
        """The token monitor's thread: the only one calling the token while
        nothing else happens."""
        if os.path.exists(self.sites_file):
            os.unlink(self.sites_file)
        self.set_trigger("record")
        ok = poll(lambda: len(self.read_lines(self.sites_file)) > 0, 10)
        self.clear_trigger()
        if not ok:
            raise Violation("no token monitor probe within 10 s")
        tids = {w[1] for w in self.read_lines(self.sites_file)}
        if len(tids) != 1:
            raise Violation("more than one thread calls the token while idle: %s" % tids)
        self.monitor_tid = tids.pop().split("=")[1]

    def discover(self, workload):
        """The sequence of sites the workload reaches (monitor excluded)."""
        if os.path.exists(self.sites_file):
            os.unlink(self.sites_file)
        self.set_trigger("record")
        outcome = self.run_workload(workload)
        self.clear_trigger()
        if outcome not in ("ok", "reloaded"):
            raise Violation("discovery of %s: %s" % (workload, outcome))
        return [w[0] for w in self.read_lines(self.sites_file) if w[1] != "tid=" + self.monitor_tid]

    def symbolize(self, site):
        if site in self.symbols:
            return self.symbols[site]
        fn, _, where = site.partition("@")
        name = where.split("+")[0]
        off = int(where.split("+")[1], 16)
        label = where
        if name == os.path.basename(self.tkmsd_bin) and shutil.which("addr2line"):
            r = subprocess.run(["addr2line", "-f", "-C", "-e", self.tkmsd_bin, hex(off - 1)],
                               capture_output=True, text=True)
            lines = r.stdout.splitlines()
            if len(lines) >= 2:
                func = re.sub(r"\(.*", "", lines[0]).split("::")[-2:]
                loc = os.path.normpath(lines[1].split(" ")[0])
                m = re.search(r"((?:firmware|pkcs11|web|tools|hal)/.*)", loc)
                label = "%s (%s)" % (m.group(1) if m else os.path.basename(loc), "::".join(func))
        self.symbols[site] = "%s @ %s" % (fn, label)
        return self.symbols[site]

    # ---- checks ------------------------------------------------------------
    def token_files(self):
        """sha256 of every object file of the token. token.object (the
        token's own record: label, flags, PIN state) is left out: SoftHSM2
        rewrites it when the token monitor re-initialises the module and logs
        in again after a token failure (event=token_recovered)."""
        out = {}
        root = os.path.join(self.state, "tokens")
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith(".lock") or f == "token.object":
                    continue
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
        return out

    def token_record(self):
        out = []
        for dirpath, _, files in os.walk(os.path.join(self.state, "tokens")):
            if "token.object" in files:
                with open(os.path.join(dirpath, "token.object"), "rb") as fh:
                    out.append(hashlib.sha256(fh.read()).hexdigest())
        return out

    def secrets(self):
        found = []
        for name in ("token.pin", "so.pin"):
            p = os.path.join(self.state, name)
            if os.path.exists(p):
                with open(p) as f:
                    found.append((name, f.read().strip()))
        ue = os.path.join(self.state, "ue")
        for f in sorted(os.listdir(ue)):
            if f.endswith(".psk"):
                with open(os.path.join(ue, f)) as fh:
                    found.append((f, fh.read().strip()))
        return [(n, s) for n, s in found if s]

    def check_log(self, label):
        text = self.log_text()
        low = text.lower()
        for name, secret in self.secrets():
            if secret.lower() in low:
                self.violate("%s: the log contains %s" % (label, name))
        known = {s.lower() for n, s in self.secrets() if n.endswith(".psk")}
        for run in re.findall(r"[0-9a-fA-F]{32,}", text):
            if any(k in run.lower() or run.lower() in k for k in known if len(k) >= 32):
                self.violate("%s: the log contains a hex run of a PSK" % label)
                break

    def violate(self, text):
        self.violations.append(text)
        print("VIOLATION: " + text, flush=True)

    def wait_ready(self):
        return poll(lambda: self.admin("/readyz")[0] == 200, self.args.recovery_timeout)

    # ---- the campaign ------------------------------------------------------
    def targets(self, sequences):
        """(workload, site, nth, label) for every site and chosen occurrence."""
        out = []
        for workload, (seq, skip) in sequences.items():
            positions = collections.defaultdict(list)
            counts = collections.Counter()
            for i, site in enumerate(seq):
                counts[site] += 1
                if i >= skip:
                    positions[site].append(counts[site])
            for site, nths in positions.items():
                if self.args.occurrences == "all":
                    chosen = nths
                elif self.args.occurrences == "first":
                    chosen = nths[:1]
                else:
                    chosen = sorted({nths[0], nths[-1]})
                first = nths[0]
                for k in chosen:
                    which = "call %d/%d" % (k - first + 1, len(nths)) if len(nths) > 1 else "only call"
                    out.append((workload, site, k, which))
        return out

    def run_one(self, cls, code, workload, site, nth):
        label = "%s %s %s nth=%d" % (cls, workload, site, nth)
        users = self.metric("tkms_users")
        files = self.token_files()
        record = self.token_record()
        recovered = self.log_text().count("event=token_recovered")
        tls_refused = self.log_text().count("event=tls_refused")
        if os.path.exists(self.fired_file):
            os.unlink(self.fired_file)
        self.set_trigger("%s site=%s nth=%d skip-tid=%s" % (code, site, nth, self.monitor_tid))
        outcome = self.run_workload(workload)
        self.clear_trigger()
        fired = [w for w in self.read_lines(self.fired_file) if w[0] == site]
        bad = []
        if not fired:
            # This run did not make that many calls of the site (counts can
            # differ between runs, e.g. a cached TLS key check): nothing was
            # injected, so there is nothing to judge.
            outcome = "not reached"
        if not self.alive():
            bad.append("tkmsd exited (status %s)" % self.proc.returncode)
        allowed = ("ok", "503", "reloaded", "refused", "reloaded+tls_refused", "refused+tls_refused",
                   "not") + tuple("mikey:%d" % n for n in DOCUMENTED_MIKEY)
        if outcome == "tls-refused":
            # The token key's signature in the handshake failed: tkmsd must
            # abort that handshake and say so (event=tls_refused).
            if workload != "https" or self.log_text().count("event=tls_refused") == tls_refused:
                bad.append("answer %s without event=tls_refused" % outcome)
        elif outcome.split(" ")[0] not in allowed:
            bad.append("answer %s" % outcome)
        if self.alive():
            if not self.wait_ready():
                bad.append("/readyz not 200 within %d s" % self.args.recovery_timeout)
            nxt = self.reload() if workload == "reload" else self.bench("request")
            if nxt == "reloaded+tls_refused":
                nxt = "reloaded"
            if nxt not in ("ok", "reloaded"):
                bad.append("next %s: %s" % ("reload" if workload == "reload" else "request", nxt))
            if workload == "reload" and self.metric("tkms_users") != users:
                bad.append("tkms_users %s -> %s" % (users, self.metric("tkms_users")))
            after = self.token_files()
            if after != files:
                changed = sorted(set(after.items()) ^ set(files.items()))
                bad.append("token objects changed: %s" % [c[0] for c in changed][:4])
            if self.token_record() != record and self.log_text().count("event=token_recovered") == recovered:
                bad.append("token.object changed without a token recovery")
        for b in bad:
            self.violate("%s: %s" % (label, b))
        return outcome, not bad

    def run(self):
        a = self.args
        classes = a.classes.split(",")
        workloads = a.workloads.split(",")
        # Provision the development token once (plain SoftHSM2, no shim).
        t0 = time.monotonic()
        self.start("provision")
        self.find_monitor_tid()
        sequences = {}
        req = self.discover("request")
        req = self.discover("request")  # steady state (the first request warms caches)
        for w in workloads:
            seq = req if w == "request" else self.discover(w)
            # resolve: tkms-bench first obtains a ticket (one request); only
            # the calls after it (its trial resolve, then the measured one)
            # are faulted.
            # request: tkms-bench's trial request comes first (half of req);
            # the measured one is faulted.
            skip = len(req) // 2 if w in ("resolve", "request") else 0
            sequences[w] = (seq, skip)
            print("discovered %-8s %3d calls, %d sites" % (w, len(seq) - skip, len(set(seq[skip:]))), flush=True)
        code = self.stop()
        if code != 0:
            self.violate("discovery tkmsd exit status %s" % code)
        targets = self.targets(sequences)
        print("%d targets x %d classes" % (len(targets), len(classes)), flush=True)
        results = collections.OrderedDict()
        for cls in classes:
            self.start(cls)
            self.find_monitor_tid()
            for (workload, site, nth, which) in targets:
                outcome, good = self.run_one(cls, CLASSES[cls], workload, site, nth)
                results.setdefault((workload, site, nth, which), {})[cls] = (outcome, good)
                if not self.alive():
                    self.stop()
                    self.start(cls + "-restarted")
                    self.find_monitor_tid()
            self.check_log(cls)
            code = self.stop()
            if code != 0:
                self.violate("%s: tkmsd exit status %s" % (cls, code))
            print("class %-8s done (%.0f s)" % (cls, time.monotonic() - t0), flush=True)
        self.report(results, classes, time.monotonic() - t0)
        if not a.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            print("kept " + self.work)
        return 1 if self.violations else 0

    def report(self, results, classes, took):
        header = "| workload | call site | occurrence | " + " | ".join(
            "%s (%s)" % (c, CLASSES[c]) for c in classes) + " |"
        lines = [header, "|" + " --- |" * (3 + len(classes))]
        for (workload, site, nth, which), cells in results.items():
            row = [workload, "`%s`" % self.symbolize(site), which]
            for c in classes:
                outcome, good = cells.get(c, ("-", True))
                row.append(outcome if good else "**%s** (violation)" % outcome)
            lines.append("| " + " | ".join(row) + " |")
        summary = collections.Counter()
        for cells in results.values():
            for c in classes:
                if c in cells:
                    summary[cells[c][0].split(" ")[0]] += 1
        runs = sum(len(c) for c in results.values())
        lines.append("")
        lines.append("%d runs in %.0f s: %s; %d violation(s)." % (
            runs, took, ", ".join("%s %d" % kv for kv in sorted(summary.items())), len(self.violations)))
        text = "\n".join(lines)
        print(text)
        if self.args.markdown:
            with open(self.args.markdown, "w") as f:
                f.write(text + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build/debug"), help="CMake build folder (tkmsd, tkms-bench, the fault module)")
    p.add_argument("--fault-module", help="libtkms_fault_pkcs11.so (default: under --build)")
    p.add_argument("--real-module", default=REAL_MODULE)
    p.add_argument("--classes", default=",".join(CLASSES), help="comma list of " + ",".join(CLASSES))
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list of " + ",".join(WORKLOADS))
    p.add_argument("--occurrences", choices=("first", "first-last", "all"), default="first-last",
                   help="which calls of a site within a workload are failed (one run each)")
    p.add_argument("--recovery-timeout", type=int, default=15, help="seconds /readyz may take to come back")
    p.add_argument("--markdown", help="also write the table to this file")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, token)")
    args = p.parse_args()
    try:
        return Campaign(args).run()
    except Violation as e:
        print("FAILED: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
