#!/bin/bash
# Training under valgrind memcheck: a tiny text encoder (1 layer, width 32,
# 40 texts a source, one epoch of batch 16) trained by `mmsa train --only
# text` on 2 threads, so that the products run on sgemm.c with a pool
# (op(A) packed by both threads, each thread's own work space, freed when
# the pool's worker exits) and attention is split by (batch row, head).
# It must run without invalid reads/writes, uses of uninitialised memory or
# leaks (--error-exitcode --leak-check=full
# --errors-for-leak-kinds=definite,indirect), and write the same encoder as
# the same run outside valgrind.
# valgrind cannot run AVX-512, so it runs on the AVX2 kernel path
# (MMSA_ISA=avx2); the products give the same floats on every SIMD path.
. "$(dirname "$0")/../reference/tap.sh"
DIR=$TMP/train_valgrind

valgrind_avx2
if [ ! -x "$CLI" ] || [ ! -f "$ROOT/weights/text/vocab.txt" ]; then
	ok 1 "mmsa and weights/text/vocab.txt built (run make)"
	tap_done
fi
rm -rf "$DIR"
mkdir -p "$DIR"
# run a private copy: a concurrent `make` relinking build/mmsa must not break the run
cp "$CLI" "$DIR/mmsa" && CLI=$DIR/mmsa

echo "# under valgrind: MMSA_ISA=avx2 (CPU: $("$CLI" cpu | sed -n 's/^cpu_flags: //p'))"
ARGS=(train --only text --limit 40 --text-layers 1 --text-hidden 32 --text-heads 2
	--text-max-len 32 --text-epochs 1 --text-batch 16 --threads 2
	--vocab "$ROOT/weights/text/vocab.txt")

$VG "$CLI" "${ARGS[@]}" --out "$DIR/vg" > "$DIR/vg.log" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -40 "$DIR/vg.log" | sed 's/^/# /'
ok $rc "mmsa train --only text on 2 threads under memcheck: no errors, nothing lost (exit $rc)"

"$CLI" "${ARGS[@]}" --out "$DIR/plain" > "$DIR/plain.log" 2>&1
ok $? "the same run outside valgrind"
cmp -s "$DIR/vg/text/model.safetensors" "$DIR/plain/text/model.safetensors"
ok $? "the same encoder bytes under valgrind as outside it"

[ $fail -eq 0 ] && rm -rf "$DIR"
tap_done
