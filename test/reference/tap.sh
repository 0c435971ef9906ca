# shellcheck shell=bash
# tap.sh
#   Sourced by the shell tests in test/t, as tap.py serves the Python ones:
#   sets ROOT, CLI and TMP (MMSA_ROOT, MMSA_CLI, MMSA_TMP when the
#   environment has them) and writes TAP.
#     ok STATUS NAME   "ok N - NAME" when STATUS is 0, else "not ok N - NAME",
#                      which fails the run
#     tap_done         prints the plan and exits with the run's status
#     valgrind_avx2    skips the whole test when valgrind is missing; else
#                      sets VG, the memcheck command (exit 99 on an error or a
#                      definite or indirect leak), and runs mmsa on the AVX2
#                      path from then on (MMSA_ISA=avx2): valgrind cannot
#                      run AVX-512
set -u
ROOT=${MMSA_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CLI=${MMSA_CLI:-$ROOT/build/mmsa}
TMP=${MMSA_TMP:-/tmp/mmsa_test}
n=0
fail=0

ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

tap_done() {
	echo "1..$n"
	exit $fail
}

valgrind_avx2() {
	if ! command -v valgrind >/dev/null 2>&1; then
		echo "1..0 # SKIP valgrind not installed"
		exit 0
	fi
	export MMSA_ISA=avx2
	VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
}
