#!/bin/bash
# bench_resnet.sh
#   Times ResNet-50 (224 x 224) forward passes: the C model (mmsa bench
#   resnet), ONNX Runtime (onnxruntime-node) and PyTorch, on the same
#   weights (torchvision resnet50 with random weights and calibrated
#   BatchNorm, test/bench/resnet_export.py), batch 1 and 16, 2 threads,
#   median after warm-up, in ROUNDS rounds (3) of the three back to back, so
#   that load from other processes hits them alike.  Prints each line, then
#   per batch the median milliseconds per image over the rounds and the
#   median over rounds of each round's ratios C / ORT and C / PyTorch, and
#   the OpenBLAS kernel.  Three rounds of 20 passes are a snapshot of this
#   noisy machine (their batch-1 C / ORT has ranged from 0.80 to 1.26 in one
#   run), so it then prints C against ONNX Runtime alone at batch 1 over
#   ALT_ROUNDS (60) short alternating rounds (alternate_resnet.sh), the
#   figure to decide by; ALT_ROUNDS=0 leaves it out.
#
#   usage: test/bench/bench_resnet.sh   (after make; RUNS1/RUNS16/ROUNDS/ALT_ROUNDS override the counts)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH="$ROOT/build/bench"
MODEL="$BENCH/resnet50"
THREADS=${THREADS:-2}
RUNS1=${RUNS1:-20}
RUNS16=${RUNS16:-5}
ROUNDS=${ROUNDS:-3}
ALT_ROUNDS=${ALT_ROUNDS:-60}

die()
{
	echo "bench_resnet: $*" >&2
	exit 1
}

[ -x "$ROOT/build/mmsa" ] || die "build/mmsa is missing: run make first"
mkdir -p "$BENCH"

# weights for all three: safetensors + config for C, ONNX for ORT, state dict for PyTorch
if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$MODEL.onnx" ] || [ ! -f "$MODEL/state_dict.pt" ]; then
	/usr/bin/python3 "$ROOT/test/bench/resnet_export.py" export "$MODEL" >/dev/null 2>"$BENCH/resnet_export.log" ||
		die "export failed (see $BENCH/resnet_export.log)"
fi

# the C timing: `mmsa bench resnet` once dispatched, else a small driver
if "$ROOT/build/mmsa" bench resnet --help >/dev/null 2>&1; then
	C_BENCH="$ROOT/build/mmsa bench resnet"
else
	cc -O3 -march=native -I"$ROOT/src/core" -I"$ROOT/src/cli" -o "$BENCH/bench_resnet" \
		"$ROOT/test/bench/bench_resnet_main.c" "$ROOT/src/cli/bench_resnet.c" \
		"$ROOT/build/libmmsacore.a" -lopenblas -ljansson -lutf8proc -ljpeg -lpng -lz -lm -lpthread ||
		die "could not build the bench driver"
	C_BENCH="$BENCH/bench_resnet"
fi

# ONNX Runtime for Node, installed into build/bench (not the repo root)
ORT_OK=1
if [ ! -d "$BENCH/node_modules/onnxruntime-node" ]; then
	(cd "$BENCH" && npm install --silent --ignore-scripts onnxruntime-node >"$BENCH/npm.log" 2>&1) || ORT_OK=0
fi

field()
{
	# field NAME LINE: the value of NAME=... in LINE
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

echo "ResNet-50 224x224, $THREADS threads, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
# median of the numbers on stdin, one per line
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for B in 1 16; do
	if [ "$B" = 1 ]; then R=$RUNS1; W=3; else R=$RUNS16; W=1; fi
	c_all=""; ort_all=""; pt_all=""; c_ort=""; c_pt=""
	# rounds of the three back to back: load from elsewhere hits them alike
	for r in $(seq "$ROUNDS"); do
		c_line=$($C_BENCH --model "$MODEL" --batch "$B" --threads "$THREADS" --runs "$R" --warmup "$W") ||
			die "C bench failed"
		echo "  round $r: $c_line"
		c_ms=$(field ms_per_image "$c_line")
		c_all+="$c_ms"$'\n'
		if [ "$ORT_OK" = 1 ]; then
			if ort_line=$(node "$ROOT/test/bench/bench_ort_resnet.js" "$BENCH/node_modules" "$MODEL.onnx" \
				"$B" "$THREADS" "$R" "$W"); then
				echo "  round $r: $ort_line"
				o=$(field ms_per_image "$ort_line")
				ort_all+="$o"$'\n'
				c_ort+="$(awk -v c="$c_ms" -v o="$o" 'BEGIN { print c / o }')"$'\n'
			fi
		fi
		# PyTorch's OpenMP threads otherwise spin against each other on 2 cores
		pt_line=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 \
			/usr/bin/python3 "$ROOT/test/bench/resnet_export.py" time "$MODEL" "$B" "$THREADS" "$R" "$W") ||
			die "PyTorch timing failed"
		echo "  round $r: $pt_line"
		p=$(field ms_per_image "$pt_line")
		pt_all+="$p"$'\n'
		c_pt+="$(awk -v c="$c_ms" -v p="$p" 'BEGIN { print c / p }')"$'\n'
	done
	[ "$ORT_OK" = 1 ] || echo "ort: onnxruntime-node could not be installed (see $BENCH/npm.log)"
	awk -v B="$B" -v c="$(printf '%s' "$c_all" | median)" -v o="$(printf '%s' "$ort_all" | median)" \
		-v p="$(printf '%s' "$pt_all" | median)" -v co="$(printf '%s' "$c_ort" | median)" \
		-v cp="$(printf '%s' "$c_pt" | median)" 'BEGIN {
		printf "batch %d: ms/image C %.2f", B, c;
		if (o != "") printf ", ORT %.2f", o;
		printf ", PyTorch %.2f", p;
		if (o != "") printf "; C/ORT %.2f", co;
		printf ", C/PyTorch %.2f\n", cp;
	}'
done
echo "(medians over $ROUNDS rounds of each tool's median; ratios: median over rounds of each round's ratio)"
echo "OpenBLAS kernel (loaded; ResNet's products run on gemm.c, not OpenBLAS): $(field corename "$c_line")"
if [ "$ORT_OK" = 1 ] && [ "$ALT_ROUNDS" -gt 0 ]; then
	echo "C against ONNX Runtime alone, alternating (test/bench/alternate_resnet.sh $ALT_ROUNDS 1 $THREADS):"
	"$ROOT/test/bench/alternate_resnet.sh" "$ALT_ROUNDS" 1 "$THREADS" | sed 's/^/  /'
fi
