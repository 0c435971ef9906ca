#!/bin/bash
# bench_resnet.sh
#   Times ResNet-50 (224 x 224) forward passes: the C model (mmsa bench
#   resnet) on each of its kernel paths, ONNX Runtime (onnxruntime-node)
#   and PyTorch, on the same weights (torchvision resnet50 with random
#   weights and calibrated BatchNorm, test/bench/resnet_export.py), batch 1
#   and 16, 2 threads, median after warm-up, in ROUNDS rounds (3), each
#   running C once per path, then ORT, then PyTorch, back to back, so that
#   load from other processes hits them alike.  The paths
#   (test/bench/bench_isas.sh): avx2, and avx512 too where the CPU has it,
#   or those MMSA_BENCH_ISAS names; each runs with MMSA_ISA=<path>, and its
#   bench line says isa=<path>.  Prints the CPU's model, cores and SIMD
#   flags and the paths timed, each line, then per batch per path the
#   median milliseconds per image over the rounds and the median over
#   rounds of each round's ratios C / ORT and C / PyTorch (the path's C
#   over the same round's ORT and PyTorch), and the OpenBLAS kernel.  Three
#   rounds of 20 passes are a snapshot of this noisy machine (their batch-1
#   C / ORT has ranged from 0.80 to 1.26 in one run), so it then prints
#   each path's C against ONNX Runtime alone at batch 1 over ALT_ROUNDS (60)
#   short alternating rounds (alternate_resnet.sh, which times the same
#   paths), the figure to decide by; ALT_ROUNDS=0 leaves it out.
#
#   usage: test/bench/bench_resnet.sh   (after make; RUNS1/RUNS16/ROUNDS/ALT_ROUNDS override the
#   counts, MMSA_BENCH_ISAS the paths, e.g. "avx2" or "avx2 avx512")
set -euo pipefail

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
. "$ROOT/test/bench/bench_isas.sh"
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

echo "ResNet-50 224x224, $THREADS threads"
isa_header
# median of the numbers on stdin, one per line (nothing for none)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# per path k of ISAS (a path named twice gets two): C_ALL, C_ORT, C_PT
# accumulate over the rounds of a batch, C_MS is this round's
C_MS=()
for B in 1 16; do
	if [ "$B" = 1 ]; then R=$RUNS1; W=3; else R=$RUNS16; W=1; fi
	ort_all=""; pt_all=""; C_ALL=(); C_ORT=(); C_PT=()
	# rounds of C per path, ORT, PyTorch back to back: load from elsewhere hits them alike
	for r in $(seq "$ROUNDS"); do
		k=0
		for isa in $ISAS; do
			c_line=$(MMSA_ISA=$isa $C_BENCH --model "$MODEL" --batch "$B" --threads "$THREADS" \
				--runs "$R" --warmup "$W") || die "C bench failed (MMSA_ISA=$isa)"
			echo "  round $r: $c_line"
			isa_check "$isa" "$c_line"
			C_MS[k]=$(field ms_per_image "$c_line")
			C_ALL[k]+="${C_MS[$k]}"$'\n'
			k=$((k + 1))
		done
		if [ "$ORT_OK" = 1 ]; then
			if ort_line=$(node "$ROOT/test/bench/bench_ort_resnet.js" "$BENCH/node_modules" "$MODEL.onnx" \
				"$B" "$THREADS" "$R" "$W"); then
				echo "  round $r: $ort_line"
				o=$(field ms_per_image "$ort_line")
				ort_all+="$o"$'\n'
				for k in "${!C_MS[@]}"; do
					C_ORT[k]+="$(awk -v c="${C_MS[$k]}" -v o="$o" 'BEGIN { print c / o }')"$'\n'
				done
			fi
		fi
		# PyTorch's OpenMP threads otherwise spin against each other on 2 cores
		pt_line=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 \
			/usr/bin/python3 "$ROOT/test/bench/resnet_export.py" time "$MODEL" "$B" "$THREADS" "$R" "$W") ||
			die "PyTorch timing failed"
		echo "  round $r: $pt_line"
		p=$(field ms_per_image "$pt_line")
		pt_all+="$p"$'\n'
		for k in "${!C_MS[@]}"; do
			C_PT[k]+="$(awk -v c="${C_MS[$k]}" -v p="$p" 'BEGIN { print c / p }')"$'\n'
		done
	done
	[ "$ORT_OK" = 1 ] || echo "ort: onnxruntime-node could not be installed (see $BENCH/npm.log)"
	o_med=$(printf '%s' "$ort_all" | median)
	p_med=$(printf '%s' "$pt_all" | median)
	k=0
	for isa in $ISAS; do
		awk -v B="$B" -v isa="$isa" -v c="$(printf '%s' "${C_ALL[$k]}" | median)" -v o="$o_med" -v p="$p_med" \
			-v co="$(printf '%s' "${C_ORT[$k]:-}" | median)" -v cp="$(printf '%s' "${C_PT[$k]}" | median)" 'BEGIN {
			printf "batch %d, path %s: ms/image C %.2f", B, isa, c;
			if (o != "") printf ", ORT %.2f", o;
			printf ", PyTorch %.2f", p;
			if (o != "") printf "; C/ORT %.2f", co;
			printf ", C/PyTorch %.2f\n", cp;
		}'
		k=$((k + 1))
	done
done
echo "(medians over $ROUNDS rounds of each tool's median; ratios: median over rounds of each round's ratio," \
	"each path's C over the same round's ORT or PyTorch)"
openblas_line "$(field corename "$c_line")" "loaded; ResNet's products run on gemm.c, not OpenBLAS"
if [ "$ORT_OK" = 1 ] && [ "$ALT_ROUNDS" -gt 0 ]; then
	echo "C on each path against ONNX Runtime alone, alternating (test/bench/alternate_resnet.sh $ALT_ROUNDS 1 $THREADS):"
	"$ROOT/test/bench/alternate_resnet.sh" "$ALT_ROUNDS" 1 "$THREADS" | sed 's/^/  /'
fi
