#!/usr/bin/env python3
"""make bench-hostile: how tkmsd's Ua listener holds up against hostile
clients (docs/benchmarks.md, "Hostile clients").

The requirement measured: with 1,000 idle connections, and separately 200
slow-header and 200 slow-body connections from one address, valid clients
keep at least 80 % of their undisturbed rate, and the attack connections are
cut at their deadlines.

What it does:
  - makes a throw-away SoftHSM2 token with `tkmsd --dev`, then runs
    `tkmsd --config` on that token on free loopback ports, with the `http`
    settings given here (--request-timeout-ms, --keep-alive-timeout-ms,
    --http-config) and --extra-config merged into the configuration; a fresh
    tkmsd for every measurement;
  - measures the valid rate with tkms-bench (--mode request) from 127.0.0.1,
    undisturbed (before and after the scenarios; the reference is their mean),
    then during each attack scenario;
  - the attackers connect from another loopback address (--attack-source,
    127.0.0.2; bound before connect), so a per-source cap can tell them from
    the valid client:
      idle               N connections that send nothing (no ClientHello
                         either over https);
      idle-keepalive     N connections that send one cheap request
                         (GET /keymanagement, a quick 4xx) with keep-alive,
                         read the answer and then sit idle;
      slow-header        N connections sending a request head one byte
                         every --interval seconds;
      slow-body          N connections sending a complete head with
                         Content-Length: 200, then one body byte every
                         --interval seconds;
      admin-under-flood  GET /healthz on the admin port every 200 ms while
                         the idle scenario runs (reported from that run;
                         the probes run during every scenario);
      admin-idle         N (8) idle connections to the admin port itself,
                         /healthz probed as above;
    over https (--scheme https: tkmsd's HTTPS Ua listener on the --dev
    token's TLS key and chain, verified with its development CA as
    localhost) the attackers complete the TLS handshake first (Python ssl)
    and are slow inside TLS;
  - records, for each attack connection, when the server closed it (EOF or
    reset) relative to the moment it was connected, and classifies it:
    refused at once (connect refused, TLS handshake refused, or closed before
    min(1 s, deadline/4)), cut (closed later; "late" if after
    1.5 x deadline + 1 s), still open at the end, or still connecting at the
    end (never accepted: backlog full);
  - per scenario: valid rate, ratio to the undisturbed rate, PASS/FAIL
    against --threshold (0.80), the attack outcome next to the deadline
    expected to cut it (request_timeout_ms for idle, slow-header and
    slow-body; keep_alive_timeout_ms for idle-keepalive; --expect-deadline-ms
    overrides, e.g. for a new listener's separate header deadline), and the
    admin probes (the verdict of admin-under-flood and admin-idle: every
    probe answered 200 within --admin-timeout). Prints a table; --json FILE
    writes everything.

Standard library only (Debian 12's python3). Loopback only; every process
started is stopped. --quick is a smoke run that finishes in about 30 s.
"""
import argparse
import asyncio
import datetime
import json
import os
import resource
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tkmsd_harness import (bench_path, deep_merge, dev_ca, dev_tls_config, dev_token_config,  # noqa: E402
                           provision_dev, start_config, user_args)

SCENARIOS = ["idle", "idle-keepalive", "slow-header", "slow-body", "admin-under-flood", "admin-idle"]
ATTACKERS = {"idle": 1000, "idle-keepalive": 200, "slow-header": 200, "slow-body": 200, "admin-idle": 8}
QUICK_ATTACKERS = {"idle": 100, "idle-keepalive": 20, "slow-header": 20, "slow-body": 20, "admin-idle": 8}
# tkmsd's defaults (docs/config.md, `http`), for the deadlines when not set.
HTTP_DEFAULTS = {"request_timeout_ms": 10000, "keep_alive_timeout_ms": 30000}
# The http setting whose deadline should cut each kind of attack connection.
DEADLINE_KEY = {"idle": "request_timeout_ms", "idle-keepalive": "keep_alive_timeout_ms",
                "slow-header": "request_timeout_ms", "slow-body": "request_timeout_ms",
                "admin-idle": "request_timeout_ms"}
