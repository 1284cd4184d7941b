#!/usr/bin/env python3
"""Runs the walk-through of docs/zk.md ("Two domains on one machine, step by
step") as written, so that the document cannot rot.

Usage: zk_walkthrough_test.py SOURCE_DIR TKMSCTL TKMSD TKMS_UE

The test takes the first ```sh block after that heading. Its first six lines
set the programs, the listeners of the two KMSs and the working directory:

    T=...  TKMSD=...  UE=...  A_UA=... A_ADMIN=... A_ZK=...  B_UA=... B_ADMIN=... B_ZK=...  DEMO=...

The test replaces exactly these with this build's programs, free loopback
ports and a temporary directory, runs everything else unchanged with
`bash -e -o pipefail` (doc_walkthrough.run: its own session, whatever it
leaves running is stopped), and checks what the comments promise: both
KMS certificates verify, both tkmsd start from their bundles with a Zk
listener, the forking call from alice (A) to bob (B) agrees with 2
end-points, B counts its requests to kms.a.example.org, A accepts the bundle
with the network function, whose resolve A logs, and both tkmsd stop. No PIN
or PSK may appear in the output or the logs. Exits 1 on the first failed
check.
"""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from doc_walkthrough import Checks, free_ports, run, sh_block, with_settings  # noqa: E402

SOURCE_DIR, TKMSCTL, TKMSD, TKMS_UE = (os.path.abspath(a) for a in sys.argv[1:5])
HEADING = "## Two domains on one machine, step by step"
SETTINGS = [r"T=\S+", r"TKMSD=\S+", r"UE=\S+", r"A_UA=\S+ A_ADMIN=\S+ A_ZK=\S+", r"B_UA=\S+ B_ADMIN=\S+ B_ZK=\S+",
            r"DEMO=\S+"]
checks = Checks()
check = checks.check


def script_for(lines, work):
    ports = ["127.0.0.1:%d" % p for p in free_ports(6)]
    return with_settings(checks, lines, SETTINGS, [
        "T=" + TKMSCTL, "TKMSD=" + TKMSD, "UE=" + TKMS_UE,
        "A_UA=%s A_ADMIN=%s A_ZK=%s" % tuple(ports[:3]), "B_UA=%s B_ADMIN=%s B_ZK=%s" % tuple(ports[3:]),
        "DEMO=" + os.path.join(work, "demo")])


def main():
    lines = sh_block(checks, SOURCE_DIR, "zk.md", HEADING)
    with tempfile.TemporaryDirectory(prefix="tkms-zk-walkthrough-") as work:
        code, out = run(script_for(lines, work), work)
        if os.environ.get("WALKTHROUGH_VERBOSE"):
            print(out)
        demo = os.path.join(work, "demo")
        check(code == 0, "the walk-through exits 0 (it exited %d)" % code, out)
        check("a/kms-tls.pem: OK" in out and "b/kms-tls.pem: OK" in out, "openssl verifies both KMS certificates", out)
        for d in "ab":
            check(re.search(r"^event=started .*kms_identity=kms\.%s\.example\.org .*zk=127\.0\.0\.1:\d+" % d, out,
                            re.M), "tkmsd %s starts from its bundle with a Zk listener" % d, out)
        check("call: keys agree and SRTP media flowed both ways with 2 end-point(s)" in out,
              "the forking call from alice (A) to bob (B) agrees with 2 end-points", out)
        check(re.search(r'^tkms_zk_peer_requests_total\{[^}]*peer="kms\.a\.example\.org"[^}]*\} [1-9]', out, re.M),
              "B counts its requests to kms.a.example.org", out)
        check('"previous_version":1,"verdict":"accepted","version":2,"version_in_force":2}' in out,
              "A accepts the bundle with the network function", out)
        check(re.search(r"^event=zk_request audit=1 .*client_kind=network_function client=li-probe .*status=200", out, re.M),
              "A audits the network function's resolve", out)
        check(out.rstrip().endswith("both tkmsd stopped"), "both tkmsd stop", out)
        logs = "".join(open(os.path.join(demo, d, "tkmsd.log")).read() for d in "ab")
        for d, user in (("a", "alice"), ("b", "bob")):
            for secret in (os.path.join(demo, d, user + ".psk"), os.path.join(demo, d, "appliance", "token.pin")):
                value = open(secret).read().strip()
                check(value not in out and value not in logs, "no PIN or PSK in the output or the logs")
    print("zk_walkthrough_test: %d checks passed" % checks.count)


if __name__ == "__main__":
    main()
