"""Two (or three) KMS domains on loopback that resolve each other's tickets
over Zk (docs/zk.md), for tests/integration/zk_test.py and kms_bench.py.

    with TwoDomains(programs_in("build/debug"), work_dir) as d:
        d.a, d.b                      # Domain: kms.a.example.org, kms.b.example.org
        d.a.ue_call_args(...)         # tkms-ue call across them: d.call_args()
        d.b.bundle(relations=[])      # re-sign and POST a newer bundle
        d.a.kill(); d.a.start()       # KMS_I gone and back, same Zk port
        c = d.add_domain("c", ca=d.other_ca)

Everything lives in work_dir: a demo CA made with the openssl CLI; per domain
a SoftHSM2 token (ticket key, users' PSKs, the RSA TLS key; tkmsctl) whose TLS
certificate the CA issues from a token-signed CSR (DNS names: the KMS host and
localhost, serverAuth + clientAuth: the same certificate serves the Ua HTTPS
listener and Zk in both directions), an authority token with the domain's
bundle signer, and the signed bundle (users, kms_certificate_chain,
trust_relations to the other domains, network_functions). tkmsd runs with
--config (listeners on 127.0.0.1; the Zk port is chosen up front, as the
peers' relations name it) and --bundle. PINs stay in mode-0600 files
(--pin-file, pin-source=file:), PSKs in the 0600 files tkmsctl writes; no
secret is ever on a command line. Standard library only.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import namedtuple

from tkmsd_harness import stop, wait_ready

Programs = namedtuple("Programs", "tkmsd tkmsctl ue bench")
SERVER_EXT = ("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage = serverAuth,clientAuth\nsubjectKeyIdentifier = hash\n"
              "authorityKeyIdentifier = keyid\n")
CLIENT_EXT = ("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
              "extendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
SIGNER_EXT = ("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
              "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
# Short Zk timeouts, so that an unreachable peer is answered quickly in tests.
ZK_TIMEOUTS = {"connect_timeout_ms": 1000, "response_timeout_ms": 3000, "retry_after_failure_ms": 500}


def programs_in(build):
    """The programs of a build directory, as absolute paths (the domains run in their own directories)."""
    build = os.path.abspath(build)
    return Programs(os.path.join(build, "firmware/tkmsd/tkmsd"), os.path.join(build, "tools/tkmsctl/tkmsctl"),
                    os.path.join(build, "tools/ue_cli/tkms-ue"), os.path.join(build, "tools/bench/tkms-bench"))


def clean_env():
    env = dict(os.environ)
    for name in ("TKMS_PIN", "TKMS_SO_PIN", "SOFTHSM2_CONF"):
        env.pop(name, None)
    return env


def run(argv, **kw):
    """Runs argv; stdout on success, RuntimeError with the output otherwise."""
    p = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=120, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (" ".join(argv[:4]), p.returncode, p.stdout, p.stderr))
    return p.stdout


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ca:
    """An EC P-256 CA made with openssl in `directory`: pem (path), key (0600)."""

    def __init__(self, directory, name, cn):
        self.dir = directory
        self.pem, self.key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
        cnf = os.path.join(directory, name + ".cnf")
        write(cnf, "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n[dn]\nCN = %s\n"
                   "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
                   "subjectKeyIdentifier = hash\n" % cn)
        run(["openssl", "req", "-x509", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.pem, "-days", "30"])
        os.chmod(self.key, 0o600)

    def text(self):
        return read(self.pem)

    def issue(self, name, ext, csr=None, pubkey=None, subject=None):
        """A certificate (path) for a CSR (its extensions copied, e.g. the
        token-signed CSR's SANs) or for a public key file."""
        ext_file, cert = os.path.join(self.dir, name + ".ext"), os.path.join(self.dir, name + ".pem")
        write(ext_file, ext)
        if csr:
            argv = ["x509", "-req", "-in", csr, "-copy_extensions", "copy"]
        else:
            argv = ["x509", "-new", "-subj", subject, "-force_pubkey", pubkey]
        run(["openssl", *argv, "-CA", self.pem, "-CAkey", self.key, "-days", "30", "-sha256", "-extfile", ext_file,
             "-out", cert])
        return cert

    def software_client(self, name, cn, dns=None):
        """An EC key (0600) and a clientAuth certificate for it: (cert, key).
        `dns` adds a subjectAltName."""
        key, csr = os.path.join(self.dir, name + ".key"), os.path.join(self.dir, name + ".csr")
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
             "-subj", "/CN=" + cn, "-out", csr])
        os.chmod(key, 0o600)
        ext = CLIENT_EXT + ("subjectAltName = DNS:%s\n" % dns if dns else "")
        return self.issue(name, ext, csr=csr), key


