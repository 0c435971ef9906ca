#!/usr/bin/python3
"""Every MVSA-Single image (4,511) decodes and runs through ResNet-50.

`mmsa classify` with the converted ImageNet weights, in batches of 16, over
every file of ../shared/data/mvsa-single/images: each image must give a top-1
class with a finite probability, none may fail, and the predictions must be
varied (a broken network tends to give one class to everything).  Reports
the time per image.
"""
import glob
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, done, ROOT, CLI, DATA  # noqa: E402

MODEL = os.path.join(ROOT, "weights", "image")
images = sorted(glob.glob(os.path.join(DATA, "mvsa-single", "images", "*.jpg")))
if not ok(len(images) == 4511, "%d MVSA-Single images found (4,511 expected)" % len(images)):
    done()
if not ok(os.path.exists(os.path.join(MODEL, "model.safetensors")),
          "converted ResNet-50 weights in %s (run make, or src/tools/fetch-resnet.sh)" % MODEL):
    done()

t0 = time.perf_counter()
r = subprocess.run([CLI, "classify", "--model", MODEL, "-k", "1", "--batch", "16", "--threads", "2"] + images,
                   capture_output=True, text=True)
seconds = time.perf_counter() - t0
ok(r.returncode == 0, "mmsa classify exits 0 over all images%s" % (": " + r.stderr[-500:] if r.returncode else ""))

top1 = {}
bad = []
for line in r.stdout.splitlines():
    fields = line.split("\t")
    if len(fields) != 5:
        bad.append(line)
        continue
    path, rank, class_id, prob, label = fields
    p = float(prob)
    if rank != "1" or not math.isfinite(p) or not 0.0 < p <= 1.0:
        bad.append(line)
    top1[path] = int(class_id)
missing = [p for p in images if p not in top1]
ok(not missing and not bad, "every image has a top-1 class with a probability in (0, 1]: %d missing, %d malformed%s"
   % (len(missing), len(bad), (" (first: %s)" % (missing or bad)[0]) if missing or bad else ""))
distinct = len(set(top1.values()))
ok(distinct >= 200, "predictions are varied: %d distinct top-1 classes over %d images" % (distinct, len(top1)))
diag("%.1f s for %d images: %.1f ms per image (decode, preprocess, ResNet-50, batch 16, 2 threads)"
     % (seconds, len(images), 1000 * seconds / len(images)))
done()
