#!/usr/bin/env python3
"""Known-answer vectors for the MIKEY crypto building blocks, computed
independently of the C++ code.

Everything here is written from the RFC text (RFC 3830 §4.1-4.2, RFC 6043
§5.1, §6.1, §6.3, §6.10, Appendix A.2) using only Python's hmac/hashlib; AES
counter mode is delegated to the `openssl enc` command. Nothing is shared with
firmware/mikey/crypto, so agreement between the two is evidence that both read
the RFCs the same way.

  kat_gen.py --write tests/vectors/crypto/kat.txt   regenerate the vectors
  kat_gen.py --check tests/vectors/crypto/kat.txt   recompute every record and
                                                    fail on any difference

File format: records separated by blank lines; each record starts with one or
more '#' comment lines (the first says how the record was obtained) followed by
`name = value` lines; `kind` selects the record type. A record with a missing,
unknown or repeated field is an error. Hex values are lowercase; '-' marks an
absent optional value; `parts` is a comma-separated list of hex strings.
"""

import argparse
import hashlib
import hmac
import subprocess
import sys

# ---------------------------------------------------------------------------
# Constants (RFC 3830 Tables 4.1.3 and 4.1.4, RFC 6043 Tables 5.1 and A.1).
TGK_CONSTANTS = {"tek": 0x2AD01C64, "auth": 0x1B5C7973, "encr": 0x15798CEF, "salt": 0x39A2C14B}
MSG_CONSTANTS = {"encr": 0x150533E1, "auth": 0x2D22AC75, "salt": 0x29B88916}
FORK_CONSTANTS = {"mpkr": 0x2B288856, "tgk": 0x1512B54A}
MPK_CONSTANTS = {"mpki": 0x220E99A2, "mpkr": 0x1F4D675B}
DIRECTION_BYTES = {"initial": 0x01, "response": 0x02}

# PRF func -> (hash, output block size in bits) (RFC 3830 §4.1.2, RFC 6043 §6.1).
PRF_HASHES = {0: (hashlib.sha1, 160), 1: (hashlib.sha256, 256)}
# Encr alg -> (encr key bytes, salt key bytes) (RFC 3830 §4.2.3, RFC 6043 §6.2).
ENCR_KEY_SIZES = {0: (0, 0), 1: (16, 14), 2: (16, 8), 3: (32, 14)}
# MAC alg -> hash (RFC 3830 §4.2.4, RFC 6043 §6.2).
MAC_HASHES = {0: None, 1: hashlib.sha1, 2: hashlib.sha256}
PRF_NAMES = {0: "MIKEY-1 PRF (HMAC-SHA-1)", 1: "PRF-HMAC-SHA-256"}


# ---------------------------------------------------------------------------
# The PRF, transcribed from RFC 3830 §4.1.2.
def p_function(hash_fn, s, label, m):
    """P(s, label, m) = HMAC(s, A_1 || label) || ... || HMAC(s, A_m || label)."""
    a = label  # A_0
    result = b""
    for _ in range(m):
        a = hmac.new(s, a, hash_fn).digest()  # A_i = HMAC(s, A_(i-1))
        result += hmac.new(s, a + label, hash_fn).digest()
    return result


