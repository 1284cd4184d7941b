"""Starting and stopping tkmsd for the benchmark scripts (kms_bench.py,
hostile_bench.py): a throw-away SoftHSM2 token made by `tkmsd --dev`, free
ports, the ready file, and the tkms-bench arguments of the demo users.

Two ways to run tkmsd on the development token:
  - start_dev():    `tkmsd --dev --state-dir DIR`, every setting at its default
                    (what `make bench` measures);
  - provision_dev() once, then start_config() with a configuration built by
    dev_token_config(): `tkmsd --config FILE` on the same token, so the
    configuration's `http` section (and anything else, merged in) can be set.
    `--config` and `--dev` exclude each other, hence the two steps.

Standard library only.
"""
import copy
import json
import os
import signal
import subprocess
import time

KMS_IDENTITY = "kms.example.org"  # the identity of tkmsd --dev
DEV_TOKEN_LABEL = "tkms"
INITIATOR = "sip:alice@example.org"
RESPONDER = "sip:bob@example.org"


def run_json(cmd):
    """Runs cmd, returns the JSON object on the last line of its stdout."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def wait_ready(path, proc, timeout=30):
    """Waits for a ready file ({"ua_port":N,"admin_port":M,...}) and returns it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited during start-up (status %s)" % proc.returncode)
        if os.path.exists(path):
            try:
                with open(path) as f:
                    return json.load(f)
            except ValueError:
                pass
        time.sleep(0.05)
    raise RuntimeError("not ready after %d s" % timeout)


def stop(proc, timeout=20):
    """SIGTERM, then SIGKILL after `timeout` seconds. Returns True if it
    stopped by itself."""
    if proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def deep_merge(base, extra):
    """base with extra merged in: objects merge key by key, anything else
    in extra replaces. Neither argument is modified."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def tkmsd_path(build):
    return os.path.join(build, "firmware/tkmsd/tkmsd")


def bench_path(build):
    return os.path.join(build, "tools/bench/tkms-bench")


def user_args(dev_dir):
    """tkms-bench arguments for the demo users of a --dev state directory."""
    ue = os.path.join(dev_dir, "ue")
    return ["--initiator", INITIATOR, "--initiator-psk", os.path.join(ue, "alice.psk"),
            "--responder", RESPONDER, "--responder-psk", os.path.join(ue, "bob.psk")]


class Tkmsd:
    """A running tkmsd: proc, ua_port, ua_tls_port (0: no HTTPS listener),
    admin_port."""

    def __init__(self, proc, ready, log):
        self.proc = proc
        self.ua_port = ready["ua_port"]
        self.ua_tls_port = ready.get("ua_tls_port") or 0
        self.admin_port = ready["admin_port"]
        self._log = log

    def stop(self, timeout=20):
        try:
            return stop(self.proc, timeout)
        finally:
            if self._log:
                self._log.close()


def _start(cmd, ready_file, log_path, env=None):
    if os.path.exists(ready_file):
        os.unlink(ready_file)
    log = open(log_path, "a") if log_path else None
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL, env=env)
    try:
        ready = wait_ready(ready_file, proc)
    except Exception:
        stop(proc)
        if log:
            log.close()
        raise
    return Tkmsd(proc, ready, log)


def start_dev(build, dev_dir, ready_file, log_path=None, host="127.0.0.1", extra_args=()):
    """tkmsd --dev --state-dir dev_dir on free ports of host: plain Ua, HTTPS
    Ua (--dev's development CA is then dev_ca(dev_dir), the server chain
    dev_chain(dev_dir)) and admin. --tls-listen is always given: --dev alone
    would bind 127.0.0.1:8443, which another run may hold."""
    cmd = [tkmsd_path(build), "--allow-root", "--dev", "--state-dir", dev_dir, "--listen", host + ":0",
           "--admin-listen", host + ":0", "--tls-listen", host + ":0",
           "--ready-file", ready_file] + list(extra_args)
    return _start(cmd, ready_file, log_path)


def dev_ca(dev_dir):
    """The development CA certificate (PEM) that `tkmsd --dev` writes."""
    return os.path.join(dev_dir, "dev-ca.pem")


def dev_chain(dev_dir):
    """The HTTPS server chain (PEM, for the token's TLS key) that `tkmsd --dev`
    writes; usable as tls.certificate_chain_file with --config."""
    return os.path.join(dev_dir, "tls-chain.pem")


def dev_tls_config(dev_dir):
    """Configuration fragment (merge it with dev_token_config's `extra`) for an
    HTTPS Ua listener on the --dev token's TLS key and chain; start_config
    puts it on a free port."""
    return {"listen": {"ua_tls": "127.0.0.1:0"},
            "tls": {"certificate_chain_file": os.path.abspath(dev_chain(dev_dir))}}


def provision_dev(build, dev_dir, ready_file, log_path=None):
    """Makes the development token, ticket key and demo users in dev_dir
    (one `tkmsd --dev` start and stop)."""
    start_dev(build, dev_dir, ready_file, log_path).stop()


def dev_token_config(dev_dir, http=None, extra=None):
    """A complete configuration (docs/config.md) serving the token that
    provision_dev made, as --dev would: its `http` section is `http` (only the
    keys given; the rest keep tkmsd's defaults), then `extra` merged into the
    top level."""
    config = {
        "kms_identity": KMS_IDENTITY,
        "token": {
            "module_path": os.environ.get("TKMS_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
            "token": DEV_TOKEN_LABEL,
            "pin_file": os.path.abspath(os.path.join(dev_dir, "token.pin")),
            "softhsm2_conf": os.path.abspath(os.path.join(dev_dir, "softhsm2.conf")),
        },
        "token_users": True,
    }
    if http:
        config["http"] = dict(http)
    if extra:
        config = deep_merge(config, extra)
    return config


def start_config(build, config, config_file, ready_file, log_path=None, host="127.0.0.1", extra_args=()):
    """Writes config to config_file and starts tkmsd --config on free ports of
    host (the HTTPS Ua listener too, if the configuration has one)."""
    with open(config_file, "w") as f:
        json.dump(config, f, indent=2)
    cmd = [tkmsd_path(build), "--allow-root", "--config", config_file, "--listen", host + ":0",
           "--admin-listen", host + ":0", "--ready-file", ready_file]
    if config.get("listen", {}).get("ua_tls"):
        cmd += ["--tls-listen", host + ":0"]
    cmd += list(extra_args)
    return _start(cmd, ready_file, log_path)
