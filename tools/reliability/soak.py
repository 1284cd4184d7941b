#!/usr/bin/env python3
"""Bounded soak of tkmsd: half the saturating rate of a request + resolve mix
for --seconds (default 600), with SIGHUP reloads, ticket-key rotations
(`tkmsctl key rotate` on the same token, then SIGHUP) and a token fault in the
middle (the test-only fault module's trigger file). Every error is
classified; RSS and open file descriptors are sampled every second and their
least-squares slopes after the warm-up reported.

  - tkmsd --dev on a fresh SoftHSM2 token, through tests/fault_pkcs11
    (TKMS_PKCS11_MODULE / TKMS_FAULT_TRIGGER), plain HTTP Ua.
  - Saturating rate: tkms-bench closed loop, request and resolve at once
    (--connections each) for --saturate-seconds; the soak drives each at half
    of its measured rate, open loop (tkms-bench --rate), in --slice-seconds
    slices (one tkms-bench per kind per slice; a slice's errors are
    attributed to its time span).
  - Events (own thread): SIGHUP every --reload-every s; every --rotate-every s
    `tkmsctl key rotate --type hmac-sha256`, then SIGHUP; each must be answered by
    event=reloaded (bounded wait). At the middle: the trigger file
    (CKR_DEVICE_ERROR for every per-request call) until /readyz says 503,
    held --fault-seconds, removed; the recovery time is until /readyz is 200.
  - Explained errors: http_503 in a slice overlapping [fault on, ready again].
    Everything else (any error outside it, any other kind, a refused reload,
    a failed rotation, tkmsd exiting) is unexplained: exit status 1.
  - Slopes after --warmup-seconds (default 10 % of the run, at least 5 s);
    above --max-rss-slope KiB/min or --max-fd-slope fds/min: exit status 1.

Standard library only. Prints a JSON summary (also to --json-out).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
import tkmsd_harness as harness  # noqa: E402


def http_status(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def poll(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def slope_per_min(samples):
    """Least-squares slope of (t seconds, value) pairs, per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    sxx = sum((t - mt) ** 2 for t, _ in samples)
    if sxx == 0:
        return 0.0
    return 60.0 * sum((t - mt) * (v - mv) for t, v in samples) / sxx


