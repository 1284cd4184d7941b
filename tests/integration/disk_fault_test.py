#!/usr/bin/env python3
"""Disk faults while tkmsd records what it does (issue 14, docs/reliability.md
"Disk faults"): real tkmsd processes on loopback (the two domains of
tools/bench/two_domains.py, each its own SoftHSM2 token and signed bundle),
with the test-only LD_PRELOAD shim tests/fault_io (libtkms_fault_io.so) making
chosen files or descriptors fail with ENOSPC or EROFS while a trigger file
exists. The KMS must refuse what it cannot record, say why, change nothing,
and take the same request once the disk is back.

Usage: disk_fault_test.py CASE SOURCE_DIR TKMSD TKMSCTL TKMS_UE TKMS_BENCH FAULT_IO_SHIM

CASE:
  bundle_audit   A's bundle audit log full (ENOSPC): POST /admin/bundle is
                 503 with the reason in the answer and in an error log line,
                 the version, the bundle file and the audit log unchanged,
                 tkms_audit_write_failures_total{record="bundle"} grows; the
                 whole state directory read-only (EROFS): 503 the same way;
                 disk back: the same bundle file is accepted (200, version 2);
                 a restart with the audit log full or read-only does not
                 start (event=start_failed says why), disk back: it does.
  bundle_counter A's token directory (SoftHSM2's object files, where the
                 bundle version counter lives) full, then read-only: the
                 bundle is refused with 503 ("bundle counter: ..."), the
                 version stays, the audit log's accepted record is followed
                 by the refusal for the same digest; Ua ticket requests are
                 served meanwhile (a call within B, alice's offer at A);
                 disk back: the same bundle is accepted.
  zk_audit       A's stderr (the log, where Zk audit lines go) failing with
                 ENOSPC: a network function's resolve on Zk is 503 without
                 keys, tkms_audit_write_failures_total{record="zk_request"}
                 and tkms_zk_requests_total{result="unavailable"} grow; a
                 call from alice (A) to bob (B) fails: B's resolve over Zk
                 at A is refused the same way; with
                 B's stderr failing, a call within B (ticket request and
                 resolve on Ua: ordinary request lines) still succeeds and
                 tkms_log_write_failures_total grows; log back: the function
                 gets the keys and the audit line is there.

Exits 1 at the first failed check. No sleeps: bounded polling of files and
/metrics. Not registered for sanitizer builds (an LD_PRELOAD shim does not mix
with ASan).
"""
import hashlib
import json
import os
import re
import sys
import tempfile

SHIM = os.path.abspath(sys.argv[7])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_test  # noqa: E402  (the Zk harness; reads the same first six arguments)
from zk_test import (PROGRAMS, TwoDomains, check, checks, eventually, function_resolve, offer,  # noqa: E402
                     read, write)

CASE = sys.argv[1]


class Fault:
    """The shim's trigger file for one tkmsd: set(...) arms, clear() disarms."""

    def __init__(self, path):
        self.path = path

    def set(self, error, paths=(), fds=()):
        lines = ["errno=" + error] + ["path=" + p for p in paths] + ["fd=%d" % f for f in fds]
        tmp = self.path + ".tmp"
        write(tmp, "\n".join(lines) + "\n")
        os.rename(tmp, self.path)  # whole at once: tkmsd reads it on every write

    def clear(self):
        if os.path.exists(self.path):
            os.unlink(self.path)


def make_domains(work):
    faults = {}

    def env(name):
        faults[name] = Fault(os.path.join(work, "fault-%s" % name))
        return {"LD_PRELOAD": SHIM, "TKMS_FAULT_IO_TRIGGER": faults[name].path}
    d = TwoDomains(PROGRAMS, work, extra_env=env)
    return d, faults


def post_file(dom, path):
    status, body = dom.admin("POST", "/admin/bundle", read(path).encode())
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body}


def audit_lines(dom):
    path = os.path.join(dom.dir, "bundle-audit.log")
    return [json.loads(line) for line in read(path).splitlines()] if os.path.exists(path) else []


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def expect_refused(dom, status, answer, reason, in_force, bundle_before, audit_before):
    check(status == 503, "%s: 503 (%d)" % (reason, status), json.dumps(answer))
    check(answer.get("verdict") == "refused" and answer.get("version_in_force") == in_force,
          "the answer says refused, version %d in force" % in_force, json.dumps(answer))
    check(re.search(reason, answer.get("reason", "")) is not None, "the answer's reason says %r" % reason,
          json.dumps(answer))
    check(dom.metric("tkms_bundle_version") == in_force, "tkms_bundle_version stays %d" % in_force, dom.metrics())
    check(read(dom.bundle_file) == bundle_before, "the bundle file is the one in force")
    check(eventually(lambda: re.search(r"event=bundle_refused .*reason=\"[^\"]*" + reason, dom.logtext())),
          "the log says why (bundle_refused ... %s)" % reason, dom.logtext()[-3000:])
    if audit_before is not None:
        check(audit_lines(dom) == audit_before, "the audit log has no new record", json.dumps(audit_lines(dom)[-2:]))


