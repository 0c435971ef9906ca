#!/usr/bin/python3
"""Reference BERT encoder (Hugging Face BertModel semantics) in PyTorch.

Written from scratch (the `transformers` package is not installed) with the
standard Hugging Face module structure, so that state_dict() names are the
Hugging Face tensor names (embeddings.word_embeddings.weight,
encoder.layer.N.attention.self.query.weight, ...).  Post-LayerNorm, exact
erf GELU, additive attention mask (1 - mask) * finfo(float32).min, tanh
pooler over the first ([CLS]) position.  Dropout is omitted (inference).

Usage:
  bert_reference.py tests OUTDIR
      fixtures for test/t/bert_reference.t: checkpoints (small and bert-base
      shapes, F16, "bert." prefix with gamma/beta names), inputs and the
      expected outputs of every layer.
  bert_reference.py model OUTDIR [--shape base|small] [--seed N] [--onnx FILE]
      a random checkpoint (config.json + model.safetensors), optionally
      exported to ONNX (inputs input_ids, attention_mask; outputs
      last_hidden_state, pooler_output) for the benchmark.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

SHAPES = {
    # bert-base-uncased
    "base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072,
                 max_position_embeddings=512, type_vocab_size=2),
    "small": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2,
                  num_attention_heads=4, intermediate_size=128,
                  max_position_embeddings=32, type_vocab_size=2),
}


def make_config(shape):
    cfg = dict(SHAPES[shape])
    cfg.update(architectures=["BertModel"], model_type="bert", hidden_act="gelu",
               layer_norm_eps=1e-12, position_embedding_type="absolute",
               hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
               initializer_range=0.02, pad_token_id=0)
    return cfg


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, ids, token_types):
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.word_embeddings(ids) + self.token_type_embeddings(token_types) \
            + self.position_embeddings(pos)
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh = c["num_attention_heads"]
        self.hs = c["hidden_size"] // self.nh
        self.query = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.key = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.value = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x, ext_mask):
        B, T, C = x.shape
        split = lambda t: t.view(B, T, self.nh, self.hs).permute(0, 2, 1, 3)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hs) + ext_mask
        probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, T, C)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # exact erf form


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                all_hidden=False):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) \
            * torch.finfo(torch.float32).min
        x = self.embeddings(input_ids, token_type_ids)
        states = [x]
        for layer in self.encoder.layer:
            x = layer(x, ext)
            states.append(x)
        pooled = self.pooler(x)
        return (x, pooled, states) if all_hidden else (x, pooled)


def random_model(shape, seed, std=0.02):
    """A BertModel with N(0, std) weights and biases and LayerNorm scales and
    shifts away from 1 and 0, so that every parameter is exercised."""
    torch.manual_seed(seed)
    model = BertModel(make_config(shape))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
            else:
                p.normal_(0.0, std)
    return model.eval()


# ---- safetensors, by hand ------------------------------------------------

DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
          np.dtype(np.int32): "I32", np.dtype(np.int64): "I64"}
NP_DTYPES = {v: k for k, v in DTYPES.items()}


def write_safetensors(path, tensors, header_override=None):
    """tensors: dict name -> numpy array (float32, float16, int32, int64)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        b = a.tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if header_override:
        header_override(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e],
                                  dtype=NP_DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


def state_arrays(model, dtype=np.float32):
    return {k: v.detach().numpy().astype(dtype) for k, v in model.state_dict().items()}


def save_checkpoint(outdir, model, dtype=np.float32, rename=None, extra=None):
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(model.config, f, indent=2)
    arrays = state_arrays(model, dtype)
    if rename:
        arrays = {rename(k): v for k, v in arrays.items()}
    if extra:
        arrays.update(extra)
    write_safetensors(os.path.join(outdir, "model.safetensors"), arrays)


# ---- test fixtures -------------------------------------------------------

