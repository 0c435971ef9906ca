# shellcheck shell=bash
# resnet_bench_built.sh
#   Sourced by the scripts that time ResNet-50 against ONNX Runtime outside
#   make bench (alternate_resnet.sh, resnet_layers.sh): sets ROOT and BENCH,
#   and stops with a message when make bench has not yet exported the
#   weights and installed ONNX Runtime.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH="$ROOT/build/bench"
for f in "$ROOT/build/mmsa" "$BENCH/resnet50/model.safetensors" "$BENCH/resnet50.onnx" \
	"$BENCH/node_modules/onnxruntime-node"; do
	[ -e "$f" ] || { echo "$(basename "$0"): $f is missing: run make bench first" >&2; exit 1; }
done
