#!/usr/bin/env python3
"""The Debian packages of `make deb`, built and installed into throw-away
places, and tkmsd started from the installed layout as the tkms user.

Usage: deb_test.py SOURCE_DIR BINARY_DIR

BINARY_DIR is a configured and built tree (the packaged programs and the
target tkms_package_files built). Steps, each timed:

  1. cpack -G DEB in BINARY_DIR into a temporary directory: exactly the four
     packages tkmsd, tkmsctl, tkms-ue, tkms-tools, shipping nothing from
     tests/ (no PKCS#11 fault module) and only the expected programs;
  2. lintian: no error or warning tag (the justified overrides in
     packaging/lintian/ apply); the info tags are printed;
  3. dpkg -x into a root: no RPATH/RUNPATH in the programs, man pages
     gzip -9n'd (no name, no time stamp), /etc/tkms/local.json a conffile;
  4. systemd-analyze verify of the unit (ExecStart pointed at the extracted
     binary, man pages from the extracted tree) prints nothing, while the
     same unit with a misspelt directive, a bad value or an unknown system
     call group does print the complaint; systemd-analyze security
     --offline=true --threshold=20 (exposure 2.0 at most, "OK");
  5. the maintainer scripts pass sh -n, then run for real in a private mount
     namespace (unshare -m) where /etc, /var/lib and /lib/systemd/system are
     bind-mounted copies, so the machine is not changed: postinst configure
     twice (the tkms system user, /var/lib/tkms 0750 tkms:tkms, the unit
     enabled; the second run changes nothing), the key ceremony as tkms
     (runuser; a demo provisioning CA and an authority token made with
     openssl and tkmsctl, as in docs/bundles.md), then tkmsd with the unit's
     own ExecStart as tkms (setpriv, no new privileges, no groups, umask
     0077) on free loopback ports, /readyz, a tkms-ue call between the two
     bundle users, SIGHUP (the unit's ExecReload), SIGTERM; then, with a
     stand-in systemd (/run/systemd/system on a tmpfs, logging systemctl and
     deb-systemd-invoke), install starts the unit, upgrade restarts it and
     remove stops it; after postrm purge /var/lib/tkms (the token) and the
     tkms user are still there;
  6. the packaged unit itself under a real systemd: `systemd --system` as
     PID 1 of a new pid+mount namespace with the state of step 5, a unit
     directory holding only tkmsd.service (and empty stand-ins for the
     targets it is ordered after) and a drop-in that changes only the
     binary's path, the ports, a ready file and the log file (no journald);
     tkmsd must run as tkms with no capabilities, no_new_privs and a seccomp
     filter, / read-only and /var/lib/tkms writable, serve a tkms-ue call,
     reload on `systemctl reload` and stop with status 0 on `systemctl
     stop`. The namespaces are also cgroup (rooted at a per-run sub-cgroup
     of this process's own, removed afterwards), UTS and IPC ones; systemd
     gets a /sys/fs/cgroup tmpfs of its own and a read-only /proc/sys, so
     nothing it does as PID 1 reaches the machine. Where systemd cannot run
     as PID 1 of a namespace at all, this step says NOT RUN.
Afterwards the host has no tkms user and no /var/lib/tkms that it did not
have before. Exits 1 on the first failed check.
"""
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "bench"))
from doc_walkthrough import Checks  # noqa: E402
from tkmsd_harness import stop, wait_ready  # noqa: E402

PACKAGES = {
    "tkmsd": ["usr/bin/tkmsd"],
    "tkmsctl": ["usr/bin/tkmsctl"],
    "tkms-ue": ["usr/bin/tkms-ue"],
    "tkms-tools": ["usr/bin/tkms-bench", "usr/bin/tkms-echo"],
}
MAN_PAGES = ["usr/share/man/man8/tkmsd.8.gz", "usr/share/man/man8/tkmsctl.8.gz",
             "usr/share/man/man1/tkms-ue.1.gz", "usr/share/man/man1/tkms-bench.1.gz",
             "usr/share/man/man1/tkms-echo.1.gz"]
