/*
 * cmd_cpu.c
 *	  mmsa cpu: the CPU's SIMD flags, the best kernel path it supports and
 *	  the path this process would use (MMSA_ISA from the environment, or
 *	  the best).  The benchmarks print it beside their figures.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cpu.h"
#include "precision.h"

int
cmd_cpu(int argc, char **argv)
{
	char		flags[256];
	mmsa_error	err;

	if (argc > 1)
	{
		FILE	   *out = strcmp(argv[1], "--help") == 0 ? stdout : stderr;

		fprintf(out, "usage: mmsa cpu\n"
				"Prints the CPU's SIMD flags (as /proc/cpuinfo names them), the best kernel\n"
				"path it supports (avx2, avx-vnni or avx512), the path in use: MMSA_ISA\n"
				"(auto, avx2, avx-vnni, avx512) from the environment, or the best, and the\n"
				"int8 kernels that path runs, and the default precision (fp32 or int8).\n");
		return out == stdout ? 0 : 2;
	}
	mmsa_cpu_flags(flags, sizeof(flags));
	printf("cpu_flags: %s\n", flags);
	printf("best: %s\n", mmsa_isa_name(mmsa_cpu_best()));
	if (mmsa_isa_init(&err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa cpu: %s\n", err.message);
		return 1;
	}
	printf("isa: %s\n", mmsa_isa_name(mmsa_isa_current()));
	printf("int8_kernels: %s\n", mmsa_int8_kernels_label());
	printf("default_precision: %s\n", mmsa_precision_name(MMSA_PRECISION_DEFAULT));
	return 0;
}