# Scenarios judged on the admin probes rather than the valid rate.
ADMIN_SCENARIOS = ("admin-under-flood", "admin-idle")
BODY_BYTES = 200
UA_PATH = "/keymanagement?requesttype=ticketrequest"


# --------------------------------------------------------------- attackers

class Conn:
    """One attack connection's story; times are loop.time() seconds."""
    __slots__ = ("t_start", "t_ready", "t_closed", "how", "error", "first_bytes", "bytes_sent")

    def __init__(self):
        self.t_start = None   # connect() called
        self.t_ready = None   # TCP connected (and TLS handshake done over https)
        self.t_closed = None  # the server closed it (or refused it)
        self.how = None       # eof | reset | write_error | connect_error | tls_error
        self.error = ""
        self.first_bytes = b""
        self.bytes_sent = 0


def request_head(host, content_length, pad_to=0):
    head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/mikey\r\n"
            "Content-Length: %d\r\n" % (UA_PATH, host, content_length))
    i = 0
    while len(head) < pad_to:  # a head that never ends while we trickle it
        head += "X-Slow-%d: a\r\n" % i
        i += 1
    return (head + "\r\n").encode()


def attack_bytes(kind, host):
    """(sent at once, trickled one byte per interval)."""
    if kind in ("idle", "admin-idle"):
        return b"", b""
    if kind == "idle-keepalive":
        return b"GET /keymanagement HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n" % host.encode(), b""
    if kind == "slow-header":
        return b"", request_head(host, BODY_BYTES, pad_to=6000)[:6000]
    if kind == "slow-body":
        return request_head(host, BODY_BYTES), b"A" * BODY_BYTES
    raise ValueError(kind)


async def read_until_close(reader, rec, loop):
    try:
        while True:
            data = await reader.read(4096)
            if not data:
                rec.how = rec.how or "eof"
                break
            if len(rec.first_bytes) < 200:
                rec.first_bytes += data[:200 - len(rec.first_bytes)]
    except (ConnectionError, ssl.SSLError, OSError) as e:
        rec.how = rec.how or "reset"
        rec.error = rec.error or type(e).__name__
    if rec.t_closed is None:
        rec.t_closed = loop.time()


async def send_pattern(writer, rec, at_once, trickle, interval, loop):
    try:
        if at_once:
            writer.write(at_once)
            await writer.drain()
            rec.bytes_sent += len(at_once)
        start = loop.time()
        for k in range(len(trickle)):
            delay = start + k * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(trickle[k:k + 1])
            await writer.drain()
            rec.bytes_sent += 1
    except (ConnectionError, ssl.SSLError, OSError) as e:
        if rec.t_closed is None:
            rec.t_closed = loop.time()
            rec.how = "write_error"
            rec.error = type(e).__name__


async def attack_conn(kind, rec, target, source, tls, server_name, interval):
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    writer = None
    tasks = []
    try:
        rec.t_start = loop.time()
        try:
            sock.bind((source, 0))
            await loop.sock_connect(sock, target)
        except OSError as e:
            rec.t_closed, rec.how, rec.error = loop.time(), "connect_error", type(e).__name__
            return
        # Over https an idle attacker does not even send its ClientHello.
        use_tls = tls if kind not in ("idle", "admin-idle") else None
        try:
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=use_tls, server_hostname=(server_name or target[0]) if use_tls else None)
        except (ConnectionError, ssl.SSLError, OSError) as e:
            rec.t_closed, rec.how, rec.error = loop.time(), "tls_error", type(e).__name__
            return
        sock = None  # the transport owns it now
        rec.t_ready = loop.time()
        at_once, trickle = attack_bytes(kind, target[0])
        tasks = [asyncio.ensure_future(read_until_close(reader, rec, loop)),
                 asyncio.ensure_future(send_pattern(writer, rec, at_once, trickle, interval, loop))]
        while rec.t_closed is None and not tasks[0].done():
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[1].done() and not tasks[0].done():
                await tasks[0]  # nothing left to send: wait for the close
    finally:
        for t in tasks:
            t.cancel()
        if writer is not None:
            writer.transport.abort()
        if sock is not None:
            sock.close()


