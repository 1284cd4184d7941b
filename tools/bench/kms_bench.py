#!/usr/bin/env python3
"""make bench: tkmsd's throughput and latency against ceilings measured in the
same run (docs/benchmarks.md).

  1. raw PKCS#11 ceiling: token_mix_ceiling, the token operations one request
     needs (14 HMAC + 4 RNG per Ticket Request, 14 HMAC per Resolve) issued as
     raw C_Sign / C_GenerateRandom calls, best of 1 and 2 threads;
  2. HTTP ceiling: tkms-echo, a bare echo handler behind tkmsd's own listener
     (web/event_listener.cpp) configured like the Ua listener, loaded by
     tkms-bench --mode echo;
  3. TLS echo ceiling: the same tkms-echo over HTTPS (--tls-cert/--tls-key)
     with a software RSA-2048 key and a certificate for localhost made here
     with openssl in a temporary directory, loaded by tkms-bench --cacert;
  4. tkmsd --dev on a fresh token, loaded by tkms-bench (request, then resolve)
     closed-loop over N keep-alive connections (the saturating rate), then
     open-loop at half that rate (the p99 that matters); over plain HTTP and
     then over HTTPS (its TLS listener, key in the token, development CA);
  5. full TLS handshakes per second (connect, handshake, close; no request),
     against the TLS echo (software key) and tkmsd (key in the token), from N
     Python threads: tkms-bench keeps one TLS session per connection and has
     no one-request-per-connection mode;
  6. cross-domain Ticket Resolve over Zk: two tkmsd domains (two_domains.py),
     tickets from A, the responder resolving at B, which asks A over Zk; as a
     ratio to the local resolve rate at B (B's own tickets) in the same run.

Prints a table with each rate as a ratio to each ceiling, and writes the
figures as JSON (--json-out). Only loopback is used; every process started is
stopped.
"""
import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from tkmsd_harness import bench_path, dev_ca, run_json, start_dev, stop, user_args
from two_domains import TwoDomains, programs_in


