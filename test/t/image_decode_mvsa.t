#!/usr/bin/python3
"""Every MVSA-Single image decodes with the C decoder.

Runs `mmsa decode` in batch mode over $MMSA_DATA/mvsa-single/images/*
(decoded by content, not by name) with the torchvision preprocessing, once
the way the model is fed (JPEG DCT scaling to a short side of 256, then
resize 256 / crop 224) and once at full size.  Every file must decode; a
file that does not is named with the decoder's reason.  Reports the count,
the formats found and the median decode+preprocess time per image.  Then a
sample (every 40th image) is compared with Pillow at full size: the RGB
must be identical (same libjpeg-turbo; EXIF orientation applied by both).
"""
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import warnings

import numpy as np
from PIL import Image, ImageOps
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, done, CLI, DATA, TMP  # noqa: E402

warnings.simplefilter("ignore")
WORK = os.path.join(TMP, "image_decode_mvsa")
os.makedirs(WORK, exist_ok=True)

images = sorted(glob.glob(os.path.join(DATA, "mvsa-single", "images", "*")),
                key=lambda p: (len(os.path.basename(p)), os.path.basename(p)))
if not ok(len(images) == 4511, "MVSA-Single images found: %d (expected 4511) in %s" % (len(images), DATA)):
    done()
if not ok(os.access(CLI, os.X_OK), "mmsa CLI built at %s" % CLI):
    done()
# run a private copy: a concurrent `make` relinking build/mmsa must not break the run
shutil.copy2(CLI, os.path.join(WORK, "mmsa"))
CLI = os.path.join(WORK, "mmsa")

kinds = {}
for p in images:
    with open(p, "rb") as f:
        head = f.read(8)
    k = "JPEG" if head[:3] == b"\xff\xd8\xff" else "PNG" if head[:8] == b"\x89PNG\r\n\x1a\n" else "other:" + head.hex()
    kinds[k] = kinds.get(k, 0) + 1
print("# formats by content: %s" % ", ".join("%s %d" % kv for kv in sorted(kinds.items())))

cfg = os.path.join(WORK, "torchvision.json")
with open(cfg, "w") as f:
    f.write('{"resize":256,"crop":224,"channel_order":"RGB","scale":0.00392156862745098,'
            '"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]}')

LINE = re.compile(r"^(.*) width=(\d+) height=(\d+) decode_ms=([\d.]+) preprocess_ms=([\d.]+)$")
for label, extra in (("DCT-scaled to 256", ["--target", "256"]), ("full size", [])):
    r = subprocess.run([CLI, "decode"] + extra + ["--preprocess", cfg] + images, capture_output=True, text=True)
    decoded = {}
    times = []
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        if m:
            decoded[m.group(1)] = (int(m.group(2)), int(m.group(3)))
            times.append(float(m.group(4)) + float(m.group(5)))
    failures = [l for l in r.stderr.splitlines() if l.strip()]
    for l in failures[:20]:
        print("# " + l)
    ok(r.returncode == 0 and len(decoded) == len(images) and not failures,
       "%s: %d of %d images decoded and preprocessed, %d failed" % (label, len(decoded), len(images), len(failures)))
    if times:
        sizes = sorted(w * h for w, h in decoded.values())
        print("# %s: median decode+preprocess %.3f ms per image (mean %.3f, max %.1f); "
              "median decoded size %.2f MP" % (label, statistics.median(times), statistics.fmean(times),
                                               max(times), sizes[len(sizes) // 2] / 1e6))
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    print("# mmsa: " + summary)

# a sample against Pillow, full size, exact
sample = images[::40]
bad = []
maxdiff = 0
for p in sample:
    out = os.path.join(WORK, "sample.ppm")
    r = subprocess.run([CLI, "decode", "-o", out, p], capture_output=True, text=True)
    if r.returncode != 0:
        bad.append("%s: %s" % (os.path.basename(p), r.stderr.strip()))
        continue
    data = open(out, "rb").read()
    parts = data.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    got = np.frombuffer(parts[3], np.uint8).reshape(h, w, 3)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
    if got.shape != ref.shape:
        bad.append("%s: size %s vs Pillow %s" % (os.path.basename(p), got.shape, ref.shape))
        continue
    d = int(np.abs(got.astype(int) - ref.astype(int)).max())
    maxdiff = max(maxdiff, d)
    if d != 0:
        bad.append("%s: max abs diff %d" % (os.path.basename(p), d))
for b in bad[:10]:
    print("# " + b)
ok(not bad, "%d sampled images (every 40th) equal Pillow's decode exactly: max abs diff %d" % (len(sample), maxdiff))
done()
