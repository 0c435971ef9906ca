#!/usr/bin/python3
"""
resnet_reference.py - fixtures for the C ResNet-50 (src/core/resnet.c).

Builds torchvision's resnet50 with random weights and writes, into OUT:
  model.safetensors   torchvision tensor names, F32
  config.json         architecture, stride placement, BatchNorm eps, classes
  inputs.f32          (B,3,224,224) random structured inputs
  logits.f32          (B,1000)      expected logits
  pooled.f32          (B,2048)      expected pooled features (F_I)
  tokens.f32          (B,49,2048)   expected map before pooling (H_I), token-major

Variants:
  v15  torchvision as is: stride on the 3x3 conv, BatchNorm eps 1e-5, no conv biases
  v1   Keras/Caffe style: the stride of each block moved from conv2 (3x3) to
       conv1 (1x1), a bias on every convolution, BatchNorm eps 1e-3

BatchNorm runs in eval mode with non-trivial running statistics (measured
on a calibration batch, then randomly perturbed) and random affine
parameters.

usage: resnet_reference.py --variant v15|v1 --out DIR [--batch 2] [--seed 0]
"""
import argparse
import json
import os
import struct

import numpy as np
import torch
import torchvision


def write_safetensors(path, tensors):
    """Writes {name: float32 numpy array} as a safetensors file."""
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype='<f4')
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def structured_inputs(n, g):
    """Images with coarse structure (random 7x7 fields upsampled) plus noise,
    each with its own contrast, so that different images give clearly
    different features."""
    coarse = torch.randn(n, 3, 7, 7, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(224, 224), mode='bilinear',
                                        align_corners=False)
    x = x * (0.5 + 1.5 * torch.rand(n, 1, 1, 1, generator=g))
    return x + 0.3 * torch.randn(n, 3, 224, 224, generator=g)


def build_model(variant, seed):
    torch.manual_seed(seed)
    model = torchvision.models.resnet50(weights=None)
    eps = 1e-5 if variant == 'v15' else 1e-3
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        if variant == 'v1':
            for layer in (model.layer2, model.layer3, model.layer4):
                block = layer[0]
                block.conv1.stride = (2, 2)
                block.conv2.stride = (1, 1)
            for name, mod in model.named_modules():
                if isinstance(mod, torch.nn.Conv2d):
                    mod.bias = torch.nn.Parameter(
                        0.1 * torch.randn(mod.out_channels, generator=g))
        # random affine parameters; running statistics measured on a
        # calibration batch (so activations stay input-dependent), then
        # perturbed so that they are not exactly the batch statistics
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.eps = eps
                mod.momentum = None
                last = name.endswith('bn3') or name.endswith('downsample.1')
                lo, hi = (0.1, 0.3) if last else (0.5, 1.5)
                mod.weight.copy_(lo + (hi - lo) * torch.rand(c, generator=g))
                mod.bias.copy_(0.1 * torch.randn(c, generator=g))
        model.train()
        model(structured_inputs(4, g))
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                sd = mod.running_var.sqrt()
                mod.running_mean.add_(0.1 * sd * torch.randn(c, generator=g))
                mod.running_var.mul_(0.7 + 0.6 * torch.rand(c, generator=g))
        model.fc.weight.mul_(4.0)
    model.eval()
    return model, eps


def features(model, x):
    """The (B,2048,7,7) map before global average pooling."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    x = model.layer1(x)
    x = model.layer2(x)
    x = model.layer3(x)
    return model.layer4(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--variant', choices=['v15', 'v1'], required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    model, eps = build_model(args.variant, args.seed)
    tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()
               if not k.endswith('num_batches_tracked')}
    write_safetensors(os.path.join(args.out, 'model.safetensors'), tensors)
    config = {
        "architecture": "resnet50",
        "stride_on": "3x3" if args.variant == 'v15' else "1x1",
        "batchnorm_eps": eps,
        "num_classes": 1000,
        "preprocess": {"resize": 256, "crop": 224, "channel_order": "RGB",
                       "scale": 1.0 / 255, "mean": [0.485, 0.456, 0.406],
                       "std": [0.229, 0.224, 0.225]},
    }
    with open(os.path.join(args.out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=1)

    g = torch.Generator().manual_seed(args.seed + 2)
    x = structured_inputs(args.batch, g)
    with torch.no_grad():
        fmap = features(model, x)
        pooled = torch.flatten(model.avgpool(fmap), 1)
        logits = model.fc(pooled)
        full = model(x)
    assert torch.allclose(full, logits, atol=1e-4)
    tokens = fmap.flatten(2).transpose(1, 2).contiguous()   # (B,49,2048)
    for name, t in (('inputs', x), ('logits', logits), ('pooled', pooled),
                    ('tokens', tokens)):
        t.numpy().astype('<f4').tofile(os.path.join(args.out, name + '.f32'))
    print("wrote %s: variant %s, batch %d, |logits| max %.3f, |pooled| max %.3f"
          % (args.out, args.variant, args.batch, logits.abs().max().item(),
             pooled.abs().max().item()))


if __name__ == '__main__':
    main()
