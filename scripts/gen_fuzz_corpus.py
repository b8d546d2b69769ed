#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus from the test vectors.

    scripts/gen_fuzz_corpus.py

tests/fuzz/corpus/decode/: every segment made by real CPython in
tests/data (shareablelist_vectors.txt, sl_codec_vectors.txt), one binary
file each.  tests/fuzz/corpus/parse/: text lists made of spellings the
parser must accept or refuse (text_parse_vectors.txt) and reprs CPython
printed (text_repr_vectors.txt).  Deterministic; run it again after the
vectors change and commit the result.
"""

import hashlib
import random
from pathlib import Path

top = Path(__file__).resolve().parent.parent
data = top / "tests" / "data"
out = top / "tests" / "fuzz" / "corpus"


def write(kind, blob):
    d = out / kind
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(blob).hexdigest()[:16]).write_bytes(blob)


def main():
    for kind in ("decode", "parse"):
        for f in (out / kind).glob("*"):
            f.unlink()
    # Segments: the hex lines of the CPython vectors.
    for line in (data / "shareablelist_vectors.txt").read_text().splitlines():
        if line and all(c in "0123456789abcdef" for c in line) and len(line) % 2 == 0:
            write("decode", bytes.fromhex(line))
    for line in (data / "sl_codec_vectors.txt").read_text().splitlines():
        if line.startswith("cpython "):
            write("decode", bytes.fromhex(line.split()[1]))
    # Text: accepted and refused spellings, alone and in small lists.
    spellings = []
    for line in (data / "text_parse_vectors.txt").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("ok", "bad"):
            spellings.append(b"" if parts[-1] == "-" else bytes.fromhex(parts[-1]))
    reprs = [line.split(" ", 2)[2].encode() for line in
             (data / "text_repr_vectors.txt").read_text().splitlines()
             if line and not line.startswith("#") and len(line.split(" ", 2)) == 3]
    r = random.Random(20261122)
    for s in spellings:
        write("parse", s + b"\n")
    for _ in range(64):
        write("parse", b"\n".join(r.sample(reprs, r.randrange(1, 8))) + b"\n")
    print("decode:", len(list((out / "decode").iterdir())),
          "parse:", len(list((out / "parse").iterdir())))


if __name__ == "__main__":
    main()
