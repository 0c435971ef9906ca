/*
 * gemm_ymm.h
 *	  The 256-bit (AVX2 + FMA) micro-kernels of gemm.c's block loop, as
 *	  static functions for the files of each path that uses them: the AVX2
 *	  path (gemm_avx2.c), and the AVX-512 path for its narrow edges and
 *	  tails (gemm_avx512.c).  Included by files compiled with at least
 *	  -mavx2 -mfma.
 *
 * The 6 x 16 micro-kernel holds a tile of C in 12 AVX registers: kc
 * rank-1 updates (2 loads of B, 6 broadcasts of A, 12 FMAs per k); the
 * first tile of a row panel also prefetches the next A block (one line per
 * k), since weights come from memory.  Panels of at most 8 valid columns
 * use a 6 x 8 kernel.  A last panel of at most 4 columns (a tail) uses a
 * 12 x 4 kernel over each two row panels right after their other tiles
 * when it has 3 or 4 columns (ResNet's 14 x 14 maps leave 4), and is done
 * column by column over 8 row panels at once after all the other tiles
 * when it has 1 or 2 (tail_columns; ResNet's 7 x 7 maps leave 1); both
 * with the same fused multiply-adds in the same order as the 6 x 8
 * kernel.
 */
#ifndef MMSA_GEMM_YMM_H
#define MMSA_GEMM_YMM_H

#include <immintrin.h>

#include "gemm_isa.h"

/* Finishes and stores 8 results of row i at column j of the tile. */
static inline void
store8(__m256 v, const tile_store *s, int i, int j)
{
	float	   *c = s->c + (size_t) i * s->ldc + j;

	if (s->accumulate)
		v = _mm256_add_ps(v, _mm256_loadu_ps(c));
	if (s->last)
	{
		if (s->bias)
			v = _mm256_add_ps(v, _mm256_set1_ps(s->bias[i]));
		if (s->residual)
			v = _mm256_add_ps(v, _mm256_loadu_ps(s->residual + (size_t) i * s->ldr + j));
		if (s->relu)
			v = _mm256_max_ps(v, _mm256_setzero_ps());
	}
	_mm256_storeu_ps(c, v);
}

/*
 * The 6 x 16 micro-kernel: tile = a (kc x 6, packed) x b (kc x 16, packed).
 */
static inline void
kernel_6x16(int kc, const float *a, const float *b, const tile_store *s)
{
	__m256		c00 = _mm256_setzero_ps(),
				c01 = _mm256_setzero_ps(),
				c10 = _mm256_setzero_ps(),
				c11 = _mm256_setzero_ps(),
				c20 = _mm256_setzero_ps(),
				c21 = _mm256_setzero_ps(),
				c30 = _mm256_setzero_ps(),
				c31 = _mm256_setzero_ps(),
				c40 = _mm256_setzero_ps(),
				c41 = _mm256_setzero_ps(),
				c50 = _mm256_setzero_ps(),
				c51 = _mm256_setzero_ps();
	const float *pf = s->prefetch;

#pragma GCC unroll 4
	for (int k = 0; k < kc; k++)
	{
		__m256		b0 = _mm256_loadu_ps(b),
					b1 = _mm256_loadu_ps(b + 8),
					ai;

		if (pf)
			_mm_prefetch((const char *) (pf + (size_t) k * GEMM_MR), _MM_HINT_T0);

		ai = _mm256_broadcast_ss(a + 0);
		c00 = _mm256_fmadd_ps(ai, b0, c00);
		c01 = _mm256_fmadd_ps(ai, b1, c01);
		ai = _mm256_broadcast_ss(a + 1);
		c10 = _mm256_fmadd_ps(ai, b0, c10);
		c11 = _mm256_fmadd_ps(ai, b1, c11);
		ai = _mm256_broadcast_ss(a + 2);
		c20 = _mm256_fmadd_ps(ai, b0, c20);
		c21 = _mm256_fmadd_ps(ai, b1, c21);
		ai = _mm256_broadcast_ss(a + 3);
		c30 = _mm256_fmadd_ps(ai, b0, c30);
		c31 = _mm256_fmadd_ps(ai, b1, c31);
		ai = _mm256_broadcast_ss(a + 4);
		c40 = _mm256_fmadd_ps(ai, b0, c40);
		c41 = _mm256_fmadd_ps(ai, b1, c41);
		ai = _mm256_broadcast_ss(a + 5);
		c50 = _mm256_fmadd_ps(ai, b0, c50);
		c51 = _mm256_fmadd_ps(ai, b1, c51);
		a += GEMM_MR;
		b += GEMM_NR;
	}

	if (s->mr == GEMM_MR && s->nr == GEMM_NR)
	{
		store8(c00, s, 0, 0);
		store8(c01, s, 0, 8);
		store8(c10, s, 1, 0);
		store8(c11, s, 1, 8);
		store8(c20, s, 2, 0);
		store8(c21, s, 2, 8);
		store8(c30, s, 3, 0);
		store8(c31, s, 3, 8);
		store8(c40, s, 4, 0);
		store8(c41, s, 4, 8);
		store8(c50, s, 5, 0);
		store8(c51, s, 5, 8);
	}
	else if (s->nr == GEMM_NR)
	{
		/* bottom edge: whole rows, fewer of them */
		__m256		rows[GEMM_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
		{c30, c31}, {c40, c41}, {c50, c51}};

		for (int i = 0; i < s->mr; i++)
		{
			store8(rows[i][0], s, i, 0);
			store8(rows[i][1], s, i, 8);
		}
	}
	else
	{
		float		t[GEMM_MR * GEMM_NR];

		_mm256_storeu_ps(t + 0 * 16, c00);
		_mm256_storeu_ps(t + 0 * 16 + 8, c01);
		_mm256_storeu_ps(t + 1 * 16, c10);
		_mm256_storeu_ps(t + 1 * 16 + 8, c11);
		_mm256_storeu_ps(t + 2 * 16, c20);
		_mm256_storeu_ps(t + 2 * 16 + 8, c21);
		_mm256_storeu_ps(t + 3 * 16, c30);
		_mm256_storeu_ps(t + 3 * 16 + 8, c31);
		_mm256_storeu_ps(t + 4 * 16, c40);
		_mm256_storeu_ps(t + 4 * 16 + 8, c41);
		_mm256_storeu_ps(t + 5 * 16, c50);
		_mm256_storeu_ps(t + 5 * 16 + 8, c51);
		gemm_store_tile_scalar(t, s);
	}
}

