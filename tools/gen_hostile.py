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

# Round two. Paths in a dataset index that leave their roots.
record = {"class": 0, "wnid": "n01440764", "feature": 1, "label": "core", "position": 0, "image": "n01440764_1",
          "source": "n01440764/n01440764_1.JPEG", "activation": 1.0, "mask": "n01440764/feature_1/n01440764_1.png",
          "sha256": "00"}
put("index-absolute-mask.jsonl", (json.dumps(dict(record, mask="/etc/shadow")) + "\n").encode())
put("index-wnid-traversal.jsonl", (json.dumps(dict(record, wnid="../../../../tmp/x")) + "\n").encode())
put("index-source-traversal.jsonl", (json.dumps(dict(record, source="n01440764/../../../etc/passwd")) + "\n").encode())
put("index-image-slash.jsonl", (json.dumps(dict(record, image="a/b")) + "\n").encode())


def pickle_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pickle_int(v):
    b = v.to_bytes((v.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def tensor_pickle(numel, key="conv1.weight", shape=None, stride=None):
    """A torch state dict {key: tensor in storage '0' of `numel` floats}, protocol 2; the tensor
    has `shape` and `stride` (default: the whole storage, contiguous)."""
    storage = b"(" + pickle_str("storage") + b"ctorch\nFloatStorage\n" + pickle_str("0") + pickle_str("cpu") + pickle_int(numel) + b"tQ"
    ints = lambda vals: b"(" + b"".join(pickle_int(v) for v in vals) + b"t"
    args = b"(" + storage + b"K\x00" + ints(shape or [numel]) + ints(stride or [1]) + b"\x89ccollections\nOrderedDict\n)Rt"
    return b"\x80\x02}(" + pickle_str(key) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"Ru."


def torch_zip(pkl, storages=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in [("archive/data.pkl", pkl), ("archive/version", b"3\n")] + [("archive/data/" + k, v) for k, v in storages]:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


# 60 dicts, each holding the previous one twice (memo GET): 2^60 paths through 2 kB.
dag = b"\x80\x02}q\x00"
for i in range(1, 61):
    dag += b"}q" + bytes([i]) + b"(" + pickle_str("a") + b"h" + bytes([i - 1]) + pickle_str("b") + b"h" + bytes([i - 1]) + b"u"
put("pickle-shared-dag.pt", torch_zip(dag + b"."))
# A storage declared with 2^38 floats (1 TiB).
put("storage-1tib.pt", torch_zip(tensor_pickle(1 << 38), [("0", b"\0" * 16)]))


def zip64_stored(entries):
    """A zip whose entries are (name, data, declared_size): stored, sizes in zip64 extra fields."""
    out, central = b"", b""
    for name, data, declared in entries:
        n = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, declared, declared)
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(n), len(extra)) + n + extra + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(n), len(extra), 0, 0, 0, 0, offset) + n + extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return out + central + end


# A zip64 storage entry declaring 2^40 bytes and holding 16, for a tensor of 4 floats.
pkl = tensor_pickle(4)
put("zip64-declared-1tib.pt", zip64_stored([("archive/data.pkl", pkl, len(pkl)), ("archive/data/0", b"\0" * 16, 1 << 40)]))

# Found by the structure-aware fuzz targets' authors (fuzz/README.md): a zero-size dimension
# beside 2^40-sized ones, a stride-0 view of one float as 2^28, and safetensors offsets whose
# total overflows 64 bits.
one = struct.pack("<f", 1.0)
put("zero-dim-overflow.pt", torch_zip(tensor_pickle(4, shape=[0, 1 << 40, 1 << 40], stride=[1, 1, 1]), [("0", one * 4)]))
put("stride0-2e28.pt", torch_zip(tensor_pickle(1, shape=[1 << 28], stride=[0]), [("0", one)]))
n8 = (2**64 - 1) // 8
put("st-datalen-overflow.safetensors", safetensors({f"t{i}": {"dtype": "U8", "shape": [n8], "data_offsets": [i * n8, (i + 1) * n8]} for i in range(8)}))

# safetensors metadata out of bounds.
conv = {"conv1.weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
put("view-4096.safetensors", safetensors(dict(conv, __metadata__={"salient.view": "4096,4096"}), b"\0" * 16))
put("class-name-long.safetensors", safetensors(dict(conv, __metadata__={"salient.class_names": json.dumps(["x" * 1000])}), b"\0" * 16))

# Images whose decoding would cost far more than their bytes: a progressive JPEG of 500 scans,
# PNGs with 64 MiB compressed text and ICC chunks.
sof2 = bytes.fromhex("ffc2000b080040004001011100")
sos = bytes.fromhex("ffda0008010100000000") + b"\x00" * 4
put("jpeg-500-scans.jpg", bytes.fromhex("ffd8") + sof2 + sos * 500 + bytes.fromhex("ffd9"))


def png_with(chunks, width=32, height=32):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height))
    extra = b"".join(chunk(k, d) for k, d in chunks)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


bomb = zlib.compress(b"\0" * (64 << 20), 9)
put("png-ztxt-bomb.png", png_with([(b"zTXt", b"Comment\0\0" + bomb)]))
z = zlib.compressobj(9)
icc_bomb = b"".join(z.compress(b"\0" * (64 << 20)) for _ in range(4)) + z.flush()  # 256 MiB in 260 kB
put("png-iccp-bomb.png", png_with([(b"iCCP", b"icc\0\0" + icc_bomb)]))
put("png-itxt-bomb.png", png_with([(b"iTXt", b"XML:com.adobe.xmp\0\1\0\0\0" + bomb)]))
print("wrote", OUT)
