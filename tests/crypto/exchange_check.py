#!/usr/bin/env python3
"""Independent check of tests/vectors/crypto/exchange.txt.

Recomputes, with Python's hmac/hashlib and the openssl command only (via the
RFC transcriptions in kat_gen.py), the RFC 6043 §5.1.2 message keys from the
PSK, the V MAC of the REQUEST_INIT_PSK over REQUEST_INIT || IDi || IDkms and of
the REQUEST_RESP over REQUEST_RESP || REQUEST_INIT (§5.5 Table 5.2), and the
AES-CM-256 KEMAC encryption (RFC 3830 §4.2.3). Exits 1 on any mismatch.
"""
import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kat_gen  # noqa: E402  (RFC transcriptions: PRF, labels, openssl AES-CTR, IV)


def load(path):
    fields = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, value = line.partition(" = ")
            fields[name] = value
    return fields


def main(path):
    f = load(path)
    prf = int(f["prf"])
    psk = bytes.fromhex(f["psk"])
    csb = int(f["csb_id"])
    randri = bytes.fromhex(f["randri"])
    request = bytes.fromhex(f["request"])
    response = bytes.fromhex(f["response"])
    failures = []

    def key(name, direction, length):
        label = kat_gen.ticket_msg_label(name, direction, csb, randri, None)
        return kat_gen.mikey_prf(prf, psk, label, 8 * length)

    if randri not in request:
        failures.append("RANDRi does not occur in the request")
    auth_i = key("auth", "initial", 32)
    covered = request[:-32] + bytes.fromhex(f["id_i"]) + bytes.fromhex(f["id_kms"])
    if hmac.new(auth_i, covered, hashlib.sha256).digest() != request[-32:]:
        failures.append("REQUEST_INIT_PSK V MAC")

    auth_r = key("auth", "response", 32)
    if hmac.new(auth_r, response[:-32] + request, hashlib.sha256).digest() != response[-32:]:
        failures.append("REQUEST_RESP V MAC")

    encr_r = key("encr", "response", 32)
    salt_r = key("salt", "response", 14)
    iv = kat_gen.kemac_iv(salt_r, csb, bytes.fromhex(f["response_ts"]))
    plaintext = bytes.fromhex(f["kemac_plaintext"])
    ciphertext = bytes.fromhex(f["kemac_ciphertext"])
    if kat_gen.openssl_ctr(encr_r, iv, plaintext) != ciphertext:
        failures.append("KEMAC AES-CM-256 encryption")
    if ciphertext not in response:
        failures.append("KEMAC ciphertext does not occur in the response")

    for failure in failures:
        print("exchange_check: MISMATCH:", failure)
    print("exchange_check: %d checks, %d failed" % (5, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
