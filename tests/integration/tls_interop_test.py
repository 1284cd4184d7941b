#!/usr/bin/env python3
"""tkmsd's TLS edge seen by independent clients: curl, openssl s_client,
Python's ssl module and OpenSC's pkcs11-tool (none of them tkms code), plus
tkms-bench and tkms-ue for the MIKEY side. Loopback only, free ports
(port 0 and the ready file), one temporary directory per case.

Usage: tls_interop_test.py CASE SOURCE_DIR TKMSD TKMSCTL TKMS_UE TKMS_BENCH PKCS11_TOOL

CASE:
  dev         tkmsd --dev --tls-listen: a real REQUEST_INIT (captured from
              tkms-ue) posted by curl gets a REQUEST_RESP, its replay a MIKEY
              Error 1; tkms-bench request and resolve over HTTPS; openssl
              s_client: chain, verify 0, no TLS 1.0/1.1, no CBC, no
              renegotiation, no compression; Python ssl with host name
              checking; plain HTTP on the TLS port closed, tkmsd unharmed;
              pkcs11-tool: the TLS key is sign-only, sensitive, never
              extractable.
  admin_mtls  tkmsd --config with a mutual-TLS admin listener: an operator
              CA's client certificate and a pinned self-made one are
              accepted; no certificate and another CA's certificate are
              refused and counted in tkms_connection_events_total.
  rotation    a new certificate for the same token key (tkmsctl tls csr,
              openssl as CA) written over the chain file + SIGHUP: a kept-
              alive connection keeps working, a new one sees the new issuer;
              then a chain for another key and a garbage file are refused on
              SIGHUP (tls_reload_refused) and the running certificate stays.
  bundle      tkmsd --config --bundle with the mutual-TLS admin listener:
              POST /admin/bundle with the operator's client certificate;
              the audit line names the operator's subject and the SHA-256 of
              the certificate; without a certificate nothing is posted.
  refusals    --config with listen.ua on 0.0.0.0 without consent, and
              listen.admin on 0.0.0.0 without client certificates: exit 1,
              naming the field.

Exits 1 at the first failed check, with what was seen.
"""
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

CASE = sys.argv[1]
SOURCE_DIR, TKMSD, TKMSCTL, TKMS_UE, TKMS_BENCH, PKCS11_TOOL = (os.path.abspath(a) for a in sys.argv[2:8])
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "keystore"))
from pkcs11_tool_custody import parse_objects, run_with_pin  # noqa: E402

MODULE = os.environ.get("TKMS_PKCS11_MODULE") or "/usr/lib/softhsm/libsofthsm2.so"
TICKET_PATH = "/keymanagement?requesttype=ticketrequest"
checks = 0


def fail(what, output=""):
    sys.exit("FAIL [%s]: %s%s" % (CASE, what, "\n--- output ---\n" + output if output else ""))


def check(condition, what, output=""):
    global checks
    checks += 1
    if not condition:
        fail(what, output)


def clean_env():
    env = dict(os.environ)
    for name in ("TKMS_PIN", "TKMS_SO_PIN", "SOFTHSM2_CONF"):
        env.pop(name, None)
    return env


def run(argv, expect=0, timeout=60, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, env=kw.pop("env", clean_env()), timeout=timeout, **kw)
    if expect is not None:
        check(p.returncode == expect, "%s exited %d, expected %d" % (" ".join(argv[:4]), p.returncode, expect),
              p.stdout + p.stderr)
    return p


