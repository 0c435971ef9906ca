#!/usr/bin/python3
# resnet_reference.t - the C ResNet-50 against torchvision.
#
# For torchvision's resnet50 (v1.5: stride on the 3x3 conv) and a Keras-style
# v1 variant (stride on the first 1x1 conv, biases on every convolution,
# BatchNorm eps 1e-3), both with random weights and non-trivial BatchNorm
# statistics, test/reference/resnet_reference.py writes a checkpoint and the
# expected logits, pooled features (F_I) and 49-token map (H_I) of a batch of
# 3 inputs; `mmsa classify --raw` runs the C model on the same inputs.
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, done, ROOT, CLI, TMP  # noqa: E402

os.makedirs(TMP, exist_ok=True)
TOL = 1e-3
B = 3
def load(path, shape):
    a = np.fromfile(path, dtype='<f4')
    if a.size != int(np.prod(shape)):
        return None
    return a.reshape(shape)


def run_c(model, inputs, out, batch):
    cmd = [CLI, 'classify', '--model', model, '--raw', inputs, '--batch', str(batch),
           '-k', '1', '--threads', '1',
           '--save-logits', out + '.logits', '--save-pooled', out + '.pooled',
           '--save-tokens', out + '.tokens']
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print('# %s failed (%d): %s' % (' '.join(cmd), r.returncode, r.stderr.strip()))
        return None
    return (load(out + '.logits', (B, 1000)), load(out + '.pooled', (B, 2048)),
            load(out + '.tokens', (B, 49, 2048)))


for variant in ('v15', 'v1'):
    d = os.path.join(TMP, 'resnet-' + variant)
    r = subprocess.run(['/usr/bin/python3', os.path.join(ROOT, 'test/reference/resnet_reference.py'),
                        '--variant', variant, '--out', d, '--batch', str(B)],
                       capture_output=True, text=True)
    if not ok(r.returncode == 0, '%s: reference fixtures generated' % variant):
        print('# ' + r.stderr.strip().replace('\n', '\n# '))
        continue
    print('# ' + r.stdout.strip())
    expected = (load(d + '/logits.f32', (B, 1000)), load(d + '/pooled.f32', (B, 2048)),
                load(d + '/tokens.f32', (B, 49, 2048)))
    got = run_c(d, d + '/inputs.f32', d + '/c', B)
    if not ok(got is not None and all(g is not None for g in got), '%s: C model ran' % variant):
        continue
    for name, e, g in zip(('logits', 'F_I pooled', 'H_I tokens'), expected, got):
        diff = float(np.abs(e - g).max())
        ok(diff <= TOL, '%s: %s max abs diff %.3g <= %g (|ref| max %.2f)'
           % (variant, name, diff, TOL, float(np.abs(e).max())))
    # the fixture must tell images apart, or the comparison proves little
    spread = float(np.abs(expected[0][0] - expected[0][1]).max())
    ok(spread > 100 * TOL, '%s: logits of different images differ by %.3g' % (variant, spread))

    # one image at a time gives the same as the batch of 3
    single = run_c(d, d + '/inputs.f32', d + '/c1', 1)
    if ok(single is not None and all(s is not None for s in single), '%s: C model ran with batch 1' % variant):
        diff = max(float(np.abs(a - b).max()) for a, b in zip(single, got))
        ok(diff <= TOL, '%s: batch 1 vs batch %d max abs diff %.3g <= %g' % (variant, B, diff, TOL))

    # the stride placement flag matters: the other placement must disagree
    wrong = d + '-wrong-stride'
    os.makedirs(wrong, exist_ok=True)
    with open(d + '/config.json') as f:
        cfg = f.read()
    a, b = ('"3x3"', '"1x1"') if variant == 'v15' else ('"1x1"', '"3x3"')
    with open(wrong + '/config.json', 'w') as f:
        f.write(cfg.replace(a, b))
    if os.path.lexists(wrong + '/model.safetensors'):
        os.remove(wrong + '/model.safetensors')
    os.symlink(d + '/model.safetensors', wrong + '/model.safetensors')
    bad = run_c(wrong, d + '/inputs.f32', wrong + '/c', B)
    if ok(bad is not None and bad[0] is not None, '%s: C model ran with the other stride placement' % variant):
        diff = float(np.abs(bad[0] - expected[0]).max())
        ok(diff > 100 * TOL, '%s: the other stride placement changes the logits by %.3g' % (variant, diff))

done()
