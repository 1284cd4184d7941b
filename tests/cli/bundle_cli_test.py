#!/usr/bin/env python3
"""End-to-end test of `tkmsctl bundle sign|verify|show|pubkey` (docs/bundles.md).

Usage: bundle_cli_test.py TKMSCTL SOURCE_DIR [TKMSD]

Runs a provisioning authority's flow like the one of docs/bundles.md (whose
walk-through itself is run from the document by bundle_walkthrough_test.py),
with more cases, on a throw-away SoftHSM2 token and openssl 3:
  - a demo CA made with openssl (the provisioning anchor);
  - the signer key generated inside the authority's token (`tkmsctl key
    generate --type ec-p256`), its public key exported with `bundle pubkey`,
    and its certificate issued by openssl with -force_pubkey and
    keyUsage=digitalSignature (the key never leaves the token);
  - `bundle sign` with the key named by a PKCS#11 URI (PIN from
    pin-source=file:... or --pin-file, never argv), `bundle verify` against
    the anchor, `bundle show` (NOT VERIFIED);
  - an independent check of the signature with `openssl dgst -verify` over
    the documented signed message;
and the refusals: wrong anchor, tampered payload, expired signer (--at), a
payload with a schema error or a local section (nothing written), a
certificate for another key, an existing output file, bad key URIs. With
TKMSD, also the appliance's side: `tkmsctl token init --provisioning-anchor`
pins the openssl CA (a second anchor and a non-CA anchor are refused), tkmsd
starts from the bundle signed in the authority's token, accepts a newer one
on POST /admin/bundle, refuses the same one again (409), and exits 0 on
SIGTERM without the PIN in its log. Exits 1 on the first failed check.
"""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TKMSCTL = sys.argv[1]
SOURCE_DIR = sys.argv[2]
TKMSD = sys.argv[3] if len(sys.argv) > 3 else None
checks = 0


def run(*args, env=None, expect=0):
    global checks
    full_env = dict(os.environ)
    full_env.pop("TKMS_PIN", None)
    full_env.pop("TKMS_SO_PIN", None)
    full_env.update(env or {})
    p = subprocess.run([TKMSCTL, *args], capture_output=True, text=True, env=full_env, timeout=120)
    checks += 1
    if p.returncode != expect:
        sys.exit("FAIL: tkmsctl %s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                 % (" ".join(args), p.returncode, expect, p.stdout, p.stderr))
    return p


def openssl(*args, cwd):
    global checks
    p = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd, timeout=60)
    checks += 1
    if p.returncode != 0:
        sys.exit("FAIL: openssl %s exited %d\nstdout: %s\nstderr: %s"
                 % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        sys.exit("FAIL: " + what)


def write(path, text, mode=0o644):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)


CA_CNF = """[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = {cn}
O = tkms demo
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

SIGNER_EXT = """basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

PAYLOAD = {
    "version": 5,
    "kms_identity": "kms.example.org",
    "policy_classes": {"default": {}},
    "users": [{"identities": ["sip:alice@example.org"], "psk_id": "a1b2c3d4e5f60718"}],
}


def make_ca(d, name, cn):
    write(os.path.join(d, name + ".cnf"), CA_CNF.format(cn=cn))
    openssl("req", "-x509", "-new", "-config", name + ".cnf", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key", "-out", name + ".pem",
            "-days", "3650", cwd=d)


