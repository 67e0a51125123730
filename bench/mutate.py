#!/usr/bin/env python3
"""Turns the benchmark's source tree into its "second version", deterministically.

About 1% of the regular files (every 100th in sorted order) change, in turn: appended to,
rewritten in place with the same size, deleted, or joined by a new file beside them. The big
file (big.img) gets 4 MiB inserted in its middle and 64 scattered 4 KiB overwrites.

With GEN (bench/prune.sh applies it once per generation), the random seed, which 1% of the
files is chosen, and the suffix of added files depend on GEN, so that repeated runs keep
changing different files.

usage: mutate.py SRC [GEN]
"""

import os
import random
import sys


def main(src: str, gen: int | None = None) -> None:
    rng = random.Random(42 if gen is None else 42 + gen)
    offset = 0 if gen is None else gen % 100
    suffix = ".new" if gen is None else f".g{gen}"
    files = []
    for root, dirs, names in os.walk(src):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p) and n != "big.img":
                files.append(p)
    changed = {"appended": 0, "rewritten": 0, "deleted": 0, "added": 0}
    for i, p in enumerate(files[offset::100]):
        kind = i % 4
        if kind == 0:
            with open(p, "ab") as f:
                f.write(rng.randbytes(1000))
            changed["appended"] += 1
        elif kind == 1:
            size = os.path.getsize(p)
            with open(p, "r+b") as f:
                f.write(rng.randbytes(size))
            changed["rewritten"] += 1
        elif kind == 2:
            os.remove(p)
            changed["deleted"] += 1
        else:
            with open(p + suffix, "wb") as f:
                f.write(rng.randbytes(rng.randrange(1000, 100_000)))
            changed["added"] += 1

    big = os.path.join(src, "big.img")
    size = os.path.getsize(big)
    tmp = big + ".tmp"
    with open(big, "rb") as f, open(tmp, "wb") as out:
        half = size // 2
        while f.tell() < half:
            out.write(f.read(min(1 << 20, half - f.tell())))
        out.write(rng.randbytes(4 << 20))
        while chunk := f.read(1 << 20):
            out.write(chunk)
    os.replace(tmp, big)
    with open(big, "r+b") as f:
        for _ in range(64):
            f.seek(rng.randrange(0, size))
            f.write(rng.randbytes(4096))
    print(f"mutated {len(files)} files: {changed}; big.img +4 MiB in the middle, 64 overwrites",
          file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
