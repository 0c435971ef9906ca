#!/bin/bash
# run-bench.sh (make bench): the BERT encoder forward pass, bert-base shape,
# seq 64, batch 1 and 16, 2 threads: the C core (mmsa bench bert) on each of
# its kernel paths, at fp32 and at int8 (weights int8 per row, activations
# quantized per token: src/core/bert.h), against ONNX Runtime fp32
# (onnxruntime-node, graph optimizations on) and PyTorch fp32
# (test/reference/bert_reference.py, inference_mode).  The paths (test/bench/bench_isas.sh): avx2, and avx512
# too where the CPU has it, or those MMSA_BENCH_ISAS names; each runs with
# MMSA_ISA=<path>, and its bench line says isa=<path>.
#
# Random bert-base weights (test/reference/bert_reference.py model), their
# ONNX export (opset 14) and onnxruntime-node (pinned, installed with
# --ignore-scripts) go to build/bench and are reused by later runs.
# The tools are interleaved over several rounds, so that load from other
# processes hits them alike: each round runs C once per path, then ONNX
# Runtime, then PyTorch, each giving a median of RUNS timed runs after
# warm-up, and each path's ratios to that round's ONNX Runtime and PyTorch;
# the table has a row per batch per path with the median over rounds of
# each (ratios taken within a round, back to back, so that a quiet moment
# for one tool does not skew them).  It is preceded by the CPU's model,
# cores and SIMD flags and the paths timed, and followed by the OpenBLAS
# kernel and the machine's load.
#
# PyTorch (Debian's 1.13, whose BLAS is OpenBLAS) runs with
# OMP_WAIT_POLICY=PASSIVE and OPENBLAS_NUM_THREADS=1, its best setting here:
# by default its spinning OpenMP threads fight OpenBLAS's threads for the
# cores and batch 1 takes seconds.  Being far slower, it gets fewer runs.
#
# Environment: MMSA_BENCH_THREADS (2), MMSA_BENCH_RUNS (10),
# MMSA_BENCH_TORCH_RUNS (3), MMSA_BENCH_ROUNDS (3), MMSA_BENCH_BATCHES
# ("1 16"), MMSA_BENCH_BERT_PRECISIONS ("fp32 int8"), MMSA_BENCH_ISAS (the kernel paths to time, e.g. "avx2" or
# "avx2 avx512"; a path the CPU lacks stops the run before anything is
# timed), and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (passed through to
# OpenBLAS when set).  bench_resnet.sh, which runs after it, times the same
# paths.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH="$ROOT/build/bench"
CLI="$ROOT/build/mmsa"
PY=/usr/bin/python3
ORT_VERSION=1.30.0
THREADS=${MMSA_BENCH_THREADS:-2}
RUNS=${MMSA_BENCH_RUNS:-10}
TORCH_RUNS=${MMSA_BENCH_TORCH_RUNS:-3}
ROUNDS=${MMSA_BENCH_ROUNDS:-3}
BATCHES=${MMSA_BENCH_BATCHES:-"1 16"}
PRECISIONS=${MMSA_BENCH_BERT_PRECISIONS:-"fp32 int8"}
SEQ=64
WARMUP=2
MODEL="$BENCH/bert-base"
ONNX="$BENCH/bert-base.onnx"

[ -x "$CLI" ] || { echo "run-bench.sh: $CLI not built (run make)" >&2; exit 1; }
. "$ROOT/test/bench/bench_isas.sh"
mkdir -p "$BENCH"

if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$ONNX" ]; then
	echo "== random bert-base weights and ONNX export -> $BENCH"
	"$PY" "$ROOT/test/reference/bert_reference.py" model "$MODEL" --shape base --seed 0 \
		--onnx "$ONNX" --seq "$SEQ" 2>&1 | grep -v -i "warn" || true
	[ -f "$ONNX" ] || { echo "run-bench.sh: ONNX export failed" >&2; exit 1; }
fi
# the shared sidecars, fp32 and int8 (nothing to do when they are current)
"$CLI" pack --model "$MODEL" >/dev/null

installed=$(node -p "require('$BENCH/node_modules/onnxruntime-node/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$ORT_VERSION" ]; then
	echo "== npm install onnxruntime-node@$ORT_VERSION -> $BENCH"
	[ -f "$BENCH/package.json" ] || echo '{"name": "mmsa-bench", "private": true}' > "$BENCH/package.json"
	(cd "$BENCH" && npm install --ignore-scripts --no-audit --no-fund --save-exact \
		"onnxruntime-node@$ORT_VERSION" >/dev/null)
fi

