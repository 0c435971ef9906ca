#!/usr/bin/python3
"""Reference for training the BERT encoder in C (src/core/bert_train.c).

BertForPretrainingHeads: the Hugging Face BertModel of bert_reference.py
(with padding_idx on the word embeddings, as HF BertEmbeddings) under
"bert.", the masked-LM head of BertForMaskedLM (cls.predictions.transform
dense -> erf GELU -> LayerNorm, decoder tied to the word embeddings, plus
cls.predictions.bias) and the sequence-classification head of
BertForSequenceClassification (pooler -> dropout -> classifier).  State
dict names are the Hugging Face ones, so the checkpoint it writes is the
one bert_train_save writes.  Dropout is omitted: the comparison with C runs
both without it.

Usage:
  bert_train_reference.py fixture OUTDIR
      config.json, model.safetensors, inputs.safetensors (padded batch,
      token types, MLM labels with -100, class labels and weights), and
      expected_mlm.safetensors / expected_cls.safetensors holding the loss
      and the gradient of every parameter from autograd (float64).
  bert_train_reference.py adamw OUTDIR
      adamw_in.safetensors (parameters, 5 steps of gradients, decay flags,
      hyperparameters) and adamw_expected.safetensors: the parameters after
      each torch.optim.AdamW step, with clip_grad_norm_ and the linear
      warm-up/decay schedule (LambdaLR as HF get_linear_schedule_with_warmup).
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=16, type_vocab_size=2)
NUM_LABELS = 3


class Transform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(nn.functional.gelu(self.dense(x)))


class Predictions(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = Transform(c)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))


class MLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = Predictions(c)


class BertForPretrainingHeads(nn.Module):
    def __init__(self, c, num_labels):
        super().__init__()
        self.config = c
        self.bert = ref.BertModel(c)
        self.bert.embeddings.word_embeddings = nn.Embedding(
            c["vocab_size"], c["hidden_size"], padding_idx=c["pad_token_id"])
        self.cls = MLMHead(c)
        self.classifier = nn.Linear(c["hidden_size"], num_labels)

    def mlm_loss(self, input_ids, attention_mask, token_type_ids, mlm_labels):
        x, _ = self.bert(input_ids, attention_mask, token_type_ids)
        h = self.cls.predictions.transform(x)
        # decoder tied to the word embeddings
        logits = h @ self.bert.embeddings.word_embeddings.weight.t() + self.cls.predictions.bias
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           mlm_labels.reshape(-1), ignore_index=-100)

    def cls_loss(self, input_ids, attention_mask, token_type_ids, labels, class_weights):
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(pooled)
        return nn.functional.cross_entropy(logits, labels, weight=class_weights)


def tiny_model(seed=3, std=0.1):
    torch.manual_seed(seed)
    c = dict(TINY)
    c.update(model_type="bert", hidden_act="gelu", layer_norm_eps=1e-12,
             position_embedding_type="absolute", hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, initializer_range=0.02, pad_token_id=0)
    model = BertForPretrainingHeads(c, NUM_LABELS)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
            else:
                p.normal_(0.0, std)
    return model


def tiny_inputs(seed=4):
    g = torch.Generator().manual_seed(seed)
    lengths, T = [10, 7, 4], 10
    B = len(lengths)
    ids = torch.randint(4, TINY["vocab_size"], (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.int64)
    types = torch.zeros(B, T, dtype=torch.int64)
    mlm = torch.full((B, T), -100, dtype=torch.int64)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        ids[b, n:] = 0                     # [PAD]
        types[b, n // 2:n] = 1
        for t in range(1, n):
            if torch.rand(1, generator=g).item() < 0.35:
                mlm[b, t] = ids[b, t]
                ids[b, t] = 3              # [MASK]
    mlm[0, 1] = 0                          # a label equal to the pad id
    ids[1, 2], mlm[1, 2] = 0, -100         # the pad id where attended: padding_idx
    labels = torch.tensor([2, 0, 1])
    weights = torch.tensor([1.0, 2.5, 0.5])
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types,
                mlm_labels=mlm, labels=labels, class_weights=weights)


def grads_of(model, loss):
    model.zero_grad()
    loss.backward()
    out = {"loss": np.array([loss.item()], np.float64)}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        out[name] = g.detach().numpy().astype(np.float64)
    return out


def write_f64(path, arrays):
    # safetensors F64 by hand (bert_reference's writer knows F32/F16/I32/I64)
    ref.DTYPES[np.dtype(np.float64)] = "F64"
    ref.NP_DTYPES["F64"] = np.dtype(np.float64)
    ref.write_safetensors(path, arrays)


def fixture(outdir):
    torch.set_num_threads(1)
    os.makedirs(outdir, exist_ok=True)
    model = tiny_model()
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(model.config, f, indent=2)
    ref.write_safetensors(os.path.join(outdir, "model.safetensors"),
                          {k: v.detach().numpy().astype(np.float32)
                           for k, v in model.state_dict().items()})
    inp = tiny_inputs()
    arrays = {k: v.numpy().astype(np.int32) for k, v in inp.items() if k != "class_weights"}
    arrays["class_weights"] = inp["class_weights"].numpy().astype(np.float32)
    ref.write_safetensors(os.path.join(outdir, "inputs.safetensors"), arrays)

    model = model.double()
    common = (inp["input_ids"], inp["attention_mask"], inp["token_type_ids"])
    write_f64(os.path.join(outdir, "expected_mlm.safetensors"),
              grads_of(model, model.mlm_loss(*common, inp["mlm_labels"])))
    write_f64(os.path.join(outdir, "expected_cls.safetensors"),
              grads_of(model, model.cls_loss(*common, inp["labels"],
                                             inp["class_weights"].double())))


def adamw(outdir, steps=5):
    torch.set_num_threads(1)
    os.makedirs(outdir, exist_ok=True)
    g = torch.Generator().manual_seed(5)
    w0 = torch.randn(40, generator=g)
    b0 = torch.randn(8, generator=g)
    grads = [torch.randn(48, generator=g) * (0.3 if s % 2 else 3.0) for s in range(steps)]
    lr, beta1, beta2, eps, wd, warmup, max_norm = 1e-2, 0.9, 0.999, 1e-6, 0.01, 2, 1.0
    w = nn.Parameter(w0.clone())
    b = nn.Parameter(b0.clone())
    opt = torch.optim.AdamW([{"params": [w], "weight_decay": wd},
                             {"params": [b], "weight_decay": 0.0}],
                            lr=lr, betas=(beta1, beta2), eps=eps, foreach=False)

    def lam(s):
        if s < warmup:
            return s / max(1, warmup)
        return max(0.0, (steps - s) / max(1, steps - warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    after = []
    for s in range(steps):
        w.grad = grads[s][:40].clone()
        b.grad = grads[s][40:].clone()
        torch.nn.utils.clip_grad_norm_([w, b], max_norm)
        opt.step()
        sched.step()
        after.append(torch.cat([w.detach(), b.detach()]).clone())
    ref.write_safetensors(os.path.join(outdir, "adamw_in.safetensors"), {
        "params": torch.cat([w0, b0]).numpy(),
        "grads": torch.stack(grads).numpy(),
        "decay": np.array([1.0] * 40 + [0.0] * 8, np.float32),
        "hparams": np.array([lr, beta1, beta2, eps, wd, warmup, steps, max_norm], np.float32)})
    ref.write_safetensors(os.path.join(outdir, "adamw_expected.safetensors"),
                          {"params": torch.stack(after).numpy()})


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("fixture", "adamw"):
        print(__doc__, file=sys.stderr)
        return 2
    (fixture if sys.argv[1] == "fixture" else adamw)(sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
