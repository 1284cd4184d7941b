#!/usr/bin/env python3
"""Picks at most N inputs of a grown corpus that add the most coverage to a
committed corpus (docs/fuzzing.md, "Campaign").

  pick_inputs.py BINARY COMMITTED_DIR GROWN_DIR [--max 20] [--max-size 4096] [--copy]

Coverage is libFuzzer's features with -use_counters=0 (edges), read from the
control file of a -merge=1 run, which lists for each file the features no
file before it had. A merge of COMMITTED_DIR gives its features, one of
COMMITTED_DIR + GROWN_DIR the grown inputs that add any; the --candidates
(60) that add most there are run alone to get all their features, and
the inputs are picked greedily, the one that adds the most features first. --copy copies the picked
inputs into COMMITTED_DIR under their SHA-1 names; nothing else is written
there.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("committed")
    p.add_argument("grown")
    p.add_argument("--max", type=int, default=20)
    p.add_argument("--max-size", type=int, default=4096)
    p.add_argument("--candidates", type=int, default=60,
                   help="grown inputs run alone to get their features")
    p.add_argument("--copy", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        def features(*dirs):
            """[(path, new features)] in libFuzzer's order, number of files of dirs[0]."""
            control = os.path.join(tmp, "control")
            out = os.path.join(tmp, "out")
            shutil.rmtree(out, ignore_errors=True)
            os.mkdir(out)
            if os.path.exists(control):
                os.remove(control)
            subprocess.run([a.binary, "-merge=1", "-use_counters=0",
                            f"-merge_control_file={control}", out, *dirs],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            with open(control) as f:
                lines = f.read().splitlines()
            n = int(lines[0])
            files = lines[2:2 + n]
            result = []
            for line in lines[2 + n:]:
                parts = line.split()
                if parts and parts[0] == "FT":
                    result.append((files[int(parts[1])], set(parts[2:])))
            return result

        base = set().union(*(f for _, f in features(a.committed)))
        committed = os.path.realpath(a.committed) + os.sep
        # Files are processed smallest first across both directories, so this
        # only finds the grown inputs with any new feature; the ones that add
        # the most in that order are run alone (at most --candidates).
        found = [(len(f), p) for p, f in features(a.committed, a.grown)
                 if f and not os.path.realpath(p).startswith(committed)
                 and os.path.getsize(p) <= a.max_size]
        found.sort(key=lambda x: -x[0])
        candidates = [p for _, p in found[:a.candidates]]
        full = {}
        one = os.path.join(tmp, "one")
        for path in candidates:
            shutil.rmtree(one, ignore_errors=True)
            os.mkdir(one)
            shutil.copyfile(path, os.path.join(one, "x"))
            full[path] = set().union(*(f for _, f in features(one)))
    print(f"committed corpus: {len(base)} features; {len(candidates)} grown inputs add some",
          file=sys.stderr)
    picked = 0
    while picked < a.max and full:
        path = max(full, key=lambda p: (len(full[p] - base), -os.path.getsize(p)))
        gain = len(full[path] - base)
        if not gain:
            break
        base |= full.pop(path)
        picked += 1
        print(f"{path}\t+{gain} features\t{os.path.getsize(path)} bytes")
        if a.copy:
            with open(path, "rb") as f:
                name = hashlib.sha1(f.read()).hexdigest()
            shutil.copyfile(path, os.path.join(a.committed, name))
    print(f"with the {picked} picked: {len(base)} features", file=sys.stderr)


if __name__ == "__main__":
    main()