/*
 * The 6 x 8 kernel for the last panel when it has at most 8 valid
 * columns: the left half of the 6 x 16 one.
 */
static void
kernel_6x8(int kc, const float *a, const float *b, const tile_store *s)
{
	__m256		c0 = _mm256_setzero_ps(),
				c1 = _mm256_setzero_ps(),
				c2 = _mm256_setzero_ps(),
				c3 = _mm256_setzero_ps(),
				c4 = _mm256_setzero_ps(),
				c5 = _mm256_setzero_ps();
	float		t[GEMM_MR * GEMM_NR];

	for (int k = 0; k < kc; k++)
	{
		__m256		b0 = _mm256_loadu_ps(b);

		c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, c0);
		c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, c1);
		c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, c2);
		c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, c3);
		c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, c4);
		c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, c5);
		a += GEMM_MR;
		b += GEMM_NR;
	}
	if (s->nr == 8)
	{
		__m256		rows[GEMM_MR] = {c0, c1, c2, c3, c4, c5};

		for (int i = 0; i < s->mr; i++)
			store8(rows[i], s, i, 0);
		return;
	}
	_mm256_storeu_ps(t + 0 * 16, c0);
	_mm256_storeu_ps(t + 1 * 16, c1);
	_mm256_storeu_ps(t + 2 * 16, c2);
	_mm256_storeu_ps(t + 3 * 16, c3);
	_mm256_storeu_ps(t + 4 * 16, c4);
	_mm256_storeu_ps(t + 5 * 16, c5);
	gemm_store_tile_scalar(t, s);
}

/*
 * One column of B against up to GEMM_TAIL_PANELS panels of A at once: for
 * panel p, the 6 rows at one k are the low lanes of one vector loaded from
 * the packed panel (k-major), times the column's entry broadcast.  Each
 * result is the chain of fused multiply-adds over k from zero, in order,
 * that kernel_6x8 computes, so a column gives the same floats either way.
 * a[p]: panel p's first k; b: the column's first entry, stride GEMM_NR.
 * The last k loads with a mask: its lanes 6 and 7 would be past the end.
 */
static void
tail_column(int kc, const float *const *a, const float *b, __m256 acc[GEMM_TAIL_PANELS])
{
	const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
	int			k;

	for (int p = 0; p < GEMM_TAIL_PANELS; p++)
		acc[p] = _mm256_setzero_ps();
	for (k = 0; k < kc - 1; k++)
	{
		__m256		bk = _mm256_broadcast_ss(b + (size_t) k * GEMM_NR);

#pragma GCC unroll 8
		for (int p = 0; p < GEMM_TAIL_PANELS; p++)
			acc[p] = _mm256_fmadd_ps(_mm256_loadu_ps(a[p] + (size_t) k * GEMM_MR), bk, acc[p]);
	}
	{
		__m256		bk = _mm256_broadcast_ss(b + (size_t) k * GEMM_NR);

		for (int p = 0; p < GEMM_TAIL_PANELS; p++)
			acc[p] = _mm256_fmadd_ps(_mm256_maskload_ps(a[p] + (size_t) k * GEMM_MR, six), bk, acc[p]);
	}
}

/*
 * The last panel of a column block when it has at most GEMM_TAIL_COLS
 * valid columns, for two row panels at once, done right after their other
 * tiles so that both panels of A are still in L1: for panel p and column
 * x, the 6 rows at one k are the low lanes of a vector loaded from the
 * packed panel (k-major), times B's entry broadcast; 8 independent chains
 * of fused multiply-adds, 8 per k.  Each result is the chain over k from
 * zero, in order, that kernel_6x8 computes, so a column gives the same
 * floats either way.  The last k loads with a mask: its lanes 6 and 7
 * would be past the end.  a1 may repeat a0 (one panel: computed, not
 * stored); s: rows of a0 then a1 (s->mr up to 12), s->nr columns.
 */
