#!/bin/bash
# resnet_layers.sh: where ResNet-50's time goes, convolution by convolution:
# `mmsa bench resnet --profile` beside ONNX Runtime's own profile of the same
# weights (test/bench/ort_profile_resnet.js), milliseconds per image and
# their ratio, then the layer kinds sorted by the time the C model loses.
# A profile, not a benchmark: ONNX Runtime's profiler adds its own overhead,
# so read the ratios against each other rather than against 1.
#
#   usage: test/bench/resnet_layers.sh [BATCH (1)] [RUNS (10)] [THREADS (2)]
#   (after `make bench`, which exports the weights and installs ONNX Runtime)
set -euo pipefail

. "$(dirname "$0")/resnet_bench_built.sh"
B=${1:-1}
RUNS=${2:-10}
THREADS=${3:-2}

c_out=$("$ROOT/build/mmsa" bench resnet --model "$BENCH/resnet50" --batch "$B" --threads "$THREADS" \
	--runs "$RUNS" --warmup 1 --profile)
ort_out=$(node "$ROOT/test/bench/ort_profile_resnet.js" "$BENCH/node_modules" "$BENCH/resnet50.onnx" \
	"$B" "$THREADS" "$RUNS" "$BENCH/ort-profile")

echo "$c_out" | head -1
echo "ResNet-50, batch $B, $THREADS threads, $RUNS runs: ms per image per convolution"
/usr/bin/python3 - "$c_out" "$ort_out" <<'PY'
import re, sys, collections
c = [l for l in sys.argv[1].splitlines() if re.match(r'\s+\d+\s+\d+x\d+ s\d', l)]
o = [float(l.split()[2]) for l in sys.argv[2].splitlines() if l.startswith('conv ')]
if len(c) != len(o):
    sys.exit('resnet_layers.sh: %d C convolutions against %d ONNX Runtime Conv nodes' % (len(c), len(o)))
kinds = collections.OrderedDict()
print('%3s  %-44s %9s %9s %6s' % ('#', 'convolution (C: method)', 'C', 'ORT', 'C/ORT'))
for line, ort in zip(c, o):
    f = line.split()
    idx, what, ms = f[0], ' '.join(f[1:-3]), float(f[-3])
    print('%3s  %-44s %9.3f %9.3f %6.2f' % (idx, what, ms, ort, ms / ort))
    k = kinds.setdefault(what, [0.0, 0.0, 0])
    k[0] += ms; k[1] += ort; k[2] += 1
tc, to = sum(k[0] for k in kinds.values()), sum(k[1] for k in kinds.values())
print('all convolutions: C %.3f ms, ORT %.3f ms, C/ORT %.2f' % (tc, to, tc / to))
print('by kind, most time lost first:')
for what, (a, b, n) in sorted(kinds.items(), key=lambda kv: kv[1][1] - kv[1][0]):
    print('  %-44s x%-2d C %8.3f ORT %8.3f  %+7.3f ms' % (what, n, a, b, a - b))
PY