def http_status(first_bytes):
    parts = first_bytes.split(b"\r\n", 1)[0].split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def classify(recs, deadline_s):
    """The attack connections' outcome next to the deadline expected to cut them."""
    refused_within = min(1.0, deadline_s / 4) if deadline_s > 0 else 1.0
    late_after = 1.5 * deadline_s + 1.0
    out = {"connections": len(recs), "deadline_s": deadline_s, "refused_within_s": refused_within,
           "refused_at_once": 0, "connect_errors": 0, "tls_errors": 0, "cut": 0, "cut_late": 0,
           "open_at_end": 0, "connecting_at_end": 0, "statuses": {}, "close_how": {}}
    cut_times = []
    for r in recs:
        status = http_status(r.first_bytes)
        if status is not None:
            out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
        if r.how:
            out["close_how"][r.how] = out["close_how"].get(r.how, 0) + 1
        if r.t_ready is None:
            if r.how == "connect_error":
                out["connect_errors"] += 1
                out["refused_at_once"] += 1
            elif r.how == "tls_error":
                out["tls_errors"] += 1
                out["refused_at_once"] += 1
            else:
                out["connecting_at_end"] += 1
            continue
        if r.t_closed is None:
            out["open_at_end"] += 1
            continue
        after = r.t_closed - r.t_ready
        if after < refused_within:
            out["refused_at_once"] += 1
        else:
            out["cut"] += 1
            cut_times.append(after)
            if after > late_after:
                out["cut_late"] += 1
    cut_times.sort()
    out["cut_after_s"] = ({"min": cut_times[0], "median": statistics.median(cut_times), "max": cut_times[-1]}
                          if cut_times else None)
    out["cut_after_s_all"] = [round(t, 3) for t in cut_times]
    out["ok"] = out["open_at_end"] == 0 and out["connecting_at_end"] == 0 and out["cut_late"] == 0
    return out


# ------------------------------------------------------------- admin probe

async def probe_once(host, port, tls, server_name, timeout):
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def once():
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=(server_name or host) if tls else None)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode())
            await writer.drain()
            return await reader.readline()
        finally:
            writer.transport.abort()

    try:
        line = await asyncio.wait_for(once(), timeout)
        ok = http_status(line) == 200
    except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
        ok = False
    return ok, loop.time() - t0


async def admin_prober(host, port, tls, server_name, period, timeout, stop):
    probes = []
    while not stop.is_set():
        probes.append(asyncio.ensure_future(probe_once(host, port, tls, server_name, timeout)))
        try:
            await asyncio.wait_for(stop.wait(), period)
        except asyncio.TimeoutError:
            pass
    results = await asyncio.gather(*probes)
    ok = [lat for good, lat in results if good]
    return {"sent": len(results), "ok": len(ok), "failed": len(results) - len(ok),
            "max_ms": round(max(lat for _, lat in results) * 1000, 1) if results else None,
            "max_ok_ms": round(max(ok) * 1000, 1) if ok else None,
            "timeout_ms": round(timeout * 1000)}


# ----------------------------------------------------------------- runner

