/*
 * qgemm_avxvnni.c
 *	  The AVX-VNNI path of qgemm.c (qgemm_isa.h): the 256-bit kernel of
 *	  qgemm_ymm.h with vpdpbusd (VEX encoded), which adds the four products
 *	  of unsigned and signed bytes of each lane into its int32 sum in one
 *	  instruction.  Compiled with -mavxvnni -mavx2 -mfma.
 *
 * Built a second time with -DMMSA_SIMDE against SIMDe (libsimde-dev), whose
 * simde_mm256_dpbusd_epi32 computes the same sums on AVX2, as the table
 * qgemm_kernels_avxvnni_simde: the unit tests run it on every host.
 */
#ifdef MMSA_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define QDOT(acc, b, w) ((acc) = simde_mm256_dpbusd_epi32((acc), (b), (w)))
#define QGEMM_YMM_TABLE qgemm_kernels_avxvnni_simde
#define QGEMM_YMM_NAME "avx-vnni (SIMDe)"
#include "qgemm_isa.h"
extern const qgemm_kernels qgemm_kernels_avxvnni_simde;
#else
#include <immintrin.h>
#define QDOT(acc, b, w) ((acc) = _mm256_dpbusd_avx_epi32((acc), (b), (w)))
#define QGEMM_YMM_TABLE qgemm_kernels_avxvnni
#define QGEMM_YMM_NAME "avx-vnni"
#endif

#include "qgemm_ymm.h"
