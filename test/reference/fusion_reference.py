#!/usr/bin/python3
"""The seven fusion heads of src/core/fusion.h written independently in
PyTorch, from the equations and choices documented there, on torch's own
modules (nn.MultiheadAttention with key_padding_mask, nn.TransformerEncoderLayer
post-LN with erf GELU, nn.LayerNorm, nn.Linear), in float64.

    fusion_reference.py fixture DIR   writes DIR/inputs.safetensors and
        DIR/model_<kind>.safetensors (float32, with fusion.h's names and
        metadata) for a tiny configuration, and DIR/expected_<kind>.safetensors
        (float64: logits, dH_T, dF_T, grad.<name>) from torch autograd of
        L = sum(logits * dlogits) with dropout off.

Used by test/t/fusion_reference.t.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402  (safetensors by hand)

KINDS = ["bert", "resnet", "nativecat", "nativecombine", "cmac", "hstec", "ote"]
CFG = dict(hidden=32, heads=4, image_width=24, image_tokens=49, ffn=64)
B, T = 3, 7
LN_EPS = 1e-12
CLASSES = 3


class ImageProj(nn.Module):
    """P_I(x) = LN(Linear(DI->C)(x))"""

    def __init__(self, di, c):
        super().__init__()
        self.dense = nn.Linear(di, c)
        self.LayerNorm = nn.LayerNorm(c, eps=LN_EPS)

    def forward(self, x):
        return self.LayerNorm(self.dense(x))


def mha(c, nh):
    return nn.MultiheadAttention(c, nh, dropout=0.0, batch_first=True)


def encoder(c, nh, ff):
    return nn.TransformerEncoderLayer(c, nh, dim_feedforward=ff, dropout=0.0,
                                      activation="gelu", layer_norm_eps=LN_EPS,
                                      batch_first=True, norm_first=False)


def masked_mean(x, valid):
    """x (B,S,C), valid (B,S) bool -> (B,C)"""
    w = valid.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1)


class Head(nn.Module):
    def __init__(self, kind, hidden, heads, image_width, image_tokens, ffn):
        super().__init__()
        self.kind = kind
        C, DI = hidden, image_width
        if kind == "bert":
            self.classifier = nn.Linear(C, CLASSES)
        elif kind == "resnet":
            self.classifier = nn.Linear(DI, CLASSES)
        elif kind == "nativecat":
            self.classifier = nn.Linear(C + DI, CLASSES)
        elif kind == "nativecombine":
            self.text_classifier = nn.Linear(C, CLASSES)
            self.image_classifier = nn.Linear(DI, CLASSES)
        else:
            self.image_proj = ImageProj(DI, C)
            if kind == "cmac":
                self.attn_i2t = mha(C, heads)
                self.attn_t2i = mha(C, heads)
            else:
                self.encoder = encoder(C, heads, ffn)
            if kind == "ote":
                self.classifier = nn.Linear(C, CLASSES)
            else:
                self.text_classifier = nn.Linear(2 * C, CLASSES)
                self.image_classifier = nn.Linear(DI + C, CLASSES)

    def forward(self, H_T, mask, F_T, H_I, F_I):
        k = self.kind
        valid = mask.bool()
        if k == "bert":
            return self.classifier(F_T)
        if k == "resnet":
            return self.classifier(F_I)
        if k == "nativecat":
            return self.classifier(torch.cat([F_T, F_I], dim=1))
        if k == "nativecombine":
            return self.text_classifier(F_T) + self.image_classifier(F_I)
        if k == "cmac":
            HI = self.image_proj(H_I)
            A_i2t, _ = self.attn_i2t(HI, H_T, H_T, key_padding_mask=~valid)
            A_t2i, _ = self.attn_t2i(H_T, HI, HI)
            a_i2t = A_i2t.mean(dim=1)
            a_t2i = masked_mean(A_t2i, valid)
            return (self.text_classifier(torch.cat([F_T, a_i2t], dim=1))
                    + self.image_classifier(torch.cat([F_I, a_t2i], dim=1)))
        if k == "hstec":
            HI = self.image_proj(H_I)
            X = torch.cat([H_T, HI], dim=1)
            seq_valid = torch.cat([valid, torch.ones(HI.shape[:2], dtype=torch.bool)], dim=1)
            A = self.encoder(X, src_key_padding_mask=~seq_valid)
            a = masked_mean(A, seq_valid)
            return (self.text_classifier(torch.cat([F_T, a], dim=1))
                    + self.image_classifier(torch.cat([F_I, a], dim=1)))
        if k == "ote":
            Fc = torch.stack([self.image_proj(F_I), F_T], dim=1)
            Fa = self.encoder(Fc)
            return self.classifier(Fa.mean(dim=1))
        raise ValueError(k)


def c_names(head):
    """fusion.h name -> (torch parameter, row slice or None)"""
    out = {}
    sd = dict(head.named_parameters())
    for name, p in sd.items():
        if name.endswith("in_proj_weight") or name.endswith("in_proj_bias"):
            pre = name.rsplit(".", 1)[0]
            if pre.endswith("self_attn"):
                pre = pre[:-len("self_attn")] + "attention"
            kind = "weight" if name.endswith("weight") else "bias"
            C = p.shape[0] // 3
            for i, part in enumerate(["query", "key", "value"]):
                out["%s.%s.%s" % (pre, part, kind)] = (p, slice(i * C, (i + 1) * C))
            continue
        n = name.replace("encoder.self_attn.out_proj", "encoder.attention.output")
        n = n.replace("out_proj", "output")
        n = n.replace("encoder.norm1", "encoder.attention_norm")
        n = n.replace("encoder.norm2", "encoder.output_norm")
        n = n.replace("encoder.linear1", "encoder.ffn.intermediate")
        n = n.replace("encoder.linear2", "encoder.ffn.output")
        out[n] = (p, None)
    return out


def draw_params(head, rng):
    """O(1) values as the C test draws: Xavier-like weights, LN near 1, biases."""
    with torch.no_grad():
        for name, p in head.named_parameters():
            u = rng.uniform(-1, 1, size=tuple(p.shape))
            if "norm" in name or "LayerNorm" in name:
                v = 1.0 + 0.3 * u
            elif name.endswith("bias"):
                v = 0.2 * u
            else:
                v = 1.5 * u / np.sqrt(p.shape[1])
            p.copy_(torch.from_numpy(v.astype(np.float32).astype(np.float64)))


def write_f64(path, arrays):
    ref.DTYPES[np.dtype(np.float64)] = "F64"
    ref.NP_DTYPES["F64"] = np.dtype(np.float64)
    ref.write_safetensors(path, arrays)


def fixture(outdir):
    torch.set_num_threads(1)
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20240611)
    C, DI, NI = CFG["hidden"], CFG["image_width"], CFG["image_tokens"]
    mask = np.ones((B, T), dtype=np.int32)
    mask[0, 3:] = 0
    mask[2, 5:] = 0
    inp = {
        "H_T": rng.standard_normal((B, T, C)).astype(np.float32),
        "mask": mask,
        "F_T": rng.uniform(-1, 1, (B, C)).astype(np.float32),
        "H_I": rng.uniform(0, 2, (B, NI, DI)).astype(np.float32),
        "F_I": rng.uniform(0, 2, (B, DI)).astype(np.float32),
        "dlogits": rng.standard_normal((B, CLASSES)).astype(np.float32),
    }
    ref.write_safetensors(os.path.join(outdir, "inputs.safetensors"), inp)
    t = {k: torch.from_numpy(v.astype(np.float64)) for k, v in inp.items() if k != "mask"}
    tmask = torch.from_numpy(mask)
    for kind in KINDS:
        torch.manual_seed(0)
        head = Head(kind, **CFG).double()
        draw_params(head, rng)
        names = c_names(head)
        arrays = {}
        for n, (p, sl) in names.items():
            v = p.detach() if sl is None else p.detach()[sl]
            arrays[n] = v.numpy().astype(np.float32)
        meta = {"mmsa.fusion.kind": kind}
        meta.update({"mmsa.fusion." + k: str(v) for k, v in CFG.items()})

        def add_meta(header, meta=meta):
            header["__metadata__"] = meta
        ref.write_safetensors(os.path.join(outdir, "model_%s.safetensors" % kind),
                              arrays, header_override=add_meta)

        head.eval()
        H_T = t["H_T"].clone().requires_grad_(True)
        F_T = t["F_T"].clone().requires_grad_(True)
        logits = head(H_T, tmask, F_T, t["H_I"], t["F_I"])
        loss = (logits * t["dlogits"]).sum()
        loss.backward()
        # an input a head does not read gets no .grad: its gradient is 0
        exp = {"logits": logits.detach().numpy(),
               "dH_T": (H_T.grad if H_T.grad is not None else torch.zeros_like(H_T)).numpy(),
               "dF_T": (F_T.grad if F_T.grad is not None else torch.zeros_like(F_T)).numpy()}
        for n, (p, sl) in names.items():
            g = p.grad if sl is None else p.grad[sl]
            exp["grad." + n] = g.detach().numpy().astype(np.float64)
        write_f64(os.path.join(outdir, "expected_%s.safetensors" % kind), exp)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "fixture":
        fixture(sys.argv[2])
    else:
        sys.exit("usage: fusion_reference.py fixture DIR")
