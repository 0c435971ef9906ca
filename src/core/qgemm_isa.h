/*
 * qgemm_isa.h
 *	  What qgemm.c's block loop shares with the int8 micro-kernels of each
 *	  instruction set (src/core/isa/qgemm_*.c): the store of a tile with
 *	  its epilogue, and the table of kernels that cpu.c points at the path
 *	  in use.
 *
 * Every kernel computes the exact int32 sum of each entry (qgemm.h: no
 * lane can saturate), and finishes it the same way, scale[m] * (float) sum
 * + bias[m] as one fused multiply-add, then + residual, then max(v, 0):
 * all the paths give the same floats, which the unit tests check bit for
 * bit against a direct integer loop.
 */
#ifndef MMSA_QGEMM_ISA_H
#define MMSA_QGEMM_ISA_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "qgemm.h"

/*
 * Where a tile goes: mr x nr valid entries at c (leading dimension ldc);
 * scale, bias (or NULL) at the tile's first row, residual (or NULL) at its
 * first entry.  Per-column activations (qgemm.h): col_scale and col_zero
 * at the tile's first column, row_sum at its first row; col_scale NULL
 * otherwise.
 */
typedef struct qtile_store
{
	float	   *c;
	size_t		ldc;
	int			mr,
				nr;
	const float *scale;
	const float *bias;
	const float *residual;
	size_t		ldr;
	int			relu;
	const float *col_scale;
	const int32_t *col_zero;
	const int32_t *row_sum;
} qtile_store;

typedef struct qgemm_kernels
{
	const char *name;

	/*
	 * The tiles of one row panel a (K4 x QGEMM_MR x 4 bytes) against the
	 * first npanels panels of the packed block bp (K4 x QGEMM_NR x 4 bytes
	 * each); s: the store of the first tile, s->nr the valid columns of
	 * the whole block from there.
	 */
	void		(*row_panel) (int k4, const int8_t *a, const uint8_t *bp, int npanels,
							  const qtile_store *s);

	/*
	 * Quantizes rows r[0..3] (NULL: a row past K, zero) at columns [0, nc),
	 * row j with inv[j], or, when col_inv is not NULL, column x with
	 * col_inv[x] and zero point col_zero[x] (both readable up to the end
	 * of the last panel), and interleaves them into one four-byte group
	 * per column: column x goes to dst + (x / NR) * panel_stride + (x % NR)
	 * * 4, columns from nc to the end of the last panel zero (or, per
	 * column, their zero points: they are never stored).
	 */
	void		(*pack_quad) (uint8_t *dst, size_t panel_stride, const float *const r[4],
							  int nc, const float inv[4], const float *col_inv,
							  const int32_t *col_zero);
} qgemm_kernels;

extern const qgemm_kernels qgemm_kernels_generic;
extern const qgemm_kernels qgemm_kernels_avx2;
extern const qgemm_kernels qgemm_kernels_avxvnni;
extern const qgemm_kernels qgemm_kernels_avx512vnni;

/* The table of the path in use (cpu.c). */
const qgemm_kernels *mmsa_qgemm_kernels(void);

/* The tile of s0's row panel at column col, at most width columns wide. */
static inline void
qgemm_tile_at(qtile_store *s, const qtile_store *s0, int col, int width)
{
	*s = *s0;
	s->c = s0->c + col;
	s->nr = s0->nr - col < width ? s0->nr - col : width;
	s->residual = s0->residual ? s0->residual + col : NULL;
	s->col_scale = s0->col_scale ? s0->col_scale + col : NULL;
	s->col_zero = s0->col_zero ? s0->col_zero + col : NULL;
}

/* Finishes the sum of row i, column j of a tile (see above). */
static inline float
qgemm_finish1(int32_t sum, const qtile_store *s, int i, int j)
{
	float		v;

	if (s->col_scale)
		v = fmaf((float) (sum - s->col_zero[j] * s->row_sum[i]), s->scale[i] * s->col_scale[j],
				 s->bias ? s->bias[i] : 0.0f);
	else
		v = fmaf((float) sum, s->scale[i], s->bias ? s->bias[i] : 0.0f);

	if (s->residual)
		v += s->residual[(size_t) i * s->ldr + j];
	if (s->relu)
		v = v > 0.0f ? v : 0.0f;	/* as maxps(v, 0): NaN and -0 give 0 */
	return v;
}

/*
 * q(x) (qgemm.h) with zero point z (0 for per-row scales), as every path
 * computes it: f = x * inv_scale clamped in float to [-z, ACT_MAX - z]
 * (so NaN gives -z, as maxps does), rounded half to even, then z added in
 * integers: one product and no sum in floats, so that no compiler can fuse
 * a multiply-add differently on one path.
 */
static inline uint8_t
qgemm_quantize1z(float x, float inv_scale, int32_t z)
{
	float		f = x * inv_scale,
				lo = (float) -z,
				hi = (float) (QGEMM_ACT_MAX - z);

	f = f > lo ? f : lo;
	f = f < hi ? f : hi;
	return (uint8_t) ((int32_t) nearbyintf(f) + z);
}

static inline uint8_t
qgemm_quantize1(float x, float inv_scale)
{
	return qgemm_quantize1z(x, inv_scale, 0);
}

#endif