async def run_valid(cmd):
    """tkms-bench; a run that fails (trial request refused or timed out) is rate 0."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode == 0:
        try:
            return json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            pass
    return {"requests_per_second": 0.0, "ok": 0, "failed_run": True,
            "first_error": (err.decode().strip() or out.decode().strip())[-300:]}


class Bench:
    def __init__(self, a):
        self.a = a
        self.state = tempfile.mkdtemp(prefix="tkms-hostile-")
        self.dev_dir = os.path.join(self.state, "dev")
        self.log = os.path.join(self.state, "tkmsd.log")
        self.http = {}
        for key in ("request_timeout_ms", "keep_alive_timeout_ms"):
            if getattr(a, key) is not None:
                self.http[key] = getattr(a, key)
        self.http = deep_merge(self.http, a.http_config or {})
        self.config = None
        self.tls = None
        self.runs = 0

    def make_tls_context(self):
        a = self.a
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = bool(a.tls_server_name)
        if a.cacert:
            ctx.load_verify_locations(a.cacert)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def effective_http(self):
        http = dict(HTTP_DEFAULTS)
        http.update((self.config or {}).get("http", {}))
        return http

    def deadline_s(self, kind):
        if kind in self.a.expect_deadline:
            return self.a.expect_deadline[kind] / 1000.0
        return self.effective_http()[DEADLINE_KEY[kind]] / 1000.0

    def provision(self):
        a = self.a
        provision_dev(a.build, self.dev_dir, os.path.join(self.state, "ready.json"), self.log)
        extra = a.extra_config or {}
        if a.scheme == "https":
            # The HTTPS Ua listener on the --dev token's TLS key and chain
            # (tkmsd --dev wrote them); its development CA verifies it.
            extra = deep_merge(dev_tls_config(self.dev_dir), extra)
            a.cacert = a.cacert or dev_ca(self.dev_dir)
        self.config = dev_token_config(self.dev_dir, self.http, extra)
        if a.scheme == "https" or a.admin_scheme == "https":
            self.tls = self.make_tls_context()

    def ua_port(self, kms):
        return kms.ua_tls_port if self.a.scheme == "https" else kms.ua_port

    def start(self):
        self.runs += 1
        return start_config(self.a.build, self.config, os.path.join(self.state, "tkmsd.json"),
                            os.path.join(self.state, "ready.json"), self.log)

    def valid_cmd(self, kms, duration=None, warmup=None):
        a = self.a
        duration = a.duration if duration is None else duration
        warmup = a.warmup if warmup is None else warmup
        # tkms-bench refuses IP literals in https URLs: the certificate names localhost.
        host = "localhost" if a.scheme == "https" else "127.0.0.1"
        cmd = [bench_path(a.build), "--url", "%s://%s:%d" % (a.scheme, host, self.ua_port(kms)), "--mode", "request",
               "--connections", str(a.connections), "--duration", "%.2f" % duration, "--warmup", "%.2f" % warmup,
               "--timeout-ms", str(a.valid_timeout_ms), "--tgk-bytes", "0", "--json"] + user_args(self.dev_dir)
        if a.cacert:
            cmd += ["--cacert", a.cacert]
        return cmd

    def stop(self, kms):
        t0 = time.time()
        clean = kms.stop(timeout=self.a.stop_timeout)
        return {"stopped_by_sigterm": clean, "stop_s": round(time.time() - t0, 2)}

    def undisturbed(self):
        kms = self.start()
        try:
            loop = asyncio.new_event_loop()
            try:
                return loop.run_until_complete(run_valid(self.valid_cmd(kms)))
            finally:
                loop.close()
        finally:
            self.stop(kms)

    def scenario(self, kind):
        n = attackers_for(self.a, kind)
        kms = self.start()
        try:
            loop = asyncio.new_event_loop()
            try:
                result = loop.run_until_complete(self._scenario(kind, n, kms))
            finally:
                loop.close()
        finally:
            result_stop = self.stop(kms)
        result["tkmsd_stop"] = result_stop
        return result

    async def measure_valid(self, kms):
        """One tkms-bench run. tkms-bench gives up when its trial request
        fails (e.g. times out behind the attackers); then it is started again
        for what is left of the window (warm-up + duration), and the rate is
        every OK request of those runs over the whole window."""
        a = self.a
        loop = asyncio.get_running_loop()
        window = a.warmup + a.duration
        t_end = loop.time() + window
        runs = [await run_valid(self.valid_cmd(kms))]
        if not runs[0].get("failed_run"):
            return runs[0]
        while t_end - loop.time() > 0.5:
            runs.append(await run_valid(self.valid_cmd(kms, duration=t_end - loop.time(), warmup=0)))
        ok = sum(r.get("ok", 0) for r in runs)
        return {"requests_per_second": ok / window, "ok": ok, "failed_run": True, "window_s": window,
                "runs": len(runs), "failed_runs": sum(1 for r in runs if r.get("failed_run")),
                "first_error": runs[0]["first_error"],
                "errors_by_kind": {k: v for r in runs for k, v in r.get("errors_by_kind", {}).items()}}

    async def _scenario(self, kind, n, kms):
        a = self.a
        loop = asyncio.get_running_loop()
        deadline = self.deadline_s(kind)
        ua_tls = self.tls if a.scheme == "https" else None
        admin_tls = self.tls if a.admin_scheme == "https" else None
        recs = [Conn() for _ in range(n)]
        t0 = loop.time()
        target = ("127.0.0.1", kms.admin_port if kind == "admin-idle" else self.ua_port(kms))
        attack_tls = admin_tls if kind == "admin-idle" else ua_tls
        attackers = [asyncio.ensure_future(attack_conn(kind, r, target, a.attack_source, attack_tls,
                                                       a.tls_server_name, a.interval)) for r in recs]
        stop_probes = asyncio.Event()
        prober = asyncio.ensure_future(admin_prober("127.0.0.1", kms.admin_port, admin_tls, a.tls_server_name,
                                                    a.admin_period, a.admin_timeout, stop_probes))
        # Ramp: every attacker connected (or refused), at most --ramp seconds.
        while loop.time() - t0 < a.ramp and any(r.t_ready is None and r.how is None for r in recs):
            await asyncio.sleep(0.05)
        ramp = loop.time() - t0
        connected_at_start = sum(1 for r in recs if r.t_ready is not None and r.t_closed is None)
        t_valid = loop.time()
        valid = await self.measure_valid(kms)
        # Attack connections still held when the valid client finished: if
        # the deadline is shorter than the client's window, the listener cut
        # the attack before the measurement ended and the rest of the window
        # was undisturbed (held_until_valid_end_s says for how long).
        t_valid_end = loop.time()
        held_at_valid_end = sum(1 for r in recs if r.t_ready is not None and r.t_closed is None)
        last_close = max((r.t_closed for r in recs if r.t_ready is not None and r.t_closed is not None), default=None)
        # Keep the attack going until every attacker is closed, or until its
        # deadline (x1.5 + 1 s) has passed, at most --max-hold seconds.
        until = max(loop.time(), t0 + ramp + min(1.5 * deadline + 1.0, a.max_hold))
        while loop.time() < until and not all(r.t_closed is not None for r in recs):
            await asyncio.sleep(0.05)
        t_end = loop.time()
        stop_probes.set()
        for t in attackers:
            t.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)
        admin = await prober
        outcome = classify(recs, deadline)
        outcome["connected_when_valid_started"] = connected_at_start
        outcome["held_when_valid_ended"] = held_at_valid_end
        valid["window_under_attack_s"] = round(
            (t_valid_end if held_at_valid_end or last_close is None else last_close) - t_valid, 2)
        valid["window_s"] = round(t_valid_end - t_valid, 2)
        return {"scenario": kind, "attackers": n, "attack_source": a.attack_source, "interval_s": a.interval,
                "ramp_s": round(ramp, 2), "observed_s": round(t_end - t0, 2), "valid": valid,
                "attack": outcome, "admin": admin}


def fmt_cut(c):
    if not c["cut_after_s"]:
        return "-"
    s = c["cut_after_s"]
    return "%.1f/%.1f/%.1f" % (s["min"], s["median"], s["max"])


def print_table(results, reference, threshold):
    print()
    print("undisturbed valid rate: %.0f req/s (%s)" % (
        reference, ", ".join("%.0f" % u["requests_per_second"] for u in results["undisturbed"])))
    hdr = ("scenario", "attackers", "valid/s", "ratio", "verdict", "attacked s", "refused", "cut", "cut s min/med/max",
           "deadline", "late", "open", "connecting", "attack", "admin ok/sent", "admin max")
    rows = []
    for name in results["order"]:
        s = results["scenarios"][name]
        c = s["attack"]
        adm = s["admin"]
        verdict = s["admin_ok"] if name in ADMIN_SCENARIOS else s["valid_pass"]
        rows.append((name, "(idle run)" if name == "admin-under-flood" else str(s["attackers"]),
                     "%.0f" % s["valid"]["requests_per_second"], "%.2f" % s["ratio"], "PASS" if verdict else "FAIL",
                     "%.1f/%.1f" % (s["valid"]["window_under_attack_s"], s["valid"]["window_s"]),
                     str(c["refused_at_once"]), str(c["cut"]), fmt_cut(c), "%.1f s" % c["deadline_s"],
                     str(c["cut_late"]), str(c["open_at_end"]), str(c["connecting_at_end"]),
                     "PASS" if c["ok"] else "FAIL", "%d/%d" % (adm["ok"], adm["sent"]),
                     "%s ms" % adm["max_ms"]))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    for line in [hdr] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)))
    print("verdict: valid rate >= %.2f x undisturbed (admin-*: every /healthz answered 200 in time); "
          "attack: PASS if no attack connection was still open, still connecting or cut late; "
          "attacked s: seconds of the valid client's window (warm-up included) with attack connections "
          "held / the window" % threshold)
    for name in results["order"]:
        s = results["scenarios"][name]
        v = s["valid"]
        if name not in ADMIN_SCENARIOS and v["window_under_attack_s"] < 0.9 * v["window_s"]:
            print("  %s: warning: the attack was cut %.1f s into the valid client's %.1f s window; the rest was "
                  "undisturbed (use a request_timeout_ms / keep_alive_timeout_ms above ramp + warm-up + duration)"
                  % (name, v["window_under_attack_s"], v["window_s"]))
        if v.get("failed_run"):
            print("  %s: valid client: %d of %d tkms-bench runs failed in the %.1f s window; first: %s" % (
                name, v.get("failed_runs", 1), v.get("runs", 1), v.get("window_s", 0), v.get("first_error")))
        elif v.get("errors"):
            print("  %s: valid client errors: %s" % (name, v.get("errors_by_kind")))
        if s["attack"]["statuses"]:
            print("  %s: attack connections got HTTP %s" % (name, s["attack"]["statuses"]))


def attackers_for(a, kind):
    given = a.admin_attackers if kind == "admin-idle" else a.attackers
    return given if given else (QUICK_ATTACKERS if a.quick else ATTACKERS)[kind]


def json_arg(text):
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object is needed")
    return value


def deadline_arg(text):
    kind, _, ms = text.partition("=")
    if kind not in DEADLINE_KEY or not ms.isdigit():
        raise argparse.ArgumentTypeError("SCENARIO=MS with SCENARIO one of %s" % ", ".join(DEADLINE_KEY))
    return kind, int(ms)


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        print("warning: RLIMIT_NOFILE hard limit %d is below the %d descriptors this run needs "
              "(raise it, e.g. ulimit -Hn, or use fewer --attackers)" % (target, needed), flush=True)
    return target


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release", help="build directory (default build/release)")
    ap.add_argument("--scenario", action="append", choices=SCENARIOS,
                    help="repeatable; default: all")
    ap.add_argument("--admin-attackers", type=int, help="admin-idle: idle connections to the admin port (default 8)")
    ap.add_argument("--attackers", type=int, help="attack connections per Ua scenario "
                    "(default: idle 1000, others 200; --quick: 100 / 20)")
    ap.add_argument("--duration", type=float, help="valid client's measured seconds (default 6; --quick 1.5)")
    ap.add_argument("--warmup", type=float, help="valid client's warm-up seconds (default 1; --quick 0.5)")
    ap.add_argument("--connections", type=int, default=2, help="valid client's connections (default 2)")
    ap.add_argument("--valid-timeout-ms", type=int, default=2000, help="valid client's per-request timeout")
    ap.add_argument("--threshold", type=float, default=0.80, help="required ratio to the undisturbed rate")
    ap.add_argument("--interval", type=float, default=1.0, help="slow attackers: seconds between bytes")
    ap.add_argument("--attack-source", default="127.0.0.2", help="attackers' source address (default 127.0.0.2)")
    ap.add_argument("--ramp", type=float, help="at most this long for the attackers to connect before the valid "
                    "client starts (default 3; --quick 1)")
    ap.add_argument("--max-hold", type=float, help="attack observed at most this long after the ramp, even if "
                    "its deadline is later (default 60; --quick 3)")
    ap.add_argument("--admin-period", type=float, default=0.2, help="seconds between /healthz probes")
    ap.add_argument("--admin-timeout", type=float, default=1.0, help="a /healthz probe fails after this long")
    ap.add_argument("--request-timeout-ms", type=int, help="http.request_timeout_ms (default: tkmsd's, 10000; "
                    "--quick 1500)")
    ap.add_argument("--keep-alive-timeout-ms", type=int, help="http.keep_alive_timeout_ms (default: tkmsd's, "
                    "30000; --quick 1500)")
    ap.add_argument("--http-config", type=json_arg, metavar="JSON",
                    help="merged into the configuration's http section, e.g. '{\"max_connections_per_source\":16}'")
    ap.add_argument("--extra-config", type=json_arg, metavar="JSON",
                    help="merged into the top level of the configuration (e.g. TLS settings)")
    ap.add_argument("--expect-deadline-ms", type=deadline_arg, action="append", default=[], metavar="SCENARIO=MS",
                    help="the deadline that should cut SCENARIO's connections, when it is not the http setting "
                    "this script assumes (request_timeout_ms; keep_alive_timeout_ms for idle-keepalive)")
    ap.add_argument("--scheme", choices=["http", "https"], default="http", help="Ua listener scheme")
    ap.add_argument("--admin-scheme", choices=["http", "https"], default="http",
                    help="admin listener scheme (default http: tkmsd's admin listener speaks HTTPS only with "
                    "client certificates, which the probes do not have)")
    ap.add_argument("--cacert", help="CA certificate (PEM) of the listeners; passed to tkms-bench (default with "
                    "--scheme https: the development CA of the throw-away --dev token)")
    ap.add_argument("--tls-server-name", help="SNI and name to verify (default with --scheme https: localhost, "
                    "the name in --dev's certificate)")
    ap.add_argument("--stop-timeout", type=float, default=10.0, help="SIGKILL tkmsd if SIGTERM takes longer")
    ap.add_argument("--quick", action="store_true", help="smoke run: short durations, fewer attackers (~30 s)")
    ap.add_argument("--self-test", action="store_true", help="the same as --quick")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--keep-state", action="store_true", help="keep the state directory (token, tkmsd.log)")
    a = ap.parse_args()
    a.quick = a.quick or a.self_test
    q = a.quick
    a.duration = a.duration if a.duration is not None else (1.5 if q else 6.0)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if q else 1.0)
    a.ramp = a.ramp if a.ramp is not None else (1.0 if q else 3.0)
    a.max_hold = a.max_hold if a.max_hold is not None else (3.0 if q else 60.0)
    if q:
        a.request_timeout_ms = a.request_timeout_ms or 1500
        a.keep_alive_timeout_ms = a.keep_alive_timeout_ms or 1500
    if a.scheme == "https" and a.tls_server_name is None:
        a.tls_server_name = "localhost"
    a.expect_deadline = dict(a.expect_deadline_ms)
    selected = a.scenario or SCENARIOS
    order = [s for s in SCENARIOS if s in selected]
    if not os.path.exists(bench_path(a.build)):
        ap.error("%s not found: build the release preset first (make release)" % bench_path(a.build))

    most = max(attackers_for(a, k) for k in
               ("idle" if s == "admin-under-flood" else s for s in order))
    nofile = raise_nofile(most + 256)

    started = time.time()
    b = Bench(a)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
               "rlimit_nofile": nofile, "order": order, "undisturbed": [], "scenarios": {}}
    try:
        print("== provisioning a development token in %s" % b.dev_dir, flush=True)
        b.provision()
        results["http"] = b.effective_http()
        results["config_http_given"] = b.config.get("http", {})
        print("== http settings: %s" % json.dumps(results["http"]), flush=True)
        print("== undisturbed valid rate", flush=True)
        results["undisturbed"].append(b.undisturbed())
        runs = {}
        for name in order:
            kind = "idle" if name == "admin-under-flood" else name
            if kind not in runs:
                print("== scenario %s" % kind, flush=True)
                runs[kind] = b.scenario(kind)
            results["scenarios"][name] = dict(runs[kind], scenario=name)
        if not q:
            print("== undisturbed valid rate, again", flush=True)
            results["undisturbed"].append(b.undisturbed())
    finally:
        if a.keep_state:
            print("state kept in %s" % b.state)
        else:
            shutil.rmtree(b.state, ignore_errors=True)

    reference = statistics.mean(u["requests_per_second"] for u in results["undisturbed"])
    results["reference_rate"] = reference
    results["threshold"] = a.threshold
    for name, s in results["scenarios"].items():
        s["ratio"] = s["valid"]["requests_per_second"] / reference if reference else 0.0
        s["valid_pass"] = s["ratio"] >= a.threshold
        s["admin_ok"] = s["admin"]["failed"] == 0
    results["elapsed_s"] = round(time.time() - started, 1)
    print_table(results, reference, a.threshold)
    print("elapsed: %.0f s" % results["elapsed_s"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
