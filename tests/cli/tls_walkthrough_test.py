#!/usr/bin/env python3
"""Runs docs/tls.md ("Issuing the KMS's TLS certificate for a key in the
token") as written, then asks OpenSC's pkcs11-tool about the key, so that
neither the document nor the custody can rot.

Usage: tls_walkthrough_test.py SOURCE_DIR TKMSCTL PKCS11_TOOL

The test takes the first ```sh block after that heading. Its first two lines
set the program and the working directory (T=..., DEMO=...); the test
replaces exactly these with this build's tkmsctl and a temporary directory
and runs everything else unchanged with `bash -e -o pipefail`, then checks:

  * what the comments promise: openssl verifies the CSR's self-signature,
    the demo CA's certificate verifies for sslserver and carries the SANs,
    and its public key is the token's;
  * pkcs11-tool --list-objects --login (the PIN typed at its prompt on a
    pseudo-terminal, never on its command line) shows the private key as an
    RSA key that can only sign and is sensitive, always sensitive and never
    extractable; --read-object --type pubkey works, --type privkey writes
    nothing (pkcs11-tool 0.23 refuses it by itself; the token's refusal,
    CKR_ATTRIBUTE_SENSITIVE, is checked by keystore_tls_test);
  * tkmsctl's refusals: an existing label, a missing key, a bad subject, a
    bad DNS name, a label outside tkms-tls-.

Exits 1 on the first failed check.
"""
import os
import re
import subprocess
import sys
import tempfile

SOURCE_DIR, TKMSCTL, PKCS11_TOOL = (os.path.abspath(a) for a in sys.argv[1:4])
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "keystore"))
from pkcs11_tool_custody import parse_objects, run_with_pin  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from doc_walkthrough import Checks, sh_block, with_settings  # noqa: E402

HEADING = "## Issuing the KMS's TLS certificate for a key in the token"
SETTINGS = [r"T=\S+", r"DEMO=\S+"]
MODULE = os.environ.get("TKMS_PKCS11_MODULE") or "/usr/lib/softhsm/libsofthsm2.so"
checks = Checks()
fail = checks.fail
check = checks.check


def walkthrough_block():
    return sh_block(checks, SOURCE_DIR, "tls.md", HEADING)


def script_for(lines, demo):
    return with_settings(checks, lines, SETTINGS, ["T=" + TKMSCTL, "DEMO=" + demo])


def clean_env():
    env = dict(os.environ)
    for name in ("TKMS_PIN", "TKMS_SO_PIN", "SOFTHSM2_CONF"):
        env.pop(name, None)
    return env


def tkmsctl(demo, *args, expect):
    p = subprocess.run([TKMSCTL, *args], capture_output=True, text=True, env=clean_env(), cwd=demo, timeout=60)
    check(p.returncode == expect, "tkmsctl %s exited %d, expected %d" % (" ".join(args), p.returncode, expect),
          p.stdout + p.stderr)
    return p.stderr


