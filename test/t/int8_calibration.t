#!/usr/bin/python3
"""The int8 calibration is reproducible, and the int8 sidecar records it.

1. `mmsa calibrate` over the images weights/resnet50-calibration.json names
   (the first N posts of MVSA-Single train), with another thread count and
   batch than the recorded run, writes the same file byte for byte.
2. weights/image/model.int8.packed (written by `mmsa pack`) is of kind
   RESNET_INT8, made from this model.safetensors (its size), from this
   calibration (FNV-1a of the file, image count, names hash), and its data
   checksum, recomputed here, matches its header.
"""
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, done, ROOT, CLI, DATA, TMP  # noqa: E402

CAL = os.path.join(ROOT, "weights", "resnet50-calibration.json")
IMAGE = os.path.join(ROOT, "weights", "image")
M64 = (1 << 64) - 1
FNV_OFFSET, FNV_PRIME = 0xcbf29ce484222325, 0x100000001b3


def fnv1a(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & M64
    return h


with open(CAL, "rb") as f:
    recorded = f.read()
cal = json.loads(recorded)
count = cal["images"]["count"]
ok(count >= 64 and "train" in cal["images"]["source"],
   "the calibration used %d MVSA-Single train images (%s)" % (count, cal["images"]["source"]))
ok(len(cal["act_clip"]) == 53 and cal["act_clip"][0] is None and all(v > 0 for v in cal["act_clip"][1:]),
   "it holds a positive clip for each of the 52 convolutions after the stem")

out = os.path.join(TMP, "calibration-again.json")
r = subprocess.run([CLI, "calibrate", "--model", IMAGE, "--posts", os.path.join(DATA, "mvsa-single", "posts.csv"),
                    "--images", os.path.join(DATA, "mvsa-single", "images"), "--split", "train",
                    "--count", str(count), "--threads", "1", "--batch", "5", "--out", out],
                   capture_output=True, text=True)
ok(r.returncode == 0, "mmsa calibrate runs again (1 thread, batches of 5)%s" % (": " + r.stderr[-300:] if r.returncode else ""))
again = open(out, "rb").read() if os.path.exists(out) else b""
ok(again == recorded, "and writes the recorded calibration byte for byte")

with open(os.path.join(IMAGE, "model.int8.packed"), "rb") as f:
    head = f.read(256)
    data = f.read()
magic, version, kind, hbytes, endian, src_size, src_hash, words = struct.unpack_from("<8sIIIIQQQ", head)
config = struct.unpack_from("<16q", head, 48)
ok(magic == b"MMSAPACK" and kind == 3 and hbytes == 256 and len(data) == 4 * words,
   "model.int8.packed: an mmsa sidecar of kind 3 (ResNet-50 int8), %d words of data" % words)
ok(src_size == os.path.getsize(os.path.join(IMAGE, "model.safetensors")),
   "made from a model.safetensors of this size (%d bytes)" % src_size)
ok(config[4] == count and (config[5] & M64) == fnv1a(open(os.path.join(IMAGE, "calibration.json"), "rb").read())
   and (config[6] & M64) == int(cal["images"]["names_fnv1a64"], 16),
   "its header records the calibration: %d images, the file's hash and the images' names' hash" % count)
ok(open(os.path.join(IMAGE, "calibration.json"), "rb").read() == recorded,
   "weights/image/calibration.json is the recorded one (make copies it)")
h = FNV_OFFSET
for (w,) in struct.iter_unpack("<Q", data[: len(data) // 8 * 8]):
    h = ((h ^ w) * FNV_PRIME) & M64
    h ^= h >> 29
ok(h == (config[7] & M64), "the checksum of its data matches its header")
done()