def make_inputs(cfg, lengths, T, seed, token_types=False):
    """Random ids (positions past each length are [PAD] = 0, mask 0)."""
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    ids = torch.randint(1, cfg["vocab_size"], (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        ids[b, n:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    if token_types:
        tt = torch.zeros(B, T, dtype=torch.int64)
        for b, n in enumerate(lengths):
            tt[b, n // 2:n] = 1      # a second segment
        inputs["token_type_ids"] = tt
    return inputs


def write_case(outdir, name, model, inputs):
    """inputs.safetensors (int32) and expected.safetensors for one case."""
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    with torch.inference_mode():
        last, pooled, states = model(**inputs, all_hidden=True)
    write_safetensors(os.path.join(d, "inputs.safetensors"),
                      {k: v.numpy().astype(np.int32) for k, v in inputs.items()})
    expected = {"hidden_states.%d" % i: s.numpy() for i, s in enumerate(states)}
    expected["last_hidden_state"] = last.numpy()
    expected["pooler_output"] = pooled.numpy()
    write_safetensors(os.path.join(d, "expected.safetensors"), expected)


def rounded_to_f16(model):
    """A copy of model whose weights are rounded to float16 and back."""
    copy = BertModel(model.config)
    copy.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return copy.eval()


def legacy_name(name):
    """bert.-prefixed, LayerNorm gamma/beta (as in bert-base-uncased)."""
    if ".LayerNorm." in name:
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
    return "bert." + name


def gen_tests(outdir):
    torch.set_num_threads(1)
    # the small model gets larger weights, so that attention is far from uniform
    small = random_model("small", seed=1, std=0.1)
    sc = small.config
    save_checkpoint(os.path.join(outdir, "small"), small)
    padded = make_inputs(sc, [12, 7, 3], 12, seed=2, token_types=True)
    write_case(outdir, "small_padded", small, padded)
    maxpos = sc["max_position_embeddings"]
    write_case(outdir, "small_maxpos", small, make_inputs(sc, [maxpos, 20], maxpos, seed=3))

    save_checkpoint(os.path.join(outdir, "small_f16"), small, dtype=np.float16)
    write_case(outdir, "small_f16_padded", rounded_to_f16(small), padded)

    extra = {"cls.predictions.bias": np.zeros(sc["vocab_size"], np.float32),
             "bert.embeddings.position_ids": np.arange(maxpos, dtype=np.int64)[None]}
    save_checkpoint(os.path.join(outdir, "small_legacy"), small, rename=legacy_name, extra=extra)

    base = random_model("base", seed=4)
    save_checkpoint(os.path.join(outdir, "base"), base)
    write_case(outdir, "base_padded", base, make_inputs(base.config, [24, 10, 5], 24, seed=5))


# ---- benchmark model -----------------------------------------------------

def export_onnx(model, path, seq):
    ids = torch.ones(1, seq, dtype=torch.int64)
    mask = torch.ones(1, seq, dtype=torch.int64)

    class Wrapper(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids, attention_mask)

    torch.onnx.export(Wrapper(model), (ids, mask), path, opset_version=14,
                      input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state", "pooler_output"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "attention_mask": {0: "batch", 1: "seq"},
                                    "last_hidden_state": {0: "batch", 1: "seq"},
                                    "pooler_output": {0: "batch"}})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tests")
    t.add_argument("outdir")
    m = sub.add_parser("model")
    m.add_argument("outdir")
    m.add_argument("--shape", default="base", choices=SHAPES)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--onnx")
    m.add_argument("--seq", type=int, default=64)
    a = ap.parse_args()
    if a.cmd == "tests":
        gen_tests(a.outdir)
    else:
        torch.set_num_threads(1)
        model = random_model(a.shape, a.seed)
        save_checkpoint(a.outdir, model)
        if a.onnx:
            export_onnx(model, a.onnx, a.seq)
    return 0


if __name__ == "__main__":
    sys.exit(main())