class Domain:
    """One KMS domain: name ("a"), host (kms.a.example.org, also its
    kms_identity), its token and authority in dir, its users {short name:
    (identity, psk file)}, and the running tkmsd (start/kill/stop)."""

    def __init__(self, programs, work, name, ca, users, zk=True):
        self.p, self.name, self.ca, self.zk = programs, name, ca, zk
        self.host = "kms.%s.example.org" % name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.zk_port = free_port()
        self.proc = None
        self.ports = {}
        self.extra_env = {}  # added to tkmsd's environment (e.g. LD_PRELOAD of a test shim)
        self.version = 0
        self.relations, self.functions = [], []
        self.policy_classes = {"default": {}}  # the bundle's policy_classes
        self.user_classes = {}  # user -> class name
        app = os.path.join(self.dir, "appliance")
        self.pin = os.path.join(app, "token.pin")
        ks = ["--state-dir", app, "--pin-file", self.pin]
        t = programs.tkmsctl
        run([t, "token", "init", "--state-dir", app, "--label", "tkms", "--generate-pins", "--provisioning-anchor",
             ca.pem])
        run([t, "key", "rotate", *ks, "--type", "hmac-sha256"])
        self.users = {}
        for user in users:
            identity, psk = "sip:%s@%s.example.org" % (user, name), os.path.join(self.dir, user + ".psk")
            run([t, "user", "add", *ks, "--id", identity, "--psk-out", psk])
            self.users[user] = (identity, psk)
        listing = run([t, "user", "list", *ks])
        self.psk_ids = {u: re.search(r"^psk:([0-9a-f]+)  %s$" % re.escape(i), listing, re.M).group(1)
                        for u, (i, _) in self.users.items()}
        # The TLS key in the token, its certificate from the CA (Ua HTTPS and Zk).
        run([t, "tls", "key", "create", *ks])
        csr = os.path.join(self.dir, "kms-tls.csr")
        write(csr, run([t, "tls", "csr", *ks, "--subject", "CN=%s,O=tkms two domains" % self.host, "--dns", self.host,
                        "--dns", "localhost"]))
        self.chain = os.path.join(self.dir, "kms-chain.pem")
        write(self.chain, read(ca.issue("kms-" + name, SERVER_EXT, csr=csr)) + ca.text())
        # The domain's authority: a signer key in its own token, certified by the CA.
        auth = os.path.join(self.dir, "authority")
        run([t, "token", "init", "--state-dir", auth, "--label", "authority", "--generate-pins"])
        run([t, "key", "generate", "--state-dir", auth, "--pin-file", os.path.join(auth, "token.pin"), "--token",
             "authority", "--type", "ec-p256", "--label", "bundle-signer"])
        self.signer_key = "pkcs11:token=authority;object=bundle-signer?pin-source=file:" + os.path.join(auth, "token.pin")
        self.auth = auth
        pub = os.path.join(self.dir, "signer.pub.pem")
        run([t, "bundle", "pubkey", "--state-dir", auth, "--key", self.signer_key, "--out", pub])
        self.signer = ca.issue("signer-" + name, SIGNER_EXT, pubkey=pub, subject="/CN=%s bundle signer" % self.host)
        self.bundle_file = os.path.join(self.dir, "bundle.json")
        self.log = os.path.join(self.dir, "tkmsd.log")

    # --- the provisioned side ------------------------------------------------------

    def relation(self, peer, ca=None, endpoint=None):
        """A trust relation to Domain `peer` (its CA unless `ca`, a Ca)."""
        return {"kms_uri": peer.host, "endpoint": endpoint or "127.0.0.1:%d" % peer.zk_port,
                "ca": (ca or peer.ca).text()}

    def payload(self):
        users = [dict({"identities": [i], "psk_id": self.psk_ids[u]},
                      **({"policy_class": self.user_classes[u]} if u in self.user_classes else {}))
                 for u, (i, _) in self.users.items()]
        config = {"version": self.version, "kms_identity": self.host, "token_users": False, "users": users,
                  "policy_classes": self.policy_classes, "trust_relations": self.relations}
        if self.zk:
            config["kms_certificate_chain"] = read(self.chain)
            config["network_functions"] = self.functions
        return config

    def sign(self, extra=None):
        """The next version of the bundle (payload() with `extra` merged in),
        signed; returns the bundle's path."""
        self.version += 1
        config = dict(self.payload(), **(extra or {}))
        src = os.path.join(self.dir, "config%d.json" % self.version)
        out = os.path.join(self.dir, "config%d.bundle" % self.version)
        write(src, json.dumps(config, indent=2))
        run([self.p.tkmsctl, "bundle", "sign", "--state-dir", self.auth, "--key", self.signer_key, "--cert",
             self.signer, "--in", src, "--out", out])
        return out

    def post_bundle(self, extra=None):
        """Signs the next version and POSTs it to /admin/bundle: (status, answer)."""
        status, body = self.admin("POST", "/admin/bundle", read(self.sign(extra)).encode())
        return status, json.loads(body)

    # --- tkmsd ------------------------------------------------------------------------

    def local_config(self):
        listen = {"ua": "127.0.0.1:0", "ua_tls": "127.0.0.1:0", "admin": "127.0.0.1:0"}
        config = {"listen": listen, "tls": {"certificate_chain_file": self.chain},
                  "token": {"token": "tkms", "pin_file": self.pin,
                            "softhsm2_conf": os.path.join(self.dir, "appliance", "softhsm2.conf")}}
        if self.zk:
            listen["zk"] = "127.0.0.1:%d" % self.zk_port
            config["zk"] = dict(ZK_TIMEOUTS)
        return config

    def start(self, timeout=60):
        """Starts tkmsd (the first time with a freshly signed bundle); returns
        once its ready file is there."""
        if not os.path.exists(self.bundle_file):
            write(self.bundle_file, read(self.sign()))
        local = os.path.join(self.dir, "local.json")
        write(local, json.dumps(self.local_config(), indent=2))
        ready = os.path.join(self.dir, "ready.json")
        if os.path.exists(ready):
            os.unlink(ready)
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([self.p.tkmsd, "--allow-root", "--config", local, "--bundle", self.bundle_file,
                                          "--ready-file", ready], stdout=log, stderr=subprocess.STDOUT,
                                         env=dict(clean_env(), **self.extra_env), cwd=self.dir)
        try:
            self.ports = wait_ready(ready, self.proc, timeout)
        except RuntimeError as e:
            self.kill()
            raise RuntimeError("tkmsd %s: %s\n%s" % (self.host, e, read(self.log)))
        if self.zk and self.ports.get("zk_port") != self.zk_port:
            raise RuntimeError("tkmsd %s: ready file %s has no zk_port %d" % (self.host, self.ports, self.zk_port))
        return self

    def kill(self):
        """SIGKILL: the KMS is gone at once, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        """SIGTERM; True if tkmsd exited 0 within 20 s."""
        return self.proc is None or (stop(self.proc) and self.proc.returncode == 0)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def logtext(self):
        return read(self.log)

    # --- clients ----------------------------------------------------------------------

    def https(self):
        """The Ua HTTPS URL (the certificate names localhost too)."""
        return "https://localhost:%d" % self.ports["ua_tls_port"]

    def zk_url(self):
        return "https://localhost:%d" % self.zk_port

    def admin(self, method, path, body=None, timeout=30):
        """(status, body text) of a request to the admin listener."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.ports["admin_port"], path), data=body,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        return self.admin("GET", "/metrics")[1]

    def metric(self, name, **labels):
        """The sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            m = re.match(r"%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
            if m and all('%s="%s"' % kv in (m.group(1) or "") for kv in labels.items()):
                total += float(m.group(2))
        return total


class TwoDomains:
    """Domains a and b (alice at a, bob at b), each with a trust relation to
    the other, started; other_ca for a domain outside. Stops everything on exit."""

    def __init__(self, programs, work, zk=True, extra_env=None):
        """extra_env(domain name) -> dict: added to that tkmsd's environment."""
        self.p, self.work, self.zk = programs, work, zk
        self.extra_env = extra_env or (lambda name: {})
        self.ca = Ca(work, "demo-ca", "tkms demo Zk CA")
        self.other_ca = Ca(work, "other-ca", "some other organisation's CA")
        self.cacerts = os.path.join(work, "cas.pem")  # both CAs: what a UE trusts for --cacert
        write(self.cacerts, self.ca.text() + self.other_ca.text())
        self.domains = []
        self.a = self.add_domain("a", ["alice"], start=False)
        self.b = self.add_domain("b", ["bob", "bert"], start=False)
        self.a.relations = [self.a.relation(self.b)]
        self.b.relations = [self.b.relation(self.a)]
        try:
            self.a.start()
            self.b.start()
        except Exception:
            self.close()
            raise

    def add_domain(self, name, users, ca=None, start=True):
        d = Domain(self.p, self.work, name, ca or self.ca, users, self.zk)
        d.extra_env = dict(self.extra_env(name))
        self.domains.append(d)
        return d.start() if start else d

    def call_args(self, initiator, responder, extra=()):
        """tkms-ue call from `initiator` to `responder` ((Domain, user) each),
        each at its own KMS over HTTPS."""
        (ki, ui), (kr, ur) = initiator, responder
        return [self.p.ue, "call", "--kms", ki.https(), "--kms-identity", ki.host,
                "--responder-kms", kr.https(), "--responder-kms-identity", kr.host, "--cacert", self.cacerts,
                "--initiator", ki.users[ui][0], "--initiator-psk", ki.users[ui][1],
                "--responder", kr.users[ur][0], "--responder-psk", kr.users[ur][1], *extra]

    def call(self, initiator, responder, extra=(), timeout=60):
        """Runs tkms-ue call: (exit status, output, seconds)."""
        t0 = time.monotonic()
        p = subprocess.run(self.call_args(initiator, responder, extra), capture_output=True, text=True,
                           env=clean_env(), timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.monotonic() - t0

    def close(self):
        for d in self.domains:
            d.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