def eventually(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def write(path, text, mode=None):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


# --- tkmsd ------------------------------------------------------------------------


STARTED = []


class Tkmsd:
    """A tkmsd process with a ready file and a log file (stderr)."""

    def __init__(self, work, name, args):
        STARTED.append(self)
        self.ready = os.path.join(work, name + ".ready")
        self.log = os.path.join(work, name + ".log")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([TKMSD, "--allow-root", *args, "--ready-file", self.ready], stdout=log,
                                         stderr=subprocess.STDOUT, env=clean_env(), cwd=work)
        ok = eventually(lambda: os.path.exists(self.ready) or self.proc.poll() is not None, 60)
        check(ok and os.path.exists(self.ready), "tkmsd %s is serving" % " ".join(args), self.logtext())
        self.ports = json.loads(read(self.ready))

    def logtext(self):
        return read(self.log)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("tkmsd did not stop within 30 s of SIGTERM", self.logtext())
        check(code == 0, "tkmsd exits 0 on SIGTERM (exit %s)" % code, self.logtext())


def start_dev(work):
    state = os.path.join(work, "state")
    d = Tkmsd(work, "dev", ["--dev", "--state-dir", state, "--listen", "127.0.0.1:0", "--admin-listen",
                             "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
    check(d.ports.get("ua_tls_port", 0) > 0, "the ready file names ua_tls_port", json.dumps(d.ports))
    return d, state


# --- clients --------------------------------------------------------------------


def capture_request_init(work, state, name):
    """A real REQUEST_INIT_PSK (alice -> bob), as tkms-ue builds it: tkms-ue
    offer is pointed at a local HTTP server that keeps the body and answers
    503 (so the REQUEST_INIT is never used by a KMS before the test posts it)."""
    captured = {}

    class Capture(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            captured["path"] = self.path
            captured["type"] = self.headers.get("Content-Type")
            captured["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    p = run([TKMS_UE, "offer", "--kms", "http://127.0.0.1:%d" % server.server_address[1], "--initiator",
             "sip:alice@example.org", "--initiator-psk", os.path.join(state, "ue", "alice.psk"), "--responder",
             "sip:bob@example.org", "--sdp-out", os.path.join(work, name + ".sdp"), "--state-out",
             os.path.join(work, name + ".state"), "--timeout-ms", "5000"], expect=None)
    thread.join(10)
    server.server_close()
    check("body" in captured, "tkms-ue offer sent its REQUEST_INIT to the capture server", p.stdout + p.stderr)
    check(captured["path"] == TICKET_PATH and captured["type"] == "application/mikey",
          "tkms-ue posts to %s as application/mikey" % TICKET_PATH, repr(captured))
    return captured["body"]


def mikey_decode(b64_text):
    p = run([TKMSCTL, "mikey", "decode", "-"], input=b64_text)
    return json.loads(p.stdout)


def curl_post(port, cafile, body_path):
    """curl over HTTPS: (status, content type, body)."""
    p = run(["curl", "-sS", "--max-time", "20", "--cacert", cafile, "-H", "Content-Type: application/mikey",
             "--data-binary", "@" + body_path, "-w", "\n%{http_code} %{content_type}",
             "https://localhost:%d%s" % (port, TICKET_PATH)], expect=None)
    check(p.returncode == 0, "curl --cacert dev-ca.pem exits 0", p.stdout + p.stderr)
    body, _, trailer = p.stdout.rpartition("\n")
    status, _, ctype = trailer.partition(" ")
    return int(status), ctype, body


def client_context(cafile, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=cafile)
    check(ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED, "Python's default context verifies")
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def https(port, ctx, method, path, body=None, headers=None):
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def s_client(port, *args, cafile=None, stdin=b"", timeout=20):
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost", *args]
    if cafile:
        argv += ["-CAfile", cafile]
    p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    fail("metric %s%s not found" % (name, labels), text)


# --- PKI with openssl --------------------------------------------------------------

CA_EXT = ("basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier = hash\n")
CLIENT_EXT = ("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
              "extendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
SERVER_EXT = ("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
              "extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")


def make_ca(work, name, cn):
    """EC P-256 CA: (cert, key)."""
    cnf = os.path.join(work, name + ".cnf")
    write(cnf, "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n[dn]\nCN = %s\n[v3_ca]\n%s"
          % (cn, CA_EXT))
    cert, key = os.path.join(work, name + ".pem"), os.path.join(work, name + ".key")
    run(["openssl", "req", "-x509", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "30"])
    return cert, key


def issue_client(work, name, subject, ca):
    """An EC P-256 client certificate issued by ca = (cert, key)."""
    key, csr, cert = (os.path.join(work, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(work, name + ".ext")
    write(ext, CLIENT_EXT)
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         key, "-subj", subject, "-out", csr])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "30",
         "-sha256", "-extfile", ext, "-out", cert])
    os.chmod(key, 0o600)
    return cert, key


def self_signed_client(work, name, subject):
    key, cert = os.path.join(work, name + ".key"), os.path.join(work, name + ".pem")
    ext = os.path.join(work, name + ".ext")
    write(ext, CLIENT_EXT.replace("authorityKeyIdentifier = keyid\n", ""))
    run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-subj", subject, "-days", "30", "-extensions", "v3", "-config", "/dev/stdin",
         "-out", cert], input="[req]\ndistinguished_name = dn\n[dn]\n[v3]\n" + read(ext))
    return cert, key


def certificate_der(pem_path):
    text = read(pem_path)
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S).group(1)
    return base64.b64decode("".join(body.split()))


def issuer_of_peer(sock):
    der = sock.getpeercert(binary_form=True)
    p = run(["openssl", "x509", "-noout", "-issuer", "-nameopt", "oneline"], input=ssl.DER_cert_to_PEM_cert(der))
    return p.stdout.strip()


def openssl_subject(cert):
    return run(["openssl", "x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253"]).stdout.strip()