def case_bundle_audit(d, faults, work):
    a = d.a
    bundle_before = read(a.bundle_file)
    audit_before = audit_lines(a)
    check(len(audit_before) == 1 and audit_before[0]["verdict"] == "accepted", "A started with version 1 audited",
          json.dumps(audit_before))
    v2 = a.sign()
    failures = a.metric("tkms_audit_write_failures_total", record="bundle")
    faults["a"].set("ENOSPC", paths=[os.path.join(a.dir, "bundle-audit.log")])
    status, answer = post_file(a, v2)
    expect_refused(a, status, answer, "audit log: writing the bundle audit log: No space left on device", 1,
                   bundle_before, audit_before)
    check(a.metric("tkms_audit_write_failures_total", record="bundle") >= failures + 1,
          "tkms_audit_write_failures_total{record=\"bundle\"} grew", a.metrics())
    check(a.metric("tkms_bundles_refused_total") >= 1, "counted as refused", a.metrics())

    # The state read-only (the bundle file, its audit log, the token; not
    # tkmsd.log, which the test reads): the bundle file cannot even be saved.
    faults["a"].set("EROFS", paths=[a.bundle_file, os.path.join(a.dir, "bundle-audit.log"),
                                    os.path.join(a.dir, "appliance")])
    status, answer = post_file(a, v2)
    expect_refused(a, status, answer, "Read-only file system", 1, bundle_before, audit_before)

    # Disk back: the same bundle is accepted.
    faults["a"].clear()
    status, answer = post_file(a, v2)
    check(status == 200 and answer.get("verdict") == "accepted" and answer.get("version_in_force") == 2,
          "disk back: the same bundle is accepted (200, version 2)", json.dumps(answer))
    check(a.metric("tkms_bundle_version") == 2, "tkms_bundle_version 2", a.metrics())
    check(read(a.bundle_file) == read(v2), "the bundle file is version 2")
    last = audit_lines(a)[-1]
    check(last["verdict"] == "accepted" and last["version"] == 2 and last["digest"] == digest(v2),
          "the audit log's last record is version 2 accepted", json.dumps(last))

    # A restart that cannot record the bundle it would run does not start.
    check(a.stop(), "A stops on SIGTERM")
    audit = os.path.join(a.dir, "bundle-audit.log")
    for error, reason in (("ENOSPC", "audit log: writing the bundle audit log: No space left on device"),
                          ("EROFS", "opening the bundle audit log .*Read-only file system")):
        faults["a"].set(error, paths=[audit])
        try:
            a.start(timeout=30)
            started = True
        except RuntimeError:
            started = False
        check(not started, "%s on the audit log: tkmsd does not start" % error, a.logtext()[-2000:])
        check(re.search(r"event=start_failed .*" + reason, a.logtext()) is not None,
              "... and says why (%s)" % reason, a.logtext()[-2000:])
    faults["a"].clear()
    a.start()
    check(a.metric("tkms_bundle_version") == 2, "disk back: A starts with version 2", a.metrics())


def case_bundle_counter(d, faults, work):
    a = d.a
    tokens = os.path.join(a.dir, "appliance")
    bundle_before = read(a.bundle_file)
    v2 = a.sign()
    for error, reason in (("ENOSPC", "bundle counter: "), ("EROFS", "bundle counter: ")):
        audit_before = audit_lines(a)
        faults["a"].set(error, paths=[tokens])
        status, answer = post_file(a, v2)
        expect_refused(a, status, answer, reason, 1, bundle_before, None)
        records = audit_lines(a)[len(audit_before):]
        check(len(records) == 2 and records[0]["verdict"] == "accepted" and records[1]["verdict"] == "refused"
              and records[0]["digest"] == records[1]["digest"] == digest(v2)
              and records[1]["version_in_force"] == 1,
              "%s: the record written before the counter moved is superseded by the refusal" % error,
              json.dumps(records))
        # Ua service goes on: a call within B, and alice's offer at A (a ticket request at A).
        code, out, _ = d.call((d.b, "bob"), (d.b, "bert"))
        check(code == 0, "%s at A: a call within B succeeds" % error, out)
        offer(d, work, "offer-" + error, (a, "alice"), (d.b, "bob"))
    faults["a"].clear()
    status, answer = post_file(a, v2)
    check(status == 200 and answer.get("version_in_force") == 2, "token back: the same bundle is accepted",
          json.dumps(answer) + a.logtext()[-3000:])
    check(a.metric("tkms_bundle_version") == 2, "tkms_bundle_version 2", a.metrics())
    # The counter really is at 2 in the token: version 2 again is not newer.
    status, answer = post_file(a, v2)
    check(status == 409, "version 2 again: 409 not newer (%d)" % status, json.dumps(answer))


