/*
 * zmm_first.h
 *	  The first n floats at p as a 512-bit vector (the rest zero), and the
 *	  first n lanes of a vector stored to p: masked loads and stores, which
 *	  read and write nothing past n (n <= 0: nothing; n >= 16: all 16).
 *	  SIMDe 0.7.4 has no masked float loads or stores, so its build copies
 *	  through a buffer (the same values).  For the AVX-512 kernel files
 *	  (gemm_avx512.c, qgemm_avx512vnni.c), included after their intrinsics.
 */
#ifndef MMSA_ZMM_FIRST_H
#define MMSA_ZMM_FIRST_H

#include <string.h>

static inline __m512
load_first(const float *p, int n)
{
#ifdef MMSA_SIMDE
	float		t[16] = {0};

	if (n > 0)
		memcpy(t, p, sizeof(float) * (n < 16 ? n : 16));
	return _mm512_loadu_ps(t);
#else
	if (n <= 0)
		return _mm512_setzero_ps();
	return _mm512_maskz_loadu_ps(n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << n) - 1), p);
#endif
}

static inline void
store_first(float *p, __m512 v, int n)
{
	if (n <= 0)
		return;
#ifdef MMSA_SIMDE
	{
		float		t[16];

		_mm512_storeu_ps(t, v);
		memcpy(p, t, sizeof(float) * (n < 16 ? n : 16));
	}
#else
	_mm512_mask_storeu_ps(p, n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << n) - 1), v);
#endif
}

#endif
