#!/usr/bin/env python3
"""CLI tests of tkmsctl: run the built binary as an operator would.

Usage: cli_test.py TKMSCTL CASE VECTOR_DIR...

CASE is one of:
  decode_forms   every input form of a vector (base64, hex, raw, SDP line,
                 whole SDP, HTTP request/response) decodes to identical JSON
  decode_errors  invalid input exits 1 with "tkmsctl: offset N: <rule>: ..."
                 (or "input offset N: <format>: ...") on stderr, nothing on stdout
  roundtrip      encode(decode(x)) == x for every *.b64 file in VECTOR_DIRs
  encode_errors  invalid JSON exits 1 naming the JSON path or the rule
  usage          usage errors exit 2; --help and --version exit 0

Only the Python standard library is used.
"""
import json
import pathlib
import re
import subprocess
import sys

TIMEOUT = 30


class Checker:
    def __init__(self):
        self.failures = []
        self.checks = 0

    def expect(self, condition, message):
        self.checks += 1
        if not condition:
            self.failures.append(message)


def run(binary, args, stdin=b""):
    p = subprocess.run([binary] + args, input=stdin, capture_output=True, timeout=TIMEOUT)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def vector_files(dirs):
    files = []
    for d in dirs:
        files.extend(sorted(pathlib.Path(d).glob("*.b64")))
    return files


def b64_of(path):
    return "".join(path.read_text().split())


def find_vector(dirs, name):
    for path in vector_files(dirs):
        if path.name == name:
            return path
    raise SystemExit(f"cli_test: vector {name} not found in {dirs}")