def server_certificate_for_token_key(work, state, name, ca):
    """tkmsctl tls csr for the token's tkms-tls-server, issued by ca with
    openssl (docs/tls.md): the chain file (leaf, CA)."""
    csr = os.path.join(work, name + ".csr")
    p = run([TKMSCTL, "tls", "csr", "--state-dir", state, "--pin-file", os.path.join(state, "token.pin"),
             "--label", "tkms-tls-server", "--subject", "CN=localhost,O=tkms interop", "--dns", "localhost"])
    write(csr, p.stdout)
    ext = os.path.join(work, name + ".ext")
    write(ext, SERVER_EXT)
    leaf = os.path.join(work, name + ".pem")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "30",
         "-sha256", "-copy_extensions", "copy", "-extfile", ext, "-out", leaf])
    chain = os.path.join(work, name + "-chain.pem")
    write(chain, read(leaf) + read(ca[0]))
    return chain


def dev_token(work):
    """A token made by tkmsd --dev (TLS key, dev CA, demo users), stopped."""
    d, state = start_dev(work)
    d.stop()
    return state


def config_file(work, state, name, listen, tls, extra=None):
    cfg = {
        "kms_identity": "kms.example.org",
        "token_users": True,
        "listen": listen,
        "tls": tls,
        "token": {"token": "tkms", "pin_file": os.path.join(state, "token.pin"),
                  "softhsm2_conf": os.path.join(state, "softhsm2.conf")},
    }
    cfg.update(extra or {})
    path = os.path.join(work, name + ".json")
    write(path, json.dumps(cfg, indent=2))
    return path


# --- cases ------------------------------------------------------------------------