static void
kernel_tail_12x4(int kc, const float *a0, const float *a1, const float *b,
				 const tile_store *s)
{
	const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
	__m256		c00 = _mm256_setzero_ps(),
				c01 = _mm256_setzero_ps(),
				c02 = _mm256_setzero_ps(),
				c03 = _mm256_setzero_ps(),
				c10 = _mm256_setzero_ps(),
				c11 = _mm256_setzero_ps(),
				c12 = _mm256_setzero_ps(),
				c13 = _mm256_setzero_ps(),
				x0,
				x1;
	float		t[4][2][8];
	int			k;

	for (k = 0; k < kc - 1; k++)
	{
		__m256		b0 = _mm256_broadcast_ss(b + 0),
					b1 = _mm256_broadcast_ss(b + 1),
					b2 = _mm256_broadcast_ss(b + 2),
					b3 = _mm256_broadcast_ss(b + 3);

		x0 = _mm256_loadu_ps(a0);
		x1 = _mm256_loadu_ps(a1);
		c00 = _mm256_fmadd_ps(x0, b0, c00);
		c01 = _mm256_fmadd_ps(x0, b1, c01);
		c02 = _mm256_fmadd_ps(x0, b2, c02);
		c03 = _mm256_fmadd_ps(x0, b3, c03);
		c10 = _mm256_fmadd_ps(x1, b0, c10);
		c11 = _mm256_fmadd_ps(x1, b1, c11);
		c12 = _mm256_fmadd_ps(x1, b2, c12);
		c13 = _mm256_fmadd_ps(x1, b3, c13);
		a0 += GEMM_MR;
		a1 += GEMM_MR;
		b += GEMM_NR;
	}
	x0 = _mm256_maskload_ps(a0, six);
	x1 = _mm256_maskload_ps(a1, six);
	c00 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 0), c00);
	c01 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 1), c01);
	c02 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 2), c02);
	c03 = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(b + 3), c03);
	c10 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 0), c10);
	c11 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 1), c11);
	c12 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 2), c12);
	c13 = _mm256_fmadd_ps(x1, _mm256_broadcast_ss(b + 3), c13);

	/* t[x][p][r]: column x, panel p, row r */
	_mm256_storeu_ps(t[0][0], c00);
	_mm256_storeu_ps(t[1][0], c01);
	_mm256_storeu_ps(t[2][0], c02);
	_mm256_storeu_ps(t[3][0], c03);
	_mm256_storeu_ps(t[0][1], c10);
	_mm256_storeu_ps(t[1][1], c11);
	_mm256_storeu_ps(t[2][1], c12);
	_mm256_storeu_ps(t[3][1], c13);
	for (int i = 0; i < s->mr; i++)
		for (int x = 0; x < s->nr; x++)
			gemm_store1(t[x][i / GEMM_MR][i % GEMM_MR], s, i, x);
}

/*
 * The last panel of a column block when it has at most
 * GEMM_TAIL_BY_COLUMN valid columns: column by column over
 * GEMM_TAIL_PANELS row panels at once (tail_column), in a pass over the
 * weights after the other tiles.  For one column (ResNet's 7 x 7 maps)
 * far less work than a 6 x 8 tile per panel, and less time than
 * kernel_tail_12x4; for four (14 x 14 maps) slower than either, since each
 * column reads its 8 panels of A from L2 again.  s holds the store of
 * rows m0.. (c, bias and residual at row m0, column col); rows [m0, m1).
 */
static void
tail_columns(int kc, const float *Ap, int K, int k0, const float *bp,
			 int m0, int m1, int ncols, const tile_store *s0)
{
	for (int mp = m0; mp < m1; mp += GEMM_MR * GEMM_TAIL_PANELS)
	{
		const float *a[GEMM_TAIL_PANELS];
		int			np = (m1 - mp + GEMM_MR - 1) / GEMM_MR;

		if (np > GEMM_TAIL_PANELS)
			np = GEMM_TAIL_PANELS;
		/* past the last panel: repeat it (computed, not stored) */
		for (int p = 0; p < GEMM_TAIL_PANELS; p++)
			a[p] = Ap + ((size_t) ((mp + GEMM_MR * (p < np ? p : np - 1)) / GEMM_MR) * K + k0) * GEMM_MR;
		for (int x = 0; x < ncols; x++)
		{
			__m256		acc[GEMM_TAIL_PANELS];

			tail_column(kc, a, bp + x, acc);
			for (int p = 0; p < np; p++)
			{
				float		v[8];
				int			row0 = mp + GEMM_MR * p - m0;

				_mm256_storeu_ps(v, acc[p]);
				for (int r = 0; r < GEMM_MR && mp + GEMM_MR * p + r < m1; r++)
					gemm_store1(v[r], s0, row0 + r, x);
			}
		}
	}
}

#endif
