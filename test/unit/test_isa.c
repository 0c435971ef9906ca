/*
 * test_isa.c
 *	  Unit tests of the instruction-set dispatch (cpu.c): path names,
 *	  parsing, what the CPU supports, forcing a path and refusing one the
 *	  CPU lacks; and the per-path elementwise kernels (layers_isa.h: GELU)
 *	  on every path the host runs, against the double-precision formula and
 *	  the SIMD paths bit for bit against each other.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "isa_paths.h"
#include "layers_isa.h"
#include "tap.h"

static void
test_names_and_parsing(void)
{
	static const char *names[] = {"auto", "avx2", "avx512", "avx512-simde"};
	mmsa_error	err;
	mmsa_isa	isa;
	int			good = 1;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		good &= mmsa_isa_parse(names[i], &isa, &err) == MMSA_OK &&
			strcmp(mmsa_isa_name(isa), names[i]) == 0;
	ok(good, "every path's name parses to the path of that name");
	ok(mmsa_isa_parse("AVX2", &isa, &err) == MMSA_ERR_INVALID &&
	   strstr(err.message, "unknown instruction-set path \"AVX2\"") != NULL,
	   "an unknown name is refused with MMSA_ERR_INVALID: %s", err.message);
	ok(mmsa_isa_parse(NULL, &isa, &err) == MMSA_ERR_INVALID, "a NULL name is refused");
}

static void
test_choice(void)
{
	mmsa_error	err;
	char		flags[256];
	mmsa_isa	best = mmsa_cpu_best();

	mmsa_cpu_flags(flags, sizeof(flags));
	ok(best == MMSA_ISA_NONE || mmsa_cpu_supports(best),
	   "the best path (%s) is one the CPU supports", mmsa_isa_name(best));
	ok((best == MMSA_ISA_AVX512) == mmsa_cpu_supports(MMSA_ISA_AVX512) &&
	   (strstr(flags, "avx512f") != NULL || !mmsa_cpu_supports(MMSA_ISA_AVX512)),
	   "avx512 is the best path exactly where the CPU has it (flags: %s)", flags);
	if (!mmsa_cpu_supports(MMSA_ISA_AVX2))
	{
		ok(mmsa_isa_set(MMSA_ISA_AUTO, &err) == MMSA_ERR_UNSUPPORTED &&
		   strstr(err.message, "lacks AVX2 and FMA") != NULL,
		   "no AVX2: auto refused with a clear error: %s", err.message);
		return;
	}
	ok(mmsa_isa_set(MMSA_ISA_AVX2, &err) == MMSA_OK && mmsa_isa_current() == MMSA_ISA_AVX2,
	   "avx2 can be forced");
	ok(strcmp(mmsa_gemm_kernels()->name, "avx2") == 0 && strcmp(mmsa_conv_kernels()->name, "avx2") == 0 &&
	   strcmp(mmsa_layer_kernels()->name, "avx2") == 0,
	   "forcing avx2 points every kernel table at avx2's");
	if (mmsa_cpu_supports(MMSA_ISA_AVX512))
		ok(mmsa_isa_set(MMSA_ISA_AVX512, &err) == MMSA_OK &&
		   strcmp(mmsa_gemm_kernels()->name, "avx512") == 0,
		   "avx512 can be forced on this CPU");
	else
		ok(mmsa_isa_set(MMSA_ISA_AVX512, &err) == MMSA_ERR_UNSUPPORTED &&
		   strstr(err.message, "cannot run the avx512 path") != NULL &&
		   mmsa_isa_current() == MMSA_ISA_AVX2 && strcmp(mmsa_gemm_kernels()->name, "avx2") == 0,
		   "avx512 refused on this CPU, the path in use unchanged: %s", err.message);
#ifdef MMSA_HAVE_SIMDE
	ok(mmsa_isa_set(MMSA_ISA_AVX512_SIMDE, &err) == MMSA_OK &&
	   strcmp(mmsa_gemm_kernels()->name, "avx512 (SIMDe)") == 0,
	   "avx512-simde can be forced in a binary linked with SIMDe");
#endif
	ok(mmsa_isa_set(MMSA_ISA_AUTO, &err) == MMSA_OK && mmsa_isa_current() == best,
	   "auto returns to the best path (%s)", mmsa_isa_name(best));
	ok(mmsa_isa_init(&err) == MMSA_OK && mmsa_isa_current() == best,
	   "mmsa_isa_init keeps a path already chosen");
}

/* GELU on each layer table: the formula in double, and bit for bit between SIMD paths. */
static void
test_gelu(void)
{
	static const layer_kernels *tables[] = {&layer_kernels_generic, &layer_kernels_avx2, &layer_kernels_avx512};
	enum
	{
		N = 4099
	};
	float	   *x = malloc(sizeof(float) * N),
			   *want = malloc(sizeof(float) * N),
			   *got[3];
	int			supported[3] = {1, mmsa_cpu_supports(MMSA_ISA_AVX2), mmsa_cpu_supports(MMSA_ISA_AVX512)};

	for (int i = 0; i < N; i++)
	{
		x[i] = -9.0f + 18.0f * i / (N - 1);
		want[i] = (float) (0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))));
	}
	for (int t = 0; t < 3; t++)
	{
		got[t] = malloc(sizeof(float) * N);
		if (!supported[t])
		{
			ok(1, "# SKIP gelu on %s: not on this CPU", tables[t]->name);
			continue;
		}
		/* odd length and offset: the vector loop's remainder too */
		tables[t]->gelu(got[t], x, N);
		{
			char		name[64];

			snprintf(name, sizeof(name), "[%s] gelu over [-9, 9] against erf in double", tables[t]->name);
			tap_close_within(want, got[t], N, 2e-6, name);
		}
	}
	if (supported[2])
		ok(memcmp(got[1], got[2], sizeof(float) * N) == 0, "gelu: avx512 bit-identical to avx2");
	for (int t = 0; t < 3; t++)
		free(got[t]);
	free(x);
	free(want);
}

int
main(void)
{
	isa_path	paths[ISA_MAX_PATHS];

	isa_paths(paths);
	test_names_and_parsing();
	test_choice();
	test_gelu();
	return tap_done();
}