def make_software_tls(directory):
    """A throw-away CA and an RSA-2048 server key + certificate for localhost
    (the TLS echo ceiling's software key). Returns (ca, cert, key) paths."""
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr, cert = (os.path.join(directory, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")

    def run(*cmd):
        subprocess.run(("openssl",) + cmd, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
        "-subj", "/CN=kms_bench throw-away CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
        "-days", "2", "-sha256", "-extfile", ext)
    os.chmod(key, 0o600)
    return ca, cert, key


def start_echo(build, tls=None):
    """tkms-echo on a free loopback port; tls = (cert, key) for HTTPS."""
    cmd = [os.path.join(build, "tools/bench/tkms-echo"), "--listen", "127.0.0.1:0"]
    if tls:
        cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        stop(proc)
        raise RuntimeError("tkms-echo did not start: %s" % " ".join(cmd))
    return proc, json.loads(line)["port"]


def handshake_rate(port, cafile, threads, duration, warmup=0.5):
    """Full TLS 1.2 handshakes per second from `threads` Python threads: TCP
    connect, handshake (certificate verified for localhost), close. The server
    keeps no session cache, so every handshake is a full one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    counts = [0] * threads
    errors = [0] * threads
    first_error = []
    start = time.monotonic() + warmup
    end = start + duration

    def worker(i):
        while True:
            now = time.monotonic()
            if now >= end:
                return
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost"):
                        pass
                ok = True
            except (OSError, ssl.SSLError) as e:
                ok = False
                if not first_error:
                    first_error.append("%s: %s" % (type(e).__name__, e))
            if now >= start:
                if ok:
                    counts[i] += 1
                else:
                    errors[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {"handshakes_per_second": sum(counts) / duration, "handshakes": sum(counts), "errors": sum(errors),
            "first_error": first_error[0] if first_error else "", "threads": threads, "duration_s": duration}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--handshake-seconds", type=float, default=3.0,
                    help="seconds of each handshake measurement (0: skip it)")
    ap.add_argument("--no-https", action="store_true", help="plain HTTP only (the figures before HTTPS)")
    ap.add_argument("--no-zk", action="store_true", help="skip the cross-domain resolve over Zk")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    b = a.build
    bench = bench_path(b)
    common = ["--duration", str(a.duration), "--warmup", str(a.warmup), "--json"]
    https = not a.no_https
    results = {"date": time.strftime("%Y-%m-%d"), "connections": a.connections}
    state = tempfile.mkdtemp(prefix="tkms-bench-")
    try:
        print("== raw PKCS#11 ceiling (token_mix_ceiling)", flush=True)
        results["token"] = run_json([os.path.join(b, "tests/bench/token_mix_ceiling"), str(max(2.0, a.duration / 2))])

        print("== HTTP ceiling (tkms-echo + tkms-bench --mode echo)", flush=True)
        echo, port = start_echo(b)
        try:
            results["echo"] = run_json([bench, "--url", "http://127.0.0.1:%d" % port, "--mode", "echo",
                                        "--connections", str(a.connections)] + common)
        finally:
            stop(echo)

        if https:
            print("== TLS echo ceiling (tkms-echo --tls-cert/--tls-key, software RSA-2048 key; "
                  "tkms-bench --cacert)", flush=True)
            soft_ca, cert, key = make_software_tls(state)
            echo, port = start_echo(b, (cert, key))
            try:
                results["echo_tls"] = run_json([bench, "--url", "https://localhost:%d" % port, "--cacert", soft_ca,
                                                "--mode", "echo", "--connections", str(a.connections)] + common)
                if a.handshake_seconds > 0:
                    print("== TLS handshakes/s, tkms-echo (software key)", flush=True)
                    results["handshakes_echo"] = handshake_rate(port, soft_ca, a.connections, a.handshake_seconds)
            finally:
                stop(echo)

        dev_dir = os.path.join(state, "s")
        print("== tkmsd --dev --state-dir %s" % dev_dir, flush=True)
        # the per-request log is on (to a file), as in production
        kms = start_dev(b, dev_dir, os.path.join(state, "ready.json"), os.path.join(state, "tkmsd.log"))
        try:
            users = user_args(dev_dir) + ["--tgk-bytes", "0"]
            targets = [("", ["--url", "http://127.0.0.1:%d" % kms.ua_port])]
            if https:
                targets.append(("_https", ["--url", "https://localhost:%d" % kms.ua_tls_port,
                                           "--cacert", dev_ca(dev_dir)]))
            for suffix, url in targets:
                for mode in ("request", "resolve"):
                    label = mode + (" over HTTPS" if suffix else "")
                    print("== tkmsd %s: saturating (%d connections)" % (label, a.connections), flush=True)
                    sat = run_json([bench] + url + ["--mode", mode, "--connections", str(a.connections)]
                                   + users + common)
                    half = sat["requests_per_second"] / 2
                    print("== tkmsd %s: open loop at %.0f/s" % (label, half), flush=True)
                    at_half = run_json([bench] + url + ["--mode", mode, "--connections", str(a.connections),
                                                        "--rate", "%.0f" % half] + users + common)
                    results[mode + suffix] = {"saturating": sat, "half_rate": at_half}
            if https and a.handshake_seconds > 0:
                print("== TLS handshakes/s, tkmsd (key in the token)", flush=True)
                results["handshakes_tkmsd"] = handshake_rate(kms.ua_tls_port, dev_ca(dev_dir), a.connections,
                                                              a.handshake_seconds)
        finally:
            kms.stop()

        if not a.no_zk:
            print("== cross-domain resolve over Zk (two_domains.py: tickets from A, responder at B)", flush=True)
            try:
                results["zk"] = cross_domain_resolve(b, os.path.join(state, "zk"), a.connections, common)
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                results["zk"] = {"error": str(e)}
                print("cross-domain resolve failed: %s" % e, flush=True)
    finally:
        shutil.rmtree(state, ignore_errors=True)

    report(results, a.connections)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def cross_domain_resolve(build, work, connections, common):
    """tkms-bench --mode resolve at B over HTTPS, saturating: bert's tickets
    from B (local) and alice's from A (B asks A over Zk), bob resolving both."""
    os.makedirs(work)
    with TwoDomains(programs_in(build), work) as d:
        bob = d.b.users["bob"]

        def resolve(issuer, initiator, extra=()):
            user = issuer.users[initiator]
            return run_json([bench_path(build), "--mode", "resolve", "--connections", str(connections),
                             "--url", issuer.https(), "--kms-identity", issuer.host, "--cacert", d.cacerts,
                             "--initiator", user[0], "--initiator-psk", user[1],
                             "--responder", bob[0], "--responder-psk", bob[1], "--tgk-bytes", "0", *extra] + common)
        local = resolve(d.b, "bert")
        cross = resolve(d.a, "alice", ["--responder-kms", d.b.https(), "--responder-kms-identity", d.b.host])
        return {"local": local, "cross": cross,
                "ratio": cross["requests_per_second"] / local["requests_per_second"]}


def report(results, connections):
    token = results["token"]
    echo = {"": results["echo"]["requests_per_second"]}
    if "echo_tls" in results:
        echo["_https"] = results["echo_tls"]["requests_per_second"]
    print()
    print("ceilings (measured in this run, %d connections):" % connections)
    print("  HTTP echo (tkms-echo):                    %8.0f req/s" % echo[""])
    if "_https" in echo:
        print("  HTTPS echo (tkms-echo, software key):     %8.0f req/s  (%s)"
              % (echo["_https"], results["echo_tls"].get("tls")))
    print("  raw PKCS#11 mix, Ticket Request:          %8.0f req/s  (%d HMAC + %d RNG; HMAC %.0f/s, RNG %.0f/s)"
          % (token["request_ceiling_per_s"], token["request_hmacs"], token["request_randoms"],
             token["hmac_per_s"], token["random_per_s"]))
    print("  raw PKCS#11 mix, Ticket Resolve:          %8.0f req/s  (%d HMAC)"
          % (token["resolve_ceiling_per_s"], token["resolve_hmacs"]))
    print()
    print("%-14s %-6s %9s %9s %7s %9s %7s %8s %11s %15s" % (
        "tkmsd", "scheme", "req/s", "token", "ratio", "echo", "ratio", "vs lower", "p99 (sat.)", "p99 @ half rate"))
    for suffix in ("", "_https"):
        for mode, key in (("request", "request_ceiling_per_s"), ("resolve", "resolve_ceiling_per_s")):
            r = results.get(mode + suffix)
            if r is None:
                continue
            sat, half = r["saturating"], r["half_rate"]
            rate = sat["requests_per_second"]
            ceiling = min(echo[suffix], token[key])
            errors = sat["errors"] + half["errors"]
            r.update({"token_ceiling": token[key], "echo_ceiling": echo[suffix], "ceiling": ceiling,
                      "ratio_token": rate / token[key], "ratio_echo": rate / echo[suffix], "ratio": rate / ceiling})
            print("%-14s %-6s %9.0f %9.0f %6.2fx %9.0f %6.3fx %7.2fx %8.2f ms %12.2f ms%s" % (
                "ticket" + mode, "https" if suffix else "http", rate, token[key], r["ratio_token"], echo[suffix],
                r["ratio_echo"], r["ratio"], sat["latency_ms"]["p99"], half["latency_ms"]["p99"],
                "  (%d errors)" % errors if errors else ""))
    for mode in ("request", "resolve"):
        if mode + "_https" in results:
            ratio = (results[mode + "_https"]["saturating"]["requests_per_second"]
                     / results[mode]["saturating"]["requests_per_second"])
            results[mode + "_https"]["ratio_to_http"] = ratio
            print("ticket%s: HTTPS / HTTP = %.2f" % (mode, ratio))
    if "_https" in echo:
        print("echo: HTTPS / HTTP = %.2f" % (echo["_https"] / echo[""]))
    zk = results.get("zk")
    if zk and "error" in zk:
        print("cross-domain resolve over Zk: FAILED: %s" % zk["error"])
    elif zk:
        local, cross = zk["local"], zk["cross"]
        print("ticket resolve across domains (HTTPS, B asks A over Zk): %.0f req/s, p99 %.2f ms; local resolve at B "
              "%.0f req/s, p99 %.2f ms; cross / local = %.2f%s" % (
                  cross["requests_per_second"], cross["latency_ms"]["p99"], local["requests_per_second"],
                  local["latency_ms"]["p99"], zk["ratio"],
                  "  (%d errors)" % (cross["errors"] + local["errors"]) if cross["errors"] + local["errors"] else ""))
    for key, what in (("handshakes_echo", "tkms-echo, software RSA-2048 key"),
                      ("handshakes_tkmsd", "tkmsd, RSA-2048 key in the token (rsa_alt)")):
        if key in results:
            h = results[key]
            print("full TLS handshakes/s (%d threads, connect + handshake + close), %s: %.0f%s" % (
                h["threads"], what, h["handshakes_per_second"],
                "  (%d errors; first: %s)" % (h["errors"], h["first_error"]) if h["errors"] else ""))


if __name__ == "__main__":
    sys.exit(main())
