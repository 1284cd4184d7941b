#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into <out>/<target>/.

Each seed is a file named by the SHA-1 of its bytes (as libFuzzer names the
inputs it saves), so running this again only adds what is missing; it never
deletes anything. Two kinds of seeds:

  core     taken from the samples as they are, kept in the committed corpus
           whatever their coverage: every message of tests/vectors/mikey/*.b64
           in binary form, the RFC 4567 examples (kRfc4567*B64 in
           tests/support/mikey_samples.h), the plaintext KEMAC key-data chains
           and base-ticket Ticket Data found in the samples, the .b64 texts;
  derived  starting points for the fuzzer, kept only if they add coverage:
           messages that break the composition rules, key-data chains of every
           key and KV type, Ticket Data variants, and invalid inputs
           (truncated, trailing byte, bad version, unknown type, bad
           base64/hex text).

The samples are read through fuzz_seed_export (seed_export.cpp), which is
built with the tests in any non-fuzz build:

  cmake --preset debug && cmake --build build/debug --target fuzz_seed_export
  python3 tests/fuzz/make_seeds.py [--core-only] [--out DIR] [--exporter PATH]

See docs/fuzzing.md for how the committed corpus is refreshed.
"""

import argparse
import base64
import binascii
import hashlib
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGETS = ("mikey_codec_fuzz", "mikey_keydata_fuzz", "mikey_base_ticket_fuzz", "base64_fuzz")


class Seeds:
    def __init__(self):
        self.by_target = {t: {} for t in TARGETS}  # target -> {bytes: is_core}

    def add(self, target, data, core=False):
        d = self.by_target[target]
        d[data] = d.get(data, False) or core


def rfc4567_examples():
    """The base64 RFC 4567 examples, as written in mikey_samples.h."""
    header = (ROOT / "tests/support/mikey_samples.h").read_text()
    found = {}
    for name, body in re.findall(r"(kRfc4567\w+B64)\s*=\s*((?:\s*\"[^\"]*\")+)\s*;", header):
        found[name] = "".join(re.findall(r"\"([^\"]*)\"", body))
    if len(found) < 2:
        sys.exit("make_seeds.py: RFC 4567 examples not found in tests/support/mikey_samples.h")
    return [found[k] for k in sorted(found)]


def broken_messages(msg):
    """Invalid variants of a valid encoded message."""
    return [
        msg[:-1], msg[: len(msg) // 2], msg[:10], msg + b"\x00",
        b"\x02" + msg[1:],                             # version 2
        msg[:1] + b"\xff" + msg[2:],                   # unknown data type
        msg[:2] + b"\xfe" + msg[3:],                   # unknown first payload
        msg[:3] + bytes([msg[3] | 0x7f]) + msg[4:],    # unknown PRF
    ]


def run_exporter(path):
    try:
        text = subprocess.run([str(path)], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"make_seeds.py: cannot run {path}: {e}\n"
                 "build it first: cmake --build build/debug --target fuzz_seed_export")
    out = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) != 3 or fields[0] not in TARGETS or fields[2] not in ("sample", "variant"):
            sys.exit(f"make_seeds.py: unexpected exporter line: {line!r}")
        out.append((fields[0], binascii.unhexlify(fields[1]), fields[2] == "sample"))
    return out


def collect(exporter):
    seeds = Seeds()
    texts = [p.read_text().strip().replace("\n", "").replace("\r", "")
             for p in sorted((ROOT / "tests/vectors/mikey").glob("*.b64"))]
    if not texts:
        sys.exit("make_seeds.py: no tests/vectors/mikey/*.b64")
    texts += rfc4567_examples()
    for text in texts:
        msg = base64.b64decode(text, validate=True)
        seeds.add("mikey_codec_fuzz", msg, core=True)
        seeds.add("base64_fuzz", text.encode(), core=True)
        for bad in broken_messages(msg):
            seeds.add("mikey_codec_fuzz", bad)
    for bad in (b"", b"\x01", b"\x01\x0a\x00\x00"):
        seeds.add("mikey_codec_fuzz", bad)

    for target, data, core in run_exporter(exporter):
        seeds.add(target, data, core)
        if target == "mikey_keydata_fuzz" and data:
            for bad in (data[:-1], data + b"\x00", b"\x05" + data[1:],
                        data[:1] + bytes([data[1] | 0xF0]) + data[2:]):
                seeds.add(target, bad)
        if target == "mikey_base_ticket_fuzz":
            for bad in (data[:-1], data[: len(data) // 2], b"\x0b" + data[1:], data + b"\x00"):
                seeds.add(target, bad)
    seeds.add("mikey_keydata_fuzz", b"\x14")

    for text in ("", "QQ==", "QUI=", "QUJD", "QUJDRA==", "AA==", "//8=", "+/+/",
                 "QR==", "QUJ=", "Q===", "QQ=", "QQ", "QU JD", "QUJD\n", "=QUJ", "QU=D", "-_-_",
                 "00", "00ff", "DEADbeef", "0123456789abcdefABCDEF", "abc", "zz", "0x12", "g0"):
        seeds.add("base64_fuzz", text.encode())
    first = base64.b64decode(texts[0])
    seeds.add("base64_fuzz", binascii.hexlify(first))
    seeds.add("base64_fuzz", binascii.hexlify(first).upper())
    return seeds


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exporter", default=str(ROOT / "build/debug/tests/fuzz/fuzz_seed_export"),
                    help="path of the fuzz_seed_export binary")
    ap.add_argument("--out", default=str(ROOT / "tests/fuzz/corpus"),
                    help="corpus root; seeds go to OUT/<target>/ (default: the committed corpus)")
    ap.add_argument("--core-only", action="store_true",
                    help="write only the core seeds (those taken from the samples as they are)")
    args = ap.parse_args()

    seeds = collect(args.exporter)
    for target in TARGETS:
        d = pathlib.Path(args.out) / target
        d.mkdir(parents=True, exist_ok=True)
        chosen = [b for b, core in seeds.by_target[target].items() if core or not args.core_only]
        added = 0
        for data in sorted(chosen):
            f = d / hashlib.sha1(data).hexdigest()
            if not f.exists():
                f.write_bytes(data)
                added += 1
        print(f"{target}: {len(chosen)} seeds, {added} new, {sum(1 for _ in d.iterdir())} files in {d}")


if __name__ == "__main__":
    main()
