#!/usr/bin/env python3
"""Fuzzing campaign measured in CPU time (docs/fuzzing.md, "Campaign").

libFuzzer's -max_total_time is wall-clock time; on a shared machine (and under
`nice -n 19`) a target gets far less CPU than that. This driver runs each
target in-process (no -jobs, no -fork) and watches the CPU time of the child
(/proc/<pid>/stat: user + system of all its threads). When the target has used
its CPU budget, the driver sends SIGINT: libFuzzer then prints its final
statistics and exits, and wait4() gives the exact rusage of the child.

A target's budget is cumulative over sessions: build/fuzz/campaign.json keeps
what each target has used, and a later run of the same command continues the
targets that have not reached the budget (resuming from build/fuzz/corpus/T).
A run that libFuzzer ends itself (a crash, leak, timeout or OOM) is recorded
as a finding; the target is restarted until it reaches its budget or has
--max-findings findings.

SIGINT or SIGTERM to this driver (or --stop-at) stops the fuzzers cleanly:
their CPU time, executions and coverage so far are recorded.

Output: build/fuzz/campaign.json (machine-readable), build/fuzz/campaign.md
(a markdown table), one log per run in build/fuzz/logs/, new inputs in
build/fuzz/corpus/T/, findings in build/fuzz/artifacts/T-{crash,leak,timeout,oom}-*.
"""

import argparse
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
FINDING_KINDS = ("crash", "leak", "timeout", "oom")


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


def proc_cpu_seconds(pid):
    """utime + stime of a live process (all threads), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def find_binary(build, target):
    for root, _dirs, files in os.walk(os.path.join(build, "tests")):
        if target in files:
            path = os.path.join(root, target)
            if os.access(path, os.X_OK):
                return path
    return None


def find_seeds(target):
    for root, dirs, _files in os.walk("tests"):
        if os.path.basename(root) == "corpus" and target in dirs:
            return os.path.join(root, target)
    return None


STATUS_RE = re.compile(r"^#(\d+)\s+\S+.*?cov: (\d+) ft: (\d+)(?: corp: (\d+)/(\S+))?")
STAT_RE = re.compile(r"^stat::(\w+):\s+(\d+)")
ARTIFACT_RE = re.compile(r"Test unit written to (\S+)")


def parse_log(path):
    """Final stats, last cov/ft status line and artifacts of one run's log."""
    out = {"stats": {}, "cov": None, "ft": None, "corp_units": None,
           "last_exec": None, "artifacts": [], "errors": []}
    with open(path, errors="replace") as f:
        for line in f:
            m = STATUS_RE.match(line)
            if m:
                out["last_exec"] = int(m.group(1))
                out["cov"] = int(m.group(2))
                out["ft"] = int(m.group(3))
                if m.group(4):
                    out["corp_units"] = int(m.group(4))
                continue
            m = STAT_RE.match(line)
            if m:
                out["stats"][m.group(1)] = int(m.group(2))
                continue
            m = ARTIFACT_RE.search(line)
            if m:
                out["artifacts"].append(m.group(1))
                continue
            if line.startswith("==") and "ERROR:" in line or line.startswith("SUMMARY:"):
                if len(out["errors"]) < 10:
                    out["errors"].append(line.strip())
    return out


def artifact_kind(path):
    base = os.path.basename(path)
    for kind in FINDING_KINDS:
        if f"-{kind}-" in base or base.startswith(f"{kind}-"):
            return kind
    return "other"


