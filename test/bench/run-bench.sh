#!/bin/bash
# run-bench.sh (make bench): the BERT encoder forward pass, bert-base shape,
# seq 64, batch 1 and 16, 2 threads: the C core (mmsa bench bert) against
# ONNX Runtime (onnxruntime-node, graph optimizations on) and PyTorch
# (test/reference/bert_reference.py, inference_mode).
#
# Random bert-base weights (test/reference/bert_reference.py model), their
# ONNX export (opset 14) and onnxruntime-node (pinned, installed with
# --ignore-scripts) go to build/bench and are reused by later runs.
# The three are interleaved over several rounds, so that load from other
# processes hits them alike; each round gives a median of RUNS timed runs
# after warm-up per tool and the ratios of those; the table shows the median
# over rounds of each (ratios taken within a round, back to back, so that a
# quiet moment for one tool does not skew them).
#
# PyTorch (Debian's 1.13, whose BLAS is OpenBLAS) runs with
# OMP_WAIT_POLICY=PASSIVE and OPENBLAS_NUM_THREADS=1, its best setting here:
# by default its spinning OpenMP threads fight OpenBLAS's threads for the
# cores and batch 1 takes seconds.  Being far slower, it gets fewer runs.
#
# Environment: MMSA_BENCH_THREADS (2), MMSA_BENCH_RUNS (10),
# MMSA_BENCH_TORCH_RUNS (3), MMSA_BENCH_ROUNDS (3), MMSA_BENCH_BATCHES
# ("1 16"), and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (passed through to
# OpenBLAS when set).
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
SEQ=64
WARMUP=2
MODEL="$BENCH/bert-base"
ONNX="$BENCH/bert-base.onnx"

[ -x "$CLI" ] || { echo "run-bench.sh: $CLI not built (run make)" >&2; exit 1; }
mkdir -p "$BENCH"

if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$ONNX" ]; then
	echo "== random bert-base weights and ONNX export -> $BENCH"
	"$PY" "$ROOT/test/reference/bert_reference.py" model "$MODEL" --shape base --seed 0 \
		--onnx "$ONNX" --seq "$SEQ" 2>&1 | grep -v -i "warn" || true
	[ -f "$ONNX" ] || { echo "run-bench.sh: ONNX export failed" >&2; exit 1; }
fi

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

declare -A RESULT
corename=""
for B in $BATCHES; do
	c_all=""; ort_all=""; torch_all=""; c_ort=""; c_torch=""
	for r in $(seq "$ROUNDS"); do
		line=$("$CLI" bench bert --model "$MODEL" --batch "$B" --seq "$SEQ" \
			--threads "$THREADS" --runs "$RUNS" --warmup "$WARMUP")
		echo "  round $r: $line"
		c_all+="$(echo "$line" | field median_ms)"$'\n'
		corename=$(echo "$line" | field corename)
		line=$(node "$ROOT/test/bench/bench_ort.js" "$BENCH/node_modules" "$ONNX" \
			"$B" "$SEQ" "$THREADS" "$RUNS" "$WARMUP")
		echo "  round $r: $line"
		ort_all+="$(echo "$line" | field median_ms)"$'\n'
		line=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 "$PY" "$ROOT/test/bench/bench_torch.py" \
			"$MODEL" "$B" "$SEQ" "$THREADS" "$TORCH_RUNS" 1)
		echo "  round $r: $line"
		torch_all+="$(echo "$line" | field median_ms)"$'\n'
		c=$(printf '%s' "$c_all" | tail -1); o=$(printf '%s' "$ort_all" | tail -1)
		t=$(printf '%s' "$torch_all" | tail -1)
		c_ort+="$(awk -v c="$c" -v o="$o" 'BEGIN { print c / o }')"$'\n'
		c_torch+="$(awk -v c="$c" -v t="$t" 'BEGIN { print c / t }')"$'\n'
	done
	RESULT[c$B]=$(printf '%s' "$c_all" | median)
	RESULT[ort$B]=$(printf '%s' "$ort_all" | median)
	RESULT[torch$B]=$(printf '%s' "$torch_all" | median)
	RESULT[c_ort$B]=$(printf '%s' "$c_ort" | median)
	RESULT[c_torch$B]=$(printf '%s' "$c_torch" | median)
done

echo
echo "BERT encoder forward, bert-base shape (12 x 768, 12 heads), seq $SEQ, $THREADS threads"
echo "ms per batch: median over $ROUNDS rounds of the median of $RUNS runs after $WARMUP warm-up" \
	"(PyTorch: $TORCH_RUNS runs after 1); ratios: median over rounds of each round's ratio"
printf '%-7s %12s %12s %12s %8s %10s\n' batch "C (mmsa)" "ORT $ORT_VERSION" PyTorch "C/ORT" "C/PyTorch"
for B in $BATCHES; do
	awk -v b="$B" -v c="${RESULT[c$B]}" -v o="${RESULT[ort$B]}" -v t="${RESULT[torch$B]}" \
		-v co="${RESULT[c_ort$B]}" -v ct="${RESULT[c_torch$B]}" \
		'BEGIN { printf "%-7s %12.1f %12.1f %12.1f %8.2f %10.3f\n", b, c, o, t, co, ct }'
done
echo "OpenBLAS kernel: $corename; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset: auto-detected)};" \
	"OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset: auto-detected)}"
echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores;" \
	"load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# other models' benchmarks, when present
if [ -x "$ROOT/test/bench/bench_resnet.sh" ]; then
	echo
	"$ROOT/test/bench/bench_resnet.sh"
fi

# decoding and preprocessing of real input: every MVSA-Single image, with the
# installed image model's preprocessing (weights/image/config.json)
DATA="${MMSA_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}"
if [ -d "$DATA/mvsa-single/images" ] && [ -f "$ROOT/weights/image/config.json" ]; then
	echo
	echo "Image decode + preprocess, MVSA-Single ($(ls "$DATA/mvsa-single/images" | wc -l) images, one thread)"
	PRE="$BENCH/preprocess.json"
	$PY -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["preprocess"]))' \
		"$ROOT/weights/image/config.json" >"$PRE"
	TARGET=$($PY -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["resize"] or p["crop"])' "$PRE")
	find "$DATA/mvsa-single/images" -name '*.jpg' -print0 | sort -z |
		xargs -0 -s 1000000 "$CLI" decode --target "$TARGET" --preprocess "$PRE" | tail -1
fi
[ "${MMSA_BENCH_SQL:-1}" = 0 ] || { echo; "$ROOT/test/bench/bench_sql.sh"; }  # SQL throughput of the installed extension (make install first); MMSA_BENCH_SQL=0 skips it
