/*
 * cpu_functions.c
 *	  SQL functions that show the kernels' instruction-set path: mmsa_isa(),
 *	  mmsa_int8_kernels() and mmsa_cpu_flags().  The setting mmsa.isa
 *	  chooses the path (mmsa.c); src/core/cpu.c reads the CPU and holds the
 *	  kernel tables.
 *
 * Their C names end in _sql: cpu.h already names the type mmsa_isa and the
 * function mmsa_cpu_flags.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "cpu.h"
#include "mmsa_pg.h"

/*
 * mmsa_isa() returns text: the path this backend's kernels use (avx2,
 * avx-vnni or avx512).  Where none is chosen yet, chooses it as a model load would,
 * so a CPU without AVX2 and FMA gets the same error (0A000).
 */
PG_FUNCTION_INFO_V1(mmsa_isa_sql);
Datum
mmsa_isa_sql(PG_FUNCTION_ARGS)
{
	mmsa_error	err;

	if (mmsa_isa_current() == MMSA_ISA_NONE && mmsa_isa_init(&err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
	PG_RETURN_TEXT_P(cstring_to_text(mmsa_isa_current_label()));
}

/*
 * mmsa_int8_kernels() returns text: the int8 kernels this backend's path
 * runs when mmsa.precision is int8 (avx2, avx-vnni or avx512-vnni).
 */
PG_FUNCTION_INFO_V1(mmsa_int8_kernels_sql);
Datum
mmsa_int8_kernels_sql(PG_FUNCTION_ARGS)
{
	mmsa_error	err;

	if (mmsa_isa_current() == MMSA_ISA_NONE && mmsa_isa_init(&err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
	PG_RETURN_TEXT_P(cstring_to_text(mmsa_int8_kernels_label()));
}

/*
 * mmsa_cpu_flags() returns text: the CPU's SIMD flags that matter to mmsa,
 * space separated, as /proc/cpuinfo names them ("avx avx2 fma avx512f
 * ..."), from CPUID.
 */
PG_FUNCTION_INFO_V1(mmsa_cpu_flags_sql);
Datum
mmsa_cpu_flags_sql(PG_FUNCTION_ARGS)
{
	char		flags[256];

	mmsa_cpu_flags(flags, sizeof(flags));
	PG_RETURN_TEXT_P(cstring_to_text(flags));
}