class Campaign:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.children = {}
        self.state = {"version": 1, "targets": {}}
        if os.path.exists(args.json) and not args.fresh:
            with open(args.json) as f:
                self.state = json.load(f)
        self.state.setdefault("sessions", []).append({
            "started": utcnow().isoformat(timespec="seconds"),
            "cpu_seconds_per_target": args.cpu_seconds,
            "jobs": args.jobs, "nice": args.nice,
            "host_cpus": os.cpu_count(),
        })
        for t in args.targets:
            self.entry(t)
        self.save()

    def entry(self, target):
        return self.state["targets"].setdefault(target, {
            "cpu_seconds": 0.0, "wall_seconds": 0.0, "executions": 0,
            "runs": 0, "cov": None, "ft": None, "corpus_files": None,
            "new_units_added": 0, "peak_rss_mb": 0, "findings": [],
            "status": "pending",
        })

    def save(self):
        with self.lock:
            tmp = self.args.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.state, f, indent=2, sort_keys=True)
            os.replace(tmp, self.args.json)
            with open(self.args.md, "w") as f:
                f.write(self.markdown())

    def markdown(self):
        a = self.args
        rows = ["| Target | CPU s | Wall s | Executions | exec/CPU-s | cov | ft | "
                "Corpus units / files | Findings | Status |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for t in a.targets:
            e = self.entry(t)
            rate = e["executions"] / e["cpu_seconds"] if e["cpu_seconds"] else 0
            kinds = {}
            for fnd in e["findings"]:
                kinds[fnd["kind"]] = kinds.get(fnd["kind"], 0) + 1
            finds = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
            rows.append(
                f"| `{t}` | {e['cpu_seconds']:.0f} | {e['wall_seconds']:.0f} | "
                f"{e['executions']:,} | {rate:,.0f} | {e['cov'] or '-'} | "
                f"{e['ft'] or '-'} | {e.get('corpus_units') or '-'} / "
                f"{e['corpus_files'] if e['corpus_files'] is not None else '-'} | "
                f"{finds} | {e['status']} |")
        return (f"Budget {a.cpu_seconds} CPU-s per target, {a.jobs} at a time, "
                f"nice {a.nice}; updated {utcnow().isoformat(timespec='seconds')}.\n\n"
                + "\n".join(rows) + "\n")

    def past_deadline(self):
        return self.args.stop_at is not None and utcnow() >= self.args.stop_at

    def run_target(self, target):
        a = self.args
        e = self.entry(target)
        binary = find_binary(a.build, target)
        seeds = find_seeds(target)
        if not binary or not seeds:
            e["status"] = "not built" if not binary else "no committed corpus"
            print(f"== {target}: {e['status']}", flush=True)
            self.save()
            return False
        corpus = os.path.join(a.build, "corpus", target)
        artifacts = os.path.join(a.build, "artifacts")
        logs = os.path.join(a.build, "logs")
        for d in (corpus, artifacts, logs):
            os.makedirs(d, exist_ok=True)
        while True:
            remaining = a.cpu_seconds - e["cpu_seconds"]
            if remaining <= 0:
                e["status"] = "done"
                break
            if len(e["findings"]) >= a.max_findings:
                e["status"] = f"stopped after {len(e['findings'])} findings"
                break
            if self.stop.is_set() or self.past_deadline():
                e["status"] = "interrupted"
                break
            e["runs"] += 1
            e["status"] = "running"
            log = os.path.join(logs, f"{target}.{e['runs']}.log")
            cmd = (["nice", "-n", str(a.nice)] if a.nice else []) + [
                   binary, "-timeout=%d" % a.timeout, "-rss_limit_mb=%d" % a.rss_limit_mb,
                   "-print_final_stats=1", f"-artifact_prefix={artifacts}/{target}-",
                   corpus, seeds]
            print(f"== {target}: run {e['runs']}, {remaining:.0f} CPU-s to go", flush=True)
            t0 = time.monotonic()
            with open(log, "w") as logf:
                logf.write("# " + " ".join(cmd) + "\n")
                logf.flush()
                child = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    start_new_session=True)
                with self.lock:
                    self.children[target] = child
                interrupted = False
                while True:
                    try:
                        pid, status, ru = os.wait4(child.pid, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid:
                        break
                    cpu = proc_cpu_seconds(child.pid)
                    if not interrupted and (
                            (cpu is not None and cpu >= remaining)
                            or self.stop.is_set() or self.past_deadline()):
                        child.send_signal(signal.SIGINT)
                        interrupted = True
                        kill_at = time.monotonic() + 60
                    if interrupted and time.monotonic() > kill_at:
                        child.kill()
                    time.sleep(0.5)
                child.returncode = os.waitstatus_to_exitcode(status)
                with self.lock:
                    self.children.pop(target, None)
            wall = time.monotonic() - t0
            cpu = ru.ru_utime + ru.ru_stime
            info = parse_log(log)
            stats = info["stats"]
            execs = stats.get("number_of_executed_units", info["last_exec"] or 0)
            e["cpu_seconds"] = round(e["cpu_seconds"] + cpu, 2)
            e["wall_seconds"] = round(e["wall_seconds"] + wall, 2)
            e["executions"] += execs
            e["new_units_added"] += stats.get("new_units_added", 0)
            e["peak_rss_mb"] = max(e["peak_rss_mb"], stats.get("peak_rss_mb", 0),
                                   ru.ru_maxrss // 1024)
            if info["cov"] is not None:
                e["cov"], e["ft"] = info["cov"], info["ft"]
                e["corpus_units"] = info["corp_units"]
            e["corpus_files"] = len(os.listdir(corpus))
            e["last_exit_code"] = child.returncode
            for path in info["artifacts"]:
                e["findings"].append({"kind": artifact_kind(path), "artifact": path,
                                      "log": log, "errors": info["errors"]})
            if child.returncode != 0 and not interrupted and not info["artifacts"]:
                e["findings"].append({"kind": "other", "artifact": None, "log": log,
                                      "errors": info["errors"],
                                      "exit_code": child.returncode})
            print(f"== {target}: run {e['runs']} {cpu:.0f} CPU-s / {wall:.0f} s wall, "
                  f"{execs} execs, cov {info['cov']} ft {info['ft']}, "
                  f"exit {child.returncode}, artifacts {info['artifacts']}", flush=True)
            self.save()
        self.save()
        return True

    def worker(self, queue):
        while not self.stop.is_set() and not self.past_deadline():
            with self.lock:
                if not queue:
                    return
                target = queue.pop(0)
            self.run_target(target)

    def interrupt(self, *_):
        self.stop.set()
        with self.lock:
            for child in self.children.values():
                try:
                    child.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass

    def run(self):
        queue = [t for t in self.args.targets
                 if self.entry(t)["cpu_seconds"] < self.args.cpu_seconds]
        for t in self.args.targets:
            if t not in queue:
                self.entry(t)["status"] = "done"
        signal.signal(signal.SIGINT, self.interrupt)
        signal.signal(signal.SIGTERM, self.interrupt)
        threads = [threading.Thread(target=self.worker, args=(queue,))
                   for _ in range(max(1, self.args.jobs))]
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            for th in threads:
                th.join(timeout=0.5)
        for t in queue:  # never started
            self.entry(t)["status"] = "not started"
        self.state["sessions"][-1]["ended"] = utcnow().isoformat(timespec="seconds")
        self.save()
        print(self.markdown(), end="")
        findings = sum(len(self.entry(t)["findings"]) for t in self.args.targets)
        return 1 if findings else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("targets", nargs="+", help="fuzz targets, in the order to run them")
    p.add_argument("--build", default="build/fuzz")
    p.add_argument("--cpu-seconds", type=float, default=600)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--nice", type=int, default=19)
    p.add_argument("--timeout", type=int, default=10, help="libFuzzer -timeout (s)")
    p.add_argument("--rss-limit-mb", type=int, default=2048)
    p.add_argument("--max-findings", type=int, default=3,
                   help="stop a target after this many findings")
    p.add_argument("--stop-at", help="UTC time HH:MM (or ISO) at which to stop cleanly")
    p.add_argument("--json", help="default BUILD/campaign.json")
    p.add_argument("--md", help="default BUILD/campaign.md")
    p.add_argument("--fresh", action="store_true", help="ignore an earlier campaign.json")
    args = p.parse_args()
    args.json = args.json or os.path.join(args.build, "campaign.json")
    args.md = args.md or os.path.join(args.build, "campaign.md")
    if args.stop_at:
        now = utcnow()
        if re.fullmatch(r"\d{1,2}:\d{2}", args.stop_at):
            h, m = map(int, args.stop_at.split(":"))
            at = now.replace(hour=h, minute=m, second=0, microsecond=0)
            if at <= now:
                at += dt.timedelta(days=1)
        else:
            at = dt.datetime.fromisoformat(args.stop_at)
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.timezone.utc)
        args.stop_at = at
    os.makedirs(args.build, exist_ok=True)
    sys.exit(Campaign(args).run())


if __name__ == "__main__":
    main()