UNIT = "lib/systemd/system/tkmsd.service"
ENV = dict(os.environ, LC_ALL="C.UTF-8",
           PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")

checks = Checks()
check = checks.check
fail = checks.fail
_t0 = time.time()


def step(what):
    print("[%5.1f s] %s" % (time.time() - _t0, what), flush=True)


def sh(cmd, cwd=None, env=None, ok=True, **kw):
    """Runs cmd (a list), returns CompletedProcess with text stdout/stderr."""
    r = subprocess.run(cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True, **kw)
    if ok and r.returncode != 0:
        fail("%s exits 0 (it exited %d)" % (" ".join(cmd), r.returncode), r.stdout + r.stderr)
    return r


# ---- outside the namespace ---------------------------------------------------

def build_packages(binary_dir, out):
    step("cpack -G DEB")
    r = sh(["cpack", "-G", "DEB", "-B", out, "--config", os.path.join(binary_dir, "CPackConfig.cmake")],
           cwd=binary_dir)
    debs = {}
    for name in os.listdir(out):
        m = re.fullmatch(r"([a-z0-9-]+)_([0-9.]+-[0-9]+)_([a-z0-9]+)\.deb", name)
        if m:
            debs[m.group(1)] = os.path.join(out, name)
    check(sorted(debs) == sorted(PACKAGES), "cpack makes exactly %s (got %s)" % (sorted(PACKAGES), sorted(debs)),
          r.stdout + r.stderr)
    return debs


def check_contents(debs):
    for pkg, deb in debs.items():
        listing = sh(["dpkg-deb", "-c", deb]).stdout
        files = [line.split()[-1].lstrip("./") for line in listing.splitlines() if not line.startswith("d")]
        programs = sorted(f for f in files if f.startswith("usr/bin/"))
        check(programs == sorted(PACKAGES[pkg]), "%s ships the programs %s (got %s)" % (pkg, PACKAGES[pkg], programs))
        for f in files:
            check("test" not in os.path.basename(f) and "fault" not in f and not f.endswith(".so"),
                  "%s ships nothing from tests/ (found %s)" % (pkg, f))
        control = sh(["dpkg-deb", "-f", deb]).stdout
        check(re.search(r"^Depends: .*libc6 .*libstdc\+\+6", control, re.M) is not None,
              "%s depends on the shared libraries it uses (dpkg-shlibdeps)" % pkg, control)
    control = sh(["dpkg-deb", "-f", debs["tkmsd"]]).stdout
    check(re.search(r"^Depends: .*\badduser\b", control, re.M) is not None, "tkmsd depends on adduser", control)
    check(re.search(r"^Depends: .*libmbedtls", control, re.M) is not None, "tkmsd depends on libmbedtls", control)
    control = sh(["dpkg-deb", "-f", debs["tkms-ue"]]).stdout
    check(re.search(r"^Depends: .*libsrtp2", control, re.M) is not None, "tkms-ue depends on libsrtp2", control)


def run_lintian(debs):
    step("lintian")
    r = sh(["lintian", "--display-info", "--allow-root"] + sorted(debs.values()), ok=False)
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIXP]: ", line)]
    bad = [t for t in tags if t[0] in "EW"]
    check(not bad and r.returncode in (0, 1), "lintian reports no error or warning", r.stdout + r.stderr)
    for t in tags:
        print("  lintian " + t)
    return tags


def extract(debs, root):
    step("dpkg -x")
    for deb in debs.values():
        sh(["dpkg", "-x", deb, root])
    for progs in PACKAGES.values():
        for p in progs:
            dyn = sh(["readelf", "-d", os.path.join(root, p)]).stdout
            check("RPATH" not in dyn and "RUNPATH" not in dyn, "%s has no RPATH or RUNPATH" % p, dyn)
    for page in MAN_PAGES:
        path = os.path.join(root, page)
        check(os.path.isfile(path), "the man page %s is installed" % page)
        head = open(path, "rb").read(10)
        check(head[3] & 0x08 == 0 and head[4:8] == b"\0\0\0\0", "%s is gzip -n (no name, no time)" % page)
        check(gzip.open(path).read().startswith(b".TH "), "%s is a troff page" % page)
    conffiles = sh(["dpkg-deb", "-I", debs["tkmsd"], "conffiles"]).stdout.split()
    check(conffiles == ["/etc/tkms/local.json"], "/etc/tkms/local.json is the conffile", " ".join(conffiles))
    json.load(open(os.path.join(root, "etc/tkms/local.json")))


