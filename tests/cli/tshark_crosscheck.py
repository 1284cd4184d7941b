#!/usr/bin/env python3
"""Independent-decoder cross-check: tkmsctl mikey decode vs Wireshark's MIKEY dissector.

Usage: tshark_crosscheck.py TKMSCTL VECTOR_DIR...

For every *.b64 file in the VECTOR_DIRs, the message is written as a hex dump,
wrapped into a UDP packet to port 2269 (the MIKEY port) with text2pcap, and
dissected with `tshark -T pdml`. Each payload tshark shows is compared field by
field with the JSON of `tkmsctl mikey decode`: header (version, data type, V,
PRF, CSB ID, #CS, map type, SRTP-ID entries), next-payload chaining, T type
and value, RAND, ID, IDR, KEMAC, SP, ERR, V, DH, PKE, SIGN, SAKKE and General
Extension fields. Any disagreement fails the test; a missing tshark fails it
too (the Makefile's `deps` target installs tshark).

Known limits of Wireshark 4.0's dissector, where the comparison stops early:
  * TR, RANDR, TP and TICKET (RFC 6043) are unknown to it: it shows an unnamed
    item there and stops; we check that it stops exactly there.
  * CERT: it mis-reads the Cert len field (takes the Cert type byte as the
    length's high byte) and flags the packet malformed; comparison stops
    before CERT.
  * GENERIC-ID CS ID map (RFC 6043 §6.1.1) is unknown to it: only the header
    fields up to the map type are compared.
  * DH with key validity data: it does not dissect the KV data and takes the
    rest of the message as the DH payload; comparison stops after DH.
  * T of type COUNTER / NTP-UTC-32: it shows no value; only the type is compared.
  * MAC alg 2, HMAC-SHA-256-256 (RFC 6043 Table 6.6), is unknown to it, so it
    cannot size the MAC of a V or KEMAC payload: the algorithm is compared,
    the MAC bytes are not, and the comparison stops after that payload.
"""
import base64
import concurrent.futures
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

TIMEOUT = 30

PAYLOAD_ELEMENT = {  # payload type -> tshark element name
    1: "mikey.kemac", 2: "mikey.pke", 3: "mikey.dh", 4: "mikey.sign", 5: "mikey.t", 6: "mikey.id",
    7: "mikey.cert", 8: "mikey.chash", 9: "mikey.v", 10: "mikey.sp", 11: "mikey.rand", 12: "mikey.err",
    14: "mikey.idr", 21: "mikey.ext", 26: "mikey.sakke",
}
UNKNOWN_TO_WIRESHARK = {13: "TR", 15: "RANDR", 16: "TP", 17: "TICKET"}
KEMAC, CERT, DH, SIGN, V = 1, 7, 3, 4, 9
HMAC_SHA_256 = 2  # MAC alg unknown to Wireshark 4.0
GENERIC_ID = 2
SRTP_ID = 0


class Mismatch(Exception):
    pass


class Comparison:
    def __init__(self, name):
        self.name = name
        self.fields = 0
        self.errors = []
        self.stop = "?"

    def eq(self, what, tshark_value, tkmsctl_value):
        self.fields += 1
        if tshark_value != tkmsctl_value:
            self.errors.append(f"{self.name}: {what}: tshark {tshark_value!r} != tkmsctl {tkmsctl_value!r}")


def hexdump(data):
    lines = []
    for i in range(0, len(data), 16):
        lines.append(f"{i:06x} " + " ".join(f"{b:02x}" for b in data[i:i + 16]))
    return "\n".join(lines) + "\n"


