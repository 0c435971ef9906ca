/*
 * gemm_isa.h
 *	  What gemm.c's block loop shares with the micro-kernels of each
 *	  instruction set (src/core/isa/gemm_*.c): the store of a tile with its
 *	  epilogue, the packing of a row of B, and the table of kernels that
 *	  cpu.c points at the path in use.
 *
 * Every kernel computes each entry of C as the chain of fused multiply-adds
 * over k from zero, in order, so that all the SIMD paths give the same
 * floats (the unit tests check it bit for bit); the portable C loops
 * (gemm_kernels_generic) round the products separately where the target
 * has no FMA.
 */
#ifndef MMSA_GEMM_ISA_H
#define MMSA_GEMM_ISA_H

#include <stddef.h>
#include <string.h>

#include "gemm.h"

#define GEMM_TAIL_COLS 4		/* a last panel this narrow: a tail */
#define GEMM_TAIL_BY_COLUMN 2	/* a tail this narrow: tail_columns */
#define GEMM_TAIL_PANELS 8		/* row panels tail_columns carries at once */

/*
 * Where a micro-tile goes and what to do on the way: mr x nr valid
 * entries at c (leading dimension ldc); `accumulate`: add to what c holds
 * (not the first k block); on the last k block (`last`) bias, residual
 * (already offset to the tile's first row / entry) and ReLU.
 */
typedef struct tile_store
{
	float	   *c;
	size_t		ldc;
	int			mr,
				nr;
	int			accumulate;
	const float *bias;
	const float *residual;
	size_t		ldr;
	int			relu;
	int			last;
	const float *prefetch;		/* A block to fetch into L1 meanwhile, or NULL */
} tile_store;

typedef struct gemm_kernels
{
	const char *name;

	/*
	 * The tiles of one row panel a (kc x GEMM_MR, packed) against the
	 * first `npanels` panels of the packed block bp (kc x GEMM_NR each): s
	 * is the store of the first tile (c, residual at the block's first
	 * column; s->nr the valid columns of the whole block from there,
	 * s->prefetch for the first tile only).
	 */
	void		(*row_panel) (int kc, const float *a, const float *bp, int npanels,
							  const tile_store *s);

	/*
	 * A last panel of 3 to GEMM_TAIL_COLS columns for two row panels a0, a1
	 * (a1 may repeat a0: computed, not stored); s: rows of a0 then a1.  NULL
	 * where the path has none (the tail is then an ordinary panel).
	 */
	void		(*tail_pair) (int kc, const float *a0, const float *a1, const float *b,
							  const tile_store *s);

	/*
	 * A last panel of at most GEMM_TAIL_BY_COLUMN columns for row panels
	 * [m0, m1) of Ap (whole K), column by column.  Set with tail_pair.
	 */
	void		(*tail_columns) (int kc, const float *Ap, int K, int k0, const float *bp,
								 int m0, int m1, int ncols, const tile_store *s0);

	/* B[k0 .. k0+kc, n0 .. n0+nc) of a dense B (leading dimension ldb), packed */
	void		(*pack_b) (float *bp, const float *B, size_t ldb, int k0, int kc, int n0, int nc);
} gemm_kernels;

extern const gemm_kernels gemm_kernels_generic;
extern const gemm_kernels gemm_kernels_avx2;
extern const gemm_kernels gemm_kernels_avx512;

/* The table of the path in use (cpu.c). */
const gemm_kernels *mmsa_gemm_kernels(void);

/*
 * The store of the tile at column col of a row panel whose store is s0
 * (gemm_kernels.row_panel), at most `width` columns wide: its c and
 * residual, its valid columns, and the prefetch for the first tile only.
 */
static inline void
gemm_tile_at(tile_store *s, const tile_store *s0, int col, int width)
{
	*s = *s0;
	s->c = s0->c + col;
	s->nr = s0->nr - col < width ? s0->nr - col : width;
	s->residual = s0->residual ? s0->residual + col : NULL;
	s->prefetch = col == 0 ? s0->prefetch : NULL;
}

/* Finishes and stores one result v at row i, column j of the tile. */
static inline void
gemm_store1(float v, const tile_store *s, int i, int j)
{
	float	   *c = s->c + (size_t) i * s->ldc + j;

	if (s->accumulate)
		v += *c;
	if (s->last)
	{
		if (s->bias)
			v += s->bias[i];
		if (s->residual)
			v += s->residual[(size_t) i * s->ldr + j];
		if (s->relu && v < 0.0f)
			v = 0.0f;
	}
	*c = v;
}

/* Stores a finished tile t (rows of GEMM_NR floats) entry by entry. */
static inline void
gemm_store_tile_scalar(const float *t, const tile_store *s)
{
	for (int i = 0; i < s->mr; i++)
		for (int j = 0; j < s->nr; j++)
			gemm_store1(t[i * GEMM_NR + j], s, i, j);
}

/*
 * Row k (of kc) of a packed block: row[0 .. nc) into the panels of
 * GEMM_NR columns, zero padding the last panel.  The whole panels are
 * fixed-size copies, which the compiler makes vector moves of the width
 * the including file is compiled for.
 */
static inline void
gemm_pack_b_row_inline(float *bp, const float *row, int kc, int k, int nc)
{
	int			panels = (nc + GEMM_NR - 1) / GEMM_NR;

	for (int j = 0; j < panels; j++)
	{
		float	   *dst = bp + ((size_t) j * kc + k) * GEMM_NR;
		int			cols = nc - j * GEMM_NR;

		if (cols >= GEMM_NR)
			memcpy(dst, row + j * GEMM_NR, sizeof(float) * GEMM_NR);
		else
		{
			memcpy(dst, row + j * GEMM_NR, sizeof(float) * cols);
			memset(dst + cols, 0, sizeof(float) * (GEMM_NR - cols));
		}
	}
}

/* Packs B[k0 .. k0+kc, n0 .. n0+nc) of a dense B row by row. */
static inline void
gemm_pack_b_inline(float *bp, const float *B, size_t ldb, int k0, int kc, int n0, int nc)
{
	for (int k = 0; k < kc; k++)
		gemm_pack_b_row_inline(bp, B + (size_t) (k0 + k) * ldb + n0, kc, k, nc);
}

#endif
