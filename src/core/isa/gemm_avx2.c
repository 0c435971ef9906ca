/*
 * gemm_avx2.c
 *	  The AVX2 + FMA path of gemm.c's block loop (gemm_isa.h): 6 x 16
 *	  tiles in 256-bit registers (gemm_ymm.h).  Compiled with -mavx2 -mfma.
 */
#include "gemm_ymm.h"

/*
 * The tiles of one row panel (gemm_kernels.row_panel): 6 x 16 tiles, and
 * a 6 x 8 one for a last panel of at most 8 valid columns.
 */
static void
row_panel_avx2(int kc, const float *a, const float *bp, int npanels, const tile_store *s0)
{
	for (int j = 0; j < npanels; j++)
	{
		tile_store	s;

		gemm_tile_at(&s, s0, j * GEMM_NR, GEMM_NR);
		if (s.nr <= 8)
			kernel_6x8(kc, a, bp + (size_t) j * kc * GEMM_NR, &s);
		else
			kernel_6x16(kc, a, bp + (size_t) j * kc * GEMM_NR, &s);
	}
}

static void
pack_b_avx2(float *bp, const float *B, size_t ldb, int k0, int kc, int n0, int nc)
{
	gemm_pack_b_inline(bp, B, ldb, k0, kc, n0, nc);
}

const gemm_kernels gemm_kernels_avx2 = {
	"avx2",
	row_panel_avx2,
	kernel_tail_12x4,
	tail_columns,
	pack_b_avx2
};
