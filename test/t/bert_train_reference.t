#!/usr/bin/python3
"""The trainable C BERT (src/core/bert_train.c) against PyTorch autograd,
and the C AdamW against torch.optim.AdamW.

test/reference/bert_train_reference.py builds a tiny BERT (2 layers, 32
wide, 2 heads, vocabulary 100, 16 positions) with the MLM head of
BertForMaskedLM and the classification head of
BertForSequenceClassification, a padded batch with token types, MLM labels
(-100 elsewhere) and class labels with class weights, and computes each loss
and the gradient of every parameter in float64.  The C side
(build/unit/test_bert_train --compare, float32, dropout off) must match:
the loss within 1e-5, and every parameter gradient with
max |C - torch| <= 1e-4 + 1e-3 * max |torch| over the tensor.
AdamW: 5 steps with clip_grad_norm_ (max norm 1), the linear warm-up/decay
schedule and weight decay on one tensor but not the other must give
torch's parameters within 1e-6.
"""
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, done, run_ok as run, ROOT, TMP  # noqa: E402
WORK = os.path.join(TMP, "bert_train_reference")
DRIVER = os.path.join(ROOT, "build", "unit", "test_bert_train")
REF = os.path.join(ROOT, "test", "reference", "bert_train_reference.py")
ABS_TOL, REL_TOL, LOSS_TOL, ADAMW_TOL = 1e-4, 1e-3, 1e-5, 1e-6

import bert_reference as ref  # noqa: E402

ref.NP_DTYPES["F64"] = np.dtype(np.float64)


def compare(which, label):
    want = ref.read_safetensors(os.path.join(WORK, "expected_%s.safetensors" % which))
    got = ref.read_safetensors(os.path.join(WORK, "c_grads_%s.safetensors" % which))
    loss_diff = abs(float(got["loss"][0]) - float(want["loss"][0]))
    ok(loss_diff <= LOSS_TOL, "%s loss: C %.7f, torch %.7f, diff %.2e <= %g"
       % (label, float(got["loss"][0]), float(want["loss"][0]), loss_diff, LOSS_TOL))
    names = sorted(k for k in want if k != "loss")
    missing = [k for k in names if k not in got or got[k].shape != want[k].shape]
    ok(not missing, "%s: C has the gradient of all %d parameters with their shapes%s"
       % (label, len(names), (" (missing: %s)" % ", ".join(missing[:5])) if missing else ""))
    worst_abs, worst_rel, worst_name, bad = 0.0, 0.0, "", []
    nonzero = 0
    for k in names:
        if k in missing:
            continue
        g = got[k].astype(np.float64)
        w = want[k]
        d = float(np.max(np.abs(g - w)))
        scale = float(np.max(np.abs(w)))
        # (the key biases' true gradient is 0: softmax ignores a constant
        # added to a row; so relative figures only where |torch| > 1e-6)
        rel = d / scale if scale > 1e-6 else 0.0
        nonzero += scale > 1e-6
        if d > worst_abs:
            worst_abs, worst_name = d, k
        worst_rel = max(worst_rel, rel)
        if not d <= ABS_TOL + REL_TOL * scale:
            bad.append("%s: max abs diff %.3g, max |torch| %.3g" % (k, d, scale))
    for b in bad[:10]:
        diag(b)
    ok(not bad, "%s: every parameter gradient within %g + %g * max|torch| "
       "(worst abs diff %.2e on %s, worst diff / max|torch| %.2e over the %d tensors with max|torch| > 1e-6)"
       % (label, ABS_TOL, REL_TOL, worst_abs, worst_name, worst_rel, nonzero))
    return nonzero


def main():
    if not os.access(DRIVER, os.X_OK):
        ok(False, "C driver built at %s" % DRIVER)
        done()
    shutil.rmtree(WORK, ignore_errors=True)
    if not ok(run("/usr/bin/python3", REF, "fixture", WORK) and run("/usr/bin/python3", REF, "adamw", WORK),
              "reference fixtures generated"):
        done()
    if ok(run(DRIVER, "--compare", WORK), "C losses and gradients computed"):
        n_mlm = compare("mlm", "MLM loss (tied decoder, padding, -100 labels)")
        n_cls = compare("cls", "classification loss (pooler, class weights)")
        # the comparison is not vacuous: the MLM loss reaches the MLM head,
        # the word embeddings and the encoder; the classification loss the
        # pooler and the classifier
        ok(n_mlm >= 38 and n_cls >= 37,
           "gradients reach %d tensors (MLM) and %d (classification)" % (n_mlm, n_cls))
    if ok(run(DRIVER, "--adamw", WORK), "C AdamW steps run"):
        got = ref.read_safetensors(os.path.join(WORK, "adamw_out.safetensors"))["params"]
        want = ref.read_safetensors(os.path.join(WORK, "adamw_expected.safetensors"))["params"]
        start = ref.read_safetensors(os.path.join(WORK, "adamw_in.safetensors"))["params"]
        if ok(got.shape == want.shape, "AdamW output shape %s" % (got.shape,)):
            steps = [float(np.max(np.abs(got[s].astype(np.float64) - want[s]))) for s in range(len(want))]
            moved = float(np.max(np.abs(want[-1] - start)))
            ok(max(steps) <= ADAMW_TOL and moved > 100 * ADAMW_TOL,
               "AdamW (weight decay on 40 of 48, clipping, warm-up 2 of 5 steps) = torch.optim.AdamW: "
               "max abs diff per step %s <= %g (parameters moved by up to %.3g)"
               % (", ".join("%.1e" % d for d in steps), ADAMW_TOL, moved))
    shutil.rmtree(WORK, ignore_errors=True)
    done()


if __name__ == "__main__":
    sys.exit(main())