# median_ms=... from a bench line
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
# median of the numbers on stdin, one per line
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# RESULT[<what><batch>,<k>]: of the k-th path of ISAS (a path named twice
# gets two); C, C/ORT, C/PyTorch per path, ORT and PyTorch per batch
declare -A RESULT C_ALL C_ORT C_TORCH
C_MS=()  # this round's C median per path
corename=""
for B in $BATCHES; do
	ort_all=""; torch_all=""
	for r in $(seq "$ROUNDS"); do
		k=0
		for isa in $ISAS; do
			for prec in $PRECISIONS; do
				line=$(MMSA_ISA=$isa "$CLI" bench bert --model "$MODEL" --batch "$B" --seq "$SEQ" \
					--threads "$THREADS" --runs "$RUNS" --warmup "$WARMUP" --precision "$prec")
				echo "  round $r: $line"
				isa_check "$isa" "$line"
				C_MS[k]=$(echo "$line" | field median_ms)
				C_ALL[$B,$k]+="${C_MS[$k]}"$'\n'
				corename=$(echo "$line" | field corename)
				k=$((k + 1))
			done
		done
		line=$(node "$ROOT/test/bench/bench_ort.js" "$BENCH/node_modules" "$ONNX" \
			"$B" "$SEQ" "$THREADS" "$RUNS" "$WARMUP")
		echo "  round $r: $line"
		o=$(echo "$line" | field median_ms)
		ort_all+="$o"$'\n'
		line=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 "$PY" "$ROOT/test/bench/bench_torch.py" \
			"$MODEL" "$B" "$SEQ" "$THREADS" "$TORCH_RUNS" 1)
		echo "  round $r: $line"
		t=$(echo "$line" | field median_ms)
		torch_all+="$t"$'\n'
		for k in "${!C_MS[@]}"; do
			C_ORT[$B,$k]+="$(awk -v c="${C_MS[$k]}" -v o="$o" 'BEGIN { print c / o }')"$'\n'
			C_TORCH[$B,$k]+="$(awk -v c="${C_MS[$k]}" -v t="$t" 'BEGIN { print c / t }')"$'\n'
		done
	done
	RESULT[ort$B]=$(printf '%s' "$ort_all" | median)
	RESULT[torch$B]=$(printf '%s' "$torch_all" | median)
	for k in "${!C_MS[@]}"; do
		RESULT[c$B,$k]=$(printf '%s' "${C_ALL[$B,$k]}" | median)
		RESULT[c_ort$B,$k]=$(printf '%s' "${C_ORT[$B,$k]}" | median)
		RESULT[c_torch$B,$k]=$(printf '%s' "${C_TORCH[$B,$k]}" | median)
	done
done

echo
echo "BERT encoder forward, bert-base shape (12 x 768, 12 heads), seq $SEQ, $THREADS threads"
isa_header
echo "ms per batch: median over $ROUNDS rounds of the median of $RUNS runs after $WARMUP warm-up" \
	"(PyTorch: $TORCH_RUNS runs after 1); ratios: median over rounds of each round's ratio" \
	"(each path's C over the same round's ORT or PyTorch)"
echo "C at int8: int8 kernels $("$CLI" cpu | sed -n 's/^int8_kernels: *//p'); ORT and PyTorch at fp32"
printf '%-7s %-12s %12s %12s %12s %8s %10s\n' batch path "C (mmsa)" "ORT $ORT_VERSION" PyTorch "C/ORT" "C/PyTorch"
for B in $BATCHES; do
	k=0
	for isa in $ISAS; do
		for prec in $PRECISIONS; do
			awk -v b="$B" -v isa="$isa/$prec" -v c="${RESULT[c$B,$k]}" -v o="${RESULT[ort$B]}" \
				-v t="${RESULT[torch$B]}" -v co="${RESULT[c_ort$B,$k]}" -v ct="${RESULT[c_torch$B,$k]}" \
				'BEGIN { printf "%-7s %-12s %12.1f %12.1f %12.1f %8.2f %10.3f\n", b, isa, c, o, t, co, ct }'
			k=$((k + 1))
		done
	done
done
openblas_line "$corename"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# other models' benchmarks, when present (MMSA_BENCH_RESNET=0 skips ResNet-50's)
if [ "${MMSA_BENCH_RESNET:-1}" != 0 ] && [ -x "$ROOT/test/bench/bench_resnet.sh" ]; then
	echo
	"$ROOT/test/bench/bench_resnet.sh"
fi

# int8 ResNet-50 against ONNX Runtime fp32 and PyTorch int8 (MMSA_BENCH_INT8=0 skips it)
if [ "${MMSA_BENCH_RESNET:-1}" != 0 ] && [ "${MMSA_BENCH_INT8:-1}" != 0 ] &&
	[ -x "$ROOT/test/bench/bench_int8.sh" ]; then
	echo
	"$ROOT/test/bench/bench_int8.sh"
fi

# decoding and preprocessing of real input: every MVSA-Single image, with the
# installed image model's preprocessing (weights/image/config.json)
DATA="${MMSA_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}"
if [ -d "$DATA/mvsa-single/images" ] && [ -f "$ROOT/weights/image/config.json" ]; then
	echo
	echo "Image decode + preprocess, MVSA-Single ($(find "$DATA/mvsa-single/images" -name '*.jpg' | wc -l) images, one thread)"
	PRE="$BENCH/preprocess.json"
	$PY -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["preprocess"]))' \
		"$ROOT/weights/image/config.json" >"$PRE"
	TARGET=$($PY -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["resize"] or p["crop"])' "$PRE")
	find "$DATA/mvsa-single/images" -name '*.jpg' -print0 | sort -z |
		xargs -0 -s 1000000 "$CLI" decode --target "$TARGET" --preprocess "$PRE" | tail -1
fi
[ "${MMSA_BENCH_SQL:-1}" = 0 ] || { echo; "$ROOT/test/bench/bench_sql.sh"; }  # SQL throughput of the installed extension (make install first); MMSA_BENCH_SQL=0 skips it
# one server against two shards through a coordinator (three clusters, about 10 minutes): MMSA_BENCH_SCALEOUT=1 runs it
[ "${MMSA_BENCH_SCALEOUT:-0}" = 0 ] || { echo; "$ROOT/test/bench/bench_scaleout.sh"; }
# int8 against fp32 top-1 of the shipped ResNet-50, C and PyTorch int8 on the same
# inputs (test/bench/int8_agreement.py, about 20 minutes over the 4,511 images): MMSA_BENCH_AGREEMENT=1 runs it
[ "${MMSA_BENCH_AGREEMENT:-0}" = 0 ] || { echo; /usr/bin/python3 "$ROOT/test/bench/int8_agreement.py"; }