def case_dev(work):
    d, state = start_dev(work)
    port = d.ports["ua_tls_port"]
    ca = os.path.join(state, "dev-ca.pem")
    check(os.path.exists(os.path.join(state, "tls-chain.pem")), "--dev writes tls-chain.pem")

    # curl: a real REQUEST_INIT gets a REQUEST_RESP; the same again is a replay.
    request_init = capture_request_init(work, state, "offer1")
    body_path = os.path.join(work, "request_init.b64")
    with open(body_path, "wb") as f:
        f.write(request_init)
    check(mikey_decode(request_init.decode())["header"]["data_type_name"] == "REQUEST_INIT_PSK",
          "the captured body is a REQUEST_INIT_PSK")
    status, ctype, body = curl_post(port, ca, body_path)
    check(status == 200 and ctype == "application/mikey", "curl: 200 application/mikey (%d %s)" % (status, ctype), body)
    check(mikey_decode(body)["header"]["data_type_name"] == "REQUEST_RESP", "curl: the answer is a REQUEST_RESP", body)
    check(eventually(lambda: re.search(r"event=request .*type=ticketrequest status=200 outcome=ok ", d.logtext())),
          "tkmsd logs the HTTPS ticket request as outcome=ok", d.logtext())
    status, ctype, body = curl_post(port, ca, body_path)
    check(status == 200 and ctype == "application/mikey", "curl replay: 200 application/mikey", body)
    err = mikey_decode(body)
    check(err["header"]["data_type_name"] == "ERROR", "curl replay: a MIKEY Error message", json.dumps(err))
    errs = [p for p in err["payloads"] if p["name"] == "ERR"]
    check(len(errs) == 1 and errs[0]["error_no"] == 1, "curl replay: MIKEY error 1 (Invalid TS)", json.dumps(err))
    # The committed vector (a PSK id no token has): MIKEY error 0.
    status, ctype, body = curl_post(port, ca, os.path.join(SOURCE_DIR, "tests/vectors/mikey/request_init_psk.b64"))
    err = mikey_decode(body)
    check(status == 200 and err["header"]["data_type_name"] == "ERROR" and
          [p["error_no"] for p in err["payloads"] if p["name"] == "ERR"] == [0],
          "the vector's unknown PSK id: MIKEY error 0 (Auth failure)", body)

    # tkms-bench over HTTPS: every answer verified with the users' PSKs.
    for mode in ("request", "resolve"):
        p = run([TKMS_BENCH, "--url", "https://localhost:%d" % port, "--cacert", ca, "--mode", mode,
                 "--initiator", "sip:alice@example.org", "--initiator-psk", os.path.join(state, "ue", "alice.psk"),
                 "--responder", "sip:bob@example.org", "--responder-psk", os.path.join(state, "ue", "bob.psk"),
                 "--connections", "2", "--duration", "1", "--warmup", "0", "--json"], timeout=60)
        result = json.loads(p.stdout)
        check(result["ok"] > 0 and result["errors"] == 0 and result["tls"].startswith("TLSv1.2 TLS-ECDHE-"),
              "tkms-bench --mode %s over https: verified answers, no errors" % mode, p.stdout + p.stderr)

    # openssl s_client: the chain, the verification, the policy.
    code, out = s_client(port, "-showcerts", cafile=ca)
    check(code == 0 and "Verify return code: 0 (ok)" in out, "s_client verifies the chain with -CAfile dev-ca.pem", out)
    check(re.search(r"^ 0 s:CN ?= ?localhost, O ?= ?tkms --dev\n\s+i:CN ?= ?tkms development CA", out, re.M),
          "the leaf is CN=localhost issued by the development CA", out)
    check(re.search(r"^ 1 s:CN ?= ?tkms development CA", out, re.M), "the chain carries the CA", out)
    check("Protocol  : TLSv1.2" in out and "Compression: NONE" in out, "TLS 1.2, compression NONE", out)
    check(re.search(r"Cipher is ECDHE-RSA-(AES\d+-GCM|CHACHA20-POLY1305)", out), "an ECDHE AEAD suite", out)
    for version in ("-tls1", "-tls1_1"):
        code, out = s_client(port, version, "-cipher", "DEFAULT@SECLEVEL=0", cafile=ca)
        check(code != 0 and "Cipher is (NONE)" in out, "s_client %s is refused" % version, out)
    code, out = s_client(port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA", cafile=ca)
    check(code != 0 and "Cipher is (NONE)" in out, "CBC-only suites are refused", out)
    # Renegotiation: "R" on s_client's open stdin.
    out_path = os.path.join(work, "renegotiation.out")
    with open(out_path, "w") as out_file:
        p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
                              "-CAfile", ca, "-tls1_2"], stdin=subprocess.PIPE, stdout=out_file,
                             stderr=subprocess.STDOUT)
    try:
        check(eventually(lambda: "Verify return code: 0 (ok)" in read(out_path)), "s_client connected", read(out_path))
        p.stdin.write(b"R\n")
        p.stdin.flush()
        check(eventually(lambda: "RENEGOTIATING" in read(out_path)), "s_client asked to renegotiate", read(out_path))
        check(eventually(lambda: "no renegotiation" in read(out_path)), "renegotiation is refused", read(out_path))
    finally:
        p.kill()
        p.wait()

    # Python's ssl: host name checked, the request answered.
    ctx = client_context(ca)
    status, ctype, body = https(port, ctx, "POST", TICKET_PATH, read(os.path.join(
        SOURCE_DIR, "tests/vectors/mikey/request_init_psk.b64")).encode(), {"Content-Type": "application/mikey"})
    check(status == 200 and ctype == "application/mikey" and
          mikey_decode(body.decode())["header"]["data_type_name"] == "ERROR", "Python ssl: a MIKEY answer", body)
    fresh = capture_request_init(work, state, "offer2")
    status, ctype, body = https(port, ctx, "POST", TICKET_PATH, fresh, {"Content-Type": "application/mikey"})
    check(status == 200 and mikey_decode(body.decode())["header"]["data_type_name"] == "REQUEST_RESP",
          "Python ssl: a REQUEST_RESP for a fresh REQUEST_INIT", body)
    # ... and refuses a server name the certificate does not carry.
    try:
        with socket.create_connection(("127.0.0.1", port), 10) as raw:
            with ctx.wrap_socket(raw, server_hostname="kms.example.org"):
                pass
        fail("Python ssl accepted the certificate for kms.example.org")
    except ssl.SSLCertVerificationError as e:
        check("Hostname mismatch" in str(e) or "doesn't match" in str(e), "host name mismatch detected", str(e))

    # Plain HTTP to the TLS port: closed, no HTTP answer; tkmsd unharmed.
    with socket.create_connection(("127.0.0.1", port), 10) as raw:
        raw.sendall(b"POST " + TICKET_PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                    b"application/mikey\r\nContent-Length: 4\r\n\r\nAAAA")
        raw.settimeout(15)
        got = b""
        try:
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
    check(not got.startswith(b"HTTP/"), "no HTTP answer to plain HTTP on the TLS port", repr(got))
    check(eventually(lambda: "event=tls_refused listener=ua" in d.logtext()), "tkmsd logs tls_refused", d.logtext())
    check(d.alive(), "tkmsd still runs after plain HTTP on the TLS port", d.logtext())
    status, _, body = curl_post(port, ca, os.path.join(SOURCE_DIR, "tests/vectors/mikey/request_init_psk.b64"))
    check(status == 200, "a valid HTTPS request after that still works", body)

    d.stop()
    log = d.logtext()
    for secret in (read(os.path.join(state, "token.pin")).strip(), read(os.path.join(state, "ue", "alice.psk")).strip()):
        check(secret not in log, "no PIN or PSK in tkmsd's log")

    # pkcs11-tool: the TLS key is a token object that cannot leave it.
    pin = read(os.path.join(state, "token.pin")).strip()
    env = dict(clean_env(), SOFTHSM2_CONF=os.path.join(state, "softhsm2.conf"))
    code, listing = run_with_pin([PKCS11_TOOL, "--module", MODULE, "--token-label", "tkms", "--login",
                                  "--list-objects"], pin, env)
    check(code == 0 and pin not in listing, "pkcs11-tool --list-objects exits 0", listing)
    for label in ("tkms-tls-server", "tkms-tls-dev-ca"):
        private = [o for o in parse_objects(listing) if o["label"] == label and o["class"] == "Private Key"]
        check(len(private) == 1, "pkcs11-tool lists the private key %s" % label, listing)
        check(private[0]["usage"] == ["sign"], "%s can only sign (%s)" % (label, private[0]["usage"]), listing)
        access = private[0]["access"]
        for flag in ("sensitive", "always sensitive", "never extractable"):
            check(flag in access, "%s is %s (%s)" % (label, flag, access), listing)
        check("extractable" not in access, "%s is not extractable" % label, listing)


