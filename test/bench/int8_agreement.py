#!/usr/bin/python3
"""
int8_agreement.py - how often int8 ResNet-50 keeps fp32's ImageNet top-1 on
MVSA-Single images, for the C model and for PyTorch's int8 on the same
weights, the same inputs and the same calibration images: the anchor of the
99% bar of test/t/int8_accuracy.t.

  usage: test/bench/int8_agreement.py [--model DIR] [--data DIR] [--count N]
                                      [--calib N] [--chunk N]

  --model  the image model (default weights/image: the shipped Keras
           ResNet-50, config.json stride_on 1x1, BatchNorm eps 0.001,
           convolutions with biases) with model.int8.packed;
  --count  images, the first N of the image folder in name order (default:
           all); --calib the first N train posts' images for PyTorch's
           calibration (default 256, as `mmsa calibrate`).

What it runs, all on the same preprocessed inputs (`mmsa classify
--save-inputs`, so PyTorch sees exactly the C model's input tensors):
  C fp32, C int8       mmsa classify --precision fp32 | int8;
  PyTorch fp32         torchvision's quantizable resnet50 with the model's
                       weights (the stride moved to the first 1x1
                       convolution of each downsampling block, the
                       convolutions' biases folded into the BatchNorm
                       means, eps from config.json); checked against C fp32;
  PyTorch int8 default static post-training quantization with
                       torch.ao.quantization and the engine's default qconfig
                       (per-channel symmetric int8 weights, uint8
                       activations, histogram observers), BatchNorm and ReLU
                       fused, calibrated on the inputs of the calibration
                       images;
  PyTorch int8 7-bit   the same with reduce_range (7-bit activations, as the
                       C model: qgemm.h says why).
Prints for each int8 model the share of images whose top-1 class equals its
own fp32 top-1, and the share equal to C fp32's.  PyTorch is used here as a
reference only, never by the extension.
"""
import argparse
import copy
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision.models.quantization as tvq

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
CLI = os.path.join(ROOT, 'build', 'mmsa')
sys.path.insert(0, os.path.join(ROOT, 'test', 'reference'))
sys.path.insert(0, os.path.join(ROOT, 'test', 'bench'))
from bert_reference import read_safetensors  # noqa: E402
from resnet_int8_torch import engine  # noqa: E402


def torch_model(model_dir):
    """The model of model_dir as torchvision's quantizable resnet50, fp32."""
    with open(os.path.join(model_dir, 'config.json')) as f:
        cfg = json.load(f)
    if cfg.get('architecture') != 'resnet50':
        raise SystemExit('not a resnet50: %s' % cfg.get('architecture'))
    w = {k: torch.from_numpy(v.copy())
         for k, v in read_safetensors(os.path.join(model_dir, 'model.safetensors')).items()}
    model = tvq.resnet50(weights=None, quantize=False)
    if cfg.get('stride_on', '3x3') == '1x1':
        for layer in (model.layer2, model.layer3, model.layer4):
            layer[0].conv1.stride = (2, 2)
            layer[0].conv2.stride = (1, 1)
    state = model.state_dict()
    for name in list(state):
        if name.endswith('num_batches_tracked'):
            continue
        if name not in w:
            raise SystemExit('%s missing from model.safetensors' % name)
        state[name] = w[name]
    # a convolution's bias b before BatchNorm is BatchNorm with mean - b
    # (torchvision's names: conv1 -> bn1, ....convN -> ....bnN, downsample.0 -> downsample.1)
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d) and name + '.bias' in w:
            bn = name[:-1] + '1' if name.endswith('downsample.0') else name.replace('conv', 'bn')
            state[bn + '.running_mean'] = w[bn + '.running_mean'] - w[name + '.bias']
    model.load_state_dict(state)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.eps = float(cfg.get('batchnorm_eps', 1e-5))
    model.eval()
    return model


def quantize(fp32, calib, reduce_range):
    eng = engine()
    torch.backends.quantized.engine = eng
    model = copy.deepcopy(fp32)
    model.fuse_model(is_qat=False)
    qc = torch.ao.quantization.get_default_qconfig(eng)
    if reduce_range:
        qc = torch.ao.quantization.QConfig(
            activation=torch.ao.quantization.HistogramObserver.with_args(reduce_range=True),
            weight=qc.weight)
    model.qconfig = qc
    torch.ao.quantization.prepare(model, inplace=True)
    with torch.inference_mode():
        for i in range(0, calib.shape[0], 16):
            model(calib[i:i + 16])
    torch.ao.quantization.convert(model, inplace=True)
    return model, eng


