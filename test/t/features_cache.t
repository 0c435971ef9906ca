#!/usr/bin/python3
# features_cache.t - `mmsa features` on the first 20 MVSA-Single val posts.
#
#  1. The cache file: format metadata, image model size/mtime recorded,
#     pooled F32 (20,2048), ids I64 = the first 20 val ids of posts.csv (read
#     here with Python's csv module), tokens F16 (20,49,2048).
#  2. pooled equals `mmsa classify --save-pooled` on the same images (same
#     batch size) within 1e-6; tokens equal `--save-tokens` to F16 rounding;
#     the mean of the 49 tokens equals pooled within F16 precision.
#  3. A re-run says "up to date"; an interrupted run (an image missing)
#     leaves chunk parts that the next run resumes from, giving the same
#     bytes; a model config with a new mtime makes the cache stale.
#  4. Malformed posts CSV: exit 1 with the line number.
import csv
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, done, ROOT, CLI, DATA, TMP  # noqa: E402

N = 20
model_dir = os.path.join(ROOT, 'weights', 'image')
posts_csv = os.path.join(DATA, 'mvsa-single', 'posts.csv')
images = os.path.join(DATA, 'mvsa-single', 'images')
work = os.path.join(TMP, 'features_cache')
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

if not ok(os.path.isfile(os.path.join(model_dir, 'model.safetensors')) and os.path.isfile(posts_csv),
          'ResNet-50 weights and MVSA-Single present'):
    diag('need weights/image (make) and %s' % posts_csv)
    done()

with open(posts_csv, newline='', encoding='utf-8') as f:
    val_ids = [int(r['id']) for r in csv.DictReader(f) if r['split'] == 'val'][:N]


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    hlen = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + hlen])
    meta = header.pop('__metadata__', {})
    base = 8 + hlen
    dt = {'F32': np.float32, 'F16': np.float16, 'I64': np.int64}
    out = {}
    for name, t in header.items():
        b, e = t['data_offsets']
        out[name] = (t['dtype'], np.frombuffer(raw[base + b:base + e], dtype=dt[t['dtype']]).reshape(t['shape']))
    return meta, out, raw


def features(out, extra=(), model=model_dir, image_dir=images):
    cmd = [CLI, 'features', '--image-model', model, '--posts', posts_csv, '--images', image_dir,
           '--out', out, '--split', 'val', '--limit', str(N), '--threads', '2', '--batch', '8',
           '--chunk', '8'] + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True)


# 1. the file
cache = os.path.join(work, 'val20.safetensors')
r = features(cache)
ok(r.returncode == 0 and os.path.isfile(cache), 'mmsa features --limit %d exits 0' % N)
if r.returncode != 0:
    diag(r.stderr)
    done()
diag(r.stderr.strip().split('\r')[-1])
meta, t, raw1 = read_safetensors(cache)
st = os.stat(os.path.join(model_dir, 'model.safetensors'))
ok(meta.get('format') == 'mmsa-image-features-1' and meta.get('image_model_size') == str(st.st_size)
   and meta.get('image_model_mtime_ns') == str(st.st_mtime_ns) and 'preprocess' in meta,
   'metadata: format, image model size %s and mtime recorded, preprocessing' % meta.get('image_model_size'))
ok(t['pooled'][0] == 'F32' and t['pooled'][1].shape == (N, 2048), 'pooled F32 (20,2048)')
ok(t['tokens'][0] == 'F16' and t['tokens'][1].shape == (N, 49, 2048), 'tokens F16 (20,49,2048)')
ok(t['ids'][0] == 'I64' and list(t['ids'][1]) == val_ids, 'ids I64 = the first 20 val ids of posts.csv')
ok(not [p for p in os.listdir(work) if '.part-' in p or p.endswith('.tmp')], 'no parts or temporary files left')
per_image = 2048 * 4 + 8 + 49 * 2048 * 2
diag('bytes per image %d: 4511 images -> %.3f GB (%.0f MiB)' % (per_image, 4511 * per_image / 1e9,
                                                                 4511 * per_image / 2**20))

# 2. against mmsa classify
paths = [os.path.join(images, '%d.jpg' % i) for i in val_ids]
pooled_ref = os.path.join(work, 'pooled.f32')
tokens_ref = os.path.join(work, 'tokens.f32')
r = subprocess.run([CLI, 'classify', '--model', model_dir, '--threads', '2', '--batch', '8', '-k', '1',
                    '--save-pooled', pooled_ref, '--save-tokens', tokens_ref] + paths,
                   capture_output=True, text=True)
