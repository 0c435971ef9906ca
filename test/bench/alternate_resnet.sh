#!/bin/bash
# alternate_resnet.sh
#   ResNet-50 (224 x 224), the C model against ONNX Runtime only, in many
#   short rounds that alternate the two (RUNS timed forward passes each after
#   one warm-up), for a ratio that one noisy stretch of the machine cannot
#   swing: prints the median over rounds of each round's C / ORT ratio (of
#   the two medians, and of the two minimums), and each tool's fastest
#   round.  make bench's three rounds of 20 are a snapshot; this is the
#   figure to decide by, and make bench ends with a run of 60 rounds of
#   it.  Two copies of the same binary, alternated the same way over 20 to
#   30 rounds, differed by up to 4% here: read differences of a few
#   percent over fewer than about 60 rounds as noise.
#
#   usage: test/bench/alternate_resnet.sh [ROUNDS (40)] [BATCH (1)] [THREADS (2)] [RUNS (5)]
#   (after make bench, which exports the weights and installs ONNX Runtime)
set -euo pipefail

. "$(dirname "$0")/resnet_bench_built.sh"
ROUNDS=${1:-40}
B=${2:-1}
THREADS=${3:-2}
RUNS=${4:-5}

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for _ in $(seq "$ROUNDS"); do
	c=$("$ROOT/build/mmsa" bench resnet --model "$BENCH/resnet50" --batch "$B" --threads "$THREADS" \
		--runs "$RUNS" --warmup 1)
	o=$(node "$ROOT/test/bench/bench_ort_resnet.js" "$BENCH/node_modules" "$BENCH/resnet50.onnx" \
		"$B" "$THREADS" "$RUNS" 1)
	echo "$c" | sed 's/.*median_ms=\([0-9.]*\) min_ms=\([0-9.]*\).*/\1 \2/' | tr '\n' ' ' >>"$rows"
	echo "$o" | sed 's/.*median_ms=\([0-9.]*\) min_ms=\([0-9.]*\).*/\1 \2/' >>"$rows"
done
corename=$(echo "$c" | sed -n 's/.*corename=\([^ ]*\).*/\1/p')

/usr/bin/python3 - "$rows" "$B" "$THREADS" "$RUNS" "$corename" <<'PY'
import statistics as st
import sys

rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
b, threads, runs, corename = sys.argv[2:6]
print("ResNet-50 224x224, batch %s, %s threads: %d rounds of C then ONNX Runtime, %s timed passes each"
      % (b, threads, len(rows), runs))
print("C/ORT, median over rounds of each round's ratio: of the medians %.3f, of the minimums %.3f"
      % (st.median(r[0] / r[2] for r in rows), st.median(r[1] / r[3] for r in rows)))
print("fastest round (ms per batch): C %.2f, ORT %.2f; median round: C %.2f, ORT %.2f"
      % (min(r[1] for r in rows), min(r[3] for r in rows),
         st.median(r[0] for r in rows), st.median(r[2] for r in rows)))
print("OpenBLAS kernel: %s (ResNet's products run on gemm.c, not OpenBLAS)" % corename)
PY