class Soak:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="tkms-soak-")
        self.state = os.path.join(self.work, "state")
        self.trigger = os.path.join(self.work, "trigger")
        self.module = a.fault_module or os.path.join(a.build, "tests/fault_pkcs11/libtkms_fault_pkcs11.so")
        self.tkmsctl = os.path.join(a.build, "tools/tkmsctl/tkmsctl")
        self.unexplained = []
        self.events = []   # (t, text)
        self.samples = []  # (t, rss KiB, fds)
        self.slices = []   # dicts
        self.fault = {}    # on, ready_503, off, ready_200
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.t0 = None

    def now(self):
        return time.monotonic() - self.t0

    def note(self, text):
        with self.lock:
            self.events.append((round(self.now(), 2), text))
        print("[%7.1f] %s" % (self.now(), text), flush=True)

    def bad(self, text):
        with self.lock:
            self.unexplained.append(text)
        print("UNEXPLAINED: " + text, flush=True)

    # ---- tkmsd ---------------------------------------------------------------
    def start(self):
        env = dict(os.environ)
        env.update(TKMS_PKCS11_MODULE=self.module, TKMS_FAULT_REAL_MODULE=self.a.real_module,
                   TKMS_FAULT_TRIGGER=self.trigger)
        ready_file = os.path.join(self.work, "ready.json")
        self.log_path = os.path.join(self.work, "tkmsd.log")
        self.log = open(self.log_path, "a")
        cmd = [harness.tkmsd_path(self.a.build), "--allow-root", "--dev", "--state-dir", self.state,
               "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
               "--ready-file", ready_file]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.ready = harness.wait_ready(ready_file, self.proc)
        self.url = "http://127.0.0.1:%d" % self.ready["ua_port"]
        self.readyz = "http://127.0.0.1:%d/readyz" % self.ready["admin_port"]

    def log_count(self, text):
        with open(self.log_path, errors="replace") as f:
            return sum(1 for line in f if text in line and "reason=token_recovered" not in line)

    # ---- load ------------------------------------------------------------------
    def bench(self, mode, seconds, rate=None, connections=None):
        cmd = [harness.bench_path(self.a.build), "--url", self.url, "--mode", mode,
               "--connections", str(connections or self.a.connections), "--duration", "%.3f" % seconds,
               "--warmup", "0", "--timeout-ms", "5000", "--json"] + harness.user_args(self.state)
        if rate:
            cmd += ["--rate", "%.1f" % rate]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        if r.returncode != 0:
            return {"ok": 0, "errors": 1, "errors_by_kind": {"setup": 1},
                    "first_error": (r.stderr or r.stdout).strip()[:200]}
        return json.loads(r.stdout.strip().splitlines()[-1])

    def saturate(self):
        out = {}

        def run(mode):
            out[mode] = self.bench(mode, self.a.saturate_seconds)

        threads = [threading.Thread(target=run, args=(m,)) for m in ("request", "resolve")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for m, r in out.items():
            if r.get("errors"):
                raise RuntimeError("saturation run %s had errors: %s" % (m, r.get("first_error")))
        return {m: r["requests_per_second"] for m, r in out.items()}

    def drive(self, rates, end):
        while not self.stop_flag.is_set():
            start = self.now()
            if start >= end:
                break
            seconds = min(self.a.slice_seconds, end - start)
            if seconds < 0.5:
                break
            out = {}

            def run(mode):
                out[mode] = self.bench(mode, seconds, rate=rates[mode])

            threads = [threading.Thread(target=run, args=(m,)) for m in rates]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for m, r in out.items():
                self.slices.append({"mode": m, "start": start, "end": self.now(), "ok": r.get("ok", 0),
                                    "errors": r.get("errors", 0), "errors_by_kind": r.get("errors_by_kind", {}),
                                    "first_error": r.get("first_error", "")})
            if self.proc.poll() is not None:
                self.bad("tkmsd exited (status %s)" % self.proc.returncode)
                break

    # ---- sampling --------------------------------------------------------------
    def sample(self):
        pid = self.proc.pid
        nxt = time.monotonic()
        while not self.stop_flag.is_set():
            try:
                with open("/proc/%d/status" % pid) as f:
                    rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
                fds = len(os.listdir("/proc/%d/fd" % pid))
                self.samples.append((self.now(), rss, fds))
            except (OSError, StopIteration):
                pass
            nxt += 1.0
            self.stop_flag.wait(max(0.0, nxt - time.monotonic()))

    # ---- events ----------------------------------------------------------------
    def reload(self, why):
        before = self.log_count("event=reloaded")
        refused = self.log_count("event=reload_refused")
        self.proc.send_signal(signal.SIGHUP)
        if not poll(lambda: self.log_count("event=reloaded") > before or
                    self.log_count("event=reload_refused") > refused, 20, 0.05):
            self.bad("%s: no reload decision within 20 s" % why)
        elif self.log_count("event=reload_refused") > refused:
            self.bad("%s: reload refused" % why)
        else:
            self.note("%s: reloaded" % why)

    def rotate(self):
        # --type hmac-sha256: the KMS's ticket keys are HMAC keys (docs/kms.md);
        # tkmsctl's default (aes256) would make every request fail with 500
        # after the SIGHUP (docs/reliability.md, "Soak").
        r = subprocess.run([self.tkmsctl, "key", "rotate", "--type", "hmac-sha256", "--state-dir", self.state,
                            "--pin-file", os.path.join(self.state, "token.pin")],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            self.bad("tkmsctl key rotate: status %d: %s" % (r.returncode, r.stderr.strip()[:200]))
            return
        self.note("key rotate: %s" % (r.stdout.strip().splitlines() or [""])[-1][:120])
        self.reload("rotation")

    def token_fault(self):
        f = self.fault
        with open(self.trigger + ".tmp", "w") as fh:
            fh.write("CKR_DEVICE_ERROR\n")
        os.rename(self.trigger + ".tmp", self.trigger)
        f["on"] = self.now()
        self.note("token fault on")
        if poll(lambda: http_status(self.readyz) == 503, 15):
            f["ready_503"] = self.now()
            self.note("readyz 503 after %.2f s" % (f["ready_503"] - f["on"]))
        else:
            self.bad("readyz did not turn 503 within 15 s of the fault")
        self.stop_flag.wait(self.a.fault_seconds)  # the outage itself lasts this long
        os.unlink(self.trigger)
        f["off"] = self.now()
        self.note("token fault off")
        if poll(lambda: http_status(self.readyz) == 200, 30):
            f["ready_200"] = self.now()
            self.note("readyz 200 after %.2f s (recovery)" % (f["ready_200"] - f["off"]))
        else:
            f["ready_200"] = self.now()
            self.bad("readyz not 200 within 30 s of the fault's end")

    def scheduler(self, end):
        plan = []
        t = self.a.reload_every
        while t < end:
            plan.append((t, "reload"))
            t += self.a.reload_every
        t = self.a.rotate_every
        while t < end:
            plan.append((t + 0.5, "rotate"))
            t += self.a.rotate_every
        plan.append((end / 2.0, "fault"))
        plan.sort()
        for when, what in plan:
            if self.stop_flag.wait(max(0.0, when - self.now())):
                return
            if self.fault.get("on") is not None and "ready_200" not in self.fault:
                continue
            if what == "reload":
                self.reload("periodic SIGHUP")
            elif what == "rotate":
                self.rotate()
            else:
                self.token_fault()

    # ---- the run ---------------------------------------------------------------
    def run(self):
        a = self.a
        self.t0 = time.monotonic()
        self.start()
        self.note("tkmsd pid %d" % self.proc.pid)
        sat = self.saturate()
        rates = {m: max(1.0, r / 2.0) for m, r in sat.items()}
        self.note("saturating: %s -> driving %s" % (
            {m: round(r, 1) for m, r in sat.items()}, {m: round(r, 1) for m, r in rates.items()}))
        base = self.now()
        self.t0 += base  # t = 0 at the start of the soak proper
        self.samples.clear()
        end = float(a.seconds)
        sampler = threading.Thread(target=self.sample, daemon=True)
        sampler.start()
        events = threading.Thread(target=self.scheduler, args=(end,), daemon=True)
        events.start()
        self.drive(rates, end)
        events.join(timeout=120)
        self.stop_flag.set()
        sampler.join(timeout=5)
        return self.finish(sat, rates)

    def finish(self, sat, rates):
        a = self.a
        f = self.fault
        win = (f.get("on", -1), f.get("ready_200", -1) + 0.5)
        explained = 0
        totals = {"ok": 0, "errors": 0}
        for s in self.slices:
            totals["ok"] += s["ok"]
            totals["errors"] += s["errors"]
            overlaps = s["start"] < win[1] and s["end"] > win[0]
            for kind, n in s["errors_by_kind"].items():
                if overlaps and kind in ("http_503", "setup"):
                    # setup: the resolve slice's ticket request (or trial)
                    # got 503 during the fault.
                    if kind == "setup" and "503" not in s["first_error"]:
                        self.bad("%s slice %.0f-%.0f s: %s" % (s["mode"], s["start"], s["end"], s["first_error"]))
                        continue
                    explained += n
                else:
                    self.bad("%s slice %.0f-%.0f s: %d x %s (%s)" % (
                        s["mode"], s["start"], s["end"], n, kind, s["first_error"][:120]))
        if "on" not in f:
            self.bad("the token fault never happened (run too short?)")
        code = harness.stop(self.proc)
        self.log.close()
        if not code or self.proc.returncode != 0:
            self.bad("tkmsd did not stop cleanly (status %s)" % self.proc.returncode)
        warm = max(5.0, a.warmup_seconds if a.warmup_seconds is not None else 0.1 * a.seconds)
        steady = [s for s in self.samples if s[0] >= warm]
        rss_slope = slope_per_min([(t, r) for t, r, _ in steady])
        fd_slope = slope_per_min([(t, d) for t, _, d in steady])
        if abs(rss_slope) > a.max_rss_slope:
            self.bad("RSS slope %.1f KiB/min above the bound %.1f" % (rss_slope, a.max_rss_slope))
        if abs(fd_slope) > a.max_fd_slope:
            self.bad("fd slope %.2f /min above the bound %.2f" % (fd_slope, a.max_fd_slope))
        measured = sum(s["end"] - s["start"] for s in self.slices) / max(1, len(rates))
        summary = {
            "seconds": a.seconds,
            "saturating_per_s": {m: round(r, 1) for m, r in sat.items()},
            "driven_per_s": {m: round(r, 1) for m, r in rates.items()},
            "ok": totals["ok"],
            "ok_per_s": round(totals["ok"] / measured, 1) if measured else 0,
            "errors": totals["errors"],
            "explained_errors": explained,
            "unexplained": self.unexplained,
            "reloads": sum(1 for _, e in self.events if e.endswith(": reloaded")),
            "rotations": sum(1 for _, e in self.events if e.startswith("key rotate")),
            "fault": {k: round(v, 2) for k, v in f.items()},
            "fault_detect_s": round(f["ready_503"] - f["on"], 2) if "ready_503" in f else None,
            "recovery_s": round(f["ready_200"] - f["off"], 2) if "ready_200" in f and "off" in f else None,
            "warmup_s": warm,
            "samples": len(steady),
            "rss_kib": {"first": steady[0][1] if steady else None, "last": steady[-1][1] if steady else None,
                        "min": min((r for _, r, _ in steady), default=None),
                        "max": max((r for _, r, _ in steady), default=None)},
            "rss_slope_kib_per_min": round(rss_slope, 1),
            # The last sample of each minute (all samples, warm-up included).
            "rss_kib_by_minute": [r for i, (t, r, _) in enumerate(self.samples)
                                  if i + 1 == len(self.samples) or int(self.samples[i + 1][0] // 60) != int(t // 60)],
            "fds_by_minute": [d for i, (t, _, d) in enumerate(self.samples)
                              if i + 1 == len(self.samples) or int(self.samples[i + 1][0] // 60) != int(t // 60)],
            "fds": {"min": min((d for _, _, d in steady), default=None),
                    "max": max((d for _, _, d in steady), default=None)},
            "fd_slope_per_min": round(fd_slope, 3),
            "bounds": {"rss_kib_per_min": a.max_rss_slope, "fds_per_min": a.max_fd_slope},
        }
        text = json.dumps(summary, indent=2)
        print(text)
        if a.json_out:
            with open(a.json_out, "w") as fh:
                fh.write(text + "\n")
        if a.keep:
            print("kept " + self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return 1 if self.unexplained else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    p.add_argument("--fault-module", help="libtkms_fault_pkcs11.so (default: under --build)")
    p.add_argument("--real-module", default="/usr/lib/softhsm/libsofthsm2.so")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--saturate-seconds", type=float, default=5)
    p.add_argument("--connections", type=int, default=2, help="per kind (request, resolve)")
    p.add_argument("--slice-seconds", type=float, default=5)
    p.add_argument("--reload-every", type=float, default=30)
    p.add_argument("--rotate-every", type=float, default=120)
    p.add_argument("--fault-seconds", type=float, default=3)
    p.add_argument("--warmup-seconds", type=float)
    p.add_argument("--max-rss-slope", type=float, default=256.0, help="KiB/min")
    p.add_argument("--max-fd-slope", type=float, default=1.0, help="fds/min")
    p.add_argument("--json-out")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    return Soak(a).run()


if __name__ == "__main__":
    sys.exit(main())