def verify_unit(root, work):
    step("systemd-analyze verify / security")
    unit_text = open(os.path.join(root, UNIT)).read()
    check(re.search(r"^ExecStart=/usr/bin/tkmsd ", unit_text, re.M) is not None, "the unit runs /usr/bin/tkmsd")
    vdir = os.path.join(work, "verify")
    os.makedirs(vdir)
    env = dict(ENV, MANPATH=os.path.join(root, "usr/share/man"))

    def verify(text, name="tkmsd.service"):
        path = os.path.join(vdir, name)
        with open(path, "w") as f:
            f.write(text.replace("ExecStart=/usr/bin/tkmsd", "ExecStart=" + os.path.join(root, "usr/bin/tkmsd")))
        r = sh(["systemd-analyze", "verify", "--man=yes", path], env=env, ok=False)
        return r.returncode, (r.stdout + r.stderr).strip()

    code, out = verify(unit_text)
    check(code == 0 and out == "", "systemd-analyze verify accepts the unit without a word", out)
    broken = [("PrivateTmp=yes", "PrivateTmpp=yes", "Unknown key"),
              ("ProtectSystem=strict", "ProtectSystem=strictly", "strictly"),
              ("SystemCallFilter=@system-service", "SystemCallFilter=@system-servic", "system call"),
              ("Documentation=man:tkmsd(8)", "Documentation=man:tkmsd-missing(8)", "tkmsd-missing")]
    for good, bad, complaint in broken:
        check(good in unit_text, "the unit has %s" % good)
        code, out = verify(unit_text.replace(good, bad), "broken.service")
        check(complaint in out, "systemd-analyze verify notices %s (%s)" % (bad, complaint), out)
    r = sh(["systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager",
            os.path.join(vdir, "tkmsd.service")], env=env, ok=False)
    m = re.search(r"Overall exposure level for tkmsd.service: ([0-9.]+) (\w+)", r.stdout)
    check(r.returncode == 0 and m is not None and m.group(2) in ("OK", "SAFE", "PERFECT"),
          "systemd-analyze security --offline=true rates the unit OK or better", r.stdout + r.stderr)
    print("  systemd-analyze security: exposure %s %s" % (m.group(1), m.group(2)))


def control_scripts(debs, work):
    ctl = os.path.join(work, "control")
    sh(["dpkg-deb", "-e", debs["tkmsd"], ctl])
    for s in ("postinst", "prerm", "postrm"):
        path = os.path.join(ctl, s)
        check(os.access(path, os.X_OK), "%s is executable" % s)
        check(open(path).readline().strip() == "#!/bin/sh", "%s is a POSIX sh script" % s)
        check(re.search(r"^set -e$", open(path).read(), re.M) is not None, "%s runs with set -e" % s)
        sh(["sh", "-n", path])
        if shutil.which("dash"):
            sh(["dash", "-n", path])
    return ctl


# ---- inside the namespace ------------------------------------------------------

def bind(src, dst):
    sh(["mount", "--bind", src, dst])


def as_tkms(cmd):
    return ["runuser", "-u", "tkms", "--"] + cmd


def passwd_entry(name):
    r = sh(["getent", "passwd", name], ok=False)
    return r.stdout.strip()