def metric(port, name):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def post_bundle(port, path):
    with open(path, "rb") as f:
        data = f.read()
    req = urllib.request.Request("http://127.0.0.1:%d/admin/bundle" % port, data=data,
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def appliance(tmp, ks, key_uri, signer_pem, ca_pem):
    """The appliance pins the authority's CA and runs the authority's bundles."""
    app = os.path.join(tmp, "appliance")
    app_pin = os.path.join(app, "token.pin")
    p = run("token", "init", "--state-dir", app, "--label", "tkms", "--generate-pins",
            "--provisioning-anchor", ca_pem)
    check("provisioning anchor: CN=tkms demo provisioning CA" in p.stdout and "pinned" in p.stdout,
          "token init pins the anchor")
    app_ks = ["--state-dir", app, "--pin-file", app_pin]
    p = run("token", "anchor", *app_ks)
    check(p.stdout.startswith("provisioning anchor: CN=tkms demo provisioning CA"), "token anchor shows it")
    p = run("token", "anchor", *app_ks, "--pin", ca_pem)
    check("already pinned" in p.stdout, "pinning the same anchor again is a no-op")
    p = run("token", "anchor", *app_ks, "--pin", os.path.join(tmp, "other-ca.pem"), expect=1)
    check("already pins another provisioning anchor" in p.stderr, "a second anchor is refused")
    app2 = os.path.join(tmp, "app2")
    p = run("token", "init", "--state-dir", app2, "--label", "tkms", "--generate-pins",
            "--provisioning-anchor", signer_pem, expect=1)
    check("must be a CA certificate" in p.stderr, "a non-CA anchor is refused")
    app2_ks = ["--state-dir", app2, "--pin-file", os.path.join(app2, "token.pin")]
    p = run("token", "anchor", *app2_ks, expect=1)
    check("pins no provisioning anchor" in p.stderr, "no anchor: said so")
    p = run("token", "anchor", *app2_ks, "--pin", ca_pem)
    check("pinned" in p.stdout, "token anchor --pin pins into an existing token")
    run("key", "rotate", *app_ks, "--type", "hmac-sha256")

    local = os.path.join(tmp, "local.json")
    write(local, json.dumps({"token": {"token": "tkms", "pin_file": app_pin,
                                       "softhsm2_conf": os.path.join(app, "softhsm2.conf")}}))
    bundle1, bundle2 = os.path.join(app, "bundle.json"), os.path.join(tmp, "v2.bundle")
    for version, path in ((1, bundle1), (2, bundle2)):
        write(os.path.join(tmp, "app-v%d.json" % version), json.dumps({"version": version, "kms_identity": "kms.example.org"}))
        run("bundle", "sign", *ks, "--key", key_uri, "--cert", signer_pem,
            "--in", os.path.join(tmp, "app-v%d.json" % version), "--out", path)

    ready = os.path.join(tmp, "ready.json")
    log_path = os.path.join(tmp, "tkmsd.log")
    with open(log_path, "w") as log:
        env = dict(os.environ)
        env.pop("TKMS_PIN", None)
        proc = subprocess.Popen([TKMSD, "--allow-root", "--config", local, "--bundle", bundle1, "--listen", "127.0.0.1:0",
                                 "--admin-listen", "127.0.0.1:0", "--ready-file", ready],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(300):
            if os.path.exists(ready) or proc.poll() is not None:
                break
            time.sleep(0.05)
        check(os.path.exists(ready), "tkmsd started from the bundle:\n" + open(log_path).read())
        admin = json.load(open(ready))["admin_port"]
        check(metric(admin, "tkms_bundle_version") == 1, "version 1 in force")
        status, answer = post_bundle(admin, bundle2)
        check(status == 200 and answer.get("verdict") == "accepted" and answer.get("version") == 2,
              "a newer bundle is accepted: %d %s" % (status, answer))
        check(metric(admin, "tkms_bundle_version") == 2, "version 2 in force")
        check(open(bundle1, "rb").read() == open(bundle2, "rb").read(), "the accepted bundle replaced the file")
        status, answer = post_bundle(admin, bundle2)
        check(status == 409 and "not newer" in answer.get("reason", ""), "the same bundle again: 409")
        audit = [json.loads(l) for l in open(os.path.join(app, "bundle-audit.log"))]
        check([a["verdict"] for a in audit] == ["accepted", "accepted", "refused"], "the audit log: %s" % audit)
        check(audit[1]["signer"].startswith("CN=tkms demo bundle signer"), "the audit names the signer: %s" % audit[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    check(rc == 0, "tkmsd exits 0 on SIGTERM")
    check(open(app_pin).read().strip() not in open(log_path).read(), "the PIN is not in the log")
    # The accepted bundles advanced the version counter in the token: its key
    # is listed for what it is, not as a user PSK.
    keys = {k["label"]: k for k in json.loads(run("key", "list", *app_ks, "--json").stdout)}
    check(keys.get("tkms-counter-key", {}).get("usage") == "provisioning-counter",
          "key list shows the counter key as provisioning-counter: %s" % keys.get("tkms-counter-key"))
    check(not [k for k in keys.values() if k["usage"] == "user-psk"], "no user PSK is listed on the appliance")
    p = run("key", "list", *app_ks)
    check(any(l.startswith("tkms-counter-key ") and "  provisioning-counter  " in l for l in p.stdout.splitlines()),
          "key list (text) shows the counter key as provisioning-counter:\n" + p.stdout)


def main():
    with tempfile.TemporaryDirectory(prefix="tkms-cli-bundle-") as tmp:
        state = os.path.join(tmp, "authority")
        pin_file = os.path.join(state, "token.pin")
        ks = ["--state-dir", state]

        # 1. The authority's token and its signing key (EC P-256, never extractable).
        run("token", "init", "--state-dir", state, "--label", "authority", "--generate-pins")
        pin = open(pin_file).read().strip()
        p = run("key", "generate", *ks, "--pin-file", pin_file, "--token", "authority",
                "--type", "ec-p256", "--label", "bundle-signer")
        check("ec-p256" in p.stdout and "signing" in p.stdout, "key generate made an EC P-256 signing key")
        key_uri = "pkcs11:token=authority;object=bundle-signer?pin-source=file:" + pin_file

        # 2. The demo CA (the provisioning anchor) and a second, unrelated CA.
        make_ca(tmp, "ca", "tkms demo provisioning CA")
        make_ca(tmp, "other-ca", "some other CA")

        # 3. The public key out of the token, the certificate issued by openssl.
        pub = os.path.join(tmp, "signer.pub.pem")
        p = run("bundle", "pubkey", *ks, "--key", key_uri, "--out", pub)
        check("PEM SubjectPublicKeyInfo" in p.stdout, "pubkey reports what it wrote")
        check(open(pub).read().startswith("-----BEGIN PUBLIC KEY-----\n"), "pubkey writes a PEM public key")
        openssl("pkey", "-pubin", "-in", pub, "-noout", cwd=tmp)
        run("bundle", "pubkey", *ks, "--key", key_uri, "--out", pub, expect=1)  # exists
        run("bundle", "pubkey", *ks, "--key", key_uri, "--out", pub, "--force")
        write(os.path.join(tmp, "signer.ext"), SIGNER_EXT)
        openssl("x509", "-new", "-subj", "/CN=tkms demo bundle signer/O=tkms demo", "-force_pubkey", "signer.pub.pem",
                "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "365", "-extfile", "signer.ext",
                "-out", "signer.pem", cwd=tmp)
        openssl("verify", "-CAfile", "ca.pem", "signer.pem", cwd=tmp)
        cert_pub = openssl("x509", "-in", "signer.pem", "-noout", "-pubkey", cwd=tmp).stdout
        check(cert_pub == open(pub).read(), "the certificate carries the token key's public key")

        # 4. Sign, verify, show.
        config = os.path.join(tmp, "config.json")
        write(config, json.dumps(PAYLOAD, indent=2) + "\n")
        bundle = os.path.join(tmp, "config.bundle")
        signer_pem = os.path.join(tmp, "signer.pem")
        ca_pem = os.path.join(tmp, "ca.pem")
        p = run("bundle", "sign", *ks, "--key", key_uri, "--cert", signer_pem, "--in", config, "--out", bundle)
        check("bundle version 5" in p.stdout and "tkms demo bundle signer" in p.stdout, "sign reports version and signer")
        check(pin not in p.stdout + p.stderr, "the PIN is not printed")
        check(oct(os.stat(bundle).st_mode & 0o777) == "0o644", "the bundle file has mode 0644")
        check(not [f for f in os.listdir(tmp) if ".tmp-" in f], "no temporary file is left behind")
        envelope = json.load(open(bundle))
        check(sorted(envelope) == ["certificates", "format", "payload", "signature"], "the bundle has the four members")
        check(base64.b64decode(envelope["payload"]) == open(config, "rb").read(), "the payload is the file's bytes")

        p = run("bundle", "verify", "--anchor", ca_pem, bundle)
        check(": VALID" in p.stdout and "version:  5" in p.stdout, "verify: valid, version 5")
        check("tkms demo bundle signer" in p.stdout and "sha256:" in p.stdout, "verify names the signer and digest")
        p = run("bundle", "show", bundle)
        check("NOT VERIFIED" in p.stdout, "show says NOT VERIFIED")
        check("tkms demo provisioning CA" in p.stdout and "digitalSignature" in p.stdout, "show lists the certificate")
        check('"kms_identity": "kms.example.org"' in p.stdout and "version:      5" in p.stdout,
              "show pretty-prints the payload")

        # The signature, checked by openssl over the documented signed message.
        message = os.path.join(tmp, "message.bin")
        with open(message, "wb") as f:
            f.write(b"tkms configuration bundle v1\x00" + base64.b64decode(envelope["payload"]))
        with open(os.path.join(tmp, "sig.der"), "wb") as f:
            f.write(base64.b64decode(envelope["signature"]))
        p = openssl("dgst", "-sha256", "-verify", "signer.pub.pem", "-signature", "sig.der", "message.bin", cwd=tmp)
        check("Verified OK" in p.stdout, "openssl verifies the bundle signature")

        # 5. Refusals at verification.
        p = run("bundle", "verify", "--anchor", os.path.join(tmp, "other-ca.pem"), bundle, expect=1)
        check("certificates[0]: not issued by the provisioning anchor" in p.stderr and p.stdout == "",
              "another anchor: refused, nothing on stdout")
        tampered = dict(envelope)
        tampered["payload"] = base64.b64encode(
            base64.b64decode(envelope["payload"]).replace(b"alice", b"alicf")).decode()
        write(os.path.join(tmp, "tampered.bundle"), json.dumps(tampered))
        p = run("bundle", "verify", "--anchor", ca_pem, os.path.join(tmp, "tampered.bundle"), expect=1)
        check("signature: does not verify" in p.stderr, "a tampered payload is refused")
        p = run("bundle", "verify", "--anchor", ca_pem, "--at", "2060-01-01T00:00:00Z", bundle, expect=1)
        check("certificates[0]: expired on" in p.stderr, "an expired signer is refused")
        run("bundle", "verify", "--anchor", ca_pem, "--at", "2060-13-01T00:00:00Z", bundle, expect=2)
        p = run("bundle", "verify", "--anchor", signer_pem, bundle, expect=1)
        check("anchor: not a CA certificate" in p.stderr, "a leaf as anchor is refused")
        p = run("bundle", "show", config, expect=1)
        check("unknown member" in p.stderr, "show refuses a file that is not a bundle")

        # 6. Refusals at signing: nothing is written.
        out2 = os.path.join(tmp, "second.bundle")
        bad = dict(PAYLOAD)
        bad["users"] = [{"identities": ["sip:alice@example.org"], "policy_class": "gold"}]
        write(os.path.join(tmp, "bad.json"), json.dumps(bad))
        p = run("bundle", "sign", *ks, "--key", key_uri, "--cert", signer_pem, "--in", os.path.join(tmp, "bad.json"),
                "--out", out2, expect=1)
        check("payload: users[0].policy_class: no policy class named 'gold'" in p.stderr, "a schema error is named")
        local = dict(PAYLOAD)
        local["token"] = {"pin_file": "/etc/tkms/token.pin"}
        write(os.path.join(tmp, "local.json"), json.dumps(local))
        p = run("bundle", "sign", *ks, "--key", key_uri, "--cert", signer_pem, "--in", os.path.join(tmp, "local.json"),
                "--out", out2, expect=1)
        check("payload: token" in p.stderr, "a local section is refused")
        p = run("bundle", "sign", *ks, "--key", key_uri, "--cert", ca_pem, "--in", config, "--out", out2, expect=1)
        check("certificates[0]: key usage lacks digitalSignature" in p.stderr, "a CA certificate cannot sign")
        openssl("pkey", "-in", "other-ca.key", "-pubout", "-out", "other.pub.pem", cwd=tmp)
        openssl("x509", "-new", "-subj", "/CN=someone else", "-force_pubkey", "other.pub.pem", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-days", "30", "-extfile", "signer.ext", "-out", "wrong-key.pem", cwd=tmp)
        p = run("bundle", "sign", *ks, "--key", key_uri, "--cert", os.path.join(tmp, "wrong-key.pem"), "--in", config,
                "--out", out2, expect=1)
        check("not the key that certificate was issued for" in p.stderr, "a certificate for another key is refused")
        p = run("bundle", "sign", *ks, "--key", key_uri, "--cert", signer_pem, "--in", config, "--out", bundle,
                expect=1)
        check("already exists" in p.stderr, "an existing bundle is not overwritten")
        check(not os.path.exists(out2), "no bundle was written by a refused sign")

        # --force, --pin-file instead of pin-source, $TKMS_PIN, the URI's module-path, a chain file.
        plain_uri = "pkcs11:token=authority;object=bundle-signer"
        run("bundle", "sign", *ks, "--key", plain_uri, "--pin-file", pin_file, "--cert", signer_pem, "--in", config,
            "--out", bundle, "--force")
        run("bundle", "sign", *ks, "--key", plain_uri + "?module-path=/usr/lib/softhsm/libsofthsm2.so",
            "--cert", signer_pem, "--in", config, "--out", out2, env={"TKMS_PIN": pin})
        run("bundle", "verify", "--anchor", ca_pem, out2)
        os.remove(out2)
        # An intermediate CA between the anchor and the signer: --chain.
        write(os.path.join(tmp, "inter.ext"), "basicConstraints = critical,CA:TRUE\n"
              "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
              "authorityKeyIdentifier = keyid\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                "inter.key", "-subj", "/CN=tkms demo intermediate CA", "-out", "inter.csr", cwd=tmp)
        openssl("x509", "-req", "-in", "inter.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "365",
                "-extfile", "inter.ext", "-out", "inter.pem", cwd=tmp)
        openssl("x509", "-new", "-subj", "/CN=tkms demo chained signer", "-force_pubkey", "signer.pub.pem",
                "-CA", "inter.pem", "-CAkey", "inter.key", "-days", "365", "-extfile", "signer.ext",
                "-out", "chained.pem", cwd=tmp)
        run("bundle", "sign", *ks, "--key", key_uri, "--cert", os.path.join(tmp, "chained.pem"),
            "--chain", os.path.join(tmp, "inter.pem"), "--in", config, "--out", out2)
        p = run("bundle", "verify", "--anchor", ca_pem, out2)
        check("tkms demo intermediate CA" in p.stdout, "a chained signer verifies")
        p = run("bundle", "verify", "--anchor", os.path.join(tmp, "inter.pem"), out2, expect=1)
        check("certificates[1]: not part of the chain" in p.stderr, "the bundle must chain to the anchor exactly")
        os.remove(out2)

        # Usage errors: the key URI.
        run("bundle", "sign", *ks, "--key", "pkcs11:token=authority", "--cert", signer_pem, "--in", config,
            "--out", out2, expect=2)
        run("bundle", "sign", *ks, "--key", "pkcs11:object=bundle-signer", "--cert", signer_pem, "--in", config,
            "--out", out2, expect=2)
        run("bundle", "sign", *ks, "--key", key_uri, "--pin-file", pin_file, "--cert", signer_pem, "--in", config,
            "--out", out2, expect=2)
        p = run("bundle", "sign", *ks, "--key", plain_uri + "?pin-value=not-the-pin-42", "--cert", signer_pem,
                "--in", config, "--out", out2, expect=2)
        check("not-the-pin-42" not in p.stderr, "a pin-value is refused without being echoed")
        p = run("bundle", "sign", *ks, "--key", plain_uri, "--cert", signer_pem, "--in", config, "--out", out2,
                expect=1)
        check("TKMS_PIN" in p.stderr, "no PIN: says where it comes from")
        p = run("bundle", "sign", *ks, "--key", "pkcs11:token=authority;object=no-such-key?pin-source=file:" + pin_file,
                "--cert", signer_pem, "--in", config, "--out", out2, expect=1)
        check("no-such-key" in p.stderr, "an unknown key is named")
        check(not os.path.exists(out2), "still nothing written")
        for cmd in (["bundle", "--help"], ["bundle", "sign", "--help"], ["bundle", "verify", "--help"]):
            run(*cmd)

        if TKMSD:
            appliance(tmp, ks, key_uri, signer_pem, ca_pem)

    print("bundle_cli_test: %d checks passed" % checks)


if __name__ == "__main__":
    main()
