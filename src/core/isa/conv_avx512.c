/*
 * conv_avx512.c
 *	  conv.c's kernels (conv_kernels.h) compiled for AVX-512 (F, BW, VL):
 *	  the gathers and stride-2 copies take 16 floats at a time
 *	  (MMSA_AVX512 in conv_kernels.h).  Built a second time against SIMDe
 *	  (-DMMSA_SIMDE) as conv_kernels_avx512_simde for the unit tests.
 */
#ifdef MMSA_SIMDE
#include <immintrin.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define CONV_KERNELS_TABLE conv_kernels_avx512_simde
#define CONV_KERNELS_NAME "avx512 (SIMDe)"
#else
#define CONV_KERNELS_TABLE conv_kernels_avx512
#define CONV_KERNELS_NAME "avx512"
#endif
#define MMSA_AVX512 1
#include "conv_kernels.h"
