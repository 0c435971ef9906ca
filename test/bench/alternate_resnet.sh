#!/bin/bash
# alternate_resnet.sh
#   ResNet-50 (224 x 224), the C model on each of its kernel paths against
#   ONNX Runtime only, in many short rounds that alternate them (each round
#   runs C once per path, with MMSA_ISA=<path>, then ONNX Runtime; RUNS
#   timed forward passes each after one warm-up), for ratios that one noisy
#   stretch of the machine cannot swing.  The paths
#   (test/bench/bench_isas.sh): avx2, and avx512 too where the CPU has it,
#   or those MMSA_BENCH_ISAS names.  Prints the CPU's model, cores and SIMD
#   flags and the paths timed, then per path the median over rounds of each
#   round's C / ORT ratio (the path's C over the same round's ORT; of the
#   two medians, and of the two minimums) and the path's and ORT's fastest
#   and median rounds, and the OpenBLAS kernel.  make bench's three rounds
#   of 20 are a snapshot; this is the figure to decide by, and make bench
#   ends with a run of 60 rounds of it.  Two copies of the same binary,
#   alternated the same way over 20 to 30 rounds, differed by up to 4%
#   here: read differences of a few percent over fewer than about 60
#   rounds as noise (MMSA_BENCH_ISAS="avx2 avx2" gives such an A/A control,
#   the path timed twice in each round).
#
#   usage: test/bench/alternate_resnet.sh [ROUNDS (40)] [BATCH (1)] [THREADS (2)] [RUNS (5)]
#   (after make bench, which exports the weights and installs ONNX Runtime;
#   MMSA_BENCH_ISAS chooses the paths, e.g. "avx2" or "avx2 avx512")
set -euo pipefail

. "$(dirname "$0")/resnet_bench_built.sh"
. "$(dirname "$0")/bench_isas.sh"
ROUNDS=${1:-40}
B=${2:-1}
THREADS=${3:-2}
RUNS=${4:-5}

# a row per round: median_ms min_ms of C on each path in ISAS's order, then of ORT
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for _ in $(seq "$ROUNDS"); do
	for isa in $ISAS; do
		c=$(MMSA_ISA=$isa "$ROOT/build/mmsa" bench resnet --model "$BENCH/resnet50" --batch "$B" \
			--threads "$THREADS" --runs "$RUNS" --warmup 1)
		isa_check "$isa" "$c"
		echo "$c" | sed 's/.*median_ms=\([0-9.]*\) min_ms=\([0-9.]*\).*/\1 \2/' | tr '\n' ' ' >>"$rows"
	done
	o=$(node "$ROOT/test/bench/bench_ort_resnet.js" "$BENCH/node_modules" "$BENCH/resnet50.onnx" \
		"$B" "$THREADS" "$RUNS" 1)
	# shellcheck disable=SC2001
	echo "$o" | sed 's/.*median_ms=\([0-9.]*\) min_ms=\([0-9.]*\).*/\1 \2/' >>"$rows"
done
corename=$(echo "$c" | sed -n 's/.*corename=\([^ ]*\).*/\1/p')

/usr/bin/python3 - "$rows" "$B" "$THREADS" "$RUNS" "$ISAS" "$(isa_header)" <<'PY'
import statistics as st
import sys

rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
b, threads, runs, isas, header = sys.argv[2:7]
isas = isas.split()
print("ResNet-50 224x224, batch %s, %s threads: %d rounds of C on each path (%s) then ONNX Runtime,"
      " %s timed passes each" % (b, threads, len(rows), " ".join(isas), runs))
print(header)
for k, isa in enumerate(isas):
    c, o = 2 * k, 2 * len(isas)     # columns: C's median and minimum, ORT's
    print("path %s: C/ORT, median over rounds of each round's ratio: of the medians %.3f, of the minimums %.3f"
          % (isa, st.median(r[c] / r[o] for r in rows), st.median(r[c + 1] / r[o + 1] for r in rows)))
    print("path %s: fastest round (ms per batch): C %.2f, ORT %.2f; median round: C %.2f, ORT %.2f"
          % (isa, min(r[c + 1] for r in rows), min(r[o + 1] for r in rows),
             st.median(r[c] for r in rows), st.median(r[o] for r in rows)))
PY
openblas_line "$corename" "ResNet's products run on gemm.c, not OpenBLAS"