def main():
    lines = walkthrough_block()
    with tempfile.TemporaryDirectory(prefix="tkms-tls-walkthrough-") as work:
        demo = os.path.join(work, "demo")
        path = os.path.join(work, "walkthrough.sh")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script_for(lines, demo))
        p = subprocess.run(["bash", "-e", "-o", "pipefail", path], cwd=work, env=clean_env(), capture_output=True,
                           text=True, timeout=240)
        out = p.stdout + p.stderr
        if os.environ.get("WALKTHROUGH_VERBOSE"):
            print(out)
        check(p.returncode == 0, "the walk-through exits 0 (it exited %d)" % p.returncode, out)
        check("Certificate request self-signature verify OK" in out, "openssl verifies the CSR", out)
        check("kms-tls.pem: OK" in out, "openssl verifies the issued certificate for sslserver", out)
        check("DNS:kms.example.org, DNS:kms-a.example.org" in out, "the certificate carries the requested SANs", out)
        check("kms-tls.pem carries the token's key" in out, "the certificate's key is the token's", out)
        pin = open(os.path.join(demo, "appliance", "token.pin")).read().strip()
        check(pin not in out, "the PIN is not printed", out)

        # pkcs11-tool's view of the appliance token.
        env = dict(clean_env(), SOFTHSM2_CONF=os.path.join(demo, "appliance", "softhsm2.conf"))
        tool = [PKCS11_TOOL, "--module", MODULE, "--token-label", "tkms", "--login"]
        code, listing = run_with_pin(tool + ["--list-objects"], pin, env)
        check(code == 0, "pkcs11-tool --list-objects exits 0", listing)
        objects = [o for o in parse_objects(listing) if o["label"] == "tkms-tls-server"]
        private = [o for o in objects if o["class"] == "Private Key"]
        public = [o for o in objects if o["class"] == "Public Key"]
        check(len(private) == 1 and len(public) == 1, "pkcs11-tool lists one private and one public half", listing)
        check(private[0]["id"] == public[0]["id"] and private[0]["id"], "both halves share one CKA_ID", listing)
        check(re.search(r"^Private Key Object; RSA", listing, re.M) is not None, "the private key is RSA", listing)
        check(private[0]["usage"] == ["sign"], "the private key can only sign (%s)" % private[0]["usage"], listing)
        access = private[0]["access"]
        for flag in ("sensitive", "always sensitive", "never extractable"):
            check(flag in access, "the private key is %s (%s)" % (flag, access), listing)
        check("extractable" not in access, "the private key is not extractable (%s)" % access, listing)
        check(public[0]["usage"] == ["verify"], "the public key can only verify (%s)" % public[0]["usage"], listing)

        pub_out = os.path.join(work, "pub.der")
        code, text = run_with_pin(tool + ["--read-object", "--type", "pubkey", "--label", "tkms-tls-server",
                                          "--output-file", pub_out], pin, env)
        check(code == 0 and os.path.getsize(pub_out) > 256, "pkcs11-tool reads the public key (the control)", text)
        priv_out = os.path.join(work, "priv.der")
        code, text = run_with_pin(tool + ["--read-object", "--type", "privkey", "--label", "tkms-tls-server",
                                          "--output-file", priv_out], pin, env)
        check(not os.path.exists(priv_out) or os.path.getsize(priv_out) == 0,
              "pkcs11-tool --read-object --type privkey wrote nothing (exit %d)" % code, text)
        check(code != 0 or "not (yet) supported" in text or "CKR_ATTRIBUTE_SENSITIVE" in text,
              "pkcs11-tool refuses to read the private key", text)

        # tkmsctl's refusals, on the walk-through's token.
        ks = ["--state-dir", "appliance", "--pin-file", "appliance/token.pin"]
        err = tkmsctl(demo, "tls", "key", "create", *ks, expect=1)
        check("a key labelled 'tkms-tls-server' already exists" in err, "an existing key is refused", err)
        err = tkmsctl(demo, "tls", "csr", *ks, "--label", "tkms-tls-missing", "--subject", "CN=a", expect=1)
        check("has no TLS key 'tkms-tls-missing'" in err, "a missing key is named", err)
        err = tkmsctl(demo, "tls", "csr", *ks, "--subject", "bogus", expect=1)
        check("subject 'bogus' is not a distinguished name" in err, "a bad subject is refused", err)
        err = tkmsctl(demo, "tls", "csr", *ks, "--subject", "CN=a", "--dns", "*.example.org", expect=1)
        check("--dns" in err, "a wildcard DNS name is refused", err)
        err = tkmsctl(demo, "tls", "key", "create", *ks, "--label", "server", expect=2)
        check("TLS key labels start with 'tkms-tls-'" in err, "a label outside tkms-tls- is a usage error", err)
        shown = subprocess.run([TKMSCTL, "tls", "key", "show", *ks], capture_output=True, text=True,
                               env=clean_env(), cwd=demo, timeout=60)
        check(shown.returncode == 0 and shown.stdout == open(os.path.join(demo, "kms-tls.pub.pem")).read(),
              "tls key show prints the same public key", shown.stdout + shown.stderr)
    print("tls_walkthrough_test: %d checks passed" % checks.count)


if __name__ == "__main__":
    main()
