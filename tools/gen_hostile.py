#!/usr/bin/env python3
"""Writes tests/fixtures/hostile/: files built to break readers (standard library only).

Each file's expected error is in tests/fixtures/hostile/expected.tsv, checked by
tests/hostile.rs. Run by hand: python3 tools/gen_hostile.py
"""
import io
import json
import os
import struct
import zipfile
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "hostile")
os.makedirs(OUT, exist_ok=True)


def put(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def safetensors(header, body=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


# Checkpoints.
put("empty.pt", b"")
put("text.pt", b"this is not a checkpoint\n")
put("truncated.safetensors", safetensors({"conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [0, 37632]}}, b"\0" * 100))
put("huge-header.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
put("overlapping.safetensors", safetensors({
    "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
    "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
}, b"\0" * 24))
put("shape-overflow.safetensors", safetensors({"a": {"dtype": "F32", "shape": [1 << 62, 1 << 62], "data_offsets": [0, 16]}}, b"\0" * 16))
nan = struct.pack("<f", float("nan")) * 16
put("nan.safetensors", safetensors({"conv1.weight": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}}, nan))

# A legacy torch file whose pickle calls os.system("touch /tmp/salient-pwned") on load.
cmd = b"touch /tmp/salient-pwned"
evil = b"\x80\x02" + b"cos\nsystem\n" + b"X" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
put("pickle-calls-system.pt", evil)
# The same inside torch's zip format.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("archive/data.pkl", evil)
    z.writestr("archive/version", "3\n")
put("zip-pickle-calls-system.pt", buf.getvalue())
# A zip whose entries climb out of the archive.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("../../../../tmp/salient-pwned", "x")
    z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
put("zip-path-traversal.pt", buf.getvalue())
# A pickle that claims a 2 GiB string.
put("pickle-huge-string.pt", b"\x80\x02X\xff\xff\xff\x7f" + b"a" * 16)
# A pickle nested 200 000 lists deep, in torch's zip format.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("archive/data.pkl", b"\x80\x02" + b"]" * 200_000 + b".")
put("zip-pickle-deep.pt", buf.getvalue())
# A torch zip whose tensor storage is a zip bomb (256 MiB of zeros in 256 kB).
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with z.open("archive/data/0", "w", force_zip64=True) as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(256):
            f.write(chunk)
put("zip-bomb.pt", buf.getvalue())


# Images.
def png(width, height, raw, color_type=2):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


put("empty.png", b"")
put("text.jpg", b"this is text, not an image\n")
# 60000 x 60000 gray: 3.6 GB of pixels from a few MB... from a few kB here (rows of zeros).
put("bomb.png", png(60000, 60000, b"\0" * 1000, color_type=0))
put("tiny.png", png(2, 2, b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0", color_type=2))
put("long-strip.png", png(16000, 16, b"", color_type=0))
jpeg_start = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(64)
put("truncated.jpg", jpeg_start)

# Annotation files and dataset indices.
put("wrong-header.csv", b"a,b,c\n1,2,3\n")
put("unknown-class.csv", b"class,feature,label\n1000,5,core\n")
put("feature-too-large.csv", b"class,feature,label\n3,2048,spurious\n")
put("bad-label.csv", b"class,feature,label\n3,5,maybe\n")
put("ragged.csv", b"class,feature,label\n3,5\n")
put("bad-index.jsonl", b'{"class": 0}\nnot json\n')
print("wrote", OUT)
