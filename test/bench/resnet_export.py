#!/usr/bin/python3
"""
resnet_export.py - the ResNet-50 used by test/bench/bench_resnet.sh.

  export DIR       torchvision resnet50 (v1.5) with random weights and
                   calibrated BatchNorm statistics (the generator of
                   test/reference/resnet_reference.py), written as DIR/
                   (model.safetensors + config.json for the C model) and
                   DIR.onnx (the same weights, dynamic batch) for ONNX Runtime.
  time DIR B T R W PyTorch timing of the same network: batch B, T threads,
                   R timed runs after W warm-up runs; prints one line like
                   `mmsa bench resnet`.
"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
import resnet_reference  # noqa: E402


def time_forward(model, B, R, W):
    """Milliseconds of each of R forward passes of a (B, 3, 224, 224) batch
    in [-1, 1), after W warm-up passes."""
    x = torch.rand(B, 3, 224, 224) * 2 - 1
    ms = []
    with torch.inference_mode():
        for i in range(W + R):
            t0 = time.perf_counter()
            model(x)
            if i >= W:
                ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def main():
    mode, out = sys.argv[1], sys.argv[2]
    if mode == 'export':
        torch.set_num_threads(2)
        model, _ = resnet_reference.build_model('v15', 0)
        os.makedirs(out, exist_ok=True)
        tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()
                   if not k.endswith('num_batches_tracked')}
        resnet_reference.write_safetensors(os.path.join(out, 'model.safetensors'), tensors)
        with open(os.path.join(out, 'config.json'), 'w') as f:
            f.write('{"architecture": "resnet50", "stride_on": "3x3", "batchnorm_eps": 1e-5,'
                    ' "num_classes": 1000}\n')
        torch.save(model.state_dict(), os.path.join(out, 'state_dict.pt'))
        x = torch.randn(1, 3, 224, 224)
        torch.onnx.export(model, x, out + '.onnx', input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                          opset_version=17, do_constant_folding=True)
        print('exported %s/ and %s.onnx' % (out, out))
    elif mode == 'time':
        B, T, R, W = (int(a) for a in sys.argv[3:7])
        torch.set_num_threads(T)
        model, _ = resnet_reference.build_model('v15', 0)
        model.load_state_dict(torch.load(os.path.join(out, 'state_dict.pt')))
        model.eval()
        ms = time_forward(model, B, R, W)
        print('pytorch batch=%d threads=%d runs=%d median_ms=%.3f min_ms=%.3f ms_per_image=%.3f version=%s'
              % (B, T, R, statistics.median(ms), min(ms), statistics.median(ms) / B, torch.__version__))
    else:
        raise SystemExit('usage: resnet_export.py export|time DIR ...')


if __name__ == '__main__':
    main()
