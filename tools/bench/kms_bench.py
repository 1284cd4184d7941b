#!/usr/bin/env python3
"""make bench: tkmsd's throughput and latency against two ceilings measured in
the same run (docs/benchmarks.md).

  1. raw PKCS#11 ceiling: token_mix_ceiling, the token operations one request
     needs (14 HMAC + 4 RNG per Ticket Request, 14 HMAC per Resolve) issued as
     raw C_Sign / C_GenerateRandom calls, best of 1 and 2 threads;
  2. HTTP ceiling: tkms-echo, a bare CivetWeb echo handler configured like the
     Ua listener, loaded by tkms-bench --mode echo;
  3. tkmsd --dev on a fresh token, loaded by tkms-bench (request, then resolve)
     closed-loop over N keep-alive connections (the saturating rate), then
     open-loop at half that rate (the p99 that matters).

Prints a table with each rate as a ratio to the lower ceiling, and writes the
figures as JSON (--json-out). Only loopback is used; every process started is
stopped.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from tkmsd_harness import bench_path, run_json, start_dev, stop, user_args


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    b = a.build
    bench = bench_path(b)
    common = ["--duration", str(a.duration), "--warmup", str(a.warmup), "--json"]
    results = {}

    print("== raw PKCS#11 ceiling (token_mix_ceiling)", flush=True)
    results["token"] = run_json([os.path.join(b, "tests/bench/token_mix_ceiling"), str(max(2.0, a.duration / 2))])

    print("== HTTP ceiling (tkms-echo + tkms-bench --mode echo)", flush=True)
    echo = subprocess.Popen([os.path.join(b, "tools/bench/tkms-echo"), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(echo.stdout.readline())["port"]
        results["echo"] = run_json([bench, "--url", "http://127.0.0.1:%d" % port, "--mode", "echo",
                                    "--connections", str(a.connections)] + common)
    finally:
        stop(echo)

    state = tempfile.mkdtemp(prefix="tkms-bench-")
    dev_dir = os.path.join(state, "s")
    print("== tkmsd --dev --state-dir %s" % dev_dir, flush=True)
    # the per-request log is on (to a file), as in production
    kms = start_dev(b, dev_dir, os.path.join(state, "ready.json"), os.path.join(state, "tkmsd.log"))
    try:
        url = "http://127.0.0.1:%d" % kms.ua_port
        users = user_args(dev_dir) + ["--tgk-bytes", "0"]
        for mode in ("request", "resolve"):
            print("== tkmsd %s: saturating (%d connections)" % (mode, a.connections), flush=True)
            sat = run_json([bench, "--url", url, "--mode", mode, "--connections", str(a.connections)] + users + common)
            half = sat["requests_per_second"] / 2
            print("== tkmsd %s: open loop at %.0f/s" % (mode, half), flush=True)
            at_half = run_json([bench, "--url", url, "--mode", mode, "--connections", str(a.connections),
                                "--rate", "%.0f" % half] + users + common)
            results[mode] = {"saturating": sat, "half_rate": at_half}
    finally:
        kms.stop()
        shutil.rmtree(state, ignore_errors=True)

    echo_rate = results["echo"]["requests_per_second"]
    token = results["token"]
    print()
    print("ceilings (measured in this run):")
    print("  HTTP echo (CivetWeb, %d connections): %8.0f req/s" % (a.connections, echo_rate))
    print("  raw PKCS#11 mix, Ticket Request:      %8.0f req/s  (%d HMAC + %d RNG; HMAC %.0f/s, RNG %.0f/s)"
          % (token["request_ceiling_per_s"], token["request_hmacs"], token["request_randoms"],
             token["hmac_per_s"], token["random_per_s"]))
    print("  raw PKCS#11 mix, Ticket Resolve:      %8.0f req/s  (%d HMAC)"
          % (token["resolve_ceiling_per_s"], token["resolve_hmacs"]))
    print()
    print("%-14s %10s %10s %14s %12s %16s" % ("tkmsd", "req/s", "ceiling", "ratio", "p99 (sat.)", "p99 @ half rate"))
    for mode, key in (("request", "request_ceiling_per_s"), ("resolve", "resolve_ceiling_per_s")):
        sat = results[mode]["saturating"]
        half = results[mode]["half_rate"]
        ceiling = min(echo_rate, token[key])
        errors = sat["errors"] + half["errors"]
        print("%-14s %10.0f %10.0f %13.2fx %10.2f ms %14.2f ms%s" % (
            "ticket" + mode, sat["requests_per_second"], ceiling, sat["requests_per_second"] / ceiling,
            sat["latency_ms"]["p99"], half["latency_ms"]["p99"], "  (%d errors)" % errors if errors else ""))
        results[mode]["ceiling"] = ceiling
        results[mode]["ratio"] = sat["requests_per_second"] / ceiling
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