def inner(work, root, ctl):
    """Runs in a private mount namespace (unshare -m): /etc, /var/lib and
    /lib/systemd/system are copies from here on."""
    step("maintainer scripts and tkmsd in a private mount namespace")
    sh(["mount", "--make-rprivate", "/"])
    etc, varlib, units = (os.path.join(work, d) for d in ("etc", "varlib", "units"))
    sh(["cp", "-a", "/etc", etc])
    os.makedirs(varlib)
    sh(["cp", "-a", "/lib/systemd/system", units])
    # What dpkg unpacks before postinst runs.
    shutil.copytree(os.path.join(root, "etc/tkms"), os.path.join(etc, "tkms"))
    shutil.copy2(os.path.join(root, UNIT), os.path.join(units, "tkmsd.service"))
    bind(etc, "/etc")
    bind(varlib, "/var/lib")
    bind(units, "/lib/systemd/system")
    check(passwd_entry("tkms") == "", "no tkms user before postinst")

    # postinst configure, twice.
    env = dict(ENV, DPKG_MAINTSCRIPT_PACKAGE="tkmsd", DPKG_MAINTSCRIPT_NAME="postinst", DPKG_ROOT="")
    sh([os.path.join(ctl, "postinst"), "configure", ""], env=env)
    entry = passwd_entry("tkms")
    fields = entry.split(":")
    check(len(fields) == 7 and fields[5] == "/var/lib/tkms" and fields[6] == "/usr/sbin/nologin"
          and int(fields[2]) < 1000, "postinst made the tkms system user (home /var/lib/tkms, nologin)", entry)
    uid, gid = int(fields[2]), int(fields[3])
    st = os.stat("/var/lib/tkms")
    check(st.st_uid == uid and st.st_gid == gid and st.st_mode & 0o7777 == 0o750,
          "/var/lib/tkms is 0750 tkms:tkms (%o %d:%d)" % (st.st_mode & 0o7777, st.st_uid, st.st_gid))
    st = os.stat("/etc/tkms")
    check(st.st_uid == 0 and st.st_gid == gid and st.st_mode & 0o7777 == 0o750, "/etc/tkms is 0750 root:tkms")
    check(os.path.islink("/etc/systemd/system/multi-user.target.wants/tkmsd.service"),
          "postinst enabled the unit (multi-user.target.wants)")
    passwd_before = open("/etc/passwd").read()
    sh([os.path.join(ctl, "postinst"), "configure", "0.1.0-1"], env=env)
    check(open("/etc/passwd").read() == passwd_before and passwd_entry("tkms") == entry,
          "a second postinst configure changes nothing")

    ceremony(work, root)
    run_tkmsd(work, root)

    # With systemd running (a tmpfs /run with /run/systemd/system, logging
    # stand-ins for systemctl and deb-systemd-invoke): install starts the
    # unit, upgrade restarts it (prerm upgrade leaves it running), remove
    # stops it; then removal and purge, which keep the token.
    sh(["mount", "-t", "tmpfs", "tmpfs", "/run"])
    os.makedirs("/run/systemd/system")
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs)
    calls = os.path.join(work, "systemd-calls")
    for tool in ("systemctl", "deb-systemd-invoke"):
        with open(os.path.join(stubs, tool), "w") as f:
            f.write('#!/bin/sh\necho "%s $*" >> %s\n' % (tool, calls))
        os.chmod(os.path.join(stubs, tool), 0o755)
    env_sd = dict(env, PATH=stubs + ":" + env["PATH"])
    sequence = (("postinst", ["configure", ""]), ("prerm", ["upgrade", "0.1.0-1"]),
                ("postinst", ["configure", "0.1.0-1"]), ("prerm", ["remove"]), ("postrm", ["remove"]),
                ("postrm", ["purge"]))
    for script, args in sequence:
        sh([os.path.join(ctl, script)] + args, env=dict(env_sd, DPKG_MAINTSCRIPT_NAME=script))
    invoked = [line for line in open(calls).read().splitlines() if line.startswith("deb-systemd-invoke")]
    check(invoked == ["deb-systemd-invoke start tkmsd.service", "deb-systemd-invoke restart tkmsd.service",
                      "deb-systemd-invoke stop tkmsd.service"],
          "install starts, upgrade restarts, remove stops the unit", open(calls).read())
    check(os.path.isdir("/var/lib/tkms/token/tokens") and os.path.isfile("/var/lib/tkms/bundle.json"),
          "postrm purge keeps /var/lib/tkms (token and bundle)")
    check(passwd_entry("tkms") == entry, "postrm purge keeps the tkms user")
    check(not os.path.exists("/etc/systemd/system/multi-user.target.wants/tkmsd.service"),
          "postrm purge removed the unit's enablement")
    return 0