ok(r.returncode == 0, 'mmsa classify --save-pooled --save-tokens on the same images')
P = np.fromfile(pooled_ref, dtype=np.float32).reshape(N, 2048)
T = np.fromfile(tokens_ref, dtype=np.float32).reshape(N, 49, 2048)
d = float(np.abs(t['pooled'][1] - P).max())
ok(d <= 1e-6, 'cache F_I equals classify --save-pooled: max |diff| %.3g <= 1e-6' % d)
H = t['tokens'][1].astype(np.float32)
ok(np.array_equal(t['tokens'][1], T.astype(np.float16)),
   'cache H_I equals classify --save-tokens rounded to F16 (numpy float16, nearest-even)')
mean = H.mean(axis=1)
tol = 2.0 ** -11 * np.abs(T).max(axis=1) + 1e-6
excess = float((np.abs(mean - P) - tol).max())
ok(excess <= 0, 'mean of the 49 F16 tokens equals F_I within F16 precision (max |diff| %.3g)'
   % float(np.abs(mean - P).max()))

# 3. re-run, resume, staleness
r = features(cache)
ok(r.returncode == 0 and 'up to date' in r.stderr, 're-run: "%s"' % r.stderr.strip())
partial_images = os.path.join(work, 'images')
os.makedirs(partial_images)
for i in val_ids[:17]:
    os.symlink(os.path.join(images, '%d.jpg' % i), os.path.join(partial_images, '%d.jpg' % i))
cache2 = os.path.join(work, 'resumed.safetensors')
r = features(cache2, image_dir=partial_images)
parts = sorted(p for p in os.listdir(work) if p.startswith('resumed.safetensors.part-'))
ok(r.returncode == 1 and 'cannot open' in r.stderr and not os.path.exists(cache2)
   and parts == ['resumed.safetensors.part-00000', 'resumed.safetensors.part-00001'],
   'run stopped by a missing image: exit 1, two finished chunk parts kept (%s)' % ', '.join(parts))
r = features(cache2)
ok(r.returncode == 0 and 'resuming: 16 of 20 images already done' in r.stderr,
   'next run resumes: "%s"' % [x for x in r.stderr.split('\n') if 'resum' in x][:1])
_, t2, raw2 = read_safetensors(cache2)
ok(all(np.array_equal(t[k][1], t2[k][1]) for k in ('pooled', 'ids', 'tokens')),
   'resumed cache has the same pooled, ids and tokens as the uninterrupted one')
model_copy = os.path.join(work, 'model')
os.makedirs(model_copy)
for f in os.listdir(model_dir):
    if f == 'config.json':
        shutil.copy(os.path.join(model_dir, f), os.path.join(model_copy, f))
    else:
        os.symlink(os.path.join(model_dir, f), os.path.join(model_copy, f))
cache3 = os.path.join(work, 'copy.safetensors')
r = features(cache3, model=model_copy, extra=['--limit', '4'])
r2 = features(cache3, model=model_copy, extra=['--limit', '4'])
os.utime(os.path.join(model_copy, 'config.json'), ns=(1, 10**9 * 1000000))
r3 = features(cache3, model=model_copy, extra=['--limit', '4'])
ok(r.returncode == 0 and 'up to date' in r2.stderr and r3.returncode == 0 and 'up to date' not in r3.stderr
   and 'wrote' in r3.stderr, 'config.json with a new mtime: the cache is stale and recomputed')

# 4. bad input
bad = os.path.join(work, 'bad.csv')
with open(bad, 'w') as f:
    f.write('id,split,label,text\n1,val,positive,"ok"\n2,val,neutral,"no end\n')
r = subprocess.run([CLI, 'features', '--image-model', model_dir, '--posts', bad, '--images', images,
                    '--out', os.path.join(work, 'bad.safetensors')], capture_output=True, text=True)
ok(r.returncode == 1 and 'bad.csv:3: quoted field never closed' in r.stderr, 'malformed CSV: %s' % r.stderr.strip())
r = subprocess.run([CLI, 'features', '--posts', bad], capture_output=True, text=True)
ok(r.returncode == 2, 'missing options: usage, exit 2')
done()
