/*
 * qgemm_avx2.c
 *	  The AVX2 path of qgemm.c (qgemm_isa.h): vpmaddubsw multiplies the
 *	  unsigned 7-bit activations with the signed weights and adds pairs
 *	  into 16-bit lanes, which cannot saturate at these ranges (qgemm.h);
 *	  vpmaddwd with ones adds those pairs into 32-bit lanes.  Three
 *	  instructions per 32 multiply-adds, where vpdpbusd takes one.
 *	  Compiled with -mavx2 -mfma.
 */
#include <immintrin.h>

#define QDOT_NEEDS_ONES 1
#define QDOT(acc, b, w) \
	((acc) = _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((b), (w)), ones)))
#define QGEMM_YMM_TABLE qgemm_kernels_avx2
#define QGEMM_YMM_NAME "avx2"

#include "qgemm_ymm.h"
