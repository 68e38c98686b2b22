#!/usr/bin/env python3
"""Picks a handful of seed inputs for a fuzz target from a (large) corpus.

    fuzz/select_seeds.py <target binary> <out dir> <corpus dir> [corpus dir ...] [--count N]

libFuzzer's -merge=1 keeps every input that adds a coverage feature (thousands after a few
minutes); the committed corpora keep only a handful. This runs the merge with a control file,
reads the code coverage (COV lines: the instrumented blocks) each input reaches, and copies the
N inputs (default 16) that together reach the most blocks, chosen greedily (ties: the smaller
input, then the name), into <out dir> under the SHA-1 of their contents. It prints how much of
the whole corpus's coverage the chosen inputs keep.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("out")
    ap.add_argument("corpus", nargs="+")
    ap.add_argument("--count", type=int, default=16)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        subprocess.run([args.binary, "-merge=1", f"-merge_control_file={control}", empty, *args.corpus],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        with open(control) as f:
            lines = f.read().splitlines()
    files = lines[2:2 + int(lines[0])]
    cover = {}
    for line in lines[2 + len(files):]:
        if line.startswith("COV "):
            parts = line.split()
            cover[int(parts[1])] = set(map(int, parts[2:]))
    everything = set().union(*cover.values()) if cover else set()

    chosen, covered = [], set()
    candidates = sorted(cover, key=lambda i: (os.path.getsize(files[i]), files[i]))
    while len(chosen) < args.count:
        best, gain = None, 0
        for i in candidates:
            g = len(cover[i] - covered)
            if g > gain:
                best, gain = i, g
        if best is None:
            break
        chosen.append(best)
        covered |= cover[best]
        candidates.remove(best)

    os.makedirs(args.out, exist_ok=True)
    size = 0
    for i in chosen:
        data = open(files[i], "rb").read()
        size += len(data)
        with open(os.path.join(args.out, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    print(f"{args.out}: {len(chosen)} inputs, {size} bytes, {len(covered)} of {len(everything)} "
          f"blocks of the whole corpus ({100.0 * len(covered) / max(1, len(everything)):.1f}%)")


if __name__ == "__main__":
    sys.exit(main())
