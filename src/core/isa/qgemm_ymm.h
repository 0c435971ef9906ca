/*
 * qgemm_ymm.h
 *	  The 256-bit int8 micro-kernel and B packing of qgemm.c (qgemm_isa.h),
 *	  compiled once per path by the file that includes it, which first
 *	  defines
 *
 *	    QDOT(acc, b, w)   acc (8 x int32) + for each lane, the sum of the
 *	                      four products of its bytes of b (unsigned) and w
 *	                      (signed): vpmaddubsw + vpmaddwd + vpaddd on AVX2,
 *	                      vpdpbusd on AVX-VNNI;
 *	    QGEMM_YMM_TABLE   the name of the kernel table it defines;
 *	    QGEMM_YMM_NAME    its name as printed.
 *
 * A tile is 4 rows x 16 columns (one panel of B) in eight registers; per
 * group of four k: two loads of B, four broadcasts of four weight bytes,
 * eight QDOTs.
 */
#ifndef MMSA_SIMDE
#include <immintrin.h>
#endif
#include <string.h>

#include "qgemm_isa.h"

/* the first n (0 .. 8) floats at p, the rest zero */
static inline __m256
qload_first(const float *p, int n)
{
	float		t[8] = {0};

	if (n >= 8)
		return _mm256_loadu_ps(p);
	if (n > 0)
		memcpy(t, p, sizeof(float) * n);
	return _mm256_loadu_ps(t);
}

/* the first n (0 .. 8) int32 at p, the rest zero */
static inline __m256i
qload_first_epi32(const int32_t *p, int n)
{
	int32_t		t[8] = {0};

	if (n >= 8)
		return _mm256_loadu_si256((const __m256i *) p);
	if (n > 0)
		memcpy(t, p, sizeof(int32_t) * n);
	return _mm256_loadu_si256((const __m256i *) t);
}

/* finishes 8 sums of row i from column j of a tile, storing the first n */
static inline void
qstore8(__m256i sum, const qtile_store *s, int i, int j, int n)
{
	__m256		bias = _mm256_set1_ps(s->bias ? s->bias[i] : 0.0f),
				v;
	float	   *c = s->c + (size_t) i * s->ldc + j;

	if (n <= 0)
		return;
	if (s->col_scale)
	{
		/* per-column activations: the zero points out, then both scales */
		__m256i		zr = _mm256_mullo_epi32(qload_first_epi32(s->col_zero + j, n),
										   _mm256_set1_epi32(s->row_sum[i]));

		v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sum, zr)),
							_mm256_mul_ps(_mm256_set1_ps(s->scale[i]),
										  qload_first(s->col_scale + j, n)),
							bias);
	}
	else
		v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(s->scale[i]), bias);
	if (s->residual)
		v = _mm256_add_ps(v, qload_first(s->residual + (size_t) i * s->ldr + j, n));
	if (s->relu)
		v = _mm256_max_ps(v, _mm256_setzero_ps());
	if (n >= 8)
		_mm256_storeu_ps(c, v);
	else
	{
		float		t[8];

		_mm256_storeu_ps(t, v);
		memcpy(c, t, sizeof(float) * n);
	}
}

static inline __m256i
qbroadcast4(const int8_t *a)
{
	int32_t		w;

	memcpy(&w, a, 4);
	return _mm256_set1_epi32(w);
}

static void
ymm_row_panel(int k4, const int8_t *a, const uint8_t *bp, int npanels,
			  const qtile_store *s0)
{
#ifdef QDOT_NEEDS_ONES
	const __m256i ones = _mm256_set1_epi16(1);
#endif

	for (int jp = 0; jp < npanels; jp++)
	{
		const uint8_t *b = bp + (size_t) jp * k4 * QGEMM_NR * 4;
		__m256i		c00 = _mm256_setzero_si256(),
					c01 = c00,
					c10 = c00,
					c11 = c00,
					c20 = c00,
					c21 = c00,
					c30 = c00,
					c31 = c00;
		qtile_store s;

		for (int k = 0; k < k4; k++)
		{
			__m256i		b0 = _mm256_loadu_si256((const __m256i *) (b + (size_t) k * 64)),
						b1 = _mm256_loadu_si256((const __m256i *) (b + (size_t) k * 64 + 32)),
						w;
			const int8_t *ak = a + (size_t) k * QGEMM_MR * 4;

			w = qbroadcast4(ak);
			QDOT(c00, b0, w);
			QDOT(c01, b1, w);
			w = qbroadcast4(ak + 4);
			QDOT(c10, b0, w);
			QDOT(c11, b1, w);
			w = qbroadcast4(ak + 8);
			QDOT(c20, b0, w);
			QDOT(c21, b1, w);
			w = qbroadcast4(ak + 12);
			QDOT(c30, b0, w);
			QDOT(c31, b1, w);
		}
		qgemm_tile_at(&s, s0, jp * QGEMM_NR, QGEMM_NR);
		{
			__m256i		rows[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};

			for (int i = 0; i < s.mr; i++)
			{
				qstore8(rows[i][0], &s, i, 0, s.nr);
				qstore8(rows[i][1], &s, i, 8, s.nr - 8);
			}
		}
	}
}

static void
ymm_pack_quad(uint8_t *dst, size_t panel_stride, const float *const r[4],
			  int nc, const float inv[4], const float *col_inv,
			  const int32_t *col_zero)
{
	int			ncp = (nc + QGEMM_NR - 1) / QGEMM_NR * QGEMM_NR;
	const __m256i top = _mm256_set1_epi32(QGEMM_ACT_MAX);

	for (int x = 0; x < ncp; x += 8)
	{
		__m256i		v = _mm256_setzero_si256(),
					z = _mm256_setzero_si256();
		__m256		lo,
					hi,
					cinv = _mm256_setzero_ps();

		/* clamp to [-z, ACT_MAX - z], round, add z (qgemm_quantize1z) */
		if (col_inv)
		{
			z = _mm256_loadu_si256((const __m256i *) (col_zero + x));
			cinv = _mm256_loadu_ps(col_inv + x);
		}
		lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_setzero_si256(), z));
		hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(top, z));
		for (int j = 0; j < 4; j++)
		{
			__m256		f;
			__m256i		q;

			if (r[j] == NULL)
				continue;
			f = _mm256_mul_ps(qload_first(r[j] + x, nc - x),
							  col_inv ? cinv : _mm256_set1_ps(inv[j]));
			f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
			q = _mm256_add_epi32(_mm256_cvtps_epi32(f), z);
			v = _mm256_or_si256(v, _mm256_slli_epi32(q, 8 * j));
		}
		_mm256_storeu_si256((__m256i *) (dst + (size_t) (x / QGEMM_NR) * panel_stride +
										 (x % QGEMM_NR) * 4), v);
	}
}

const qgemm_kernels QGEMM_YMM_TABLE = {
	.name = QGEMM_YMM_NAME,
	.row_panel = ymm_row_panel,
	.pack_quad = ymm_pack_quad,
};
