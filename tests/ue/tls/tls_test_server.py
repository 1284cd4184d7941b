#!/usr/bin/env python3
"""A TLS server on 127.0.0.1 for the UE's TLS client tests, standing in for the
KMS's HTTPS Ua listener until it exists (tests/ue/tls_client_test.cpp,
tests/ue_cli/ue_cli_test.cpp).

Two modes:
  canned (default)  answers every HTTP/1.1 request (Content-Length bodies only)
                    with 200, Content-Type application/mikey and the body
                    "ok conn=<n> req=<k> peer=<client CN or -> version=<TLS version>
                    cipher=<suite>", keeping the connection alive, so a test sees
                    keep-alive reuse and whether its client certificate arrived;
                    with --close-after N the server closes each connection
                    (close_notify) after N answers, while the client idles;
  --forward H:P     a TLS-terminating proxy: the decrypted bytes of each
                    connection go to a plain TCP connection to H:P (a real
                    tkmsd's Ua listener) and back.

The TLS profile is chosen by the options: --max-tls 1.1 with
--ciphers 'DEFAULT@SECLEVEL=0' makes a TLS 1.1-only server; --ciphers with
CBC suites a server the tkms profile must refuse. --verify required asks for
and checks a client certificate against --cafile.

Prints "PORT <n>" on stdout once listening; handshake failures are printed to
stderr as "handshake failed: ..." lines. Runs until killed (SIGTERM).
"""
import argparse
import socket
import ssl
import sys
import threading
import warnings

MAX_HEAD = 16384
MAX_BODY = 1 << 20


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def make_context(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        versions = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2}
        ctx.maximum_version = versions[a.max_tls]
        ctx.minimum_version = versions[a.min_tls]
    if a.ciphers:
        ctx.set_ciphers(a.ciphers)
    ctx.load_cert_chain(a.cert, a.key)
    if a.verify == "required":
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(a.cafile)
    return ctx


def peer_cn(conn):
    cert = conn.getpeercert()
    if not cert:
        return "-"
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return "?"


def read_request(conn, buf):
    """One request (head + Content-Length body); None at end of stream (with
    suppress_ragged_eofs off, recv returns b"" only after close_notify)."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None
        data = conn.recv(65536)
        if not data:
            return None
        buf.extend(data)
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end]).decode("latin-1")
    del buf[:end]
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length > MAX_BODY:
        return None
    while len(buf) < length:
        data = conn.recv(65536)
        if not data:
            return None
        buf.extend(data)
    body = bytes(buf[:length])
    del buf[:length]
    return head, body


def serve_canned(conn, index, close_after):
    buf = bytearray()
    req = 0
    while True:
        got = read_request(conn, buf)
        if got is None:
            log("connection %d: close_notify received after %d requests" % (index, req))
            break
        body = ("ok conn=%d req=%d peer=%s version=%s cipher=%s" %
                (index, req, peer_cn(conn), conn.version(), conn.cipher()[0])).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/mikey\r\nContent-Length: %d\r\n\r\n%s" %
                     (len(body), body))
        req += 1
        if close_after and req >= close_after:
            log("connection %d: closing after %d requests" % (index, req))
            break


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_forward(conn, target):
    host, _, port = target.rpartition(":")
    upstream = socket.create_connection((host, int(port)))
    back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
    back.start()
    pump(conn, upstream)
    back.join()
    upstream.close()


def handle(ctx, raw, index, a):
    raw.settimeout(30)
    try:
        conn = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
    except (ssl.SSLError, OSError) as e:
        log("handshake failed: %s" % e)
        raw.close()
        return
    try:
        if a.forward:
            serve_forward(conn, a.forward)
        else:
            serve_canned(conn, index, a.close_after)
        try:
            conn.unwrap()  # answer the client's close_notify with ours
        except (ssl.SSLError, OSError, ValueError):
            pass
    except (ssl.SSLError, OSError) as e:
        log("connection %d: %s" % (index, e))
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cafile")
    ap.add_argument("--verify", choices=["none", "required"], default="none")
    ap.add_argument("--min-tls", choices=["1.1", "1.2"], default="1.2")
    ap.add_argument("--max-tls", choices=["1.1", "1.2"], default="1.2")
    ap.add_argument("--ciphers")
    ap.add_argument("--forward")
    ap.add_argument("--close-after", type=int, default=0)
    a = ap.parse_args()
    if a.max_tls == "1.1":
        a.min_tls = "1.1"
    ctx = make_context(a)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print("PORT %d" % listener.getsockname()[1], flush=True)
    index = 0
    while True:
        raw, _ = listener.accept()
        threading.Thread(target=handle, args=(ctx, raw, index, a), daemon=True).start()
        index += 1


if __name__ == "__main__":
    sys.exit(main())
