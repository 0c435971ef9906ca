#!/bin/bash
# bench_train.sh
#   Training speed of the text encoder, this tree's build/mmsa against the
#   mmsa of another revision (built here in a temporary git worktree), in
#   rounds that alternate them.  Each round runs, for each build, the
#   recipe's text stage on a small subset, from nothing:
#     mmsa train --only text --limit LIMIT --mlm-epochs 1 --text-epochs 1
#   and reads the steps per second that `mmsa train` prints at the end of
#   each phase (MLM pre-training and classification, batch 64).  Prints the
#   CPU, its SIMD flags, the OpenBLAS kernel and thread count, then per
#   phase the median steps/s of each build and the median over rounds of
#   the round's ratio (this tree / the other).  Also says whether the two
#   builds wrote the same encoder bytes.
#
#   usage: test/bench/bench_train.sh BASE_REV [ROUNDS (5)] [LIMIT (1500)] [THREADS (2)]
#   e.g.   test/bench/bench_train.sh dc59f41
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || {
	echo "usage: $0 BASE_REV [ROUNDS] [LIMIT] [THREADS]" >&2
	exit 2
}
BASE=$1
ROUNDS=${2:-5}
LIMIT=${3:-1500}
THREADS=${4:-2}
[ -x "$ROOT/build/mmsa" ] || {
	echo "$0: build/mmsa is not built (make)" >&2
	exit 1
}
. "$ROOT/test/bench/bench_isas.sh"

WORK=$(mktemp -d /tmp/mmsa-bench-train.XXXXXX)
cleanup()
{
	git -C "$ROOT" worktree remove --force "$WORK/base" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "building $BASE's build/mmsa in a temporary worktree" >&2
git -C "$ROOT" worktree add --detach "$WORK/base" "$BASE" >/dev/null 2>&1
make -C "$WORK/base" -s build/mmsa >"$WORK/build.log" 2>&1 || {
	cat "$WORK/build.log" >&2
	exit 1
}
BASE_DESC=$(git -C "$ROOT" log -1 --format='%h %ad' --date=short "$BASE")
HEAD_DESC=$(git -C "$ROOT" log -1 --format='%h %ad' --date=short HEAD)
if ! git -C "$ROOT" diff --quiet HEAD -- src; then
	HEAD_DESC="$HEAD_DESC + uncommitted changes"
fi

# one run: prints "mlm_rate text_rate" and leaves the encoder in $2
one()
{
	local bin=$1 out=$2 log
	rm -rf "$out"
	log=$("$bin" train --only text --limit "$LIMIT" --mlm-epochs 1 --text-epochs 1 \
		--out "$out" --vocab "$ROOT/weights/text/vocab.txt" --threads "$THREADS" 2>&1) || {
		echo "$log" >&2
		exit 1
	}
	printf '%s %s\n' \
		"$(echo "$log" | sed -n 's/.*MLM pre-training step \([0-9]*\)\/\1, \([0-9.]*\)\/s.*/\2/p' | tail -1)" \
		"$(echo "$log" | sed -n 's/.*text encoder step \([0-9]*\)\/\1, \([0-9.]*\)\/s.*/\2/p' | tail -1)"
}

rows="$WORK/rows"
for _ in $(seq "$ROUNDS"); do
	b=$(one "$WORK/base/build/mmsa" "$WORK/out-base")
	h=$(one "$ROOT/build/mmsa" "$WORK/out-head")
	echo "$b $h" >>"$rows"
done
same=no
cmp -s "$WORK/out-base/text/model.safetensors" "$WORK/out-head/text/model.safetensors" && same=yes

/usr/bin/python3 - "$rows" "$ROUNDS" "$LIMIT" "$THREADS" "$BASE_DESC" "$HEAD_DESC" "$same" <<'PY'
import statistics as st
import sys

rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
rounds, limit, threads, base, head, same = sys.argv[2:8]
print("text encoder training (mmsa train --only text --limit %s, batch 64, %s threads):"
      " %d rounds, each the base build then this tree's" % (limit, threads, len(rows)))
print("base: %s; this tree: %s" % (base, head))
for k, phase in enumerate(["MLM pre-training", "classification"]):
    b = [r[k] for r in rows]
    h = [r[2 + k] for r in rows]
    ratios = [y / x for x, y in zip(b, h)]
    print("%-17s base %.2f steps/s, this tree %.2f steps/s (medians); this tree / base %.3f"
          " (median of rounds; range %.3f to %.3f)"
          % (phase, st.median(b), st.median(h), st.median(ratios), min(ratios), max(ratios)))
print("same encoder bytes from both builds (last round): %s" % same)
PY
echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores;" \
	"SIMD flags: $CPU_FLAGS; kernel path: $("$ROOT/build/mmsa" cpu | sed -n 's/^isa: //p')"
corename=$("$ROOT/build/mmsa" bench resnet --model "$ROOT/weights/image" --runs 1 --warmup 0 \
	--threads 1 | sed -n 's/.*corename=\([^ ]*\).*/\1/p')
openblas_line "$corename" "the products of the base build's training; not this tree's"