def case_zk_audit(d, faults, work):
    a, b = d.a, d.b
    nf = d.ca.software_client("li-probe", "li-probe.a.example.org")
    a.functions = [{"name": "li-probe", "certificate": read(nf[0]), "roles": ["resolve"]}]
    status, verdict = a.post_bundle()
    check(status == 200, "A accepts a bundle with the network function", repr(verdict))
    sdp = offer(d, work, "li", (a, "alice"), (b, "bob"), forking=True)

    failures = a.metric("tkms_audit_write_failures_total", record="zk_request")
    faults["a"].set("ENOSPC", fds=[2])
    code, out = zk_test.function_resolve(d, a, sdp, *nf)
    check(code != 0 and re.search(r"\b503\b", out) and "key MPKi" not in out,
          "A's log failing: the network function's resolve is 503, no keys", out)
    check(a.metric("tkms_audit_write_failures_total", record="zk_request") >= failures + 1,
          "tkms_audit_write_failures_total{record=\"zk_request\"} grew", a.metrics())
    # A network function's requests are never on /metrics (docs/tkmsd.md: interception must not be
    # detectable from the admin plane); the audit-failure counter above is the record of the refusal.
    check('client="network_function"' not in a.metrics(), "network functions are not in /metrics", a.metrics())
    check(not re.search(r"event=zk_request audit=1 .*client=li-probe .*status=200", a.logtext()),
          "no audit line claims a 200", a.logtext()[-2000:])
    # A peer KMS's resolve is the same record: bob resolving at B, which asks
    # A over Zk, gets no keys while A cannot write the line.
    peer_failures = a.metric("tkms_zk_requests_total", client="peer_kms", result="unavailable")
    code, out, _ = d.call((a, "alice"), (b, "bob"))
    check(code != 0, "A's log failing: alice -> bob fails (B's resolve over Zk at A is refused)", out)
    check(a.metric("tkms_zk_requests_total", client="peer_kms", result="unavailable") >= peer_failures + 1,
          "tkms_zk_requests_total{client=\"peer_kms\",result=\"unavailable\"} at A counts it", a.metrics())

    # Ordinary request lines are not audit records: B serves with its log failing.
    lost = b.metric("tkms_log_write_failures_total")
    faults["b"].set("ENOSPC", fds=[2])
    code, out, _ = d.call((b, "bob"), (b, "bert"))
    check(code == 0, "B's log failing: a call within B succeeds", out)
    check(b.metric("tkms_log_write_failures_total") >= lost + 2, "tkms_log_write_failures_total grew at B",
          b.metrics())
    faults["b"].clear()

    faults["a"].clear()
    code, out = function_resolve(d, a, sdp, *nf)
    check(code == 0 and "key MPKi " in out, "log back: the function gets the keys", out)
    check(eventually(lambda: re.search(r"event=zk_request audit=1 .*client=li-probe .*status=200 outcome=ok",
                                       a.logtext())), "... and the audit line is there", a.logtext()[-2000:])


CASES = {"bundle_audit": case_bundle_audit, "bundle_counter": case_bundle_counter, "zk_audit": case_zk_audit}


def main():
    if CASE not in CASES:
        sys.exit("unknown case %r (one of %s)" % (CASE, ", ".join(CASES)))
    with tempfile.TemporaryDirectory(prefix="tkms-disk-%s-" % CASE) as work:
        d, faults = make_domains(work)
        with d:
            try:
                CASES[CASE](d, faults, work)
            except SystemExit:
                for dom in d.domains:
                    sys.stderr.write("--- %s log (last 40 lines) ---\n%s\n"
                                     % (dom.host, "\n".join(dom.logtext().splitlines()[-40:])))
                raise
            finally:
                for f in faults.values():
                    f.clear()
    print("disk_fault_test %s: %d checks passed" % (CASE, checks.count))


if __name__ == "__main__":
    main()
