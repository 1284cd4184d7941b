#!/usr/bin/env python3
"""Runs the walk-through of docs/bundles.md ("The authority's flow, step by
step") as written, so that the document cannot rot.

Usage: bundle_walkthrough_test.py SOURCE_DIR TKMSCTL TKMSD TKMS_UE

The test takes the first ```sh block after that heading. Its first lines set
the programs, the appliance's two listeners and the working directory:

    T=...  TKMSD=...  UE=...  UA=... ADMIN=...  DEMO=...

They must be there, in that order; the test replaces exactly these lines with
this build's programs, two free loopback ports and a temporary directory, and
runs everything else unchanged with `bash -e -o pipefail` (so any command
that fails fails the test). It then checks the results the document's
comments promise: the bundle verifies, tkmsd starts from it serving the two
bundle users, `tkms-ue call` between them succeeds with SRTP media, a newer
bundle is accepted, an older one and a file that is not a bundle are refused
naming version 2 as the version in force, the bundle file is replaced, and
tkmsd stops cleanly. The script runs in its own session; whatever it leaves
running (tkmsd, if a step failed) is stopped through that session's process
group. Exits 1 on the first failed check.
"""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from doc_walkthrough import Checks, free_ports, run, sh_block, with_settings  # noqa: E402

SOURCE_DIR, TKMSCTL, TKMSD, TKMS_UE = (os.path.abspath(a) for a in sys.argv[1:5])
HEADING = "## The authority's flow, step by step"
SETTINGS = [r"T=\S+", r"TKMSD=\S+", r"UE=\S+", r"UA=\S+ ADMIN=\S+", r"DEMO=\S+"]
checks = Checks()
fail = checks.fail
check = checks.check


def walkthrough_block():
    return sh_block(checks, SOURCE_DIR, "bundles.md", HEADING)


def script_for(lines, work):
    ua, admin = free_ports(2)
    settings = [
        "T=" + TKMSCTL,
        "TKMSD=" + TKMSD,
        "UE=" + TKMS_UE,
        "UA=127.0.0.1:%d ADMIN=127.0.0.1:%d" % (ua, admin),
        "DEMO=" + os.path.join(work, "demo"),
    ]
    return with_settings(checks, lines, SETTINGS, settings)


def main():
    lines = walkthrough_block()
    with tempfile.TemporaryDirectory(prefix="tkms-walkthrough-") as work:
        code, out = run(script_for(lines, work), work)
        if os.environ.get("WALKTHROUGH_VERBOSE"):
            print(out)
        check(code == 0, "the walk-through exits 0 (it exited %d)" % code, out)
        check("signer.pem: OK" in out, "openssl verifies the signer's certificate", out)
        check("config.bundle: VALID" in out and "version:  1" in out, "the bundle verifies as version 1", out)
        check(re.search(r"^psk:[0-9a-f]{32}  sip:carol@example\.org$", out, re.M) is not None,
              "the appliance's token lists carol's PSK id", out)
        started = re.search(r"^event=started .*$", out, re.M)
        check(started is not None and "bundle_version=1" in started.group(0) and "users=2" in started.group(0),
              "tkmsd starts from the bundle serving its two users", out)
        check("tkms_bundle_version 1\n" in out and "tkms_users 2\n" in out, "the metrics say version 1, 2 users", out)
        check("call: keys agree and SRTP media flowed both ways with 1 end-point(s)" in out,
              "tkms-ue call between the bundle users succeeds", out)
        check('"previous_version":1,"verdict":"accepted","version":2,"version_in_force":2}' in out,
              "the newer bundle is accepted", out)
        check('"previous_version":2,"reason":"version 1 is not newer than the accepted version 2",'
              '"verdict":"refused","version":1,"version_in_force":2}' in out,
              "the older bundle is refused naming version 2 in force", out)
        check(re.search(r'"previous_version":2,"reason":"\$: unknown member \'kms_identity\'[^"]*",'
                        r'"verdict":"refused","version":null,"version_in_force":2\}', out) is not None,
              "a file that is not a bundle is refused naming version 2 in force", out)
        audit = [l for l in out.splitlines() if l.startswith('{"digest"') and '"source"' in l]
        check(len(audit) == 4, "the audit log has four decisions (start, accepted, two refused)", out)
        check("bundle.json is now version 2" in out, "the accepted bundle replaced the file", out)
        check(out.rstrip().endswith("tkmsd stopped"), "tkmsd stops cleanly", out)
        check("user_skipped" not in open(os.path.join(work, "demo", "tkmsd.log")).read(),
              "no bundle user was skipped")
    print("bundle_walkthrough_test: %d checks passed" % checks.count)


if __name__ == "__main__":
    main()
