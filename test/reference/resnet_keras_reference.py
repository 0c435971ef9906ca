#!/usr/bin/python3
"""
resnet_keras_reference.py - an independent forward pass of a Keras model
saved as a TensorFlow.js layers model (model.json + weight shards).

It shares nothing with the C converter (mmsa convert-tfjs) or the C model:
the shards are read here with numpy, and the network is not hard-coded but
interpreted layer by layer from the Keras topology in model.json, with
Keras semantics (ZeroPadding2D then 'valid' convolution / max pooling,
TensorFlow's 'same' padding, BatchNormalization with each layer's own
epsilon, Add, GlobalAveragePooling2D, Dense).  PyTorch does the arithmetic
(float32, NCHW; Keras kernels HWIO are used as OIHW).

Input: float32 (N, 3, 224, 224) tensors already preprocessed for the model
(for Keras ResNet-50: BGR, mean-subtracted), e.g. the tensors that
`mmsa classify --save-inputs` wrote.  Output: float32 logits (N, classes),
the values before the final softmax.

usage: resnet_keras_reference.py --model-json PATH --inputs FILE --out FILE [--batch 8]
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F


def load_weights(model_json):
    """{"layer/param": numpy float32 array} from the weightsManifest shards."""
    with open(model_json) as f:
        model = json.load(f)
    base = os.path.dirname(model_json)
    weights = {}
    for group in model['weightsManifest']:
        blob = b''.join(open(os.path.join(base, p), 'rb').read() for p in group['paths'])
        offset = 0
        for w in group['weights']:
            if w['dtype'] != 'float32' or 'quantization' in w:
                raise SystemExit('unsupported weight %s (dtype %s, quantization %s)'
                                 % (w['name'], w['dtype'], w.get('quantization')))
            n = int(np.prod(w['shape'])) if w['shape'] else 1
            a = np.frombuffer(blob, dtype='<f4', count=n, offset=offset)
            weights[w['name']] = a.reshape(w['shape'])
            offset += 4 * n
        if offset != len(blob):
            raise SystemExit('shards hold %d bytes, weights %d' % (len(blob), offset))
    return model, weights


def same_padding(size, k, s):
    """TensorFlow 'same': (before, after) padding along one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class KerasGraph:
    def __init__(self, model_json):
        model, w = load_weights(model_json)
        self.layers = model['modelTopology']['model_config']['config']['layers']
        cfg = model['modelTopology']['model_config']['config']
        self.output = cfg['output_layers'][0][0]
        self.p = {}
        for name, a in w.items():
            layer, param = name.rsplit('/', 1)
            self.p.setdefault(layer.split('/')[-1], {})[param] = torch.from_numpy(a.copy())
        # kernels to PyTorch layouts, once
        for layer in self.layers:
            params = self.p.get(layer['name'], {})
            if layer['class_name'] == 'Conv2D':
                params['kernel'] = params['kernel'].permute(3, 2, 0, 1).contiguous()

    def forward(self, x):
        """x: (N, C, H, W) network input.  Returns logits before the head's activation."""
        t = {}
        logits = None
        for layer in self.layers:
            cls, name, c = layer['class_name'], layer['name'], layer['config']
            ins = [t[n[0]] for n in layer['inbound_nodes'][0]] if layer['inbound_nodes'] else []
            p = self.p.get(name, {})
            if cls == 'InputLayer':
                y = x
            elif cls == 'ZeroPadding2D':
                (top, bottom), (left, right) = c['padding']
                y = F.pad(ins[0], (left, right, top, bottom))
            elif cls == 'Conv2D':
                kh, kw = c['kernel_size']
                sh, sw = c['strides']
                inp = ins[0]
                if c['padding'] == 'same':
                    pt, pb = same_padding(inp.shape[2], kh, sh)
                    pl, pr = same_padding(inp.shape[3], kw, sw)
                    inp = F.pad(inp, (pl, pr, pt, pb))
                elif c['padding'] != 'valid':
                    raise SystemExit('padding %s' % c['padding'])
                y = F.conv2d(inp, p['kernel'], p.get('bias') if c['use_bias'] else None,
                             stride=(sh, sw))
                if c['activation'] == 'relu':
                    y = F.relu(y)
                elif c['activation'] != 'linear':
                    raise SystemExit('activation %s' % c['activation'])
            elif cls == 'BatchNormalization':
                shape = (1, -1, 1, 1)
                scale = p['gamma'] / torch.sqrt(p['moving_variance'] + c['epsilon'])
                y = (ins[0] - p['moving_mean'].view(shape)) * scale.view(shape) + p['beta'].view(shape)
            elif cls == 'Activation':
                if c['activation'] != 'relu':
                    raise SystemExit('activation %s' % c['activation'])
                y = F.relu(ins[0])
            elif cls == 'MaxPooling2D':
                if c['padding'] != 'valid':
                    raise SystemExit('max pool padding %s' % c['padding'])
                y = F.max_pool2d(ins[0], tuple(c['pool_size']), tuple(c['strides']))
            elif cls == 'Add':
                y = ins[0]
                for other in ins[1:]:
                    y = y + other
            elif cls == 'GlobalAveragePooling2D':
                y = ins[0].mean(dim=(2, 3))
            elif cls == 'Dense':
                y = ins[0] @ p['kernel'] + p['bias']
                logits = y
                if c['activation'] == 'softmax':
                    y = torch.softmax(y, dim=1)
            else:
                raise SystemExit('layer class %s not supported' % cls)
            t[name] = y
        if logits is None:
            raise SystemExit('no Dense head')
        return logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model-json', required=True)
    ap.add_argument('--inputs', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = KerasGraph(args.model_json)
    x = np.fromfile(args.inputs, dtype='<f4').reshape(-1, 3, 224, 224)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), args.batch):
            out.append(g.forward(torch.from_numpy(x[i:i + args.batch].copy())).numpy())
    np.concatenate(out).astype('<f4').tofile(args.out)
    print('wrote %s: %d images' % (args.out, len(x)))


if __name__ == '__main__':
    main()