def top1(model, x):
    out = []
    with torch.inference_mode():
        for i in range(0, x.shape[0], 16):
            out.append(model(x[i:i + 16]).argmax(1))
    return torch.cat(out).numpy()


def classify(model_dir, images, precision, save_inputs=None):
    args = [CLI, 'classify', '--model', model_dir, '-k', '1', '--batch', '16', '--threads', '2',
            '--precision', precision]
    if save_inputs:
        args += ['--save-inputs', save_inputs]
    r = subprocess.run(args + images, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit('mmsa classify failed: ' + r.stderr[-500:])
    cls = {}
    for line in r.stdout.splitlines():
        path, _, c, _, _ = line.split('\t')
        cls[path] = int(c)
    return np.array([cls[p] for p in images])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default=os.path.join(ROOT, 'weights', 'image'))
    ap.add_argument('--data', default=os.environ.get('MMSA_DATA', os.path.join(ROOT, '..', 'shared', 'data')))
    ap.add_argument('--count', type=int, default=0)
    ap.add_argument('--calib', type=int, default=256)
    ap.add_argument('--chunk', type=int, default=400)
    a = ap.parse_args()
    torch.set_num_threads(2)
    images_dir = os.path.join(a.data, 'mvsa-single', 'images')
    images = sorted(os.path.join(images_dir, f) for f in os.listdir(images_dir) if f.endswith('.jpg'))
    if a.count > 0:
        images = images[:a.count]
    ids = []
    with open(os.path.join(a.data, 'mvsa-single', 'posts.csv'), newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            if row['split'] == 'train' and len(ids) < a.calib:
                ids.append(os.path.join(images_dir, row['id'] + '.jpg'))
    fp32 = torch_model(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, 'inputs.f32')
        classify(a.model, ids, 'fp32', raw)
        calib = torch.from_numpy(np.fromfile(raw, dtype='<f4')).reshape(-1, 3, 224, 224)
        q_default, eng = quantize(fp32, calib, False)
        q_7bit, _ = quantize(fp32, calib, True)
        del calib
        res = {k: [] for k in ('c32', 'c8', 't32', 't8', 't8r')}
        for i in range(0, len(images), a.chunk):
            part = images[i:i + a.chunk]
            res['c32'].append(classify(a.model, part, 'fp32', raw))
            res['c8'].append(classify(a.model, part, 'int8'))
            x = torch.from_numpy(np.fromfile(raw, dtype='<f4')).reshape(-1, 3, 224, 224)
            res['t32'].append(top1(fp32, x))
            res['t8'].append(top1(q_default, x))
            res['t8r'].append(top1(q_7bit, x))
            print('  %d of %d images' % (i + len(part), len(images)), file=sys.stderr, flush=True)
    r = {k: np.concatenate(v) for k, v in res.items()}
    n = len(images)

    def pct(a_, b_):
        return '%.2f%% (%d)' % (100.0 * (a_ == b_).sum() / n, (a_ == b_).sum())

    print('ImageNet top-1 agreement with fp32 over %d MVSA-Single images (%s; calibration: %d train images)'
          % (n, os.path.relpath(a.model, ROOT), len(ids)))
    print('PyTorch %s fp32 against C fp32 (same inputs, same weights): %s'
          % (torch.__version__, pct(r['t32'], r['c32'])))
    print('C int8 (7-bit activations, per tensor)       against C fp32: %s' % pct(r['c8'], r['c32']))
    print('PyTorch int8, %s default qconfig             against PyTorch fp32: %s; against C fp32: %s'
          % (eng, pct(r['t8'], r['t32']), pct(r['t8'], r['c32'])))
    print('PyTorch int8, %s, reduce_range (7-bit)        against PyTorch fp32: %s; against C fp32: %s'
          % (eng, pct(r['t8r'], r['t32']), pct(r['t8r'], r['c32'])))


if __name__ == '__main__':
    main()