def mikey_prf(prf_func, inkey, label, outkey_len_bits):
    hash_fn, block_bits = PRF_HASHES[prf_func]
    inkey_len_bits = 8 * len(inkey)
    n = -(-inkey_len_bits // 256)
    s = [inkey[32 * i:32 * (i + 1)] for i in range(n)]  # all 256 bits except maybe s_n
    m = -(-outkey_len_bits // block_bits)
    acc = bytes(m * block_bits // 8)
    for s_i in s:
        acc = bytes(x ^ y for x, y in zip(acc, p_function(hash_fn, s_i, label, m)))
    return acc[:outkey_len_bits // 8]


# ---------------------------------------------------------------------------
# Labels, transcribed from the RFC clauses named in each function.
def u8(v):
    assert 0 <= v <= 0xFF
    return bytes([v])


def u16(v):
    return v.to_bytes(2, "big")


def u32(v):
    return v.to_bytes(4, "big")


ALL_ONES = b"\xff\xff\xff\xff"


def rfc3830_tgk_label(key, cs_id, csb_id, rand):  # §4.1.3
    return u32(TGK_CONSTANTS[key]) + u8(cs_id) + u32(csb_id) + rand


def rfc3830_msg_label(key, csb_id, rand):  # §4.1.4
    return u32(MSG_CONSTANTS[key]) + b"\xff" + u32(csb_id) + rand


def length_and_rand(rand):  # "length RANDRx || [RANDRx]", length 0 if omitted
    return b"\x00" if rand is None else u8(len(rand)) + rand


def ticket_msg_label(key, direction, csb_id, randri, randrr):  # RFC 6043 §5.1.2
    return (u32(MSG_CONSTANTS[key]) + b"\xff" + u32(csb_id) + u8(DIRECTION_BYTES[direction]) +
            length_and_rand(randri) + length_and_rand(randrr))


def ticket_tgk_label(key, cs_id, randri, randrr):  # RFC 6043 §5.1.3
    return (u32(TGK_CONSTANTS[key]) + u8(cs_id) + ALL_ONES + b"\x03" +
            length_and_rand(randri) + length_and_rand(randrr))


def fork_label(key, id_data, randrkms):  # RFC 6043 §5.1.1
    return (u32(FORK_CONSTANTS[key]) + b"\xff" + ALL_ONES + b"\x00" +
            u16(len(id_data)) + id_data + u8(len(randrkms)) + randrkms)


def vr_auth_label():  # RFC 6043 §6.10, auth key constant of RFC 3830 §4.1.4
    return u32(MSG_CONSTANTS["auth"]) + b"\xff" + ALL_ONES + b"\x04"


def tpk_label(key, rand):  # RFC 6043 §A.2.1
    return u32(MSG_CONSTANTS[key]) + b"\xff" + ALL_ONES + b"\x05" + u8(len(rand)) + rand


def mpk_label(key, rand):  # RFC 6043 §A.2.2
    return u32(MPK_CONSTANTS[key]) + b"\xff" + ALL_ONES + b"\x06" + u8(len(rand)) + rand


# ---------------------------------------------------------------------------
# AES counter mode through the openssl command (full 128-bit counter).
def openssl_ctr(key, iv, data):
    cipher = {16: "-aes-128-ctr", 32: "-aes-256-ctr"}[len(key)]
    try:
        command = ["openssl", "enc", cipher, "-K", key.hex(), "-iv", iv.hex(), "-nosalt"]
        run = subprocess.run(command, input=data, capture_output=True, check=False)
    except FileNotFoundError:
        sys.exit("kat_gen.py: the openssl command is needed")
    if run.returncode != 0:
        sys.exit("kat_gen.py: openssl failed: " + run.stderr.decode(errors="replace"))
    return run.stdout


def kemac_t64(ts_type, ts_value):
    """The 64-bit T for the IV from the wire TS value."""
    if ts_type in (0, 1):  # NTP-UTC, NTP: 64 bits already
        assert len(ts_value) == 8
        return ts_value
    assert len(ts_value) == 4
    if ts_type == 3:  # NTP-UTC-32: zero fraction appended (RFC 6043 §6.3)
        return ts_value + bytes(4)
    if ts_type == 2:  # COUNTER: leading zeros (RFC 3830 §6.6)
        return bytes(4) + ts_value
    raise ValueError("ts_type")


def kemac_iv(salt, csb_id, t64):  # RFC 3830 §4.2.3
    assert len(salt) == 14
    mask = b"\x00\x00" + u32(csb_id) + t64
    return bytes(x ^ y for x, y in zip(salt, mask)) + b"\x00\x00"


# ---------------------------------------------------------------------------
# Record kinds: input fields, output fields, and how outputs are computed.
HEX, OPT_HEX, INT, NAME, PARTS = "hex", "opt_hex", "int", "name", "parts"
FIELD_TYPES = {
    "prf": INT, "inkey": HEX, "label": HEX, "outlen": INT, "out": HEX,
    "tgk": HEX, "key": NAME, "cs_id": INT, "csb_id": INT, "rand": HEX,
    "encr_alg": INT, "mac_alg": INT, "encr_label": HEX, "salt_label": HEX, "auth_label": HEX,
    "encr_key": HEX, "salt_key": HEX, "auth_key": HEX, "direction": NAME,
    "randri": OPT_HEX, "randrr": OPT_HEX, "id_data": HEX, "randrkms": HEX, "mpkr": HEX,
    "tpk": HEX, "mpk": HEX, "key_len": INT, "key_data_salt": OPT_HEX, "h": INT, "g": INT,
    "master_key": HEX, "master_salt": HEX, "aes_key": HEX, "iv": HEX, "in": HEX, "ts_type": INT,
    "ts_value": HEX, "ts64": HEX, "plaintext": HEX, "ciphertext": HEX, "parts": PARTS,
    "mac": HEX,
}


def message_keys(prf_func, inkey, encr_alg, mac_alg, label_for):
    encr_len, salt_len = ENCR_KEY_SIZES[encr_alg]
    mac_hash = MAC_HASHES[mac_alg]
    auth_len = 0 if mac_hash is None else mac_hash().digest_size
    out = {}
    for name, length in (("encr", encr_len), ("salt", salt_len), ("auth", auth_len)):
        label = label_for(name)
        out[name + "_label"] = label
        out[name + "_key"] = mikey_prf(prf_func, inkey, label, 8 * length) if length else b""
    return out


def compute_prf(r):
    return {"out": mikey_prf(r["prf"], r["inkey"], r["label"], 8 * r["outlen"])}


def compute_rfc3830_tgk(r):
    label = rfc3830_tgk_label(r["key"], r["cs_id"], r["csb_id"], r["rand"])
    return {"label": label, "out": mikey_prf(r["prf"], r["tgk"], label, 8 * r["outlen"])}


def compute_rfc3830_msg(r):
    return message_keys(r["prf"], r["inkey"], r["encr_alg"], r["mac_alg"],
                        lambda k: rfc3830_msg_label(k, r["csb_id"], r["rand"]))


def compute_ticket_msg(r):
    return message_keys(r["prf"], r["inkey"], r["encr_alg"], r["mac_alg"],
                        lambda k: ticket_msg_label(k, r["direction"], r["csb_id"], r["randri"],
                                                   r["randrr"]))


def compute_ticket_tgk(r):
    label = ticket_tgk_label(r["key"], r["cs_id"], r["randri"], r["randrr"])
    return {"label": label, "out": mikey_prf(r["prf"], r["tgk"], label, 8 * r["outlen"])}


def compute_fork(r):
    label = fork_label(r["key"], r["id_data"], r["randrkms"])
    return {"label": label, "out": mikey_prf(r["prf"], r["inkey"], label, 8 * len(r["inkey"]))}


def compute_vr_auth(r):
    label = vr_auth_label()
    mac_hash = MAC_HASHES[r["mac_alg"]]
    out = b"" if mac_hash is None else mikey_prf(r["prf"], r["mpkr"], label,
                                                 8 * mac_hash().digest_size)
    return {"label": label, "out": out}


def compute_tpk(r):
    return message_keys(r["prf"], r["tpk"], r["encr_alg"], r["mac_alg"],
                        lambda k: tpk_label(k, r["rand"]))


def compute_mpk(r):
    label = mpk_label(r["key"], r["rand"])
    return {"label": label, "out": mikey_prf(r["prf"], r["mpk"], label, 8 * len(r["mpk"]))}


def srtp_keys(prf_func, tgk, key_len, key_data_salt, label_for):
    master_key = mikey_prf(prf_func, tgk, label_for("tek"), 8 * key_len)
    if key_data_salt is not None:  # a salt in the Key data sub-payload SHALL be used
        master_salt = key_data_salt
    else:
        master_salt = mikey_prf(prf_func, tgk, label_for("salt"), 112)
    return {"master_key": master_key, "master_salt": master_salt}


def compute_srtp_3830(r):
    return srtp_keys(r["prf"], r["tgk"], r["key_len"], r["key_data_salt"],
                     lambda k: rfc3830_tgk_label(k, r["cs_id"], r["csb_id"], r["rand"]))


def compute_srtp_6043(r):
    randri = r["randri"] if r["h"] else None  # RANDRi iff H flag
    randrr = r["randrr"] if r["g"] else None  # RANDRr iff G flag
    return srtp_keys(r["prf"], r["tgk"], r["key_len"], r["key_data_salt"],
                     lambda k: ticket_tgk_label(k, r["cs_id"], randri, randrr))


def compute_aes_ctr(r):
    return {"out": openssl_ctr(r["aes_key"], r["iv"], r["in"])}


def compute_kemac(r):
    assert r["encr_alg"] in (1, 3)
    t64 = kemac_t64(r["ts_type"], r["ts_value"])
    iv = kemac_iv(r["salt_key"], r["csb_id"], t64)
    return {"ts64": t64, "iv": iv, "ciphertext": openssl_ctr(r["encr_key"], iv, r["plaintext"])}


def compute_mac(r):
    mac_hash = MAC_HASHES[r["mac_alg"]]
    if mac_hash is None:
        return {"mac": b""}
    return {"mac": hmac.new(r["auth_key"], b"".join(r["parts"]), mac_hash).digest()}


KINDS = {
    "prf": (["prf", "inkey", "label", "outlen"], ["out"], compute_prf),
    "rfc3830_tgk": (["prf", "tgk", "key", "cs_id", "csb_id", "rand", "outlen"], ["label", "out"],
                    compute_rfc3830_tgk),
    "rfc3830_msg": (["prf", "inkey", "csb_id", "rand", "encr_alg", "mac_alg"],
                    ["encr_label", "salt_label", "auth_label", "encr_key", "salt_key", "auth_key"],
                    compute_rfc3830_msg),
    "ticket_msg": (["prf", "inkey", "direction", "csb_id", "randri", "randrr", "encr_alg",
                    "mac_alg"],
                   ["encr_label", "salt_label", "auth_label", "encr_key", "salt_key", "auth_key"],
                   compute_ticket_msg),
    "ticket_tgk": (["prf", "tgk", "key", "cs_id", "randri", "randrr", "outlen"], ["label", "out"],
                   compute_ticket_tgk),
    "fork": (["prf", "inkey", "key", "id_data", "randrkms"], ["label", "out"], compute_fork),
    "vr_auth": (["prf", "mpkr", "mac_alg"], ["label", "out"], compute_vr_auth),
    "tpk": (["prf", "tpk", "rand", "encr_alg", "mac_alg"],
            ["encr_label", "salt_label", "auth_label", "encr_key", "salt_key", "auth_key"],
            compute_tpk),
    "mpk": (["prf", "mpk", "key", "rand"], ["label", "out"], compute_mpk),
    "srtp_3830": (["prf", "tgk", "cs_id", "csb_id", "rand", "key_len", "key_data_salt"],
                  ["master_key", "master_salt"], compute_srtp_3830),
    "srtp_6043": (["prf", "tgk", "cs_id", "h", "g", "randri", "randrr", "key_len",
                   "key_data_salt"], ["master_key", "master_salt"], compute_srtp_6043),
    "aes_ctr": (["aes_key", "iv", "in"], ["out"], compute_aes_ctr),
    "kemac": (["encr_alg", "encr_key", "salt_key", "csb_id", "ts_type", "ts_value", "plaintext"],
              ["ts64", "iv", "ciphertext"], compute_kemac),
    "mac": (["mac_alg", "auth_key", "parts"], ["mac"], compute_mac),
}


# ---------------------------------------------------------------------------
# Text encoding of field values.
def format_value(name, value):
    kind = FIELD_TYPES[name]
    if kind in (HEX, OPT_HEX):
        return "-" if value is None else value.hex()
    if kind == INT:
        return "0x%08x" % value if name == "csb_id" else str(value)
    if kind == PARTS:
        return ",".join(p.hex() for p in value)
    return value


def parse_value(name, text):
    kind = FIELD_TYPES[name]
    if kind == OPT_HEX and text == "-":
        return None
    if kind in (HEX, OPT_HEX):
        return bytes.fromhex(text)
    if kind == INT:
        return int(text, 0)
    if kind == PARTS:
        return [bytes.fromhex(p) for p in text.split(",")]
    return text


# ---------------------------------------------------------------------------
# Deterministic "random" inputs: SHA-256 in counter mode over a tag.
def det(tag, n):
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"tkms kat %s %d" % (tag.encode(), counter)).digest()
        counter += 1
    return out[:n]


def key_data(key_type, key, salt=None, spi=None, last=True):
    """One Key data sub-payload (RFC 3830 §6.13), KV = SPI when spi is given."""
    kv = 0 if spi is None else 1
    body = u8(0 if last else 20) + u8(key_type << 4 | kv) + u16(len(key)) + key
    if salt is not None:
        body += u16(len(salt)) + salt
    if spi is not None:
        body += u8(len(spi)) + spi
    return body


def build_records():
    """(comment, kind, inputs) for every committed vector."""
    records = []
    how = "computed by kat_gen.py (Python hmac/hashlib, RFC text)"

    # PRF: multi-chunk inkeys and multi-block outputs for both hashes.
    for prf_func in (0, 1):
        for inkey_len in (16, 20, 32, 33, 64, 70):
            for outlen in (14, 16, 20, 32, 48, 64):
                tag = "prf%d-%d-%d" % (prf_func, inkey_len, outlen)
                label_len = (10, 28, 43, 90)[(inkey_len + outlen) % 4]
                records.append(("%s, inkey %d bytes, outkey %d bytes; %s" %
                                (PRF_NAMES[prf_func], inkey_len, outlen, how), "prf", {
                                    "prf": prf_func, "inkey": det(tag + "key", inkey_len),
                                    "label": det(tag + "label", label_len), "outlen": outlen}))

    # RFC 3830 §4.1.3: TGK -> TEK / auth / encr / salt.
    for prf_func, tgk_len, cs_id, csb_id in ((0, 16, 1, 0xCD177E50), (1, 32, 2, 0x00000001)):
        for key, outlen in (("tek", 16 if tgk_len == 16 else 32), ("auth", 20), ("encr", 16),
                            ("salt", 14)):
            tag = "3830tgk%d%s" % (prf_func, key)
            comment = "RFC 3830 §4.1.3 %s from TGK, %s; %s" % (key, PRF_NAMES[prf_func], how)
            records.append((comment,
                            "rfc3830_tgk", {
                                "prf": prf_func, "tgk": det("3830tgk%d" % prf_func, tgk_len),
                                "key": key, "cs_id": cs_id, "csb_id": csb_id,
                                "rand": det(tag + "rand", 16), "outlen": outlen}))

    # RFC 3830 §4.1.4: PSK / envelope key -> encr / salt / auth.
    for prf_func, inkey_len, encr_alg, mac_alg, what in (
            (0, 16, 1, 1, "PSK, AES-CM-128 + HMAC-SHA-1"),
            (0, 20, 2, 0, "envelope key, AES-KW-128 + NULL MAC"),
            (0, 16, 0, 0, "PSK, NULL + NULL"),
            (1, 32, 3, 2, "PSK, AES-CM-256 + HMAC-SHA-256")):
        tag = "3830msg%d%d" % (prf_func, encr_alg)
        records.append(("RFC 3830 §4.1.4 message keys from %s, %s; %s" %
                        (what, PRF_NAMES[prf_func], how), "rfc3830_msg", {
                            "prf": prf_func, "inkey": det(tag + "key", inkey_len),
                            "csb_id": 0x12345678 + encr_alg, "rand": det(tag + "rand", 16),
                            "encr_alg": encr_alg, "mac_alg": mac_alg}))

    # RFC 6043 §5.1.2: initial / response message keys.
    for prf_func, inkey_len, direction, ri, rr, encr_alg, mac_alg, what in (
            (0, 16, "initial", 16, None, 1, 1, "REQUEST_INIT from PSK (RANDRi only)"),
            (0, 16, "response", 16, None, 1, 1, "REQUEST_RESP from PSK (RANDRi only)"),
            (0, 20, "initial", None, 16, 1, 1, "RESOLVE_INIT from PSK (RANDRr only)"),
            (0, 16, "response", 16, 16, 1, 1, "TRANSFER_RESP from MPKr' (RANDRi and RANDRr)"),
            (1, 32, "initial", 32, None, 3, 2, "TRANSFER_INIT from MPKi, 256-bit algorithms"),
            (1, 32, "response", 32, 32, 3, 2, "TRANSFER_RESP from MPKr', 256-bit algorithms"),
            (1, 48, "response", None, 24, 3, 2, "RESOLVE_RESP from a 48-byte envelope key"),
            (0, 16, "initial", 16, None, 0, 0, "NULL + NULL"),
            (0, 16, "response", 16, None, 2, 0, "AES-KW-128 + NULL MAC")):
        tag = "6043msg%d%s%s%s%d" % (prf_func, direction, ri, rr, encr_alg)
        records.append(("RFC 6043 §5.1.2 %s, %s; %s" % (what, PRF_NAMES[prf_func], how),
                        "ticket_msg", {
                            "prf": prf_func, "inkey": det(tag + "key", inkey_len),
                            "direction": direction, "csb_id": 0x0A0B0C00 + inkey_len,
                            "randri": None if ri is None else det(tag + "ri", ri),
                            "randrr": None if rr is None else det(tag + "rr", rr),
                            "encr_alg": encr_alg, "mac_alg": mac_alg}))

    # RFC 6043 §5.1.3: TGK / TGK' / GTGK -> TEK etc.
    for prf_func, tgk_len, key, outlen, ri, rr, what in (
            (0, 16, "tek", 16, 16, None, "TEK from TGK, H flag only"),
            (0, 16, "salt", 14, 16, None, "salt from TGK, H flag only"),
            (0, 16, "tek", 16, None, 16, "TEK from TGK', G flag only"),
            (0, 16, "auth", 20, 16, 16, "auth key from GTGK, H and G flags"),
            (1, 32, "tek", 32, 32, 32, "TEK from TGK', H and G flags"),
            (1, 32, "encr", 32, 32, None, "encr key from TGK, H flag only")):
        tag = "6043tgk%d%s%s%s" % (prf_func, key, ri, rr)
        records.append(("RFC 6043 §5.1.3 %s, %s; %s" % (what, PRF_NAMES[prf_func], how),
                        "ticket_tgk", {
                            "prf": prf_func, "tgk": det(tag + "tgk", tgk_len), "key": key,
                            "cs_id": 1 + tgk_len % 3, "randri": None if ri is None else
                            det(tag + "ri", ri), "randrr": None if rr is None else
                            det(tag + "rr", rr), "outlen": outlen}))

    # RFC 6043 §5.1.1: forking.
    for prf_func, key, inkey_len, id_data in (
            (0, "mpkr", 16, b"sip:bob@example.org"),
            (0, "tgk", 16, b"sip:bob@example.org"),
            (1, "mpkr", 32, b"tel:+46701234567"),
            (1, "tgk", 32, b"sip:" + b"conference-" * 25 + b"@example.org")):  # > 255 bytes
        tag = "fork%d%s%d" % (prf_func, key, len(id_data))
        records.append(("RFC 6043 §5.1.1 forked %s (ID %d bytes), %s; %s" %
                        (key, len(id_data), PRF_NAMES[prf_func], how), "fork", {
                            "prf": prf_func, "inkey": det(tag + "key", inkey_len), "key": key,
                            "id_data": id_data, "randrkms": det(tag + "rkms", 16)}))

    # RFC 6043 §6.10: Vr auth key from MPKr.
    for prf_func, mac_alg, mpkr_len in ((0, 1, 16), (1, 2, 32), (0, 0, 16)):
        records.append(("RFC 6043 §6.10 Initiator Data Vr auth key, MAC alg %d, %s; %s" %
                        (mac_alg, PRF_NAMES[prf_func], how), "vr_auth", {
                            "prf": prf_func, "mpkr": det("vr%d%d" % (prf_func, mac_alg), mpkr_len),
                            "mac_alg": mac_alg}))

    # RFC 6043 §A.2.1: base ticket keys from the TPK.
    for prf_func, tpk_len, encr_alg, mac_alg in ((0, 16, 1, 1), (1, 32, 3, 2), (0, 20, 2, 1)):
        tag = "tpk%d%d" % (prf_func, encr_alg)
        records.append(("RFC 6043 §A.2.1 base ticket keys from TPK, encr %d, MAC %d, %s; %s" %
                        (encr_alg, mac_alg, PRF_NAMES[prf_func], how), "tpk", {
                            "prf": prf_func, "tpk": det(tag + "tpk", tpk_len),
                            "rand": det(tag + "rand", 16 if tpk_len <= 16 else 32),
                            "encr_alg": encr_alg, "mac_alg": mac_alg}))

    # RFC 6043 §A.2.2: MPKi / MPKr.
    for prf_func, mpk_len in ((0, 16), (1, 32)):
        for key in ("mpki", "mpkr"):
            tag = "mpk%d" % prf_func
            comment = "RFC 6043 §A.2.2 %s from MPK, %s; %s" % (key, PRF_NAMES[prf_func], how)
            records.append((comment,
                            "mpk", {"prf": prf_func, "mpk": det(tag + "mpk", mpk_len), "key": key,
                                    "rand": det(tag + "rand", mpk_len)}))

    # SRTP master key / salt per crypto session.
    for prf_func, tgk_len, key_len, with_salt in ((0, 16, 16, False), (0, 16, 16, True),
                                                  (1, 32, 32, False)):
        tag = "srtp3830%d%d" % (prf_func, with_salt)
        records.append(("RFC 3830 §4.1.3 SRTP master key, salt %s, %s; %s" %
                        ("from Key data" if with_salt else "derived", PRF_NAMES[prf_func], how),
                        "srtp_3830", {
                            "prf": prf_func, "tgk": det(tag + "tgk", tgk_len), "cs_id": 2,
                            "csb_id": 0xCD177E50, "rand": det(tag + "rand", 16),
                            "key_len": key_len,
                            "key_data_salt": det(tag + "salt", 14) if with_salt else None}))
    for prf_func, tgk_len, key_len, h, g, with_salt in ((0, 16, 16, 1, 0, False),
                                                        (0, 16, 16, 0, 1, False),
                                                        (1, 32, 32, 1, 1, False),
                                                        (1, 32, 32, 1, 1, True)):
        tag = "srtp6043%d%d%d%d" % (prf_func, h, g, with_salt)
        records.append(("RFC 6043 §5.1.3 SRTP master key, H=%d G=%d, salt %s, %s; %s" %
                        (h, g, "from Key data" if with_salt else "derived", PRF_NAMES[prf_func],
                         how), "srtp_6043", {
                            "prf": prf_func, "tgk": det(tag + "tgk", tgk_len), "cs_id": 1,
                            "h": h, "g": g, "randri": det(tag + "ri", 16),
                            "randrr": det(tag + "rr", 16), "key_len": key_len,
                            "key_data_salt": det(tag + "salt", 14) if with_salt else None}))

    # Provider AES-CTR: 128-bit counter carries and wrap-around.
    how_ctr = "computed with `openssl enc -aes-NNN-ctr -nosalt`"
    for key_len, iv, data_len, what in (
            (16, bytes.fromhex("0102030405060708ffffffffffffffff"), 40, "carry into byte 7"),
            (16, bytes.fromhex("000102030405060708090a0b0c0dfffe"), 33, "carry from byte 14"),
            (32, bytes.fromhex("ffffffffffffffffffffffffffffffff"), 50, "wrap-around mod 2^128")):
        tag = "ctr%d%d" % (key_len, data_len)
        records.append(("AES-%d-CTR, %s; %s" % (8 * key_len, what, how_ctr), "aes_ctr", {
            "aes_key": det(tag + "key", key_len), "iv": iv, "in": det(tag + "in", data_len)}))

    # KEMAC encryption (RFC 3830 §4.2.3) with each timestamp type.
    how_kemac = "IV by kat_gen.py, ciphertext by `openssl enc -aes-NNN-ctr -nosalt`"
    tgk_payload = key_data(0 + 1, det("kemac tgk", 16), salt=det("kemac salt", 14),
                           spi=b"\x00\x00\x00\x01")  # TGK+SALT, KV=SPI
    ticket_chain = (key_data(6, det("kemac mpki", 16), spi=b"\x01", last=False) +
                    key_data(6, det("kemac mpkr", 16), spi=b"\x02", last=False) +
                    key_data(0, det("kemac tgk2", 16), spi=b"\x03"))
    for encr_alg, ts_type, ts_value, csb_id, plaintext, what in (
            (1, 0, bytes.fromhex("c8e350ea00000000"), 0xCD177E50, tgk_payload, "NTP-UTC"),
            (1, 2, bytes.fromhex("0000002a"), 0x12345678, tgk_payload, "COUNTER"),
            (1, 3, bytes.fromhex("e8c7b3a1"), 0xFFFFFFFF, ticket_chain,
             "NTP-UTC-32, base ticket CSB 0xFFFFFFFF"),
            (3, 1, bytes.fromhex("e8c7b3a180000000"), 0x0A0B0C0D, ticket_chain, "NTP"),
            (3, 3, bytes.fromhex("e8c7b3a2"), 0x0A0B0C0E, tgk_payload, "NTP-UTC-32"),
            (3, 2, bytes.fromhex("ffffffff"), 0x00000000, ticket_chain, "COUNTER 0xffffffff")):
        key_len = 16 if encr_alg == 1 else 32
        tag = "kemac%d%d" % (encr_alg, ts_type)
        records.append(("KEMAC AES-CM-%d, %s; %s" % (8 * key_len, what, how_kemac), "kemac", {
            "encr_alg": encr_alg, "encr_key": det(tag + "key", key_len),
            "salt_key": det(tag + "salt", 14), "csb_id": csb_id, "ts_type": ts_type,
            "ts_value": ts_value, "plaintext": plaintext}))

    # MACs over several parts.
    how_mac = "computed with Python hmac over the concatenated parts"
    for mac_alg, key_len, part_lens, what in ((1, 20, (71, 15, 16), "HMAC-SHA-1-160"),
                                              (2, 32, (120, 0, 19, 300), "HMAC-SHA-256-256"),
                                              (0, 0, (40, 8), "NULL")):
        tag = "mac%d" % mac_alg
        records.append(("%s MAC; %s" % (what, how_mac), "mac", {
            "mac_alg": mac_alg, "auth_key": det(tag + "key", key_len),
            "parts": [det(tag + "part%d" % i, n) for i, n in enumerate(part_lens)]}))
    return records


def render(records):
    lines = [
        "# Known-answer vectors for firmware/mikey/crypto (tests/crypto).",
        "# Generated and verified by tests/crypto/kat_gen.py, an independent Python",
        "# implementation of RFC 3830 §4.1-4.2 and RFC 6043 §5.1, §6.10, App. A.2",
        "# (hmac/hashlib) plus the openssl command for AES counter mode.",
        "# Do not edit by hand: run `python3 tests/crypto/kat_gen.py --write <this file>`.",
        "",
    ]
    for comment, kind, inputs in records:
        inputs_fields, output_fields, compute = KINDS[kind]
        assert list(inputs) == inputs_fields, kind
        outputs = compute(inputs)
        lines.append("# " + comment)
        lines.append("kind = " + kind)
        for name in inputs_fields:
            lines.append("%s = %s" % (name, format_value(name, inputs[name])))
        for name in output_fields:
            lines.append("%s = %s" % (name, format_value(name, outputs[name])))
        lines.append("")
    return "\n".join(lines)


def parse(text):
    """[(line_number, comments, {name: value_text})]; raises ValueError."""
    records = []
    block = []
    for number, line in enumerate(text.split("\n") + [""], start=1):
        if line.strip():
            block.append((number, line))
            continue
        if not block:
            continue
        comments = [l for _, l in block if l.startswith("#")]
        fields = {}
        for n, l in block:
            if l.startswith("#"):
                continue
            name, sep, value = l.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                raise ValueError("line %d: expected `name = value`" % n)
            if name in fields:
                raise ValueError("line %d: field %s repeated" % (n, name))
            fields[name] = value
        if fields:
            if not comments:
                raise ValueError("line %d: record has no comment line" % block[0][0])
            records.append((block[0][0], comments, fields))
        block = []
    return records


def check(path):
    with open(path, encoding="utf-8") as f:
        records = parse(f.read())
    failures = 0
    for line, _, fields in records:
        kind = fields.pop("kind", None)
        if kind not in KINDS:
            print("%s:%d: unknown or missing kind %r" % (path, line, kind))
            failures += 1
            continue
        input_fields, output_fields, compute = KINDS[kind]
        expected_names = set(input_fields) | set(output_fields)
        missing = expected_names - set(fields)
        unused = set(fields) - expected_names
        if missing or unused:
            print("%s:%d: %s record: missing %s, unused %s" %
                  (path, line, kind, sorted(missing), sorted(unused)))
            failures += 1
            continue
        try:
            inputs = {name: parse_value(name, fields[name]) for name in input_fields}
            outputs = compute(inputs)
        except (ValueError, KeyError, AssertionError) as error:
            print("%s:%d: %s record is malformed: %r" % (path, line, kind, error))
            failures += 1
            continue
        for name in output_fields:
            got = format_value(name, outputs[name])
            if got != fields[name]:
                print("%s:%d: %s %s: file has %s, recomputed %s" %
                      (path, line, kind, name, fields[name], got))
                failures += 1
    if not records:
        print("%s: no records" % path)
        failures += 1
    print("%d records checked, %d mismatches" % (len(records), failures))
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="PATH", help="write the vectors to PATH")
    group.add_argument("--check", metavar="PATH", help="recompute the vectors in PATH")
    args = parser.parse_args()
    if args.check:
        return check(args.check)
    with open(args.write, "w", encoding="utf-8") as f:
        f.write(render(build_records()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