def dissect(data, workdir):
    dump = workdir / "msg.txt"
    pcap = workdir / "msg.pcap"
    dump.write_text(hexdump(data))
    subprocess.run(["text2pcap", "-q", "-u", "40000,2269", str(dump), str(pcap)],
                   check=True, capture_output=True, timeout=TIMEOUT)
    p = subprocess.run(["tshark", "-r", str(pcap), "-T", "pdml"], capture_output=True, timeout=TIMEOUT)
    if p.returncode != 0:
        raise Mismatch(f"tshark failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    text = p.stdout.decode("utf-8", "replace")
    root = ET.fromstring(text[text.index("<?xml"):])
    proto = root.find(".//proto[@name='mikey']")
    if proto is None:
        raise Mismatch("tshark did not dissect the packet as MIKEY")
    malformed = root.find(".//proto[@name='_ws.malformed']") is not None
    return list(proto.findall("field")), malformed


def fields(element):
    """Descendant fields of a payload element, by name, in document order."""
    out = {}
    for f in element.iter("field"):
        if f is not element:
            out.setdefault(f.get("name"), []).append(f)
    return out


def num(f):
    return int(f.get("show"), 0)


def raw(f):
    return (f.get("value") or "").lower()


def one(fs, name, cmp):
    got = fs.get(name)
    if not got:
        cmp.errors.append(f"{cmp.name}: tshark shows no {name}")
        return None
    return got[0]


def compare_uint(cmp, fs, name, want, what):
    f = one(fs, name, cmp)
    if f is not None:
        cmp.eq(what, num(f), want)


def compare_bytes(cmp, fs, name, want_hex, what):
    """Byte strings: tshark leaves the field out (or shows <MISSING>) when empty."""
    got = fs.get(name)
    if not want_hex:
        cmp.eq(what + " (empty)", raw(got[0]) if got else "", "")
        return
    if not got:
        cmp.errors.append(f"{cmp.name}: tshark shows no {name}")
        return
    cmp.eq(what, raw(got[0]), want_hex)


def compare_header(cmp, el, h, first_payload):
    fs = fields(el)
    compare_uint(cmp, fs, "mikey.version", h["version"], "HDR version")
    compare_uint(cmp, fs, "mikey.type", h["data_type"], "HDR data type")
    compare_uint(cmp, fs, "mikey.v.set", int(h["v"]), "HDR V")
    compare_uint(cmp, fs, "mikey.prf_func", h["prf_func"], "HDR PRF func")
    compare_uint(cmp, fs, "mikey.csb_id", h["csb_id"], "HDR CSB ID")
    compare_uint(cmp, fs, "mikey.cs_count", h["cs_count"], "HDR #CS")
    compare_uint(cmp, fs, "mikey.cs_id_map_type", h["cs_id_map_type"], "HDR CS ID map type")
    compare_uint(cmp, fs, "mikey.next_payload", first_payload, "HDR next payload")
    if h["cs_id_map_type"] == SRTP_ID:
        got = list(zip([num(f) for f in fs.get("mikey.srtp_id.policy_no", [])],
                       [num(f) for f in fs.get("mikey.srtp_id.ssrc", [])],
                       [num(f) for f in fs.get("mikey.srtp_id.roc", [])]))
        want = [(e["policy_no"], e["ssrc"], e["roc"]) for e in h["cs_id_map"]]
        cmp.eq("HDR SRTP-ID map", got, want)


def compare_payload(cmp, el, p, next_type):
    fs = fields(el)
    t = p["type"]
    label = f"payload {p['name']}"
    if t != SIGN:
        compare_uint(cmp, fs, "mikey.next_payload", next_type, label + " next payload")
    if t == 5:  # T
        compare_uint(cmp, fs, "mikey.t.ts_type", p["ts_type"], label + " TS type")
        if p["ts_type"] in (0, 1):  # NTP-UTC, NTP: 64-bit value shown as a time
            compare_bytes(cmp, fs, "mikey.t.ntp", p["value_hex"], label + " TS value")
    elif t == 11:  # RAND
        compare_uint(cmp, fs, "mikey.rand.len", len(p["rand"]) // 2, label + " len")
        compare_bytes(cmp, fs, "mikey.rand.data", p["rand"], label)
    elif t in (6, 14):  # ID, IDR
        if t == 14:
            compare_uint(cmp, fs, "mikey.id.role", p["role"], label + " role")
        compare_uint(cmp, fs, "mikey.id.type", p["id_type"], label + " ID type")
        compare_uint(cmp, fs, "mikey.id.len", len(p["data"]) // 2, label + " ID len")
        compare_bytes(cmp, fs, "mikey.id.data", p["data"], label + " ID data")
    elif t == 1:  # KEMAC
        compare_uint(cmp, fs, "mikey.kemac.encr_alg", p["encr_alg"], label + " encr alg")
        compare_uint(cmp, fs, "mikey.kemac.key_data_len", len(p["encr_data"]) // 2, label + " encr data len")
        compare_bytes(cmp, fs, "mikey.kemac.key_data", p["encr_data"], label + " encr data")
        compare_uint(cmp, fs, "mikey.kemac.mac_alg", p["mac_alg"], label + " MAC alg")
        if p["mac_alg"] != HMAC_SHA_256:
            compare_bytes(cmp, fs, "mikey.kemac.mac", p["mac"], label + " MAC")
        if "key_data" in p and "mikey.key.type" in fs:  # plaintext Key data sub-payloads
            cmp.eq(label + " key types", [num(f) for f in fs["mikey.key.type"]],
                   [k["key_type"] for k in p["key_data"]])
            cmp.eq(label + " keys", [raw(f) for f in fs.get("mikey.key.data", [])],
                   [k["key"] for k in p["key_data"]])
    elif t == 10:  # SP
        compare_uint(cmp, fs, "mikey.sp.no", p["policy_no"], label + " policy no")
        compare_uint(cmp, fs, "mikey.sp.proto_type", p["prot_type"], label + " prot type")
        compare_uint(cmp, fs, "mikey.sp.param_len",
                     sum(2 + len(x["value"]) // 2 for x in p["params"]), label + " param len")
        got = list(zip([num(f) for f in fs.get("mikey.sp.param.type", [])],
                       [raw(f) for f in fs.get("mikey.sp.patam.value", [])]))
        cmp.eq(label + " params", got, [(x["type"], x["value"]) for x in p["params"]])
    elif t == 12:  # ERR
        compare_uint(cmp, fs, "mikey.err.no", p["error_no"], label + " error no")
    elif t == 9:  # V
        compare_uint(cmp, fs, "mikey.v.auth_alg", p["auth_alg"], label + " auth alg")
        if p["auth_alg"] != HMAC_SHA_256:
            compare_bytes(cmp, fs, "mikey.v.ver_data", p["mac"], label + " MAC")
    elif t == DH:
        compare_uint(cmp, fs, "mikey.dh.group", p["group"], label + " group")
        compare_bytes(cmp, fs, "mikey.dh.value", p["value"], label + " value")
        compare_uint(cmp, fs, "mikey.dh.kv", p["kv_type"], label + " KV type")
    elif t == 2:  # PKE
        compare_uint(cmp, fs, "mikey.pke.c", p["c"], label + " C")
        compare_uint(cmp, fs, "mikey.pke.len", len(p["data"]) // 2, label + " len")
        compare_bytes(cmp, fs, "mikey.pke.data", p["data"], label + " data")
    elif t == SIGN:
        compare_uint(cmp, fs, "mikey.sign.type", p["s_type"], label + " S type")
        compare_uint(cmp, fs, "mikey.sign.len", len(p["signature"]) // 2, label + " len")
        compare_bytes(cmp, fs, "mikey.sign.data", p["signature"], label + " signature")
    elif t == 26:  # SAKKE
        compare_uint(cmp, fs, "mikey.sakke.params", p["params"], label + " params")
        compare_uint(cmp, fs, "mikey.sakke.idscheme", p["id_scheme"], label + " ID scheme")
        compare_uint(cmp, fs, "mikey.sakke.len", len(p["data"]) // 2, label + " len")
        compare_bytes(cmp, fs, "mikey.sakke.data", p["data"], label + " data")
    elif t == 21:  # General Extension
        compare_uint(cmp, fs, "mikey.ext.type", p["ext_type"], label + " type")
        compare_uint(cmp, fs, "mikey.ext.len", len(p["data"]) // 2, label + " len")
        compare_bytes(cmp, fs, "mikey.ext.data", p["data"], label + " data")


def check_vector(binary, path):
    try:
        return compare_vector(binary, path)
    except (Mismatch, subprocess.SubprocessError, OSError, ValueError, ET.ParseError) as e:
        cmp = Comparison(path.name)
        cmp.errors.append(f"{path.name}: {type(e).__name__}: {e}")
        return cmp


def compare_vector(binary, path):
    cmp = Comparison(path.name)
    p = subprocess.run([binary, "mikey", "decode", str(path)], capture_output=True, timeout=TIMEOUT)
    if p.returncode != 0:
        cmp.errors.append(f"{path.name}: tkmsctl failed: {p.stderr.decode(errors='replace').strip()}")
        return cmp
    doc = json.loads(p.stdout)
    data = base64.b64decode("".join(path.read_text().split()), validate=True)
    with tempfile.TemporaryDirectory() as tmp:
        elements, malformed = dissect(data, pathlib.Path(tmp))
    names = [e.get("name") for e in elements]
    payloads = doc["payloads"]
    types = [x["type"] for x in payloads]

    if not names or names[0] != "mikey.hdr":
        cmp.errors.append(f"{path.name}: tshark shows no common header")
        return cmp
    compare_header(cmp, elements[0], doc["header"], types[0] if types else 0)
    if doc["header"]["cs_id_map_type"] == GENERIC_ID:
        cmp.stop = "GENERIC-ID map (unknown to Wireshark 4.0)"
        return cmp

    cmp.stop = "end of message"
    for i, p in enumerate(payloads):
        k = i + 1  # tshark element index (0 is HDR)
        t = p["type"]
        if t == CERT:
            cmp.stop = "CERT (Wireshark 4.0 mis-reads its length)"
            break
        if k >= len(elements):
            cmp.errors.append(f"{path.name}: tshark stops before payload #{i} ({p['name']})")
            break
        if t in UNKNOWN_TO_WIRESHARK:
            cmp.eq(f"payload #{i} ({p['name']}) is unknown to tshark", names[k], "")
            cmp.eq("tshark stops at the unknown payload", len(elements), k + 1)
            cmp.stop = f"{UNKNOWN_TO_WIRESHARK[t]} (unknown to Wireshark 4.0)"
            break
        cmp.eq(f"payload #{i} element", names[k], PAYLOAD_ELEMENT[t])
        if names[k] != PAYLOAD_ELEMENT[t]:
            break
        compare_payload(cmp, elements[k], p, types[i + 1] if i + 1 < len(types) else 0)
        if t == DH and p["kv_type"] != 0:
            cmp.stop = "DH with KV data (not dissected by Wireshark 4.0)"
            break
        if (t == V and p["auth_alg"] == HMAC_SHA_256) or (t == KEMAC and p["mac_alg"] == HMAC_SHA_256):
            cmp.stop = f"{p['name']} with HMAC-SHA-256-256 (unknown to Wireshark 4.0)"
            break
    else:
        cmp.eq("payload count", len(elements), len(payloads) + 1)

    quirk = cmp.stop.startswith(("CERT", "DH", "GENERIC")) or "HMAC-SHA-256" in cmp.stop
    if malformed and not quirk:
        cmp.errors.append(f"{path.name}: tshark flags the packet malformed")
    return cmp


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    missing = [tool for tool in ("tshark", "text2pcap") if shutil.which(tool) is None]
    if missing:
        print(f"FAIL: {', '.join(missing)} not found; install tshark (make deps)", file=sys.stderr)
        return 1
    binary = sys.argv[1]
    files = []
    for d in sys.argv[2:]:
        files.extend(sorted(pathlib.Path(d).glob("*.b64")))
    if not files:
        print("FAIL: no vector files", file=sys.stderr)
        return 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda f: check_vector(binary, f), files))
    failed = False
    total = 0
    for r in results:
        total += r.fields
        print(f"{r.name}: {r.fields} fields compared; stopped at {r.stop}")
        for e in r.errors:
            print("  MISMATCH:", e)
            failed = True
    print(f"{len(results)} messages, {total} fields compared")
    if total < 150:
        print("FAIL: too few fields compared; is tshark's MIKEY dissector active?")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
