/*
 * cpu.h
 *	  The instruction-set path of the kernels, chosen once per process from
 *	  CPUID, and the setting that forces a lower one.
 *
 * The default build is portable (x86-64 baseline).  The kernels that need
 * wide vectors (gemm.c's micro-kernels and the packing of B, conv.c's
 * gathers, phase planes and Winograd transforms) live in src/core/isa/,
 * one file per instruction set, each compiled with its own target flags,
 * and are reached through tables of function pointers (gemm_isa.h,
 * conv_isa.h) that this module sets, as pgvector's halfvec code does.
 *
 * Paths, lowest first:
 *   avx2    AVX2 + FMA (256-bit), the baseline: a CPU without it gets a
 *           clear error when a model loads (mmsa_isa_init), never SIGILL;
 *   avx-vnni  AVX2 with AVX-VNNI (Intel since Alder Lake, AMD since Zen 5):
 *           the AVX2 kernels, and vpdpbusd for the int8 products;
 *   avx512  AVX-512 F, BW and VL (512-bit micro-kernel), where the CPU and
 *           the operating system (XCR0) have them; int8 products on
 *           AVX512_VNNI where the CPU has it, else as avx-vnni or avx2.
 *
 * The int8 products (qgemm.h) follow the path: avx2 forces vpmaddubsw.
 *
 * The environment variable MMSA_ISA (auto | avx2 | avx-vnni | avx512) forces a path
 * for the command-line tool and the tests; the extension's setting
 * mmsa.isa does the same in SQL.  Asking for a path the CPU lacks is an
 * error, not a crash.  A test build linked with the SIMDe objects
 * (build/mmsa-simde, see the Makefile) also takes avx512-simde: the
 * AVX-512 kernels emulated on AVX2, so that whole models run on them on
 * any host; other builds refuse it.
 */
#ifndef MMSA_CPU_H
#define MMSA_CPU_H

#include <stddef.h>

#include "mmsa_error.h"

typedef enum mmsa_isa
{
	MMSA_ISA_NONE = 0,			/* no supported path: the portable C loops */
	MMSA_ISA_AVX2 = 1,
	MMSA_ISA_AVX512 = 2,
	MMSA_ISA_AVX512_SIMDE = 3,	/* the AVX-512 kernels emulated by SIMDe */
	MMSA_ISA_AVXVNNI = 4,		/* AVX2, and AVX-VNNI for int8 */
	MMSA_ISA_AUTO = 99			/* the best the CPU has (a request only) */
} mmsa_isa;

/* The best path this CPU (and operating system) supports, from CPUID. */
mmsa_isa	mmsa_cpu_best(void);

/* Whether this CPU supports the path. */
int			mmsa_cpu_supports(mmsa_isa isa);

/* Whether the CPU runs vpdpbusd: AVX-VNNI (bits 256) or AVX512_VNNI (512). */
int			mmsa_cpu_has_vnni(int bits);

/* "avx2", "avx-vnni", "avx512", "avx512-simde", "auto", "none". */
const char *mmsa_isa_name(mmsa_isa isa);

/* Parses a path's name (auto | avx2 | avx-vnni | avx512 | avx512-simde); MMSA_ERR_INVALID otherwise. */
mmsa_status mmsa_isa_parse(const char *name, mmsa_isa *isa, mmsa_error *err);

/*
 * Makes isa (or, for MMSA_ISA_AUTO, the best) the path of this process.
 * MMSA_ERR_UNSUPPORTED when the CPU lacks it, or lacks AVX2 and FMA
 * altogether.  Only while no kernel runs (no product in flight).
 */
mmsa_status mmsa_isa_set(mmsa_isa isa, mmsa_error *err);

/*
 * The first choice, at model load: MMSA_ISA from the environment, or auto.
 * Idempotent (a path already chosen by mmsa_isa_set stays).
 */
mmsa_status mmsa_isa_init(mmsa_error *err);

/* The path in use (what mmsa_isa_init picked before any set). */
mmsa_isa	mmsa_isa_current(void);

/*
 * The name of the kernels in use: the path's ("avx2", "avx512"), the label
 * of tables the unit tests put in place (mmsa_isa_use_tables), or
 * "generic" for the portable C loops.
 */
const char *mmsa_isa_current_label(void);

/*
 * The CPU's SIMD flags that matter here, space separated, as
 * /proc/cpuinfo names them ("avx2 fma avx512f avx512bw ..."), from CPUID.
 */
void		mmsa_cpu_flags(char *buf, size_t len);

/*
 * For the unit tests: use these kernel tables (for example the SIMDe
 * build of the AVX-512 kernels), labelled `label`; NULL tables restore
 * the chosen path's.
 */
struct gemm_kernels;
struct conv_kernels;
void		mmsa_isa_use_tables(const struct gemm_kernels *gemm,
								const struct conv_kernels *conv,
								const char *label);

/*
 * The name of the int8 kernels in use (qgemm_isa.h): "avx2", "avx-vnni",
 * "avx512-vnni", a SIMDe build's, or "generic".
 */
const char *mmsa_int8_kernels_label(void);

/* For the unit tests: use this int8 kernel table (NULL: the path's). */
struct qgemm_kernels;
void		mmsa_isa_use_qgemm(const struct qgemm_kernels *q);

#endif
