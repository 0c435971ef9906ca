#!/bin/bash
# Runs every test of mmsa: installs what is missing, builds, installs the
# extension, then
#   1. the C unit tests (test/unit, TAP, run by prove),
#   2. the reference tests (test/t/*.t: C against PyTorch, Pillow and an
#      independent tokenizer; hostile input; fuzzing), run by prove, and the
#      PyTorch references of BERT and ResNet-50 again on the AVX-512 kernels
#      (native, or emulated by SIMDe),
#   3. pg_regress (sql/*.sql against expected/*.out) and pgTAP (test/pgtap,
#      run by pg_prove) on a throwaway PostgreSQL cluster that this script
#      starts on a Unix socket in a temporary folder and stops at the end,
#   4. the scale-out test (test/scaleout/*.t, run by prove): a coordinator
#      and two shards over postgres_fdw, three more throwaway clusters that
#      the test starts in its own temporary folder and always stops.
# Usage: test/run-tests.sh      (as root, or as a user who may sudo)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The runtime and test sets; MMSA_SIMDE=yes: the build fails rather than
# leave out the SIMDe-emulated kernels that the tests run.
"$ROOT/src/tools/install-deps.sh" test
echo "run-tests: building (make all) ..."
make -j2 all MMSA_SIMDE=yes
echo "run-tests: build done; installing the extension (make install) ..."
$SUDO make install MMSA_SIMDE=yes >/dev/null
echo "run-tests: installed"

export MMSA_ROOT="$ROOT"
export MMSA_CLI="$ROOT/build/mmsa"
export MMSA_DATA="${MMSA_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}"
export MMSA_VOCAB="$ROOT/weights/text/vocab.txt"
MMSA_TMP=$(mktemp -d /tmp/mmsa-test.XXXXXX)
chmod 755 "$MMSA_TMP"
export MMSA_TMP
PGDIR="$MMSA_TMP/pg"
cleanup() {
	"$ROOT/test/pg-cluster.sh" stop "$PGDIR" || true
	rm -rf "$MMSA_TMP"
}
trap cleanup EXIT

status=0

echo "== C unit tests"
prove --exec '' build/unit/test_* || status=1

echo "== reference tests"
prove test/t || status=1

# The PyTorch references again on the AVX-512 kernels: natively where the
# CPU has them, else emulated by SIMDe on AVX2 (build/mmsa-simde).
if [ "$("$MMSA_CLI" cpu | sed -n 's/^best: //p')" = avx512 ]; then
	echo "== reference tests on the AVX-512 path (native)"
	MMSA_ISA=avx512 prove test/t/resnet_reference.t test/t/bert_reference.t || status=1
elif [ -x "$ROOT/build/mmsa-simde" ]; then
	echo "== reference tests on the AVX-512 path (emulated by SIMDe: this CPU has no AVX-512)"
	MMSA_CLI="$ROOT/build/mmsa-simde" MMSA_ISA=avx512-simde \
		prove test/t/resnet_reference.t test/t/bert_reference.t || status=1
fi

echo "== SQL tests (pg_regress, pgTAP)"
# The test model: a random-weight BERT written by the PyTorch reference,
# with the real vocabulary, plus the expected outputs the pgTAP suites
# compare with.  It lives only in this run's temporary folder.
/usr/bin/python3 "$ROOT/test/reference/sql_fixtures.py" --out "$MMSA_TMP"
chmod -R a+rX "$MMSA_TMP"
eval "$("$ROOT/test/pg-cluster.sh" start "$PGDIR" -c "mmsa.model_dir=$MMSA_TMP/model")"
export PGHOST PGPORT PGUSER PGDATABASE

mkdir -p build/regress
make installcheck PG_REGRESS_DIFF_OPTS=-u || { cat build/regress/regression.diffs 2>/dev/null; status=1; }

psql -q -X -v ON_ERROR_STOP=1 -c "CREATE DATABASE mmsa_pgtap"
psql -q -X -v ON_ERROR_STOP=1 -d mmsa_pgtap -c "CREATE EXTENSION pgtap" -f "$MMSA_TMP/fixtures.sql"
pg_prove -d mmsa_pgtap test/pgtap/*.sql || status=1

echo "== scale-out (a coordinator and two shards, postgres_fdw)"
prove test/scaleout || status=1

if [ "$status" -eq 0 ]; then
	echo "mmsa: all test suites passed"
else
	echo "mmsa: some test suites FAILED" >&2
fi
exit "$status"
