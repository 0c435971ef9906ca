#!/usr/bin/python3
"""The seven C fusion heads (src/core/fusion.c) against PyTorch autograd.

test/reference/fusion_reference.py writes the heads independently on
torch's modules (nn.MultiheadAttention with key_padding_mask,
nn.TransformerEncoderLayer post-LN with erf GELU, nn.LayerNorm,
nn.Linear) from the equations documented in src/core/fusion.h, for a tiny
configuration (C = 32, 4 heads, FFN 64, 49 image tokens of width 24,
B = 3, T = 7 with two padded rows) with O(1) random parameters, and
computes in float64 the logits and, for L = sum(logits * dlogits), the
gradient of every parameter and of H_T and F_T (dropout off).  The C side
(build/unit/test_fusion_grad --compare, float32) loads each model from the
reference's safetensors (so fusion_load and the tensor names are checked
too) and must match every tensor: max |C - torch| <= 1e-4 + 1e-3 * max |torch|.
"""
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, done, run_ok as run, ROOT, TMP  # noqa: E402
WORK = os.path.join(TMP, "fusion_reference")
DRIVER = os.path.join(ROOT, "build", "unit", "test_fusion_grad")
REF = os.path.join(ROOT, "test", "reference", "fusion_reference.py")
ABS_TOL, REL_TOL = 1e-4, 1e-3
KINDS = ["bert", "resnet", "nativecat", "nativecombine", "cmac", "hstec", "ote"]

import bert_reference as ref  # noqa: E402

ref.NP_DTYPES["F64"] = np.dtype(np.float64)


def compare(kind):
    want = ref.read_safetensors(os.path.join(WORK, "expected_%s.safetensors" % kind))
    path = os.path.join(WORK, "out_%s.safetensors" % kind)
    if not ok(os.path.exists(path), "%s: C output written" % kind):
        return
    got = ref.read_safetensors(path)
    names = sorted(want)
    missing = [k for k in names if k not in got or got[k].shape != want[k].shape]
    ok(not missing and len(got) == len(want),
       "%s: C gives logits, dH_T, dF_T and %d parameter gradients with torch's shapes%s"
       % (kind, len(names) - 3, (" (missing: %s)" % ", ".join(missing[:5])) if missing else ""))
    worst = {}
    bad = []
    nonzero = 0
    for k in names:
        if k in missing:
            continue
        g = got[k].astype(np.float64)
        w = want[k]
        d = float(np.max(np.abs(g - w)))
        scale = float(np.max(np.abs(w)))
        nonzero += scale > 1e-6
        worst[k] = (d, scale)
        if not d <= ABS_TOL + REL_TOL * scale:
            bad.append("%s: max abs diff %.3g, max |torch| %.3g" % (k, d, scale))
    for b in bad[:10]:
        diag(b)
    lg = worst.get("logits", (float("nan"), 0))
    dh = worst.get("dH_T", (float("nan"), 0))
    df = worst.get("dF_T", (float("nan"), 0))
    gw = max((v for k, v in worst.items() if k.startswith("grad.")), default=(0.0, 0.0))
    ok(not bad,
       "%s: all within %g + %g * max|torch|: logits diff %.2e (max|torch| %.3g), "
       "dH_T %.2e (%.3g), dF_T %.2e (%.3g), worst parameter gradient diff %.2e; "
       "%d of %d tensors nonzero"
       % (kind, ABS_TOL, REL_TOL, lg[0], lg[1], dh[0], dh[1], df[0], df[1], gw[0],
          nonzero, len(names)))


def main():
    if not os.access(DRIVER, os.X_OK):
        ok(False, "C driver built at %s" % DRIVER)
        done()
    shutil.rmtree(WORK, ignore_errors=True)
    if not ok(run("/usr/bin/python3", REF, "fixture", WORK), "reference fixtures generated"):
        done()
    if ok(run(DRIVER, "--compare", WORK), "C logits and gradients computed"):
        for kind in KINDS:
            compare(kind)
    shutil.rmtree(WORK, ignore_errors=True)
    done()


if __name__ == "__main__":
    sys.exit(main())
