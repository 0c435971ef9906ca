#!/bin/bash
# bench_int8.sh
#   int8 ResNet-50 (224 x 224) against the other tools in one run, on the
#   same weights (the torchvision resnet50 of make bench,
#   test/bench/resnet_export.py), 2 threads, batch 1 and 16:
#     C int8      mmsa bench resnet --precision int8 (int8 weights from
#                 `mmsa calibrate` + `mmsa pack` on build/bench/resnet50);
#     C fp32      mmsa bench resnet;
#     ORT fp32    ONNX Runtime (onnxruntime-node) on resnet50.onnx;
#     PyTorch int8  torch.ao.quantization static quantization of the same
#                 weights (test/bench/resnet_int8_torch.py: FBGEMM where
#                 PyTorch has it, else oneDNN), calibrated on the same 256
#                 MVSA-Single train images as the C model.
#   Each round runs the four back to back (RUNS timed passes each after a
#   warm-up), ROUNDS rounds (10) per batch, so that load from other
#   processes hits them alike.  Prints the CPU's flags and paths, each
#   round's line, then per batch the median milliseconds per image of each
#   tool over the rounds, and the medians over rounds of each round's
#   ratios C int8 / ORT fp32, C int8 / PyTorch int8, C int8 / C fp32.  Then
#   the per-layer choice of the shipped model (mmsa bench resnet --precision
#   int8 --profile on weights/image, batch 1).
#
#   usage: test/bench/bench_int8.sh   (after make bench, which exports the
#   weights and installs ONNX Runtime; ROUNDS, RUNS1, RUNS16 override the
#   counts; MMSA_ISA the path, as for every C bench)
set -euo pipefail

. "$(dirname "$0")/resnet_bench_built.sh"
DATA="${MMSA_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}"
POSTS="$DATA/mvsa-single/posts.csv"
IMAGES="$DATA/mvsa-single/images"
MODEL="$BENCH/resnet50"
ROUNDS=${ROUNDS:-10}
RUNS1=${RUNS1:-10}
RUNS16=${RUNS16:-2}
THREADS=2
me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }
[ -f "$POSTS" ] || die "$POSTS not found (set MMSA_DATA)"

# the int8 weights of both: calibrated once on the same 256 train images
if [ ! -f "$MODEL/model.int8.packed" ]; then
	"$ROOT/build/mmsa" calibrate --model "$MODEL" --posts "$POSTS" --images "$IMAGES" --count 256 \
		--threads "$THREADS" >/dev/null || die "mmsa calibrate failed"
	"$ROOT/build/mmsa" pack --model "$MODEL" >/dev/null || die "mmsa pack failed"
fi
PT_ENGINE=$(/usr/bin/python3 -c "import torch; e = torch.backends.quantized.supported_engines; print('fbgemm' if 'fbgemm' in e else 'onednn')")
if [ ! -f "$MODEL/int8_$PT_ENGINE.pt" ]; then
	OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$ROOT/test/bench/resnet_int8_torch.py" quantize "$MODEL" \
		"$POSTS" "$IMAGES" 256 >/dev/null || die "PyTorch quantization failed"
fi

cpu=$("$ROOT/build/mmsa" cpu)
echo "== int8 ResNet-50 224x224, $THREADS threads: C int8, C fp32, ONNX Runtime fp32, PyTorch int8 ($PT_ENGINE)"
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores;" \
	"SIMD flags: $(echo "$cpu" | sed -n 's/^cpu_flags: //p')"
echo "C path: $(echo "$cpu" | sed -n 's/^isa: //p'), int8 kernels: $(echo "$cpu" | sed -n 's/^int8_kernels: //p')"

field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for B in 1 16; do
	if [ "$B" = 1 ]; then R=$RUNS1; else R=$RUNS16; fi
	for r in $(seq "$ROUNDS"); do
		q=$("$ROOT/build/mmsa" bench resnet --model "$MODEL" --batch "$B" --threads "$THREADS" --runs "$R" \
			--warmup 1 --precision int8) || die "C int8 bench failed"
		f=$("$ROOT/build/mmsa" bench resnet --model "$MODEL" --batch "$B" --threads "$THREADS" --runs "$R" \
			--warmup 1) || die "C fp32 bench failed"
		o=$(node "$ROOT/test/bench/bench_ort_resnet.js" "$BENCH/node_modules" "$BENCH/resnet50.onnx" \
			"$B" "$THREADS" "$R" 1) || die "ORT bench failed"
		p=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 /usr/bin/python3 \
			"$ROOT/test/bench/resnet_int8_torch.py" time "$MODEL" "$B" "$THREADS" "$R" 1) || die "PyTorch int8 bench failed"
		echo "  batch $B round $r: $q"
		echo "  batch $B round $r: $f"
		echo "  batch $B round $r: $o"
		echo "  batch $B round $r: $p"
		echo "$B $(field ms_per_image "$q") $(field ms_per_image "$f") $(field ms_per_image "$o") $(field ms_per_image "$p")" >>"$rows"
	done
done
/usr/bin/python3 - "$rows" "$ROUNDS" <<'PY'
import statistics as st
import sys

rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
for b in ("1", "16"):
    r = [list(map(float, x[1:])) for x in rows if x[0] == b]
    med = [st.median(x[i] for x in r) for i in range(4)]
    print("batch %s: ms/image C int8 %.2f, C fp32 %.2f, ORT fp32 %.2f, PyTorch int8 %.2f (medians over %s rounds)"
          % (b, med[0], med[1], med[2], med[3], sys.argv[2]))
    print("batch %s: C int8 / ORT fp32 %.3f, C int8 / PyTorch int8 %.3f, C int8 / C fp32 %.3f"
          " (median over rounds of each round's ratio)"
          % (b, st.median(x[0] / x[2] for x in r), st.median(x[0] / x[3] for x in r),
             st.median(x[0] / x[1] for x in r)))
PY
echo "OpenBLAS kernel: $(field corename "$q") (ResNet's products run on gemm.c and qgemm.c, not OpenBLAS);" \
	"OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset)}"
if [ -f "$ROOT/weights/image/model.int8.packed" ]; then
	echo "the shipped model's layers (weights/image, batch 1):"
	"$ROOT/build/mmsa" bench resnet --model "$ROOT/weights/image" --precision int8 --runs 10 --profile |
		sed -n '/^resnet /p; /^profile by precision/,$p' | sed 's/^/  /'
fi
