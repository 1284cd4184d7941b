#!/usr/bin/env python3
"""End-to-end test of `tkmsctl token|key|user` against real SoftHSM2 tokens.

Usage: keystore_cli_test.py TKMSCTL

Creates throw-away SoftHSM2 state directories, initialises tokens with
generated PINs, and drives every administration command the way an operator
would: ticket-key rotation, key generation and listing, user PSKs (generated
and imported), cloning a ticket key to a second token under a trusted wrapping
key, and the refusals: wrong PIN, unknown token, missing module, PIN on the
command line, overwriting a PSK file, duplicate identities. Exits 1 on the
first failed check.
"""
import json
import os
import stat
import subprocess
import sys
import tempfile

TKMSCTL = sys.argv[1]
checks = 0


def run(*args, env=None, expect=0, stdin=None):
    global checks
    full_env = dict(os.environ)
    full_env.pop("TKMS_PIN", None)
    full_env.pop("TKMS_SO_PIN", None)
    full_env.update(env or {})
    p = subprocess.run([TKMSCTL, *args], capture_output=True, text=True, env=full_env, input=stdin,
                       timeout=60)
    checks += 1
    if p.returncode != expect:
        sys.exit("FAIL: tkmsctl %s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                 % (" ".join(args), p.returncode, expect, p.stdout, p.stderr))
    return p


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        sys.exit("FAIL: " + what)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def main():
    with tempfile.TemporaryDirectory(prefix="tkms-cli-keystore-") as tmp:
        a = os.path.join(tmp, "a")
        b = os.path.join(tmp, "b")
        ks_a = ["--state-dir", a, "--pin-file", os.path.join(a, "token.pin")]
        ks_b = ["--state-dir", b, "--pin-file", os.path.join(b, "token.pin")]

        # token init with generated PINs: files mode 0600, never printed.
        p = run("token", "init", "--state-dir", a, "--generate-pins")
        check("initialised token 'tkms'" in p.stdout, "init reports the token")
        for name in ("token.pin", "so.pin"):
            check(mode(os.path.join(a, name)) == 0o600, name + " has mode 0600")
            pin = open(os.path.join(a, name)).read().strip()
            check(len(pin) == 24 and pin not in p.stdout + p.stderr, name + " is 24 chars and not printed")
        run("token", "init", "--state-dir", a, "--generate-pins", expect=1)  # PIN files exist
        run("token", "init", "--state-dir", b, "--generate-pins")

        p = run("token", "status", *ks_a, "--json")
        status = json.loads(p.stdout)
        check(status["selected"]["login"] == "ok", "token status logs in")
        check(any(t["label"] == "tkms" for t in status["tokens"]), "token status lists the token")

        # Ticket keys: rotation makes a new current key, old ones stay.
        run("key", "rotate", *ks_a)
        p = run("key", "rotate", *ks_a, "--type", "aes256")
        check("ticket key 2 is now current" in p.stdout, "second rotation makes key 2 current")
        p = run("token", "status", *ks_a, "--json")
        check(json.loads(p.stdout)["selected"]["current_ticket_key_id"] == 2, "status shows current id 2")

        run("key", "generate", *ks_a, "--type", "ec-p256", "--label", "kms-signing")
        run("key", "generate", *ks_a, "--type", "hmac-sha256", "--label", "spare", "--id", "0a0b")
        run("key", "generate", *ks_a, "--type", "aes256", "--label", "spare", expect=1)  # duplicate label
        run("key", "generate", *ks_a, "--type", "des", "--label", "x", expect=2)
        # The bundle version counter's key has a reserved label (and is listed
        # as "provisioning-counter", not "user-psk": bundle_cli_test.py).
        p = run("key", "generate", *ks_a, "--type", "hmac-sha256", "--label", "tkms-counter-key", expect=1)
        check("reserved for the provisioning counter key" in p.stderr, "the counter key's label is reserved")

        # Users: generated PSK (UE copy 0600, 32 bytes hex), imported PSK.
        ue = os.path.join(tmp, "ue")
        os.mkdir(ue)
        alice_psk = os.path.join(ue, "alice.psk")
        p = run("user", "add", *ks_a, "--id", "sip:alice@example.org", "--id", "tel:+15551234",
                "--psk-out", alice_psk)
        check(mode(alice_psk) == 0o600, "the UE's PSK file has mode 0600")
        psk_hex = open(alice_psk).read().strip()
        check(len(psk_hex) == 64 and psk_hex not in p.stdout + p.stderr, "PSK is 32 bytes and not printed")
        run("user", "add", *ks_a, "--id", "sip:carol@example.org", "--psk-out", alice_psk, expect=1)
        bob_in = os.path.join(tmp, "bob.psk")
        with open(os.open(bob_in, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("11" * 32 + "\n")
        run("user", "add", *ks_a, "--id", "sip:bob@example.org", "--psk-file", bob_in)
        run("user", "add", *ks_a, "--id", "sip:bob@example.org", "--psk-file", bob_in, expect=1)
        os.chmod(bob_in, 0o644)
        p = run("user", "add", *ks_a, "--id", "sip:dave@example.org", "--psk-file", bob_in, expect=1)
        check("chmod 600" in p.stderr, "a world-readable PSK file is refused")
        run("user", "add", *ks_a, "--id", "sip:eve@example.org", expect=2)  # no PSK source
        users = json.loads(run("user", "list", *ks_a, "--json").stdout)
        check(sorted(u["identities"][0] for u in users) == ["sip:alice@example.org", "sip:bob@example.org"],
              "user list shows alice and bob")
        check(["sip:alice@example.org", "tel:+15551234"] in [u["identities"] for u in users],
              "alice has both identities")

        # Key list: attributes, never values; every secret sensitive.
        keys = json.loads(run("key", "list", *ks_a, "--json").stdout)
        text = json.dumps(keys)
        check(psk_hex not in text and "value" not in text, "key list shows no values")
        for k in keys:
            if k["class"] != "public-key":
                check(k["sensitive"], k["label"] + " is sensitive")
            if k["label"].startswith("user:"):
                check(not k["extractable"] and k["usage"] == "user-psk", k["label"] + " never leaves the token")
            if k["label"].startswith("tkms-ticket-"):
                check(k["wrap_with_trusted"], k["label"] + " leaves only wrapped under a trusted key")
        run("user", "remove", *ks_a, "sip:bob@example.org")
        run("user", "remove", *ks_a, "sip:bob@example.org", expect=1)

        # Cloning: a ticket key moves to token B only wrapped under a trusted key.
        kek = os.path.join(tmp, "kek.hex")
        with open(os.open(kek, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        run("key", "import-wrapping-key", *ks_a, "--label", "kek-export", "--value-file", kek, "--trusted",
            "--so-pin-file", os.path.join(a, "so.pin"))
        run("key", "import-wrapping-key", *ks_b, "--label", "kek-import", "--value-file", kek)
        wrapped = os.path.join(tmp, "ticket-1.wrapped")
        run("key", "export-wrapped", *ks_a, "tkms-ticket-1", "--wrapping-key", "kek-export", "--out", wrapped)
        check(mode(wrapped) == 0o600, "the wrapped key file has mode 0600")
        p = run("key", "export-wrapped", *ks_a, "id:0a0b", "--wrapping-key", "kek-export",
                "--out", os.path.join(tmp, "spare.wrapped"), expect=1)  # a non-ticket key never leaves
        run("key", "import-wrapped", *ks_b, "--in", wrapped, "--wrapping-key", "kek-import", "--id", "00000001")
        keys_b = json.loads(run("key", "list", *ks_b, "--json").stdout)
        cloned = [k for k in keys_b if k["label"] == "tkms-ticket-1"]
        check(len(cloned) == 1 and cloned[0]["sensitive"] and cloned[0]["ticket_key_id"] == 1,
              "token B holds ticket key 1, sensitive")

        run("key", "destroy", *ks_a, "tkms-ticket-1")
        run("key", "destroy", *ks_a, "tkms-ticket-1", expect=1)

        # Refusals.
        p = run("key", "list", "--state-dir", a, env={"TKMS_PIN": "wrong-pin-123"}, expect=1)
        check("CKR_PIN_INCORRECT" in p.stderr and "wrong-pin-123" not in p.stderr, "wrong PIN: clear, no echo")
        p = run("key", "list", *ks_a, "--token", "no-such-token", expect=1)
        check("no-such-token" in p.stderr, "unknown token is named")
        p = run("key", "list", *ks_a, "--module", os.path.join(tmp, "missing.so"), expect=1)
        check("missing.so" in p.stderr, "missing module is named")
        run("key", "list", "--state-dir", a, "--pin", "x", expect=2)  # there is no --pin option
        p = run("key", "list", "--state-dir", a, expect=1)
        check("TKMS_PIN" in p.stderr, "missing PIN explains where it comes from")
        p = run("key", "list", "--state-dir", os.path.join(tmp, "nowhere"),
                "--pin-file", os.path.join(a, "token.pin"), expect=1)
        check("token init" in p.stderr, "a missing state dir says how to create it")
        for cmd in (["token", "--help"], ["key", "--help"], ["user", "add", "--help"]):
            run(*cmd)

    print("keystore_cli_test: %d checks passed" % checks)


if __name__ == "__main__":
    main()
