/*
 * conv_isa.h
 *	  What conv.c shares with the kernels of each instruction set
 *	  (src/core/isa/conv_kernels.h, compiled once per path): the im2col
 *	  gather, the phase planes of stride-2 convolutions and the Winograd
 *	  transforms, their arguments, and the table of them that cpu.c points
 *	  at the path in use.
 */
#ifndef MMSA_CONV_ISA_H
#define MMSA_CONV_ISA_H

#include <stddef.h>

#include "conv.h"
#include "gemm.h"

/*
 * The im2col unfolding of inp (Cin, B, H, W) as a gemm_b_source: row
 * (c*k + ki)*k + kj, column (b*Ho + oy)*Wo + ox is the input pixel under
 * tap (ki, kj) of channel c at output position (oy, ox) of image b, or 0
 * where the tap falls into the padding.  im2col_pack gathers a block of it
 * straight into gemm.c's panels, so the unfolding is never held whole.
 */
typedef struct im2col_source
{
	const float *inp;
	int			B,
				H,
				W,
				k,
				stride,
				pad,
				Ho,
				Wo;
} im2col_source;

/*
 * Phase planes of a stride-2 convolution's input.  For channel c, row
 * phase a (0 or 1; only 0 for k = 1) and column tap kj, the plane
 * Q[c][a][kj] (B, Hq, Wo) holds the zero-padded input P at row 2y + a and
 * column 2x + kj:
 *
 *	  Q[c][a][kj][b][y][x] = P[c][b][2y + a - pad][2x + kj - pad]
 *
 * with Hq = Ho + (k - 1) / 2 rows.  Row (c, ki, kj) of the im2col
 * unfolding is then, image by image, plane Q[c][ki % 2][kj] from its row
 * ki / 2 on: Ho * Wo consecutive floats, packed like a row of a dense
 * matrix.  The planes are built once per convolution (phase_planes_fill),
 * where gathering each packed value through the offset tables cost an
 * eighth to a fifth of the convolution (AVX2 gathers are slow on AMD
 * cores); for 3x3 kernels they hold 6 rows of Ho + 1 per channel against
 * the unfolding's 9 rows of Ho.  q holds plane (c, a, kj) at index
 * (c * phase_count(k) + a) * k + kj, each of phase_plane_floats.
 */
typedef struct phase_planes
{
	float	   *q;
	const float *inp;			/* (Cin, B, H, W) */
	int			Cin,
				Cout,			/* rows of the product (its thread split) */
				B,
				H,
				W,
				k,
				pad,
				Ho,
				Wo,
				Hq;
} phase_planes;

#define PHASE_ROW_FLOATS 1024

static inline int
phase_count(int k)
{
	return k < 2 ? k : 2;
}

/* Floats of one plane: (B, Hq, Wo). */
static inline size_t
phase_plane_floats(const phase_planes *s)
{
	return (size_t) s->B * s->Hq * s->Wo;
}

#define WINO_A 6				/* input tile side */
#define WINO_M 4				/* output tile side */
#define WINO_P WINOGRAD_POSITIONS	/* transformed positions, 6 x 6 */

typedef float v8sf __attribute__((vector_size(32)));

/* Tiles of one image along a side of H: (H / m rounded up). */
static inline int
wino_tiles(int H, int m)
{
	return (H + m - 1) / m;
}

/* Floats from one of V's (or M's) 36 matrices to the next, for T tiles. */
static inline size_t
wino_step(int C, int T)
{
	return (size_t) C * T + WINOGRAD_ROW_PAD;
}

typedef struct winograd_args
{
	const conv_exec *ex;
	float	   *out;
	const float *inp;
	const float *Up;
	const float *bias;
	const float *residual;
	int			relu,
				B,
				Cin,
				H,
				W,
				Cout;
	float	   *V;
	float	   *M;
	int			m;				/* output tile side: WINOGRAD_F4 or _F2 */
	int			t_off,			/* this pass: tiles [t_off, t_off + Tn) */
				Tn;
	int			phase;			/* see winograd_thread */
} winograd_args;

/* Max pooling of planes [p_begin, p_end) (see conv.c) */
typedef struct maxpool_args
{
	int			planes;
	float	   *out;
	const float *inp;
	int			H,
				W,
				k,
				stride,
				pad;
} maxpool_args;

typedef struct conv_kernels
{
	const char *name;

	/* gemm_b_source.pack of the im2col unfolding (ctx: im2col_source) */
	void		(*im2col_pack) (const void *ctx, float *bp, int k0, int kc, int n0, int nc);

	/* gemm_b_source.pack of the unfolding read from phase planes (ctx: phase_planes) */
	void		(*phase_pack) (const void *ctx, float *bp, int k0, int kc, int n0, int nc);

	/* the phase planes of one channel, rows [r0, r1) (see conv.c) */
	void		(*phase_planes_fill) (float *q, size_t plane, const float *inp,
									  const phase_planes *a, long r0, long r1);

	/* Winograd transforms of tiles [t_begin, t_end): F(4x4, 3x3), F(2x2, 3x3) */
	void		(*winograd_input) (const winograd_args *a, int t_begin, int t_end);
	void		(*winograd_output) (const winograd_args *a, int t_begin, int t_end);
	void		(*winograd_input_2x2) (const winograd_args *a, int t_begin, int t_end);
	void		(*winograd_output_2x2) (const winograd_args *a, int t_begin, int t_end);

	/* max pooling of the (channel, image) planes [p_begin, p_end) */
	void		(*maxpool_range) (const void *args, int p_begin, int p_end);
} conv_kernels;

extern const conv_kernels conv_kernels_generic;
extern const conv_kernels conv_kernels_avx2;
extern const conv_kernels conv_kernels_avx512;

/* The table of the path in use (cpu.c). */
const conv_kernels *mmsa_conv_kernels(void);

#endif
