#!/usr/bin/env python3
"""KMS-to-KMS resolution over Zk (docs/zk.md) between real tkmsd processes on
loopback: two domains (tools/bench/two_domains.py: kms.a.example.org with
alice, kms.b.example.org with bob and bert), each its own SoftHSM2 token, TLS
key and signed bundle; a demo CA made with openssl issues both KMS
certificates, and each bundle's trust relation names the other KMS.

Usage: zk_test.py CASE SOURCE_DIR TKMSD TKMSCTL TKMS_UE TKMS_BENCH

CASE:
  call              a forking call from alice (A) to bob (B), 2 end-points,
                    bob resolving at B, which asks A over Zk; then bob in a
                    class with AES-CM-256 KEMACs and a reusable ticket (2 calls);
                    B's /metrics count the requests to peer kms.a.example.org;
                    no PIN or PSK in the logs.
  third_domain      C (kms.c.example.org, certificate from another CA) has no
                    relation to A: carol's resolve is a MIKEY error 14. With a
                    relation to A that A does not reciprocate, A's Zk listener
                    refuses C's handshake (C answers 503; A counts the refused
                    handshakes); openssl s_client with another CA's
                    certificate is refused too.
  peer_down         A stopped (SIGSTOP: a slow peer) and killed: bob's resolve
                    at B answers 503 within B's connect + response timeouts;
                    A restarted on the same Zk port: the next call succeeds
                    without restarting B.
  bundle_update     a bundle at B without the relation: B stops forwarding at
                    once (MIKEY error 14, no new peer request); with the
                    relation again it forwards again.
  network_function  tkms-ue function-resolve with a certificate pinned in A's
                    bundle with the role resolve gets the ticket's keys (an
                    audit line in A's log); ticketrequest on Zk is 403; without
                    the role 403; a CA-issued certificate that is neither a
                    relation nor a network function 403; no certificate: no
                    handshake; the unprotected RESOLVE_INIT on A's Ua listener
                    is a MIKEY error.

Exits 1 at the first failed check, with what was seen. Every process is
stopped at the end; one temporary directory per run (parallel-safe).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

CASE = sys.argv[1]
SOURCE_DIR, TKMSD, TKMSCTL, TKMS_UE, TKMS_BENCH = (os.path.abspath(a) for a in sys.argv[2:7])
sys.path.insert(0, os.path.join(SOURCE_DIR, "tools", "bench"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "cli"))
from doc_walkthrough import Checks  # noqa: E402
from two_domains import ZK_TIMEOUTS, Programs, TwoDomains, clean_env, read, run, write  # noqa: E402

PROGRAMS = Programs(TKMSD, TKMSCTL, TKMS_UE, TKMS_BENCH)
RESOLVE_PATH = "/keymanagement?requesttype=ticketresolve"
REQUEST_PATH = "/keymanagement?requesttype=ticketrequest"
NTP_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970
checks = Checks()
check = checks.check


def agreed(out, endpoints=1):
    return "call: keys agree and SRTP media flowed both ways with %d end-point(s)" % endpoints in out


def mikey_error(out):
    m = re.search(r"MIKEY error (\d+)", out)
    return int(m.group(1)) if m else None


def eventually(predicate, timeout=15.0):
    """Polls predicate until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ue(*args, timeout=60):
    p = subprocess.run([TKMS_UE, *args], capture_output=True, text=True, env=clean_env(), timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def offer(d, work, name, initiator, responder, forking=False):
    """tkms-ue offer at the initiator's KMS: the SDP offer's path."""
    (ki, ui), (kr, ur) = initiator, responder
    sdp = os.path.join(work, name + ".sdp")
    code, out = ue("offer", "--kms", ki.https(), "--kms-identity", ki.host, "--cacert", d.cacerts,
                   "--initiator", ki.users[ui][0], "--initiator-psk", ki.users[ui][1], "--responder", kr.users[ur][0],
                   "--sdp-out", sdp, "--state-out", os.path.join(work, name + ".state"),
                   *(["--forking"] if forking else []))
    check(code == 0, "tkms-ue offer at %s" % ki.host, out)
    return sdp


def answer(d, work, sdp, responder):
    """tkms-ue answer at the responder's KMS: (exit status, output, seconds)."""
    kr, ur = responder
    t0 = time.monotonic()
    code, out = ue("answer", "--kms", kr.https(), "--kms-identity", kr.host, "--cacert", d.cacerts,
                   "--responder", kr.users[ur][0], "--responder-psk", kr.users[ur][1], "--sdp-in", sdp,
                   "--sdp-out", sdp + ".answer")
    return code, out, time.monotonic() - t0


def unprotected_resolve_init(work, sdp, kms_host, responder=None):
    """What KMS_R or a network function sends on Zk (docs/zk.md): a
    RESOLVE_INIT_PSK with the offer's TICKET, V with the NULL MAC, built with
    tkmsctl mikey encode; the path of its base64."""
    line = [l for l in read(sdp).splitlines() if l.startswith("a=key-mgmt:mikey ")][0]
    transfer_init = json.loads(run([TKMSCTL, "mikey", "decode", "-"], input=line))

    def idr(role, text):
        return {"type": 14, "role": role, "id_type": 1, "data": text.encode().hex()}
    payloads = [{"type": 5, "ts_type": 0, "value": (int(time.time()) + NTP_OFFSET) << 32},
                {"type": 15, "role": 2, "rand": os.urandom(16).hex()}]
    payloads += [idr(2, responder)] if responder else []
    payloads += [idr(3, kms_host), [p for p in transfer_init["payloads"] if p["name"] == "TICKET"][0],
                 {"type": 9, "auth_alg": 0, "mac": ""}]
    header = dict(transfer_init["header"], data_type=16, v=False, cs_count=0, cs_id_map_type=1, cs_id_map=[])
    for name in ("data_type_name", "cs_id_map_type_name"):
        header.pop(name)
    path = sdp + ".resolve_init"
    write(path, run([TKMSCTL, "mikey", "encode", "-"], input=json.dumps({"header": header, "payloads": payloads})))
    return path


def curl(url, body_path, cacert, cert=None, key=None):
    """POST a MIKEY message with curl: (curl exit status, HTTP status, decoded answer or None)."""
    argv = ["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", "--cacert", cacert,
            "-H", "Content-Type: application/mikey", "--data-binary", "@" + body_path, url]
    if cert:
        argv += ["--cert", cert, "--key", key]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    body, _, status = p.stdout.rpartition("\n")
    decoded = None
    if body.strip() and status == "200":
        decoded = json.loads(run([TKMSCTL, "mikey", "decode", "-"], input=body))
    return p.returncode, int(status or 0), decoded


def error_number(message):
    errs = [p["error_no"] for p in (message or {}).get("payloads", []) if p["name"] == "ERR"]
    return errs[0] if errs else None


def s_client(domain, cacert, cert, key):
    """openssl s_client to the Zk port with a client certificate: (exit status, output)."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % domain.zk_port, "-servername",
                        domain.host, "-CAfile", cacert, "-cert", cert, "-key", key, "-tls1_2"],
                       input=b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def handshake_failures(domain):
    return domain.metric("tkms_connection_events_total", listener="zk", event="tls_handshake_failed")


def peer_requests(domain, peer):
    return domain.metric("tkms_zk_peer_requests_total", peer=peer.host)


# --- cases ------------------------------------------------------------------------


def case_call(d, work):
    alice, bob = (d.a, "alice"), (d.b, "bob")
    code, out, _ = d.call(alice, bob, ["--forking", "--fork", "2"])
    check(code == 0 and agreed(out, 2), "a forking call from A to B with 2 end-points: keys agree", out)
    check(out.count("ticket resolved by the KMS (forked keys)") == 2, "both end-points resolved forked keys at B", out)
    check(peer_requests(d.b, d.a) >= 2, "B's /metrics: tkms_zk_peer_requests_total{peer=\"kms.a.example.org\"} >= 2",
          d.b.metrics())

    # 256-bit KEMACs for bob (B) and alice (A); PRF and MAC are HMAC-SHA-256 in every tkms-ue message.
    for dom, user in (d.a, "alice"), (d.b, "bob"):
        dom.policy_classes = {"default": {}, "strong": {"kemac_encryption": "aes-cm-256"}}
        dom.user_classes = {user: "strong"}
        status, verdict = dom.post_bundle()
        check(status == 200 and verdict["verdict"] == "accepted", "%s accepts the aes-cm-256 class" % dom.host,
              repr(verdict))
    code, out, _ = d.call(alice, bob, ["--calls", "2"])
    check(code == 0 and agreed(out), "two calls with one reusable ticket, AES-CM-256 KEMACs: keys agree", out)
    code, out, _ = d.call((d.b, "bert"), alice, ["--forking"])
    check(code == 0 and agreed(out), "the other way round, bert (B) to alice (A): keys agree", out)
    check(peer_requests(d.a, d.b) >= 1, "A's /metrics count the requests to peer kms.b.example.org", d.a.metrics())

    for dom in d.a, d.b:
        log = dom.logtext()
        secrets = [read(dom.pin).strip()] + [read(psk).strip() for _, psk in dom.users.values()]
        check(not any(s in log for s in secrets), "no PIN or PSK in %s's log" % dom.host)
        check(dom.stop(), "%s stops cleanly" % dom.host, log)


def case_third_domain(d, work):
    c = d.add_domain("c", ["carol"], ca=d.other_ca)
    alice, carol = (d.a, "alice"), (c, "carol")
    code, out, _ = d.call(alice, carol)
    check(code != 0 and mikey_error(out) == 14, "C has no relation to A: carol's resolve is MIKEY error 14", out)
    check(agreed(d.call(alice, (d.b, "bob"))[1]), "A and B still carry calls (the control)")

    # C trusts A, A lists C (and its CA) nowhere: A refuses C's handshake.
    before = handshake_failures(d.a)
    c.relations = [c.relation(d.a)]
    status, verdict = c.post_bundle()
    check(status == 200, "C accepts a relation to A", repr(verdict))
    code, out, _ = d.call(alice, carol)
    check(code != 0 and re.search(r"\b503\b", out), "A refuses C over Zk: carol's resolve at C is 503", out)
    check(eventually(lambda: handshake_failures(d.a) > before),
          "A counts the refused handshake (tkms_connection_events_total{listener=\"zk\"})", d.a.metrics())

    # An independent client with a certificate from C's CA: refused; from A's CA: handshake done (the control).
    stranger = d.other_ca.software_client("stranger", c.host, dns=c.host)
    code, out = s_client(d.a, d.ca.pem, *stranger)
    check(code != 0,
          "openssl s_client with another CA's certificate: A's Zk listener refuses the handshake", out)
    known = d.ca.software_client("known", "kms.x.example.org", dns="kms.x.example.org")
    code, out = s_client(d.a, d.ca.pem, *known)
    check("Verify return code: 0 (ok)" in out and "Cipher is (NONE)" not in out,
          "openssl s_client with a certificate of A's CA: the handshake completes", out)


def case_peer_down(d, work):
    alice, bob = (d.a, "alice"), (d.b, "bob")
    check(agreed(d.call(alice, bob)[1]), "a call A -> B (keep-alive Zk connection from B to A)")
    bound = (ZK_TIMEOUTS["connect_timeout_ms"] + ZK_TIMEOUTS["response_timeout_ms"]) / 1000.0 + 2.0

    # A slow peer: A stopped, its sockets still there. More resolves wait for
    # it than B's per-peer cap; meanwhile a call inside domain B is served
    # (the waiting ones hold at most half of B's handler threads).
    sdp = offer(d, work, "slow", alice, bob)
    waiting = [offer(d, work, "slow%d" % i, alice, bob) for i in range(6)]
    results = {}
    d.a.proc.send_signal(signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=lambda i=i, s=w: results.__setitem__(i, answer(d, work, s, bob)))
                   for i, w in enumerate(waiting)]
        for t in threads:
            t.start()
        code, out, _ = d.call((d.b, "bert"), bob)
        check(code == 0 and agreed(out), "while resolves wait for the stopped A, a call inside B is served", out)
        code, out, seconds = answer(d, work, sdp, bob)
        for t in threads:
            t.join()
    finally:
        d.a.proc.send_signal(signal.SIGCONT)
    check(code != 0 and re.search(r"\b503\b", out), "A stopped: bob's resolve at B answers 503", out)
    check(seconds < bound, "... within connect + response timeouts (%.1f s < %.1f s)" % (seconds, bound), out)
    check(all(r[0] != 0 and re.search(r"\b503\b", r[1]) and r[2] < bound for r in results.values()),
          "every waiting resolve got 503 within the bound", repr(results))
    check(d.b.alive(), "B still runs")

    # A gone: connection refused.
    sdp = offer(d, work, "gone", alice, bob)
    d.a.kill()
    code, out, seconds = answer(d, work, sdp, bob)
    failed_at = time.monotonic()
    check(code != 0 and re.search(r"\b503\b", out) and seconds < bound,
          "A killed: bob's resolve at B answers 503 within %.1f s (%.1f s)" % (bound, seconds), out)

    # A back on the same Zk port; B untouched.
    d.a.start()
    # B answers a failed peer 503 at once for retry_after_failure_ms after the failure (docs/zk.md).
    time.sleep(max(0.0, failed_at + ZK_TIMEOUTS["retry_after_failure_ms"] / 1000.0 - time.monotonic()))
    code, out, _ = answer(d, work, sdp, bob)
    check(code == 0, "after A restarted, the ticket issued before resolves at B (B not restarted)", out)
    code, out, _ = d.call(alice, bob, ["--forking", "--fork", "2"])
    check(code == 0 and agreed(out, 2), "... and a new forking call succeeds", out)


def case_bundle_update(d, work):
    alice, bob = (d.a, "alice"), (d.b, "bob")
    check(agreed(d.call(alice, bob)[1]), "a call A -> B (the control)")
    sdp = offer(d, work, "pending", alice, bob)
    # A bundle whose Zk certificate is not for B's token key (A's chain) is
    # refused, and B keeps forwarding.
    status, verdict = d.b.post_bundle({"kms_certificate_chain": read(d.a.chain)})
    check(status != 200 and verdict.get("verdict") != "accepted",
          "B refuses a bundle whose kms_certificate_chain does not match its TLS key", repr(verdict))
    check(agreed(d.call(alice, bob)[1]), "B still forwards after the refused bundle")
    relations = d.b.relations
    d.b.relations = []
    status, verdict = d.b.post_bundle()
    check(status == 200 and verdict["verdict"] == "accepted", "B accepts a bundle without the relation", repr(verdict))
    before = peer_requests(d.b, d.a)
    code, out, _ = answer(d, work, sdp, bob)
    check(code != 0 and mikey_error(out) == 14, "at once, B no longer forwards: MIKEY error 14", out)
    check(peer_requests(d.b, d.a) == before, "no request went to A")
    d.b.relations = relations
    status, verdict = d.b.post_bundle()
    check(status == 200, "B accepts the relation again", repr(verdict))
    code, out, _ = answer(d, work, sdp, bob)
    check(code == 0, "the same ticket resolves at B again", out)


def function_resolve(d, domain, sdp, cert, key, url=None):
    return ue("function-resolve", "--kms", url or domain.zk_url(), "--kms-identity", domain.host,
              "--cacert", d.cacerts, "--cert", cert, "--key", key, "--sdp-in", sdp)


def case_network_function(d, work):
    alice, bob = (d.a, "alice"), (d.b, "bob")
    nf = d.ca.software_client("li-probe", "li-probe.a.example.org")
    d.a.functions = [{"name": "li-probe", "certificate": read(nf[0]), "roles": ["resolve"]}]
    status, verdict = d.a.post_bundle()
    check(status == 200, "A accepts a bundle with the network function", repr(verdict))
    # A forking ticket: the function gets MPKr as the ticket holds it.
    sdp = offer(d, work, "li", alice, bob, forking=True)
    code, out = function_resolve(d, d.a, sdp, *nf)
    check(code == 0, "tkms-ue function-resolve with the resolve role gets the ticket's keys", out)
    audit = r"event=zk_request audit=1 .*client_kind=network_function client=li-probe .*status=200 outcome=ok"
    check(eventually(lambda: re.search(audit, d.a.logtext())), "A's log has the audit line of li-probe's resolve",
          d.a.logtext())
    for what in ("key MPKi ", "key MPKr ", "type TGK", "not forked"):
        check(what in out, "function-resolve shows %r (unforked keys)" % what, out)

    # The same with curl and the message built here: the keys in clear, unforked.
    body = unprotected_resolve_init(work, offer(d, work, "li-curl", alice, bob), d.a.host)
    code, status, resp = curl(d.a.zk_url() + RESOLVE_PATH, body, d.cacerts, *nf)
    check(status == 200 and resp["header"]["data_type_name"] == "RESOLVE_RESP",
          "curl with the function's certificate: RESOLVE_RESP", json.dumps(resp))
    kemac = [p for p in resp["payloads"] if p["name"] == "KEMAC"]
    check(len(kemac) == 1 and kemac[0]["encr_alg"] == 0 and kemac[0]["mac_alg"] == 0,
          "the KEMAC is unencrypted, without MAC (inside the TLS session)", json.dumps(resp))
    check(not any(p["name"] == "RANDR" for p in resp["payloads"]), "no RANDRkms: the keys are not forked",
          json.dumps(resp))

    code, status, _ = curl(d.a.zk_url() + REQUEST_PATH, body, d.cacerts, *nf)
    check(status == 403, "ticketrequest on Zk: 403 (%d)" % status)
    stranger = d.ca.software_client("stranger", "kms.x.example.org", dns="kms.x.example.org")
    code, status, _ = curl(d.a.zk_url() + RESOLVE_PATH, body, d.cacerts, *stranger)
    check(status == 403, "a certificate of the trusted CA that names no relation and is no network function: 403 "
          "(%d)" % status)
    check(d.a.metric("tkms_zk_requests_total", client="unauthorised", result="forbidden") >= 1,
          "counted as tkms_zk_requests_total{client=\"unauthorised\",result=\"forbidden\"}", d.a.metrics())
    code, status, _ = curl(d.a.zk_url() + RESOLVE_PATH, body, d.cacerts)
    check(code != 0 and status == 0, "no client certificate: no TLS session on Zk (curl exit %d)" % code)
    code, status, resp = curl(d.a.https() + RESOLVE_PATH, body, d.cacerts)
    check(status == 200 and error_number(resp) == 3,
          "the unprotected RESOLVE_INIT on A's Ua listener: MIKEY error 3 (Invalid MAC)", json.dumps(resp))

    d.a.functions[0]["roles"] = []
    status, verdict = d.a.post_bundle()
    check(status == 200, "A accepts the network function without roles", repr(verdict))
    code, out = function_resolve(d, d.a, offer(d, work, "li2", alice, bob), *nf)
    check(code != 0 and re.search(r"\b403\b", out), "the same certificate without the role: 403", out)
    check(eventually(lambda: re.search(r"event=zk_request audit=1 .*client=li-probe .*status=403", d.a.logtext())),
          "... audited as refused", d.a.logtext())
    code, status, _ = curl(d.a.zk_url() + RESOLVE_PATH, body, d.cacerts, *nf)
    check(status == 403, "... with curl too (%d)" % status)


CASES = {"call": case_call, "third_domain": case_third_domain, "peer_down": case_peer_down,
         "bundle_update": case_bundle_update, "network_function": case_network_function}


def main():
    if CASE not in CASES:
        sys.exit("unknown case %r (one of %s)" % (CASE, ", ".join(CASES)))
    with tempfile.TemporaryDirectory(prefix="tkms-zk-%s-" % CASE) as work:
        with TwoDomains(PROGRAMS, work) as d:
            try:
                CASES[CASE](d, work)
            except SystemExit:
                for dom in d.domains:
                    sys.stderr.write("--- %s log (last 40 lines) ---\n%s\n"
                                     % (dom.host, "\n".join(dom.logtext().splitlines()[-40:])))
                raise
    print("zk_test %s: %d checks passed" % (CASE, checks.count))


if __name__ == "__main__":
    main()
