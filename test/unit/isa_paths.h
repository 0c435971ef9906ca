/*
 * isa_paths.h
 *	  The kernel paths a unit test can run on this host: the portable C
 *	  kernels, AVX2 and AVX-512 where the CPU has them (native), and the
 *	  AVX-512 kernels built against SIMDe (emulated on AVX2) on every host
 *	  with AVX2.  Each test says which ran natively and which emulated.
 */
#ifndef MMSA_ISA_PATHS_H
#define MMSA_ISA_PATHS_H

#include "conv_isa.h"
#include "cpu.h"
#include "gemm_isa.h"
#include "tap.h"

#ifdef MMSA_HAVE_SIMDE
extern const gemm_kernels gemm_kernels_avx512_simde;
extern const conv_kernels conv_kernels_avx512_simde;
#endif

typedef struct isa_path
{
	const char *label;
	const gemm_kernels *gemm;
	const conv_kernels *conv;
	int			simd;			/* fused multiply-adds: bit-identical to avx2 */
} isa_path;

#define ISA_MAX_PATHS 4

/* Fills paths[] with those this host runs; says which in a diagnostic. */
static int
isa_paths(isa_path *paths)
{
	int			n = 0;
	char		flags[256],
				skipped[128] = "";

	mmsa_cpu_flags(flags, sizeof(flags));
	paths[n++] = (isa_path) {"generic", &gemm_kernels_generic, &conv_kernels_generic, 0};
#if defined(__x86_64__)
	if (mmsa_cpu_supports(MMSA_ISA_AVX2))
		paths[n++] = (isa_path) {"avx2", &gemm_kernels_avx2, &conv_kernels_avx2, 1};
	else
		strcat(skipped, " avx2");
	if (mmsa_cpu_supports(MMSA_ISA_AVX512))
		paths[n++] = (isa_path) {"avx512", &gemm_kernels_avx512, &conv_kernels_avx512, 1};
	else
		strcat(skipped, " avx512");
#endif
#ifdef MMSA_HAVE_SIMDE
	if (mmsa_cpu_supports(MMSA_ISA_AVX2))
		paths[n++] = (isa_path) {"avx512-simde", &gemm_kernels_avx512_simde,
		&conv_kernels_avx512_simde, 1};
	else
		strcat(skipped, " avx512-simde (needs AVX2)");
#endif
	diag("CPU flags: %s", flags[0] ? flags : "(none of those mmsa uses)");
	printf("# kernel paths run natively:");
	for (int i = 0; i < n; i++)
		if (strcmp(paths[i].label, "avx512-simde") != 0)
			printf(" %s", paths[i].label);
	printf("; emulated:");
	for (int i = 0; i < n; i++)
		if (strcmp(paths[i].label, "avx512-simde") == 0)
			printf(" avx512 (SIMDe on AVX2)");
	printf("; not run on this CPU:%s\n", skipped[0] ? skipped : " none");
	return n;
}

/* Makes path p the one the kernels use, and names it in the tests. */
static void
isa_use(const isa_path *p)
{
	mmsa_isa_use_tables(p->gemm, p->conv, p->label);
	tap_prefix = p->label;
}

/* Back to the process's own choice. */
static void
isa_reset(void)
{
	mmsa_isa_use_tables(NULL, NULL, NULL);
	tap_prefix = NULL;
}

#endif