def ceremony(work, root):
    """The key ceremony of docs/operations.md: an authority (CA and signer
    token, as in docs/bundles.md) and the appliance's token made as tkms."""
    step("key ceremony")
    tkmsctl = os.path.join(root, "usr/bin/tkmsctl")
    auth = os.path.join(work, "authority")
    os.makedirs(auth)
    with open(os.path.join(auth, "ca.cnf"), "w") as f:
        f.write("[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n[dn]\n"
                "CN = tkms deb test provisioning CA\n[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
                "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n")
    sh(["openssl", "req", "-x509", "-new", "-config", "ca.cnf", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30"], cwd=auth)
    sh([tkmsctl, "token", "init", "--state-dir", "token", "--label", "authority", "--generate-pins"], cwd=auth)
    sh([tkmsctl, "key", "generate", "--state-dir", "token", "--pin-file", "token/token.pin", "--token", "authority",
        "--type", "ec-p256", "--label", "bundle-signer"], cwd=auth)
    key = "pkcs11:token=authority;object=bundle-signer?pin-source=file:%s/token/token.pin" % auth
    sh([tkmsctl, "bundle", "pubkey", "--state-dir", "token", "--key", key, "--out", "signer.pub.pem"], cwd=auth)
    with open(os.path.join(auth, "signer.ext"), "w") as f:
        f.write("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
    sh(["openssl", "x509", "-new", "-subj", "/CN=tkms deb test bundle signer", "-force_pubkey", "signer.pub.pem",
        "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "30", "-extfile", "signer.ext", "-out", "signer.pem"], cwd=auth)

    # The appliance, as in docs/operations.md: everything the token holds is
    # made as tkms, so the files are tkms's.
    shutil.copy(os.path.join(auth, "ca.pem"), "/etc/tkms/provisioning-ca.pem")
    os.chmod("/etc/tkms/provisioning-ca.pem", 0o644)
    tok = ["--state-dir", "/var/lib/tkms/token"]
    pin = ["--pin-file", "/var/lib/tkms/token/token.pin"]
    sh(as_tkms([tkmsctl, "token", "init"] + tok + ["--label", "tkms", "--generate-pins",
                                                   "--provisioning-anchor", "/etc/tkms/provisioning-ca.pem"]))
    sh(as_tkms([tkmsctl, "key", "rotate"] + tok + pin + ["--type", "hmac-sha256"]))
    os.makedirs("/var/lib/tkms/ue", mode=0o700)
    shutil.chown("/var/lib/tkms/ue", "tkms", "tkms")
    for user in ("carol", "dave"):
        sh(as_tkms([tkmsctl, "user", "add"] + tok + pin + ["--id", "sip:%s@example.org" % user,
                                                           "--psk-out", "/var/lib/tkms/ue/%s.psk" % user]))
    users = sh(as_tkms([tkmsctl, "user", "list"] + tok + pin)).stdout
    ids = dict((m.group(2), m.group(1)) for m in re.finditer(r"^psk:([0-9a-f]+)  sip:(\w+)@example\.org$", users, re.M))
    check(sorted(ids) == ["carol", "dave"], "user list shows carol's and dave's PSK ids", users)
    st = os.stat("/var/lib/tkms/token/token.pin")
    check(st.st_mode & 0o777 == 0o600 and st.st_uid == pwd_uid("tkms"), "the PIN file is 0600 and tkms's")

    config = {"version": 1, "kms_identity": "kms.example.org", "token_users": False,
              "users": [{"identities": ["sip:%s@example.org" % u], "psk_id": ids[u]} for u in ("carol", "dave")]}
    with open(os.path.join(auth, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    sh([tkmsctl, "bundle", "sign", "--state-dir", "token", "--key", key, "--cert", "signer.pem",
        "--in", "config.json", "--out", "config.bundle"], cwd=auth)
    sh(["install", "-o", "tkms", "-g", "tkms", "-m", "0640", os.path.join(auth, "config.bundle"),
        "/var/lib/tkms/bundle.json"])


def pwd_uid(name):
    return int(passwd_entry(name).split(":")[2])


def exec_start(root):
    line = re.search(r"^ExecStart=(.*)$", open(os.path.join(root, UNIT)).read(), re.M).group(1)
    argv = line.split()
    argv[0] = os.path.join(root, argv[0].lstrip("/"))
    return argv


def run_tkmsd(work, root):
    step("tkmsd as tkms, the unit's command line")
    ready = "/var/lib/tkms/ready.json"
    log_path = os.path.join(work, "tkmsd.log")
    cmd = (["setpriv", "--reuid=tkms", "--regid=tkms", "--clear-groups", "--no-new-privs", "--inh-caps=-all",
            "--bounding-set=-all"] + exec_start(root)
           + ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--ready-file", ready])
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=ENV, umask=0o077)
    log_text = lambda: open(log_path).read()  # noqa: E731
    try:
        try:
            r = wait_ready(ready, proc)
        except RuntimeError as e:
            fail("tkmsd serves as tkms (%s)" % e, log_text())
        status = open("/proc/%d/status" % proc.pid).read()
        check(re.search(r"^Uid:\s+%d\s" % pwd_uid("tkms"), status, re.M) is not None
              and re.search(r"^CapEff:\s+0+$", status, re.M) is not None
              and re.search(r"^NoNewPrivs:\s+1$", status, re.M) is not None,
              "tkmsd runs as tkms, without capabilities, with no_new_privs", status)
        admin = "http://127.0.0.1:%d" % r["admin_port"]
        check(urllib.request.urlopen(admin + "/readyz", timeout=10).status == 200, "/readyz answers 200")
        started = re.search(r"event=started .*", log_text())
        check(started is not None and "bundle_version=1" in started.group(0) and "users=2" in started.group(0),
              "tkmsd starts from the bundle with its two users", log_text())
        ue = sh([os.path.join(root, "usr/bin/tkms-ue"), "call", "--kms", "http://127.0.0.1:%d" % r["ua_port"],
                 "--initiator", "sip:carol@example.org", "--initiator-psk", "/var/lib/tkms/ue/carol.psk",
                 "--responder", "sip:dave@example.org", "--responder-psk", "/var/lib/tkms/ue/dave.psk"], ok=False)
        check(ue.returncode == 0 and "call: keys agree and SRTP media flowed both ways" in ue.stdout + ue.stderr,
              "the installed tkms-ue makes a call through the installed tkmsd", ue.stdout + ue.stderr + log_text())
        # ExecReload: kill -HUP $MAINPID.
        proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while "event=reloaded" not in log_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        check("event=reloaded" in log_text() or "event=bundle_accepted" in log_text().split("event=started")[-1],
              "SIGHUP reloads", log_text())
        metrics = urllib.request.urlopen(admin + "/metrics", timeout=10).read().decode()
        check("tkms_bundle_version 1\n" in metrics, "the metrics say bundle version 1", metrics)
        audit = "/var/lib/tkms/bundle-audit.log"
        check(os.path.isfile(audit) and os.stat(audit).st_uid == pwd_uid("tkms")
              and os.stat(audit).st_mode & 0o077 == 0, "the audit log is tkms's, unreadable to others")
        for line in log_text().splitlines():
            check(line.startswith("ts=") and " level=" in line and " event=" in line, "every log line is logfmt", line)
    finally:
        stopped = stop(proc)
    check(stopped and proc.returncode == 0 and "event=stopped" in log_text(), "SIGTERM stops tkmsd, exit 0",
          log_text())


# ---- the unit under a real systemd -------------------------------------------

SYSTEMD_DROPIN = """[Service]
# packaging.deb: the extracted binary (bind-mounted on /usr/local/bin), free
# ports, a ready file, and the log in the state directory (no journald).
ExecStart=
ExecStart=/usr/local/bin/tkmsd --config /etc/tkms/local.json --bundle /var/lib/tkms/bundle.json --audit-log /var/lib/tkms/bundle-audit.log --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-file /var/lib/tkms/ready.json
StandardOutput=append:/var/lib/tkms/tkmsd-systemd.log
StandardError=append:/var/lib/tkms/tkmsd-systemd.log
"""


def systemd_pid1(work, root):
    """PID 1 of a new pid namespace (unshare -p -f -m): the state of the
    first namespace (/etc copy with the tkms user, /var/lib copy with the
    token and the bundle) bind-mounted again, a unit directory holding only
    the packaged tkmsd.service and empty stand-ins for the targets it is
    ordered after, the drop-in above; then exec systemd --system with
    tkmsd.service as its only job. Nothing else starts."""
    sh(["mount", "--make-rprivate", "/"])
    units, sysconf = os.path.join(work, "units-min"), os.path.join(work, "systemd-etc")
    os.makedirs(units)
    os.makedirs(os.path.join(sysconf, "tkmsd.service.d"))
    shutil.copy2(os.path.join(root, UNIT), os.path.join(units, "tkmsd.service"))
    for target in ("sysinit.target", "basic.target", "network.target", "multi-user.target", "shutdown.target",
                   "default.target"):
        with open(os.path.join(units, target), "w") as f:
            f.write("[Unit]\nDescription=%s (packaging.deb stand-in)\n" % target)
    with open(os.path.join(sysconf, "tkmsd.service.d", "packaging-deb.conf"), "w") as f:
        f.write(SYSTEMD_DROPIN)
    bind(os.path.join(work, "etc"), "/etc")
    bind(sysconf, "/etc/systemd/system")
    bind(os.path.join(work, "varlib"), "/var/lib")
    bind(units, "/lib/systemd/system")
    bind(os.path.join(root, "usr/bin"), "/usr/local/bin")
    # What systemd as PID 1 would otherwise change for the whole machine:
    # /sys/fs/cgroup gets a tmpfs of its own (systemd remounts it read-only,
    # which on a shared superblock would reach the host), and /proc/sys is
    # read-only (no fs.file-max or other sysctl bump). Its cgroups are in
    # the per-run cgroup namespace under_systemd made.
    sh(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/sys/fs/cgroup"])
    sh(["mount", "--bind", "/proc/sys", "/proc/sys"])
    sh(["mount", "-o", "remount,bind,ro", "/proc/sys"])
    sys.stdout.flush()
    os.execv("/lib/systemd/systemd", ["/lib/systemd/systemd", "--system", "--unit=tkmsd.service",
                                      "--log-target=console", "--show-status=no"])


def host_child(parent, name):
    """The host pid of the process `name` whose parent is `parent` (so a
    second run of this test on the same machine is never mistaken for ours)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = open("/proc/%s/status" % entry).read()
        except OSError:
            continue
        if (re.search(r"^Name:\s+%s$" % re.escape(name), status, re.M)
                and re.search(r"^PPid:\s+%d$" % parent, status, re.M)):
            return int(entry)
    return None


def make_cgroups(tag):
    """A sub-cgroup `tag` of this process's own cgroup in every cgroup
    hierarchy mounted under /sys/fs/cgroup: the root of the cgroup namespace
    systemd runs in, so everything it creates is below it and removed by
    remove_cgroups."""
    own = {}
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    created = []
    for line in open("/proc/self/mountinfo").read().splitlines():
        left, right = line.split(" - ", 1)
        mountpoint = left.split()[4]
        fstype, _, options = right.split()[:3]
        if fstype not in ("cgroup", "cgroup2") or not mountpoint.startswith("/sys/fs/cgroup/"):
            continue
        if fstype == "cgroup2":
            key = ""
        else:
            names = [o for o in options.split(",") if o not in ("rw", "ro") and "=" not in o or o.startswith("name=")]
            key = next((k for k in own if k and sorted(k.split(",")) == sorted(names)), None)
        if key is None or key not in own:
            continue
        path = os.path.join(mountpoint + own[key].rstrip("/"), tag)
        os.mkdir(path)
        created.append(path)
        if os.path.exists(os.path.join(path, "cpuset.cpus")):
            for f in ("cpuset.cpus", "cpuset.mems"):
                value = open(os.path.join(os.path.dirname(path), f)).read()
                with open(os.path.join(path, f), "w") as out:
                    out.write(value)
    return created


def remove_cgroups(created):
    """Removes the sub-cgroups of make_cgroups and whatever was made below
    them, children first, once their processes are gone."""
    for top in created:
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            deadline = time.time() + 10
            while True:
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)


def under_systemd(work, root):
    step("the unit under systemd as PID 1 of a private pid+mount namespace")
    varlib_tkms = os.path.join(work, "varlib", "tkms")
    ready = os.path.join(varlib_tkms, "ready.json")
    log_path = os.path.join(varlib_tkms, "tkmsd-systemd.log")
    for path in (ready, log_path):
        if os.path.exists(path):
            os.unlink(path)
    out_path = os.path.join(work, "systemd.out")
    cgroups = make_cgroups("tkms-deb-test-%d" % os.getpid())

    def enter_cgroups():
        for path in cgroups:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    with open(out_path, "w") as out:
        proc = subprocess.Popen(["unshare", "--cgroup", "--uts", "--ipc", "--pid", "--fork", "--mount", "--propagation",
                                 "private", "--mount-proc", sys.executable, os.path.abspath(__file__), "--systemd", work,
                                 root],
                                stdout=out, stderr=subprocess.STDOUT, env=ENV, preexec_fn=enter_cgroups)
    manager = None
    text = lambda path: open(path).read() if os.path.exists(path) else ""  # noqa: E731
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and not os.path.exists(ready):
            manager = manager or host_child(proc.pid, "systemd")
            time.sleep(0.05)
        manager = manager or host_child(proc.pid, "systemd")
        if proc.poll() is not None and manager is None:
            print("  NOT RUN: systemd does not run as PID 1 of a pid namespace here:\n" + text(out_path))
            return False
        check(os.path.exists(ready), "tkmsd.service comes up under systemd", text(out_path) + text(log_path))
        r = wait_ready(ready, proc)

        def systemctl(*args):
            return sh(["nsenter", "-t", str(manager), "-m", "-p", "systemctl", "--no-pager"] + list(args), ok=False)

        pid = host_child(manager, "tkmsd")
        check(pid is not None, "tkmsd's process is found")
        status = open("/proc/%d/status" % pid).read()
        tkms = re.search(r"^tkms:x:(\d+):", open(os.path.join(work, "etc", "passwd")).read(), re.M)
        for field, want in (("Uid", r"%s\s+%s\s+%s\s+%s" % ((tkms.group(1),) * 4)), ("CapEff", "0+"),
                            ("CapBnd", "0+"), ("CapAmb", "0+"), ("NoNewPrivs", "1"), ("Seccomp", "2")):
            check(re.search(r"^%s:\s+%s$" % (field, want), status, re.M) is not None,
                  "under systemd tkmsd has %s %s" % (field, want), status)
        mounts = dict((f.split()[4], f.split()[5]) for f in open("/proc/%d/mountinfo" % pid).read().splitlines())
        check(mounts.get("/", "").startswith("ro,") and mounts.get("/var/lib/tkms", "").startswith("rw,")
              and "/tmp" in mounts, "ProtectSystem=strict: / read-only, /var/lib/tkms writable, a private /tmp",
              json.dumps(mounts, indent=1))
        admin = "http://127.0.0.1:%d" % r["admin_port"]
        check(urllib.request.urlopen(admin + "/readyz", timeout=10).status == 200, "/readyz answers 200 under systemd")
        ue = sh([os.path.join(root, "usr/bin/tkms-ue"), "call", "--kms", "http://127.0.0.1:%d" % r["ua_port"],
                 "--initiator", "sip:carol@example.org", "--initiator-psk", os.path.join(varlib_tkms, "ue/carol.psk"),
                 "--responder", "sip:dave@example.org", "--responder-psk", os.path.join(varlib_tkms, "ue/dave.psk")],
                ok=False)
        check(ue.returncode == 0 and "call: keys agree and SRTP media flowed both ways" in ue.stdout + ue.stderr,
              "a tkms-ue call through the sandboxed service", ue.stdout + ue.stderr + text(log_path))
        reload = systemctl("reload", "tkmsd.service")
        check(reload.returncode == 0, "systemctl reload tkmsd", reload.stdout + reload.stderr)
        deadline = time.time() + 20
        while "event=reloaded" not in text(log_path) and time.time() < deadline:
            time.sleep(0.05)
        check("event=reloaded" in text(log_path), "systemctl reload (SIGHUP) reloads", text(log_path))
        stop_ = systemctl("stop", "tkmsd.service")
        show = systemctl("show", "tkmsd.service", "-p", "ActiveState", "-p", "ExecMainStatus", "-p", "NRestarts").stdout
        check(stop_.returncode == 0 and "ActiveState=inactive" in show and "ExecMainStatus=0" in show
              and "NRestarts=0" in show and "event=stopped" in text(log_path),
              "systemctl stop: tkmsd drains and exits 0, never restarted", show + text(log_path))
        print("  under systemd: uid tkms, no capabilities, no_new_privs, seccomp filter, / read-only: served a call")
        return True
    finally:
        if manager is not None:
            try:
                os.kill(manager, signal.SIGKILL)  # PID 1 of the namespace: everything in it goes
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        remove_cgroups(cgroups)


# ---- main ------------------------------------------------------------------------

def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--inner":
        return inner(*sys.argv[2:5])
    if len(sys.argv) == 4 and sys.argv[1] == "--systemd":
        return systemd_pid1(*sys.argv[2:4])
    source_dir, binary_dir = (os.path.abspath(a) for a in sys.argv[1:3])
    for tool in ("cpack", "lintian", "systemd-analyze", "dpkg-deb", "unshare", "nsenter", "setpriv", "runuser", "openssl",
                 "readelf"):
        check(shutil.which(tool, path=ENV["PATH"]) is not None, "%s is installed (make deps)" % tool)
    host_had_user = passwd_entry("tkms") != ""
    host_had_state = os.path.exists("/var/lib/tkms")
    with tempfile.TemporaryDirectory(prefix="tkms-deb-") as work:
        os.chmod(work, 0o755)
        debs = build_packages(binary_dir, os.path.join(work, "deb"))
        check_contents(debs)
        run_lintian(debs)
        root = os.path.join(work, "root")
        extract(debs, root)
        verify_unit(root, work)
        ctl = control_scripts(debs, work)
        if os.geteuid() != 0:
            fail("the maintainer scripts and the tkms user need root (unshare -m)")
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                            "--inner", work, root, ctl], env=ENV)
        check(r.returncode == 0, "the namespace part passes")
        under_systemd(work, root)
    check((passwd_entry("tkms") != "") == host_had_user and os.path.exists("/var/lib/tkms") == host_had_state,
          "the host's users and /var/lib are unchanged")
    step("done: %d checks passed" % checks.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
