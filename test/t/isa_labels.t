#!/usr/bin/python3
"""The shipped model's labels are the same on the AVX2 and AVX-512 paths.

`mmsa predict` over the MVSA-Single posts (every split) with MMSA_ISA=avx2
and with the AVX-512 kernels: natively where the CPU has AVX-512 (all 4,511
posts), else emulated by SIMDe on AVX2 (build/mmsa-simde,
MMSA_ISA=avx512-simde), which takes about 2.5 times as long a post as
AVX2, so that only an evenly spread sample of the posts (one in 16: 282)
is run unless MMSA_ISA_LABELS_ALL=1 (or MMSA_ISA_LABELS_EVERY=N: one post
in N).  The output says which.  Every label must agree; the
kernels compute the same chains of fused multiply-adds on both paths, so
the printed probabilities are expected to agree to the last digit too
(checked, and reported).
"""
import csv
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, done, ROOT, CLI, DATA, TMP  # noqa: E402

MODEL = os.path.join(ROOT, "weights")
POSTS = os.path.join(DATA, "mvsa-single", "posts.csv")
IMAGES = os.path.join(DATA, "mvsa-single", "images")
SIMDE_CLI = os.path.join(os.path.dirname(CLI), "mmsa-simde")

if not ok(os.path.exists(os.path.join(MODEL, "model.json")), "the shipped model in %s" % MODEL):
    done()
cpu = subprocess.run([CLI, "cpu"], capture_output=True, text=True).stdout
flags = dict(line.split(": ", 1) for line in cpu.splitlines() if ": " in line)
diag("CPU flags: %s" % flags.get("cpu_flags", "?"))
native = flags.get("best") == "avx512"
every = 1 if native or os.environ.get("MMSA_ISA_LABELS_ALL") == "1" else \
    max(1, int(os.environ.get("MMSA_ISA_LABELS_EVERY") or 16))
everything = every == 1

with open(POSTS, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
ok(len(rows) == 4511, "%d MVSA-Single posts (4,511 expected)" % len(rows))
if not everything:
    rows = rows[::every]
posts = os.path.join(TMP, "isa_labels_posts.csv")
with open(posts, "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=["id", "split", "label", "text"])
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in ("id", "split", "label", "text")})

if native:
    runs = [("avx2", CLI), ("avx512", CLI)]
    diag("AVX-512 path: native, over all %d posts" % len(rows))
else:
    runs = [("avx2", SIMDE_CLI), ("avx512-simde", SIMDE_CLI)]
    diag("AVX-512 path: not on this CPU; emulated by SIMDe on AVX2, over %s" %
         ("all %d posts" % len(rows) if everything
          else "%d posts (one in %d; MMSA_ISA_LABELS_ALL=1 runs all 4,511)" % (len(rows), every)))

out = {}
for isa, cli in runs:
    env = dict(os.environ, MMSA_ISA=isa)
    t0 = time.perf_counter()
    r = subprocess.run([cli, "predict", "--model", MODEL, "--posts", posts, "--images", IMAGES,
                        "--threads", "2"],
                       capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t0
    ok(r.returncode == 0, "mmsa predict with MMSA_ISA=%s exits 0 (%.0f s, %.1f ms a post)%s"
       % (isa, secs, 1000 * secs / max(len(rows), 1), (": " + r.stderr[-400:]) if r.returncode else ""))
    out[isa] = list(csv.reader(r.stdout.splitlines()))[1:]

a, b = (out[isa] for isa, _ in runs)
ok(len(a) == len(rows) and len(b) == len(rows),
   "a prediction for every post on both paths (%d, %d of %d)" % (len(a), len(b), len(rows)))
differ = [x[0] for x, y in zip(a, b) if x[1] != y[1]]
ok(not differ, "labels identical on %s and %s for all %d posts%s"
   % (runs[0][0], runs[1][0], len(a), (": differ for ids " + ", ".join(differ[:10])) if differ else ""))
maxdiff = max((abs(float(u) - float(v)) for x, y in zip(a, b) for u, v in zip(x[2:], y[2:])), default=0.0)
ok(maxdiff == 0.0, "probabilities identical to the printed digit (largest difference %.6f)" % maxdiff)
done()
