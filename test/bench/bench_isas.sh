# shellcheck shell=bash
# bench_isas.sh
#   Sourced by the benchmarks that time the C kernels (run-bench.sh,
#   bench_resnet.sh, alternate_resnet.sh) once they have set ROOT and
#   checked that build/mmsa is built: chooses the kernel paths (the
#   instruction-set paths of `mmsa cpu`) to time, and says what they ran on.
#
#   Sets
#     ISAS       the paths to time, in order, separated by spaces: those of
#                MMSA_BENCH_ISAS when it is set and not empty (avx2 and/or
#                avx512, separated by spaces or commas; a path named twice,
#                "avx2 avx2", is timed twice, as an A/A control), else avx2,
#                followed by avx512 where `mmsa cpu` says best: avx512.
#                The scripts time each with MMSA_ISA=<path> in the C
#                bench's environment, so an MMSA_ISA of the caller's own
#                does not apply to them.
#     CPU_FLAGS  the CPU's SIMD flags (the cpu_flags line of `mmsa cpu`).
#   and stops the calling script with a message, before anything is timed,
#   when MMSA_BENCH_ISAS names an unknown path or one this CPU cannot run
#   (`MMSA_ISA=<path> mmsa cpu` fails).
#
#   Functions
#     isa_header            prints "CPU: <model name>, <nproc> cores; SIMD
#                           flags: <CPU_FLAGS>; kernel paths timed: <ISAS>"
#     openblas_line CORENAME [NOTE]
#                           prints "OpenBLAS kernel: CORENAME[ (NOTE)];
#                           OPENBLAS_CORETYPE=...; OPENBLAS_L2_SIZE=..."
#                           (the two as the caller's environment has them,
#                           passed through to OpenBLAS untouched)
#     isa_check PATH LINE   stops the calling script unless the bench line
#                           LINE says isa=PATH (the path did take effect)

_isa_die()
{
	echo "$(basename "$0"): $*" >&2
	exit 1
}

_isa_cpu=$(env -u MMSA_ISA "$ROOT/build/mmsa" cpu 2>&1) || _isa_die "\`mmsa cpu\` failed: $_isa_cpu"
CPU_FLAGS=$(printf '%s\n' "$_isa_cpu" | sed -n 's/^cpu_flags: //p')
_isa_best=$(printf '%s\n' "$_isa_cpu" | sed -n 's/^best: //p')

if [ -n "${MMSA_BENCH_ISAS:-}" ]; then
	read -ra _isa_list <<<"${MMSA_BENCH_ISAS//,/ }"
	ISAS="${_isa_list[*]}"
	for _isa in $ISAS; do
		case $_isa in
			avx2 | avx512) ;;
			*) _isa_die "MMSA_BENCH_ISAS=\"$MMSA_BENCH_ISAS\": unknown kernel path \"$_isa\" (the paths: avx2, avx512)" ;;
		esac
		if ! _isa_err=$(MMSA_ISA=$_isa "$ROOT/build/mmsa" cpu 2>&1 >/dev/null); then
			case $_isa_best in
				avx512) _isa_can="avx2, avx512" ;;
				avx2) _isa_can=avx2 ;;
				*) _isa_can=none ;;
			esac
			_isa_die "MMSA_BENCH_ISAS=\"$MMSA_BENCH_ISAS\": ${_isa_err#mmsa cpu: };" \
				"the paths this CPU can run: $_isa_can"
		fi
	done
	[ -n "$ISAS" ] || _isa_die "MMSA_BENCH_ISAS=\"$MMSA_BENCH_ISAS\" names no kernel path (the paths: avx2, avx512)"
elif [ "$_isa_best" = avx512 ]; then
	ISAS="avx2 avx512"
else
	ISAS=avx2
fi

isa_header()
{
	local model
	model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	echo "CPU: ${model:-unknown}, $(nproc) cores; SIMD flags: ${CPU_FLAGS:-none}; kernel paths timed: $ISAS"
}

openblas_line()
{
	echo "OpenBLAS kernel: $1${2:+ ($2)}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset: auto-detected)};" \
		"OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset: auto-detected)}"
}

isa_check()
{
	case " $2 " in
		*" isa=$1 "*) ;;
		*) _isa_die "asked for the $1 path (MMSA_ISA=$1), but the C bench ran: $2" ;;
	esac
}
