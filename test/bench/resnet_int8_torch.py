#!/usr/bin/python3
"""
resnet_int8_torch.py - PyTorch's int8 ResNet-50, the anchor of
test/bench/bench_int8.sh.

  quantize DIR POSTS IMAGES COUNT
      torchvision's quantizable resnet50 with the weights of DIR/state_dict.pt
      (test/bench/resnet_export.py), BatchNorm and ReLU fused, static
      post-training quantization with torch.ao.quantization: the default
      qconfig of the backend engine (per-channel symmetric int8 weights,
      uint8 activations with histogram observers), calibrated on the
      images of the first COUNT posts of the train split of POSTS
      (IMAGES/<id>.jpg: the same images `mmsa calibrate` takes), resized to
      256 and centre-cropped to 224 with ImageNet's mean and std, as the C
      model's torchvision preprocessing.  Saved as TorchScript,
      DIR/int8_<engine>.pt.
  time DIR B T R W
      times that model: batch B, T threads, R timed runs after W warm-up
      runs; prints one line like `mmsa bench resnet`.

The engine: FBGEMM where this PyTorch has it, else oneDNN (Debian's 1.13 has
no FBGEMM: its x86 int8 engine is onednn); the line names it.
"""
import csv
import os
import statistics
import sys

import torch
import torchvision.models.quantization as tvq
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet_export import time_forward  # noqa: E402


def engine():
    engines = torch.backends.quantized.supported_engines
    return 'fbgemm' if 'fbgemm' in engines else 'onednn'


def quantize(out, posts, images, count):
    torch.set_num_threads(2)
    eng = engine()
    torch.backends.quantized.engine = eng
    model = tvq.resnet50(weights=None, quantize=False)
    missing, unexpected = model.load_state_dict(torch.load(os.path.join(out, 'state_dict.pt')), strict=False)
    if unexpected or any(not k.endswith('num_batches_tracked') for k in missing):
        raise SystemExit('state dict mismatch: missing %s, unexpected %s' % (missing, unexpected))
    model.eval()
    model.fuse_model(is_qat=False)
    model.qconfig = torch.ao.quantization.get_default_qconfig(eng)
    torch.ao.quantization.prepare(model, inplace=True)
    pre = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                              transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ids = []
    with open(posts, newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            if row['split'] == 'train' and len(ids) < count:
                ids.append(row['id'])
    with torch.inference_mode():
        for i in range(0, len(ids), 16):
            batch = torch.stack([pre(Image.open(os.path.join(images, x + '.jpg')).convert('RGB'))
                                 for x in ids[i:i + 16]])
            model(batch)
    torch.ao.quantization.convert(model, inplace=True)
    scripted = torch.jit.script(model)
    path = os.path.join(out, 'int8_%s.pt' % eng)
    torch.jit.save(scripted, path)
    print('quantized %s with %s, calibrated on %d train images' % (path, eng, len(ids)))


def time_it(out, B, T, R, W):
    eng = engine()
    torch.backends.quantized.engine = eng
    torch.set_num_threads(T)
    model = torch.jit.load(os.path.join(out, 'int8_%s.pt' % eng))
    model.eval()
    ms = time_forward(model, B, R, W)
    print('pytorch-int8 batch=%d threads=%d runs=%d median_ms=%.3f min_ms=%.3f ms_per_image=%.3f engine=%s version=%s'
          % (B, T, R, statistics.median(ms), min(ms), statistics.median(ms) / B, eng, torch.__version__))


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == 'quantize':
        quantize(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) >= 7 and sys.argv[1] == 'time':
        time_it(sys.argv[2], *(int(a) for a in sys.argv[3:7]))
    else:
        raise SystemExit('usage: resnet_int8_torch.py quantize DIR POSTS IMAGES COUNT | time DIR B T R W')


if __name__ == '__main__':
    main()
