/*
 * gemm_avx512.c
 *	  The AVX-512 path of gemm.c's block loop (gemm_isa.h): 6 x 32 tiles in
 *	  twelve 512-bit registers, reading two of B's 16-column panels at once
 *	  (the packed layouts of A and B are those of every path), with the
 *	  edges of a tile stored through masks.  A lone last panel and the
 *	  tails use the 256-bit kernels of gemm_ymm.h.  Compiled with
 *	  -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma.
 *
 * Built a second time with -DMMSA_SIMDE against SIMDe (libsimde-dev),
 * whose simde_mm512_* functions emulate AVX-512F on AVX2, as the table
 * gemm_kernels_avx512_simde: the unit tests compare it with the AVX2 path
 * on every host, bit for bit (each entry is the same chain of fused
 * multiply-adds over k in both).
 */
#include "gemm_ymm.h"

#ifdef MMSA_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define GEMM_KERNELS_AVX512 gemm_kernels_avx512_simde
#define GEMM_AVX512_NAME "avx512 (SIMDe)"
extern const gemm_kernels gemm_kernels_avx512_simde;
#else
#define GEMM_KERNELS_AVX512 gemm_kernels_avx512
#define GEMM_AVX512_NAME "avx512"
#endif

#include "zmm_first.h"

/*
 * Finishes and stores the first n (1 .. 16) of 16 results of row i at
 * column j of the tile: the lanes past n are neither read nor written.
 */
static inline void
store16(__m512 v, const tile_store *s, int i, int j, int n)
{
	float	   *c = s->c + (size_t) i * s->ldc + j;

	if (s->accumulate)
		v = _mm512_add_ps(v, load_first(c, n));
	if (s->last)
	{
		if (s->bias)
			v = _mm512_add_ps(v, _mm512_set1_ps(s->bias[i]));
		if (s->residual)
			v = _mm512_add_ps(v, load_first(s->residual + (size_t) i * s->ldr + j, n));
		if (s->relu)
			v = _mm512_max_ps(v, _mm512_setzero_ps());
	}
	store_first(c, v, n);
}

/*
 * The 6 x 32 micro-kernel: tile = a (kc x 6, packed) x [b0 b1] (two
 * packed panels, kc x 16 each); per k 2 loads of B, 6 broadcasts of A, 12
 * FMAs.  s->nr: 17 to 32 valid columns, s->mr: 1 to 6 valid rows.
 */
static void
kernel_6x32(int kc, const float *a, const float *b0p, const float *b1p, const tile_store *s)
{
	__m512		c00 = _mm512_setzero_ps(),
				c01 = _mm512_setzero_ps(),
				c10 = _mm512_setzero_ps(),
				c11 = _mm512_setzero_ps(),
				c20 = _mm512_setzero_ps(),
				c21 = _mm512_setzero_ps(),
				c30 = _mm512_setzero_ps(),
				c31 = _mm512_setzero_ps(),
				c40 = _mm512_setzero_ps(),
				c41 = _mm512_setzero_ps(),
				c50 = _mm512_setzero_ps(),
				c51 = _mm512_setzero_ps();
	const float *pf = s->prefetch;

#pragma GCC unroll 4
	for (int k = 0; k < kc; k++)
	{
		__m512		b0 = _mm512_loadu_ps(b0p),
					b1 = _mm512_loadu_ps(b1p),
					ai;

		if (pf)
			_mm_prefetch((const char *) (pf + (size_t) k * GEMM_MR), _MM_HINT_T0);

		ai = _mm512_set1_ps(a[0]);
		c00 = _mm512_fmadd_ps(ai, b0, c00);
		c01 = _mm512_fmadd_ps(ai, b1, c01);
		ai = _mm512_set1_ps(a[1]);
		c10 = _mm512_fmadd_ps(ai, b0, c10);
		c11 = _mm512_fmadd_ps(ai, b1, c11);
		ai = _mm512_set1_ps(a[2]);
		c20 = _mm512_fmadd_ps(ai, b0, c20);
		c21 = _mm512_fmadd_ps(ai, b1, c21);
		ai = _mm512_set1_ps(a[3]);
		c30 = _mm512_fmadd_ps(ai, b0, c30);
		c31 = _mm512_fmadd_ps(ai, b1, c31);
		ai = _mm512_set1_ps(a[4]);
		c40 = _mm512_fmadd_ps(ai, b0, c40);
		c41 = _mm512_fmadd_ps(ai, b1, c41);
		ai = _mm512_set1_ps(a[5]);
		c50 = _mm512_fmadd_ps(ai, b0, c50);
		c51 = _mm512_fmadd_ps(ai, b1, c51);
		a += GEMM_MR;
		b0p += GEMM_NR;
		b1p += GEMM_NR;
	}

	{
		__m512		rows[GEMM_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
		{c30, c31}, {c40, c41}, {c50, c51}};
		int			right = s->nr - GEMM_NR;

		for (int i = 0; i < s->mr; i++)
		{
			store16(rows[i][0], s, i, 0, GEMM_NR);
			store16(rows[i][1], s, i, GEMM_NR, right);
		}
	}
}

/*
 * The tiles of one row panel (gemm_kernels.row_panel): 6 x 32 tiles over
 * each two panels; a lone last panel as a 6 x 16 or 6 x 8 tile of the
 * 256-bit kernels.
 */
static void
row_panel_avx512(int kc, const float *a, const float *bp, int npanels, const tile_store *s0)
{
	for (int j = 0; j < npanels;)
	{
		int			col = j * GEMM_NR;
		const float *b = bp + (size_t) j * kc * GEMM_NR;
		tile_store	s;

		if (j + 1 < npanels && s0->nr - col > GEMM_NR)
		{
			gemm_tile_at(&s, s0, col, 2 * GEMM_NR);
			kernel_6x32(kc, a, b, b + (size_t) kc * GEMM_NR, &s);
			j += 2;
			continue;
		}
		gemm_tile_at(&s, s0, col, GEMM_NR);
		if (s.nr <= 8)
			kernel_6x8(kc, a, b, &s);
		else
			kernel_6x16(kc, a, b, &s);
		j++;
	}
}

static void
pack_b_avx512(float *bp, const float *B, size_t ldb, int k0, int kc, int n0, int nc)
{
	gemm_pack_b_inline(bp, B, ldb, k0, kc, n0, nc);
}

const gemm_kernels GEMM_KERNELS_AVX512 = {
	GEMM_AVX512_NAME,
	row_panel_avx512,
	kernel_tail_12x4,
	tail_columns,
	pack_b_avx512
};