def admin_setup(work):
    """The --dev token, an operator CA and client certificate, a pinned
    self-made certificate, another CA's certificate; a config for them."""
    state = dev_token(work)
    operator_ca = make_ca(work, "operator-ca", "tkms interop operator CA")
    operator = issue_client(work, "operator", "/CN=operator one/O=tkms interop", operator_ca)
    pinned = self_signed_client(work, "pinned", "/CN=pinned operator/O=tkms interop")
    stranger_ca = make_ca(work, "stranger-ca", "some other CA")
    stranger = issue_client(work, "stranger", "/CN=stranger/O=elsewhere", stranger_ca)
    tls = {"certificate_chain_file": os.path.join(state, "tls-chain.pem"),
           "admin_client_ca_file": operator_ca[0], "admin_client_certificate_files": [pinned[0]]}
    listen = {"ua": "127.0.0.1:0", "ua_tls": "127.0.0.1:0", "admin": "127.0.0.1:0"}
    return state, operator, pinned, stranger, listen, tls


def handshake_refused(port, ctx):
    try:
        with socket.create_connection(("127.0.0.1", port), 10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.2: the server decides during the handshake; read to be sure.
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                data = s.recv(100)
                return not data.startswith(b"HTTP/1.1 200")
    except (ssl.SSLError, ConnectionError, OSError):
        return True


def case_admin_mtls(work):
    state, operator, pinned, stranger, listen, tls = admin_setup(work)
    cfg = config_file(work, state, "admin", listen, tls)
    d = Tkmsd(work, "admin", ["--config", cfg])
    check(re.search(r"event=started mode=config .*admin_tls=true", d.logtext()), "started with admin_tls=true",
          d.logtext())
    admin = d.ports["admin_port"]
    ca = os.path.join(state, "dev-ca.pem")
    op_ctx = client_context(ca, *operator)

    status, ctype, body = https(admin, op_ctx, "GET", "/healthz")
    check(status == 200, "operator certificate: GET /healthz 200 (%d)" % status, body.decode(errors="replace"))
    status, ctype, body = https(admin, op_ctx, "GET", "/metrics")
    check(status == 200 and b"tkms_connection_events_total" in body, "operator certificate: GET /metrics 200")
    before = metric(body.decode(), "tkms_connection_events_total", {"listener": "admin", "event": "tls_handshake_failed"})
    status, _, _ = https(admin, client_context(ca, *pinned), "GET", "/healthz")
    check(status == 200, "pinned self-made certificate: GET /healthz 200 (%d)" % status)

    check(not handshake_refused(admin, op_ctx), "the refusal probe sees an accepted operator (the control)")
    check(handshake_refused(admin, client_context(ca)), "no client certificate: refused")
    check(handshake_refused(admin, client_context(ca, *stranger)), "another CA's certificate: refused")
    # Plain HTTP on the mutual-TLS admin port: no answer.
    with socket.create_connection(("127.0.0.1", admin), 10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw.settimeout(15)
        try:
            got = raw.recv(100)
        except ConnectionResetError:
            got = b""
        check(not got.startswith(b"HTTP/"), "plain HTTP on the admin port: no answer", repr(got))
    # curl, an independent client, likewise.
    p = run(["curl", "-sS", "--max-time", "10", "--cacert", ca, "https://localhost:%d/healthz" % admin], expect=None)
    check(p.returncode != 0, "curl without a client certificate: refused", p.stdout + p.stderr)
    p = run(["curl", "-sS", "--max-time", "10", "--cacert", ca, "--cert", operator[0], "--key", operator[1],
             "https://localhost:%d/readyz" % admin], expect=None)
    check(p.returncode == 0 and '"ready":true' in p.stdout.replace(" ", ""), "curl with the operator certificate: "
          "/readyz", p.stdout + p.stderr)

    def failures():
        _, _, body = https(admin, op_ctx, "GET", "/metrics")
        return metric(body.decode(), "tkms_connection_events_total",
                      {"listener": "admin", "event": "tls_handshake_failed"})
    check(eventually(lambda: failures() >= before + 3), "tls_handshake_failed{listener=admin} grew by 3 or more "
          "(%s -> %s)" % (before, failures()))
    check("event=tls_refused listener=admin" in d.logtext(), "tkmsd logs the refused handshakes", d.logtext())
    # The Ua HTTPS listener does not ask for client certificates.
    status, _, _ = https(d.ports["ua_tls_port"], client_context(ca), "POST", TICKET_PATH,
                         read(os.path.join(SOURCE_DIR, "tests/vectors/mikey/request_init_psk.b64")).encode(),
                         {"Content-Type": "application/mikey"})
    check(status == 200, "the Ua HTTPS listener serves without a client certificate")
    d.stop()


def case_rotation(work):
    state = dev_token(work)
    # The new certificate for the same token key, made before tkmsd runs.
    rotation_ca = make_ca(work, "rotation-ca", "tkms interop rotation CA")
    new_chain = server_certificate_for_token_key(work, state, "rotated", rotation_ca)
    # A chain for another key (refused: the leaf does not carry the token key).
    other_key = os.path.join(work, "other.key")
    other = os.path.join(work, "other.pem")
    run(["openssl", "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", other_key, "-subj",
         "/CN=localhost", "-days", "30", "-out", other])

    chain_file = os.path.join(work, "kms-chain.pem")
    write(chain_file, read(os.path.join(state, "tls-chain.pem")))
    cfg = config_file(work, state, "rotation", {"ua": "127.0.0.1:0", "ua_tls": "127.0.0.1:0", "admin": "127.0.0.1:0"},
                      {"certificate_chain_file": chain_file})
    d = Tkmsd(work, "rotation", ["--config", cfg])
    port = d.ports["ua_tls_port"]
    dev_ca = os.path.join(state, "dev-ca.pem")
    body = read(os.path.join(SOURCE_DIR, "tests/vectors/mikey/request_init_psk.b64")).encode()
    headers = {"Content-Type": "application/mikey"}

    kept = http.client.HTTPSConnection("localhost", port, context=client_context(dev_ca), timeout=20)
    kept.request("POST", TICKET_PATH, body=body, headers=headers)
    r = kept.getresponse()
    check(r.status == 200 and r.getheader("Connection", "").lower() != "close", "first request on the kept connection")
    r.read()
    check("tkms development CA" in issuer_of_peer(kept.sock), "before: issued by the development CA")
    old_socket = kept.sock

    write(chain_file, read(new_chain))
    d.proc.send_signal(signal.SIGHUP)
    check(eventually(lambda: "event=tls_reloaded" in d.logtext()), "SIGHUP: tls_reloaded", d.logtext())

    kept.request("POST", TICKET_PATH, body=body, headers=headers)
    r = kept.getresponse()
    check(r.status == 200 and kept.sock is old_socket, "the kept-alive connection still works after the rotation")
    r.read()
    kept.close()
    check(handshake_refused(port, client_context(dev_ca)), "a new connection no longer verifies with the dev CA")
    new_ctx = client_context(rotation_ca[0])
    c = http.client.HTTPSConnection("localhost", port, context=new_ctx, timeout=20)
    c.request("POST", TICKET_PATH, body=body, headers=headers)
    check(c.getresponse().status == 200, "a new connection with the new CA works")
    check("tkms interop rotation CA" in issuer_of_peer(c.sock), "a new connection sees the new issuer",
          issuer_of_peer(c.sock))
    c.close()
    code, out = s_client(port, cafile=rotation_ca[0])
    check(code == 0 and "Verify return code: 0 (ok)" in out and "tkms interop rotation CA" in out,
          "s_client verifies the new chain", out)

    # Broken chains on the next SIGHUPs: refused, the running certificate kept.
    for broken, why in ((read(other), "the server key does not match the certificate CN=localhost"),
                        ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
                         "tls.certificate_chain_file")):
        refusals = d.logtext().count("event=tls_reload_refused")
        write(chain_file, broken)
        d.proc.send_signal(signal.SIGHUP)
        check(eventually(lambda: d.logtext().count("event=tls_reload_refused") == refusals + 1),
              "SIGHUP with a broken chain: tls_reload_refused", d.logtext())
        line = [l for l in d.logtext().splitlines() if "event=tls_reload_refused" in l][-1]
        check(why in line and 'kept="the running certificate"' in line, "the refusal says why (%s)" % why, line)
        c = http.client.HTTPSConnection("localhost", port, context=new_ctx, timeout=20)
        c.request("POST", TICKET_PATH, body=body, headers=headers)
        check(c.getresponse().status == 200 and "tkms interop rotation CA" in issuer_of_peer(c.sock),
              "the running (rotated) certificate is kept")
        c.close()
    check(d.alive(), "tkmsd still runs", d.logtext())
    d.stop()


def case_bundle(work):
    # The appliance token: anchor pinned, ticket key, users, TLS key (docs/bundles.md, docs/tls.md).
    ca = make_ca(work, "provisioning-ca", "tkms interop provisioning CA")
    app = os.path.join(work, "appliance")
    ks = ["--state-dir", app, "--pin-file", os.path.join(app, "token.pin")]
    run([TKMSCTL, "token", "init", "--state-dir", app, "--label", "tkms", "--generate-pins", "--provisioning-anchor",
         ca[0]])
    run([TKMSCTL, "key", "rotate", *ks, "--type", "hmac-sha256"])
    run([TKMSCTL, "user", "add", *ks, "--id", "sip:carol@example.org", "--psk-out", os.path.join(work, "carol.psk")])
    run([TKMSCTL, "tls", "key", "create", *ks])
    users = run([TKMSCTL, "user", "list", *ks]).stdout
    carol = re.search(r"^psk:([0-9a-f]+)  sip:carol@example.org$", users, re.M).group(1)
    tls_ca = make_ca(work, "tls-ca", "tkms interop TLS CA")
    chain = server_certificate_for_token_key(work, app, "kms-tls", tls_ca)
    # The authority: a signer key in its own token, a certificate from the CA.
    auth = os.path.join(work, "authority")
    run([TKMSCTL, "token", "init", "--state-dir", auth, "--label", "authority", "--generate-pins"])
    run([TKMSCTL, "key", "generate", "--state-dir", auth, "--pin-file", os.path.join(auth, "token.pin"), "--token",
         "authority", "--type", "ec-p256", "--label", "bundle-signer"])
    key_uri = "pkcs11:token=authority;object=bundle-signer?pin-source=file:" + os.path.join(auth, "token.pin")
    signer_pub = os.path.join(work, "signer.pub.pem")
    run([TKMSCTL, "bundle", "pubkey", "--state-dir", auth, "--key", key_uri, "--out", signer_pub])
    signer_ext = os.path.join(work, "signer.ext")
    write(signer_ext, "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
          "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
    signer = os.path.join(work, "signer.pem")
    run(["openssl", "x509", "-new", "-subj", "/CN=tkms interop bundle signer", "-force_pubkey", signer_pub, "-CA",
         ca[0], "-CAkey", ca[1], "-days", "30", "-extfile", signer_ext, "-out", signer])

    def sign(version):
        cfg = os.path.join(work, "config%d.json" % version)
        write(cfg, json.dumps({"version": version, "kms_identity": "kms.example.org", "token_users": False,
                               "users": [{"identities": ["sip:carol@example.org"], "psk_id": carol}]}))
        out = os.path.join(work, "config%d.bundle" % version)
        run([TKMSCTL, "bundle", "sign", "--state-dir", auth, "--key", key_uri, "--cert", signer, "--in", cfg,
             "--out", out])
        return out

    v1, v2 = sign(1), sign(2)
    bundle = os.path.join(work, "bundle.json")
    write(bundle, read(v1))
    operator_ca = make_ca(work, "operator-ca", "tkms interop operator CA")
    operator = issue_client(work, "operator", "/CN=operator one/O=tkms interop", operator_ca)
    local = os.path.join(work, "local.json")
    write(local, json.dumps({
        "listen": {"ua": "127.0.0.1:0", "ua_tls": "127.0.0.1:0", "admin": "127.0.0.1:0"},
        "tls": {"certificate_chain_file": chain, "admin_client_ca_file": operator_ca[0]},
        "token": {"token": "tkms", "pin_file": os.path.join(app, "token.pin"),
                  "softhsm2_conf": os.path.join(app, "softhsm2.conf")}}))
    audit = os.path.join(work, "audit.log")
    d = Tkmsd(work, "bundle", ["--config", local, "--bundle", bundle, "--audit-log", audit])
    check(re.search(r"event=started .*bundle_version=1 .*admin_tls=true", d.logtext()), "started from bundle 1 with "
          "the mutual-TLS admin listener", d.logtext())
    admin = d.ports["admin_port"]

    # Without a client certificate: no POST reaches the applier.
    check(handshake_refused(admin, client_context(tls_ca[0])), "POST without a client certificate: refused")
    lines_before = read(audit).splitlines()

    status, ctype, body = https(admin, client_context(tls_ca[0], *operator), "POST", "/admin/bundle", read(v2).encode())
    answer = json.loads(body)
    check(status == 200 and answer["verdict"] == "accepted" and answer["version_in_force"] == 2,
          "the operator's POST /admin/bundle is accepted", body.decode())
    lines = read(audit).splitlines()
    check(len(lines) == len(lines_before) + 1, "one audit line for the POST", "\n".join(lines))
    record = json.loads(lines[-1])
    subject = openssl_subject(operator[0])
    fingerprint = hashlib.sha256(certificate_der(operator[0])).hexdigest()
    check(record["source"] == "admin" and record["verdict"] == "accepted", "the audit line: source admin, accepted",
          lines[-1])
    check(record.get("peer", "").startswith("127.0.0.1"), "the audit line names the peer", lines[-1])
    check("CN=operator one" in record.get("operator_certificate", "") and
          "O=tkms interop" in record.get("operator_certificate", ""),
          "operator_certificate is the operator's subject (openssl: %s)" % subject, lines[-1])
    check(record.get("operator_certificate_sha256", "").lower() == fingerprint,
          "operator_certificate_sha256 is the SHA-256 of the operator's certificate (%s)" % fingerprint, lines[-1])
    # A refused post is audited with the operator too.
    status, _, body = https(admin, client_context(tls_ca[0], *operator), "POST", "/admin/bundle", read(v1).encode())
    check(status == 409, "an older bundle: 409", body.decode())
    record = json.loads(read(audit).splitlines()[-1])
    check(record["verdict"] == "refused" and record.get("operator_certificate_sha256", "").lower() == fingerprint,
          "the refusal is audited with the operator's certificate", json.dumps(record))
    print("audit line: " + read(audit).splitlines()[-2])
    d.stop()


def case_refusals(work):
    state = dev_token(work)
    chain = os.path.join(state, "tls-chain.pem")
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    cases = [
        ("ua_any", {"ua": "0.0.0.0:%d" % free, "admin": "127.0.0.1:0"}, {}, "listen.ua"),
        ("admin_any", {"ua": "127.0.0.1:0", "ua_tls": "127.0.0.1:0", "admin": "0.0.0.0:%d" % free},
         {"certificate_chain_file": chain}, "listen.admin"),
    ]
    for name, listen, tls, field in cases:
        cfg = config_file(work, state, name, listen, tls)
        ready = os.path.join(work, name + ".ready")
        p = run([TKMSD, "--allow-root", "--config", cfg, "--ready-file", ready], expect=None, timeout=60, cwd=work)
        check(p.returncode != 0, "%s: tkmsd exits non-zero (%d)" % (name, p.returncode), p.stdout + p.stderr)
        check(field in p.stderr, "%s: the refusal names %s" % (name, field), p.stderr)
        check(not os.path.exists(ready), "%s: no ready file" % name)
    # The rules apply again after the command line's overrides.
    cfg = config_file(work, state, "override", {"ua": "127.0.0.1:0", "admin": "127.0.0.1:0"}, {})
    p = run([TKMSD, "--allow-root", "--config", cfg, "--admin-listen", "0.0.0.0:%d" % free], expect=None, timeout=60, cwd=work)
    check(p.returncode != 0 and "listen.admin" in p.stderr, "--admin-listen 0.0.0.0 without client certificates: "
          "refused naming listen.admin", p.stderr)
    p = run([TKMSD, "--allow-root", "--config", cfg, "--listen", "0.0.0.0:%d" % free], expect=None, timeout=60, cwd=work)
    check(p.returncode != 0 and "listen.ua" in p.stderr, "--listen 0.0.0.0: refused naming listen.ua", p.stderr)
    # With consent, plain Ua on 0.0.0.0 starts (the control).
    cfg = config_file(work, state, "ua_any_consent", {"ua": "0.0.0.0:0", "admin": "127.0.0.1:0",
                                                      "plaintext_ua_on_non_loopback": True}, {})
    d = Tkmsd(work, "consent", ["--config", cfg])
    d.stop()


CASES = {"dev": case_dev, "admin_mtls": case_admin_mtls, "rotation": case_rotation, "bundle": case_bundle,
         "refusals": case_refusals}


def main():
    if CASE not in CASES:
        sys.exit("unknown case %r (one of %s)" % (CASE, ", ".join(CASES)))
    with tempfile.TemporaryDirectory(prefix="tkms-tls-interop-%s-" % CASE) as work:
        try:
            CASES[CASE](work)
        finally:
            # Nothing of ours is left running (a failed check may leave a tkmsd).
            for d in STARTED:
                if d.proc.poll() is None:
                    d.proc.kill()
                    d.proc.wait()
    print("tls_interop_test %s: %d checks passed" % (CASE, checks))


if __name__ == "__main__":
    main()