def input_forms(b64):
    """Every encoding tkmsctl accepts, of the message whose base64 is b64."""
    import base64

    raw = base64.b64decode(b64, validate=True)
    hexed = raw.hex()
    wrapped = "\r\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\r\n"
    spaced = "\n".join(" ".join(hexed[k:k + 2] for k in range(i, min(i + 32, len(hexed)), 2))
                       for i in range(0, len(hexed), 32))
    sdp = ("v=0\r\no=alice 1 1 IN IP4 host.example.org\r\ns=-\r\nt=0 0\r\n"
           "a=key-mgmt:keyp1 AAAA\r\n"
           f"a=key-mgmt:mikey {b64}\r\n"
           "m=audio 49000 RTP/SAVP 98\r\na=rtpmap:98 AMR/8000\r\n")
    body = b64.encode()
    request = (b"POST /keymanagement?requesttype=ticketrequest HTTP/1.1\r\n"
               b"Host: kms.example.org\r\nContent-Type: application/mikey\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/mikey\r\n"
                b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
    lf_request = (b"POST /keymanagement?requesttype=ticketresolve HTTP/1.1\n"
                  b"Host: kms.example.org\n\n" + body + b"\n")
    return {
        "base64": (b64 + "\n").encode(),
        "base64-wrapped": wrapped.encode(),
        "hex": hexed.encode(),
        "hex-spaced": (spaced + "\n").encode(),
        "raw": raw,
        "sdp-line": f"a=key-mgmt:mikey {b64}\r\n".encode(),
        "sdp-line-space": f"a=key-mgmt: mikey {b64}".encode(),
        "sdp": sdp.encode(),
        "http-request": request,
        "http-response-binary": response,
        "http-request-lf": lf_request,
    }


def case_decode_forms(binary, dirs, c):
    for name in ("request_init_psk.b64", "transfer_init.b64", "rfc4567_psk_init.b64"):
        path = find_vector(dirs, name)
        rc, reference, err = run(binary, ["mikey", "decode", str(path)])
        c.expect(rc == 0 and reference.startswith("{"), f"{name}: decode of the file failed: {err}")
        json.loads(reference)
        for form, data in input_forms(b64_of(path)).items():
            for args in (["mikey", "decode"], ["mikey", "decode", "-"]):
                rc, out, err = run(binary, args, data)
                c.expect(rc == 0, f"{name} as {form}: exit {rc}: {err.strip()}")
                c.expect(out == reference, f"{name} as {form}: JSON differs from the base64 decode")
                c.expect(err == "", f"{name} as {form}: unexpected stderr {err!r}")
        rc, out, err = run(binary, ["mikey", "decode", "--format", "base64", "--compact", str(path)])
        c.expect(rc == 0 and json.loads(out) == json.loads(reference) and out.count("\n") == 1,
                 f"{name}: --format base64 --compact differs")


def case_decode_errors(binary, dirs, c):
    import base64

    msg = base64.b64decode(b64_of(find_vector(dirs, "error.b64")))
    cases = [
        # (label, input bytes, extra args, stderr regex)
        ("truncated raw", msg[:20], [], r"^tkmsctl: offset 20: truncated: "),
        ("truncated base64", base64.b64encode(msg[:20]) + b"\n", [],
         r"^tkmsctl: offset 20: truncated: .*\ntkmsctl: note: input read as base64"),
        ("bad version", b"\x02" + msg[1:], [], r"^tkmsctl: offset 0: hdr\.version: MIKEY version 2"),
        ("unknown payload", msg[:2] + b"\x63" + msg[3:], [],
         r"^tkmsctl: offset 10: payload\.unknown_type: payload type 99 is not defined"),
        ("trailing byte", msg + b"\x00", [], r"^tkmsctl: offset \d+: trailing_bytes: "),
        ("bad MAC alg (hex)", (msg[:-33] + b"\x07" + msg[-32:]).hex().encode(), [],
         r"^tkmsctl: offset \d+: mac_alg: Auth alg 7 is not defined \(MIKEY error 3, Invalid MAC\)"),
        ("SDP protocol id case", b"v=0\r\na=key-mgmt:MIKEY " + base64.b64encode(msg) + b"\r\n", [],
         r"^tkmsctl: input offset 16: sdp: the protocol identifier is case-sensitive"),
        ("HTTP content type", b"POST / HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n" + base64.b64encode(msg),
         [], r"^tkmsctl: input offset 17: http: Content-Type \"text/plain\" is not application/mikey"),
        ("HTTP truncated body", b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + msg, [],
         r"^tkmsctl: input offset \d+: http: body of \d+ bytes is shorter than Content-Length 500"),
        ("text garbage", b"hello, world\n", [], r"^tkmsctl: input offset 5: unexpected character ','"),
        ("odd hex", b"0102030\n", [], r"^tkmsctl: input offset \d+: the input looks like hex but has an odd"),
        ("forced hex", base64.b64encode(msg), ["--format", "hex"],
         r"^tkmsctl: input offset 1: hex: unexpected character 'Q'"),
        ("empty", b"", [], r"^tkmsctl: input offset 0: empty input"),
        ("too large", b"A" * (1024 * 1024 + 1), [], r"^tkmsctl: standard input exceeds the limit of 1048576 bytes"),
    ]
    for label, data, extra, pattern in cases:
        rc, out, err = run(binary, ["mikey", "decode"] + extra, data)
        c.expect(rc == 1, f"{label}: exit {rc}, want 1 (stderr {err.strip()!r})")
        c.expect(out == "", f"{label}: unexpected stdout {out[:80]!r}")
        c.expect(re.search(pattern, err) is not None, f"{label}: stderr {err.strip()!r} does not match {pattern!r}")


def case_roundtrip(binary, dirs, c):
    files = vector_files(dirs)
    c.expect(len(files) >= 14, f"only {len(files)} vector files found in {dirs}")
    for path in files:
        want = b64_of(path)
        for flags in ([], ["--compact"]):
            rc, out, err = run(binary, ["mikey", "decode"] + flags + [str(path)])
            c.expect(rc == 0, f"{path.name}: decode exit {rc}: {err.strip()}")
            rc, encoded, err = run(binary, ["mikey", "encode"], out.encode())
            c.expect(rc == 0, f"{path.name}: encode exit {rc}: {err.strip()}")
            c.expect(encoded == want + "\n", f"{path.name}: encode(decode(x)) != x {flags}")


def case_encode_errors(binary, dirs, c):
    rc, text, err = run(binary, ["mikey", "decode", str(find_vector(dirs, "request_init_psk.b64"))])
    base = json.loads(text)

    def mutated(fn):
        doc = json.loads(json.dumps(base))
        fn(doc)
        return json.dumps(doc, indent=1).encode()

    def remove_t(d):
        del d["payloads"][0]

    def set_(path, value):
        def fn(d):
            obj = d
            for key in path[:-1]:
                obj = obj[key]
            obj[path[-1]] = value
        return fn

    def delete(path):
        def fn(d):
            obj = d
            for key in path[:-1]:
                obj = obj[key]
            del obj[path[-1]]
        return fn

    cases = [
        ("syntax", b'{"header": }', r"^tkmsctl: JSON syntax error at byte offset 11 \(line 1, column 12\)"),
        ("duplicate key", b'{"header": {"v": true, "v": true}}', r"^tkmsctl: header\.v: duplicate key at byte offset 23"),
        ("not an object", b"[]", r"^tkmsctl: must be an object, not array"),
        ("missing field", mutated(delete(["header", "csb_id"])), r"^tkmsctl: header\.csb_id: missing field"),
        ("wrong type", mutated(set_(["header", "v"], "yes")), r"^tkmsctl: header\.v: must be true or false"),
        ("out of range", mutated(set_(["header", "csb_id"], 2**32)),
         r"^tkmsctl: header\.csb_id: 4294967296 is out of range \(0\.\.4294967295\)"),
        ("negative", mutated(set_(["payloads", 0, "value"], -1)), r"^tkmsctl: payloads\[0\]\.value: -1 is out of range"),
        ("unknown field", mutated(set_(["payloads", 2, "colour"], "red")),
         r"^tkmsctl: payloads\[2\]\.colour: unknown field"),
        ("name mismatch", mutated(set_(["payloads", 1, "name"], "T")),
         r"^tkmsctl: payloads\[1\]\.name: \"T\" does not match type 15"),
        ("unknown type", mutated(set_(["payloads", 1, "type"], 99)),
         r"^tkmsctl: payloads\[1\]\.type: payload type 99 is not defined"),
        ("non-hex", mutated(set_(["payloads", 1, "rand"], "xyz0")),
         r"^tkmsctl: payloads\[1\]\.rand: not a hex string"),
        ("codec refusal", mutated(set_(["payloads", 6, "mac"], "00")),
         r"^tkmsctl: payloads\[6\]\.mac: mac_length: MAC of 1 bytes"),
        ("tp data refusal", mutated(set_(["payloads", 4, "tp_data", 0, "role"], 42)),
         r"^tkmsctl: payloads\[4\]\.tp_data\[0\]\.role: idr\.id_role: ID role 42 is not defined"),
        ("composition", mutated(remove_t),
         r"^tkmsctl: payloads\[0\]: the encoded message would not decode: offset \d+: composition: "),
        ("too large", b" " * (1024 * 1024 + 1), r"^tkmsctl: standard input exceeds the limit"),
    ]
    for label, data, pattern in cases:
        rc, out, err = run(binary, ["mikey", "encode"], data)
        c.expect(rc == 1, f"{label}: exit {rc}, want 1 (stderr {err.strip()!r})")
        c.expect(out == "", f"{label}: unexpected stdout {out[:80]!r}")
        c.expect(re.search(pattern, err) is not None, f"{label}: stderr {err.strip()!r} does not match {pattern!r}")


def case_usage(binary, dirs, c):
    for args in ([], ["mikey"], ["frobnicate"], ["mikey", "decode", "--format", "xml"],
                 ["mikey", "decode", "a", "b"], ["mikey", "encode", "--bogus"], ["--bogus"]):
        rc, out, err = run(binary, args)
        c.expect(rc == 2, f"{args}: exit {rc}, want 2")
        c.expect(err.startswith("tkmsctl: ") and "--help" in err, f"{args}: stderr {err!r}")
    for args, word in ((["--help"], "mikey"), (["-h"], "mikey"), (["mikey", "--help"], "decode"),
                       (["mikey", "decode", "--help"], "--format"), (["mikey", "encode", "--help"], "base64"),
                       (["--version"], "tkmsctl")):
        rc, out, err = run(binary, args)
        c.expect(rc == 0, f"{args}: exit {rc}, want 0")
        c.expect(word in out, f"{args}: {word!r} not in the output")
    rc, out, err = run(binary, ["mikey", "decode", "/nonexistent/tkmsctl-input"])
    c.expect(rc == 1 and err.startswith("tkmsctl: cannot open"), f"missing file: exit {rc}, stderr {err!r}")


CASES = {
    "decode_forms": case_decode_forms,
    "decode_errors": case_decode_errors,
    "roundtrip": case_roundtrip,
    "encode_errors": case_encode_errors,
    "usage": case_usage,
}


def main():
    if len(sys.argv) < 4 or sys.argv[2] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    binary, case, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    c = Checker()
    CASES[case](binary, dirs, c)
    for f in c.failures:
        print("FAIL:", f)
    print(f"{case}: {c.checks - len(c.failures)}/{c.checks} checks passed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
