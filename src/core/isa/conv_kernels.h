/*
 * conv_kernels.h
 *	  The kernels of conv.c that run on wide vectors: the im2col gather,
 *	  the phase planes of stride-2 convolutions and their packing, and the
 *	  Winograd F(4x4, 3x3) and F(2x2, 3x3) transforms.  Included once by
 *	  the file of each instruction-set path, which defines
 *	  CONV_KERNELS_TABLE (the name of its conv_kernels) and
 *	  CONV_KERNELS_NAME first and is compiled with that path's flags:
 *	  conv_generic.c (portable), conv_avx2.c, conv_avx512.c.  The code
 *	  below uses AVX2 where the file is compiled with it (__AVX2__), and
 *	  GCC vector types that become registers of the target's width.
 */
#ifndef MMSA_CONV_KERNELS_H
#define MMSA_CONV_KERNELS_H

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "conv_isa.h"
#include "gemm_isa.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

#if defined(__AVX2__)
/*
 * The even (odd) floats of the 16 in lo, hi, in order: the shuffle gives
 * (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6), whose 64-bit lanes 0 2 1 3 are
 * then put in order.
 */
static inline __m256
even8(__m256 lo, __m256 hi)
{
	__m256d		v = _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));

	return _mm256_castpd_ps(_mm256_permute4x64_pd(v, _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline __m256
odd8(__m256 lo, __m256 hi)
{
	__m256d		v = _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)));

	return _mm256_castpd_ps(_mm256_permute4x64_pd(v, _MM_SHUFFLE(3, 1, 2, 0)));
}
#endif

#ifdef MMSA_AVX512
/* The even (odd) floats of the 32 in lo, hi, in order: one two-source permute. */
static inline __m512
even16(__m512 lo, __m512 hi)
{
	return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14,
														16, 18, 20, 22, 24, 26, 28, 30), hi);
}

static inline __m512
odd16(__m512 lo, __m512 hi)
{
	return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15,
														17, 19, 21, 23, 25, 27, 29, 31), hi);
}
#endif

/*
 * dst[i] = src[2i] for i < n: every other float, 16 at a time with
 * AVX-512, 8 with AVX2 (reads src[0 .. 2n-2] only).
 */
static inline void
copy_stride2(float *dst, const float *src, int n)
{
	int			i = 0;

#ifdef MMSA_AVX512
	for (; i + 16 <= n && 2 * i + 32 <= 2 * n - 1; i += 16)
		_mm512_storeu_ps(dst + i, even16(_mm512_loadu_ps(src + 2 * i),
										 _mm512_loadu_ps(src + 2 * i + 16)));
#endif
#if defined(__AVX2__)
	for (; i + 8 <= n && 2 * i + 16 <= 2 * n - 1; i += 8)
		_mm256_storeu_ps(dst + i, even8(_mm256_loadu_ps(src + 2 * i),
										_mm256_loadu_ps(src + 2 * i + 8)));
#endif
	for (; i < n; i++)
		dst[i] = src[2 * i];
}

/*
 * line[0 .. n) = row r of the unfolding from column n0 on: runs along
 * output rows, each a copy (strided for stride 2) between zeros where the
 * tap is in the padding.
 */
static void
im2col_line(const im2col_source *s, float *line, int r, int n0, int n)
{
	int			k = s->k,
				stride = s->stride,
				pad = s->pad,
				H = s->H,
				W = s->W,
				Ho = s->Ho,
				Wo = s->Wo;
	int			c = r / (k * k),
				ki = (r / k) % k,
				kj = r % k;
	int			HoWo = Ho * Wo;
	int			b = n0 / HoWo,
				oy = (n0 % HoWo) / Wo,
				ox = n0 % Wo;
	int			ox_lo,
				ox_hi;

	/* output columns whose tap lands inside the row: [ox_lo, ox_hi) */
	ox_lo = pad - kj > 0 ? (pad - kj + stride - 1) / stride : 0;
	ox_hi = W - 1 + pad - kj >= 0 ? (W - 1 + pad - kj) / stride + 1 : 0;
	if (ox_hi > Wo)
		ox_hi = Wo;
	if (ox_lo > ox_hi)
		ox_lo = ox_hi;

	for (int x = 0; x < n;)
	{
		int			run = n - x < Wo - ox ? n - x : Wo - ox;
		int			end = ox + run;
		int			iy = oy * stride - pad + ki;
		float	   *d = line + x;	/* output column ox' goes to d[ox' - ox] */

		if (iy < 0 || iy >= H)
			memset(d, 0, sizeof(float) * run);
		else
		{
			/* output column o reads row[o * stride - pad + kj] */
			const float *row = s->inp + (((size_t) c * s->B + b) * H + iy) * W;
			int			lo = ox > ox_lo ? ox : ox_lo,
						hi = end < ox_hi ? end : ox_hi;

			if (lo > end)
				lo = end;
			if (hi < lo)
				hi = lo;
			memset(d, 0, sizeof(float) * (lo - ox));
			if (hi > lo)
			{
				const float *src = row + lo * stride - pad + kj;

				if (stride == 1)
					memcpy(d + lo - ox, src, sizeof(float) * (hi - lo));
				else if (stride == 2)
					copy_stride2(d + lo - ox, src, hi - lo);
				else
					for (int o = lo; o < hi; o++)
						d[o - ox] = src[(o - lo) * stride];
			}
			memset(d + hi - ox, 0, sizeof(float) * (end - hi));
		}
		x += run;
		ox = 0;
		if (++oy == Ho)
		{
			oy = 0;
			b++;
		}
	}
}

/*
 * Gather tables: for one tap and the columns of a block, where each column
 * reads in a channel's (B, H, W) plane, or -1 for the padding (and for the
 * columns past the block, up to the panel edge).  A block's rows of all
 * channels share the tables of its k*k taps; IM2COL_TAP_SLOTS of them are
 * kept, in slot tap % IM2COL_TAP_SLOTS (every tap of a 7x7 kernel).
 */
#define IM2COL_TAP_SLOTS 64
#define IM2COL_COLS (((GEMM_NC) + GEMM_NR - 1) / GEMM_NR * GEMM_NR)

typedef struct im2col_tables
{
	int			tap[IM2COL_TAP_SLOTS];	/* tap held in each slot, or -1 */
	int			offset[IM2COL_TAP_SLOTS][IM2COL_COLS];
} im2col_tables;

/* offset[0 .. ncols) for tap (ki, kj) over columns n0 .. n0+nc. */
static void
im2col_table(const im2col_source *s, int *offset, int tap, int n0, int nc, int ncols)
{
	int			ki = tap / s->k,
				kj = tap % s->k;
	int			HoWo = s->Ho * s->Wo;
	int			b = n0 / HoWo,
				oy = (n0 % HoWo) / s->Wo,
				ox = n0 % s->Wo;

	for (int x = 0; x < nc; x++)
	{
		int			iy = oy * s->stride - s->pad + ki,
					ix = ox * s->stride - s->pad + kj;

		offset[x] = (iy >= 0 && iy < s->H && ix >= 0 && ix < s->W) ?
			(b * s->H + iy) * s->W + ix : -1;
		if (++ox == s->Wo)
		{
			ox = 0;
			if (++oy == s->Ho)
			{
				oy = 0;
				b++;
			}
		}
	}
	for (int x = nc; x < ncols; x++)
		offset[x] = -1;
}

/*
 * 16 values of a panel row: dst[x] = plane[offset[x]], 0 where offset[x]
 * is -1 (AVX2: two masked gathers).
 */
static inline void
im2col_gather16(float *dst, const float *plane, const int *offset)
{
#if defined(__AVX2__)
	for (int h = 0; h < 2; h++)
	{
		__m256i		idx = _mm256_loadu_si256((const __m256i *) (offset + 8 * h));
		__m256		mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1)));

		_mm256_storeu_ps(dst + 8 * h,
						 _mm256_mask_i32gather_ps(_mm256_setzero_ps(), plane, idx, mask, 4));
	}
#else
	for (int x = 0; x < GEMM_NR; x++)
		dst[x] = offset[x] >= 0 ? plane[offset[x]] : 0.0f;
#endif
}

/*
 * Output rows at least this wide are gathered a line at a time: their
 * runs are long copies.  Narrower ones (the 28x28 maps and smaller) go
 * through gather tables, which cost no call per run.
 */
#define IM2COL_RUN_MIN_WO 32

/* A block gathered line by line (im2col_line), then into the panels. */
static void
im2col_pack_lines(const im2col_source *s, float *bp, int k0, int kc, int n0, int nc)
{
	float		line[GEMM_NC];

	for (int kk = 0; kk < kc; kk++)
	{
		im2col_line(s, line, k0 + kk, n0, nc);
		gemm_pack_b_row_inline(bp, line, kc, kk, nc);
	}
}

/*
 * A block gathered through tables: row r is channel r / (k*k) read through
 * the table of tap r % (k*k), panel by panel.
 */
static void
im2col_pack_tables(const im2col_source *s, float *bp, int k0, int kc, int n0, int nc)
{
	int			taps = s->k * s->k,
				panels = (nc + GEMM_NR - 1) / GEMM_NR;
	size_t		plane = (size_t) s->B * s->H * s->W;
	im2col_tables tab;

	for (int i = 0; i < IM2COL_TAP_SLOTS; i++)
		tab.tap[i] = -1;
	for (int kk = 0; kk < kc; kk++)
	{
		int			r = k0 + kk,
					tap = r % taps,
					slot = tap % IM2COL_TAP_SLOTS;
		const float *src = s->inp + (size_t) (r / taps) * plane;

		if (tab.tap[slot] != tap)
		{
			im2col_table(s, tab.offset[slot], tap, n0, nc, panels * GEMM_NR);
			tab.tap[slot] = tap;
		}
		for (int j = 0; j < panels; j++)
			im2col_gather16(bp + ((size_t) j * kc + kk) * GEMM_NR, src,
							tab.offset[slot] + j * GEMM_NR);
	}
}

/* gemm_b_source.pack of the unfolding. */
static void
im2col_pack(const void *ctx, float *bp, int k0, int kc, int n0, int nc)
{
	const im2col_source *s = ctx;

	if (s->Wo >= IM2COL_RUN_MIN_WO)
		im2col_pack_lines(s, bp, k0, kc, n0, nc);
	else
		im2col_pack_tables(s, bp, k0, kc, n0, nc);
}

/*
 * Deinterleaves an input row: even[i] = row[2i], odd[i] = row[2i + 1] for
 * the W floats of row (AVX-512: 32 at a time, AVX2: 16).
 */
static inline void
split_even_odd(float *even, float *odd, const float *row, int W)
{
	int			i = 0;

#ifdef MMSA_AVX512
	for (; 2 * i + 32 <= W; i += 16)
	{
		__m512		lo = _mm512_loadu_ps(row + 2 * i),
					hi = _mm512_loadu_ps(row + 2 * i + 16);

		_mm512_storeu_ps(even + i, even16(lo, hi));
		_mm512_storeu_ps(odd + i, odd16(lo, hi));
	}
#endif
#if defined(__AVX2__)
	for (; 2 * i + 16 <= W; i += 8)
	{
		__m256		lo = _mm256_loadu_ps(row + 2 * i),
					hi = _mm256_loadu_ps(row + 2 * i + 8);

		_mm256_storeu_ps(even + i, even8(lo, hi));
		_mm256_storeu_ps(odd + i, odd8(lo, hi));
	}
#endif
	for (; 2 * i < W; i++)
	{
		even[i] = row[2 * i];
		if (2 * i + 1 < W)
			odd[i] = row[2 * i + 1];
	}
}

/*
 * The planes of one channel, inp (B, H, W), into q (plane floats apart,
 * each (B, Hq, Wo); plane (phase, kj) at phase * k + kj), rows r0 .. r1-1
 * (b * Hq + y).  Each input row is split once into its even and odd
 * pixels, held between zeros for the padding; the row of tap kj is then
 * a copy from one of the two, at x + (kj - pad) / 2 (rounded down).  Row
 * y of the two phases reads input rows 2y - pad and 2y + 1 - pad, so the
 * input is read in order.
 */
static void
phase_planes_fill(float *q, size_t plane, const float *inp, const phase_planes *a,
				  long r0, long r1)
{
	float		split[2][PHASE_ROW_FLOATS];
	int			W = a->W,
				Wo = a->Wo,
				k = a->k,
				phases = phase_count(k),
				margin = (a->pad + 1) / 2;	/* zeros before pixel 0 */

	/* the zeros around the pixels, as far as the copies read (rows rewrite only the pixels) */
	int			used = margin + (W + 1) / 2 + Wo + k;

	memset(split[0], 0, sizeof(float) * used);
	memset(split[1], 0, sizeof(float) * used);
	for (long r = r0, b = r0 / a->Hq, y = r0 % a->Hq; r < r1; r++)
	{
		for (int phase = 0; phase < phases; phase++)
		{
			float	   *d = q + (size_t) phase * k * plane + (size_t) r * Wo;
			long		iy = 2 * y + phase - a->pad;

			if (iy < 0 || iy >= a->H)
			{
				for (int kj = 0; kj < k; kj++)
					memset(d + kj * plane, 0, sizeof(float) * Wo);
				continue;
			}
			split_even_odd(split[0] + margin, split[1] + margin,
						   inp + ((size_t) b * a->H + iy) * W, W);
			for (int kj = 0; kj < k; kj++)
			{
				/* column x reads pixel 2x + j: split[j mod 2][x + floor(j / 2)] */
				int			j = kj - a->pad,
							parity = j & 1,
							shift = (j - parity) / 2;

				memcpy(d + kj * plane, split[parity] + margin + shift, sizeof(float) * Wo);
			}
		}
		if (++y == a->Hq)
		{
			y = 0;
			b++;
		}
	}
}

/* gemm_b_source.pack of the unfolding, read from the phase planes. */
static void
phase_pack(const void *ctx, float *bp, int k0, int kc, int n0, int nc)
{
	const phase_planes *s = ctx;
	int			taps = s->k * s->k,
				HoWo = s->Ho * s->Wo,
				b = n0 / HoWo,
				p = n0 % HoWo;
	size_t		image = (size_t) s->Hq * s->Wo,
				plane = phase_plane_floats(s);
	float		line[GEMM_NC];

	for (int kk = 0; kk < kc; kk++)
	{
		int			r = k0 + kk,
					ki = r / s->k % s->k,
					kj = r % s->k;
		const float *q = s->q + ((size_t) ((r / taps) * phase_count(s->k) + ki % 2) * s->k + kj) * plane +
			(size_t) (ki / 2) * s->Wo;

		if (p + nc <= HoWo)
			gemm_pack_b_row_inline(bp, q + b * image + p, kc, kk, nc);
		else
		{
			/* the block runs into the next image(s) */
			for (int x = 0, bb = b, pp = p; x < nc; bb++, pp = 0)
			{
				int			len = nc - x < HoWo - pp ? nc - x : HoWo - pp;

				memcpy(line + x, q + bb * image + pp, sizeof(float) * len);
				x += len;
			}
			gemm_pack_b_row_inline(bp, line, kc, kk, nc);
		}
	}
}

/*
 * The first n (< 8) lanes of a vector to or from memory, with masks rather
 * than a memcpy of variable size; lanes past n load as 0.
 */
#if defined(__AVX2__)
static inline __m256i
wino_lanes(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

static inline void
wino_store_n(float *dst, const v8sf *v, int n)
{
#if defined(__AVX2__)
	_mm256_maskstore_ps(dst, wino_lanes(n), (__m256) *v);
#else
	memcpy(dst, v, sizeof(float) * n);
#endif
}

static inline void
wino_load_n(v8sf *v, const float *src, int n)
{
#if defined(__AVX2__)
	*v = (v8sf) _mm256_maskload_ps(src, wino_lanes(n));
#else
	float		tmp[8] = {0};

	memcpy(tmp, src, sizeof(float) * n);
	memcpy(v, tmp, sizeof(tmp));
#endif
}

/*
 * out[0 .. w) = row (+ residual) (then ReLU), 8 at a time where it can
 * (the same operations as one at a time).
 */
static inline void
wino_row_store(float *out, const float *row, const float *residual, int relu, int w)
{
	int			x = 0;

#if defined(__AVX__)
	for (; x + 8 <= w; x += 8)
	{
		__m256		v = _mm256_load_ps(row + x);

		if (residual)
			v = _mm256_add_ps(v, _mm256_loadu_ps(residual + x));
		if (relu)
			v = _mm256_max_ps(v, _mm256_setzero_ps());
		_mm256_storeu_ps(out + x, v);
	}
#endif
	for (; x < w; x++)
	{
		float		v = row[x];

		if (residual)
			v += residual[x];
		if (relu)
			v = v > 0.0f ? v : 0.0f;
		out[x] = v;
	}
}

/* r = B^T x for six vectors x[0], x[s], .. x[5s] (in place safe: no) */
static inline void
wino_bt(v8sf *r, int rs, const v8sf *x, int s)
{
	v8sf		x0 = x[0],
				x1 = x[s],
				x2 = x[2 * s],
				x3 = x[3 * s],
				x4 = x[4 * s],
				x5 = x[5 * s];

	r[0] = 4 * x0 - 5 * x2 + x4;
	r[rs] = -4 * (x1 + x2) + x3 + x4;
	r[2 * rs] = 4 * (x1 - x2) - x3 + x4;
	r[3 * rs] = 2 * (x3 - x1) - x2 + x4;
	r[4 * rs] = 2 * (x1 - x3) - x2 + x4;
	r[5 * rs] = 4 * x1 - 5 * x3 + x5;
}

/* r = A^T x: four vectors from six */
static inline void
wino_at(v8sf *r, int rs, const v8sf *x, int s)
{
	v8sf		x0 = x[0],
				x1 = x[s],
				x2 = x[2 * s],
				x3 = x[3 * s],
				x4 = x[4 * s],
				x5 = x[5 * s];
	v8sf		p12 = x1 + x2,
				m12 = x1 - x2,
				p34 = x3 + x4,
				m34 = x3 - x4;

	r[0] = x0 + p12 + p34;
	r[rs] = m12 + 2 * m34;
	r[2 * rs] = p12 + 4 * p34;
	r[3 * rs] = m12 + 8 * m34 + x5;
}

/*
 * The group of tiles that starts at tile t: at most 8 of one tile row
 * (image b, tile row ty, from tile column tx), not past t_end; returns how
 * many.  Tiles are numbered t = (b * th + ty) * tw + tx.
 */
static inline int
wino_group(int t, int t_end, int th, int tw, int *b, int *ty, int *tx)
{
	int			n;

	*b = t / (th * tw);
	*ty = (t / tw) % th;
	*tx = t % tw;
	n = tw - *tx;
	if (n > 8)
		n = 8;
	if (n > t_end - t)
		n = t_end - t;
	return n;
}

/* Floats of an input row that 8 tiles side by side read (36), rounded up. */
#define WINO_ROW_WINDOW 40

/*
 * One input row of 8 tiles side by side: x[j] lane l = input (y, x0 +
 * 4l + j) for j < 6, zero outside the map (lanes past n are not used).
 * With AVX, the WINO_ROW_WINDOW floats from x0 are read as 4-float pieces
 * and transposed (from the row itself, or from a zero-padded copy at the
 * map's edges); the values are those of the element-by-element gather.
 */
static inline void
wino_input_row(v8sf *x, const float *plane, int y, int x0, int H, int W, int n)
{
	const float *src;
#if defined(__AVX__)
	float		win[WINO_ROW_WINDOW];
	const float *p;
	__m256		q[5],
				t0,
				t1,
				t2,
				t3;

	(void) n;
	if (y < 0 || y >= H)
	{
		for (int j = 0; j < WINO_A; j++)
			x[j] = (v8sf) _mm256_setzero_ps();
		return;
	}
	src = plane + (size_t) y * W;
	if (x0 >= 0 && x0 + WINO_ROW_WINDOW <= W)
		p = src + x0;
	else
	{
		int			lo = x0 > 0 ? x0 : 0,
					hi = x0 + WINO_ROW_WINDOW < W ? x0 + WINO_ROW_WINDOW : W;

		memset(win, 0, sizeof(win));
		if (hi > lo)
			memcpy(win + (lo - x0), src + lo, sizeof(float) * (hi - lo));
		p = win;
	}
	/* q[k]: lanes 0-3 the 4 floats from p + 4k, lanes 4-7 those from p + 16 + 4k */
	for (int k = 0; k < 5; k++)
		q[k] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p + 4 * k)),
									_mm_loadu_ps(p + 16 + 4 * k), 1);
	/* tiles 0-3 | 4-7 start at q[0], q[1], q[2], q[3]: columns 0-3 */
	t0 = _mm256_unpacklo_ps(q[0], q[1]);	/* l0j0 l1j0 l0j1 l1j1 | l4.. l5.. */
	t1 = _mm256_unpackhi_ps(q[0], q[1]);	/* l0j2 l1j2 l0j3 l1j3 | .. */
	t2 = _mm256_unpacklo_ps(q[2], q[3]);	/* l2j0 l3j0 l2j1 l3j1 | l6.. l7.. */
	t3 = _mm256_unpackhi_ps(q[2], q[3]);
	x[0] = (v8sf) _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
	x[1] = (v8sf) _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
	x[2] = (v8sf) _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
	x[3] = (v8sf) _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
	/* columns 4-5: columns 0-1 of the pieces one further on */
	t0 = _mm256_unpacklo_ps(q[1], q[2]);
	t2 = _mm256_unpacklo_ps(q[3], q[4]);
	x[4] = (v8sf) _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
	x[5] = (v8sf) _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
#else
	float		d[WINO_A][8] = {{0}};

	if (y >= 0 && y < H)
	{
		src = plane + (size_t) y * W;
		for (int l = 0; l < n; l++)
			for (int j = 0; j < WINO_A; j++)
				if (x0 + 4 * l + j >= 0 && x0 + 4 * l + j < W)
					d[j][l] = src[x0 + 4 * l + j];
	}
	memcpy(x, d, sizeof(d));
#endif
}

/*
 * Input transform of tiles [t_begin, t_end), every channel, 8 tiles of a
 * row at a time: V[p][c][t] = (B^T d B)[p] of the 6x6 input tile d at
 * (4ty - 1, 4tx - 1), zero outside the map.  Channel by channel, so that
 * the 36 rows V[p][c] being written fill whole cache lines one after the
 * other (tile-major, each group of 8 tiles wrote into 36 x Cin lines).
 */
static void
winograd_input_tiles(const winograd_args *a, int t_begin, int t_end)
{
	const float *inp = a->inp;
	float	   *V = a->V;
	int			B = a->B,
				Cin = a->Cin,
				H = a->H,
				W = a->W;
	int			th = wino_tiles(H, WINO_M),
				tw = wino_tiles(W, WINO_M);
	size_t		T = (size_t) a->Tn;
	size_t		HW = (size_t) H * W;
	size_t		step = wino_step(Cin, (int) T);

	for (int c = 0; c < Cin; c++)
		for (int t = t_begin; t < t_end;)
		{
			int			b,
						ty,
						tx;
			int			n = wino_group(t, t_end, th, tw, &b, &ty, &tx);
			int			y0 = WINO_M * ty - 1;
			const float *plane = inp + ((size_t) c * B + b) * HW;
			v8sf		dv[WINO_P],
						r[WINO_P],
						v[WINO_P];

			/* dv[6i + j] lane l = input (y0 + i, 4(tx + l) - 1 + j) */
			for (int i = 0; i < WINO_A; i++)
				wino_input_row(dv + i * WINO_A, plane, y0 + i, WINO_M * tx - 1, H, W, n);
			/* columns: r[., j] = B^T d[., j]; rows: v[i, .] = r[i, .] B */
			for (int j = 0; j < WINO_A; j++)
				wino_bt(r + j, WINO_A, dv + j, WINO_A);
			for (int i = 0; i < WINO_A; i++)
				wino_bt(v + i * WINO_A, 1, r + i * WINO_A, 1);
			for (int p = 0; p < WINO_P; p++)
			{
				float	   *dst = V + p * step + (size_t) c * T + (t - a->t_off);

				/*
				 * All 8 lanes while they stay in this range: lanes past n
				 * land on the next tiles of the row V[p][c], which the
				 * next groups (in order) overwrite; masked stores are
				 * slow on AMD cores.
				 */
				if (t + 8 <= t_end)
					memcpy(dst, &v[p], sizeof(v8sf));
				else
					wino_store_n(dst, &v[p], n);
			}
			t += n;
		}
}

/*
 * row[4l + j] = y[j] lane l: four vectors of 8 tiles' results into the 32
 * outputs of those tiles along one output row.
 */
static inline void
wino_row_transpose(float *row, const v8sf *y)
{
#if defined(__AVX__)
	__m256		t0 = _mm256_unpacklo_ps(y[0], y[1]),	/* a0 b0 a1 b1 | a4 b4 a5 b5 */
				t1 = _mm256_unpackhi_ps(y[0], y[1]),	/* a2 b2 a3 b3 | a6 b6 a7 b7 */
				t2 = _mm256_unpacklo_ps(y[2], y[3]),
				t3 = _mm256_unpackhi_ps(y[2], y[3]),
				u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),	/* tiles 0 | 4 */
				u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),	/* tiles 1 | 5 */
				u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),	/* tiles 2 | 6 */
				u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));	/* tiles 3 | 7 */

	_mm256_store_ps(row, _mm256_permute2f128_ps(u0, u1, 0x20));
	_mm256_store_ps(row + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
	_mm256_store_ps(row + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
	_mm256_store_ps(row + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
#else
	float		yv[4][8];

	memcpy(yv, y, sizeof(yv));
	for (int l = 0; l < 8; l++)
		for (int j = 0; j < 4; j++)
			row[4 * l + j] = yv[j][l];
#endif
}

/*
 * Output transform of tiles [t_begin, t_end), every output channel:
 * A^T m A + bias, residual, ReLU, clipped to the map.  Channel by channel,
 * reading the 36 rows M[p][o] along, as the input transform writes V.
 */
static void
winograd_output_tiles(const winograd_args *a, int t_begin, int t_end)
{
	float	   *out = a->out;
	const float *M = a->M,
			   *bias = a->bias,
			   *residual = a->residual;
	int			relu = a->relu,
				B = a->B,
				H = a->H,
				W = a->W,
				Cout = a->Cout;
	int			th = wino_tiles(H, WINO_M),
				tw = wino_tiles(W, WINO_M);
	size_t		T = (size_t) a->Tn;
	size_t		HW = (size_t) H * W;
	size_t		step = wino_step(Cout, (int) T);

	for (int o = 0; o < Cout; o++)
		for (int t = t_begin; t < t_end;)
		{
			int			b,
						ty,
						tx;
			int			n = wino_group(t, t_end, th, tw, &b, &ty, &tx);
			const float *mp = M + (size_t) o * T + (t - a->t_off);
			float	   *oplane = out + ((size_t) o * B + b) * HW;
			const float *rplane = residual ? residual + ((size_t) o * B + b) * HW : NULL;
			float		bo = bias ? bias[o] : 0.0f;
			v8sf		m[WINO_P],
						s[WINO_M * WINO_A],
						y[WINO_M * WINO_M];

			for (int p = 0; p < WINO_P; p++)
			{
				if (n == 8)
					memcpy(&m[p], mp + p * step, sizeof(v8sf));
				else
					wino_load_n(&m[p], mp + p * step, n);
			}
			/* columns: s[., j] = A^T m[., j]; rows: y[i, .] = s[i, .] A */
			for (int j = 0; j < WINO_A; j++)
				wino_at(s + j, WINO_A, m + j, WINO_A);
			for (int i = 0; i < WINO_M; i++)
				wino_at(y + i * WINO_M, 1, s + i * WINO_A, 1);
			for (int q = 0; q < WINO_M * WINO_M; q++)
				y[q] += bo;
			/* output row 4ty + i: the n tiles' 4 columns each, side by side */
			for (int i = 0; i < WINO_M; i++)
			{
				int			yy = WINO_M * ty + i,
							w = WINO_M * n;
				size_t		idx = (size_t) yy * W + WINO_M * tx;
				float		row[WINO_M * 8] __attribute__((aligned(32)));

				if (yy >= H)
					break;
				if (w > W - WINO_M * tx)
					w = W - WINO_M * tx;
				wino_row_transpose(row, y + i * WINO_M);
				wino_row_store(oplane + idx, row, rplane ? rplane + idx : NULL, relu, w);
			}
			t += n;
		}
}

/*
 * Where the 8 lanes of a group of F(2x2, 3x3) tiles read and write: lane l
 * is tile t + l (any image, any tile row).  in[4i + j][l]: offset of input
 * (2ty - 1 + i, 2tx - 1 + j) from the start of a channel's (B, H, W)
 * block, -1 in the padding; out[2i + j][l]: of output (2ty + i, 2tx + j),
 * -1 past the map.  The same for every channel, so computed once a group.
 * Returns how many lanes (at most 8, not past t_end).
 */
typedef struct wino2_offsets
{
	int			in[16][8];
	int			out[4][8];
} wino2_offsets;

static int
wino2_group(int t, int t_end, int H, int W, wino2_offsets *g)
{
	int			th = wino_tiles(H, WINOGRAD_F2),
				tw = wino_tiles(W, WINOGRAD_F2);
	int			n = t_end - t < 8 ? t_end - t : 8;
	int			b = t / (th * tw),
				ty = (t / tw) % th,
				tx = t % tw;

	for (int l = 0; l < n; l++)
	{
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 4; j++)
			{
				int			y = 2 * ty - 1 + i,
							x = 2 * tx - 1 + j;

				g->in[4 * i + j][l] = (y >= 0 && y < H && x >= 0 && x < W) ?
					(b * H + y) * W + x : -1;
			}
		for (int i = 0; i < 2; i++)
			for (int j = 0; j < 2; j++)
			{
				int			y = 2 * ty + i,
							x = 2 * tx + j;

				g->out[2 * i + j][l] = (y < H && x < W) ? (b * H + y) * W + x : -1;
			}
		if (++tx == tw)
		{
			tx = 0;
			if (++ty == th)
			{
				ty = 0;
				b++;
			}
		}
	}
	return n;
}

/*
 * F(2x2, 3x3) input transform of tiles [t_begin, t_end), every channel, 8
 * tiles at a time: V[p][c][t] = (B^T d B)[p] of the 4x4 input tile d at
 * (2ty - 1, 2tx - 1), zero outside the map.  The tiles are gathered
 * element by element: on the small maps this is for, the products are
 * nearly all of the work.
 */
static void
winograd_input_tiles_2x2(const winograd_args *a, int t_begin, int t_end)
{
	float	   *V = a->V;
	size_t		T = (size_t) a->Tn;
	size_t		block = (size_t) a->B * a->H * a->W;
	size_t		step = wino_step(a->Cin, (int) T);

	for (int t = t_begin; t < t_end; t += 8)
	{
		wino2_offsets g;
		int			n = wino2_group(t, t_end, a->H, a->W, &g);

		for (int c = 0; c < a->Cin; c++)
		{
			const float *src = a->inp + (size_t) c * block;
			float		d[16][8] __attribute__((aligned(32))) = {{0}};
			v8sf		x[16],
						r[16],
						v[16];

			/* d[4i + j] lane l = input (2 ty - 1 + i, 2 tx - 1 + j) of tile t + l */
			for (int k = 0; k < 16; k++)
				for (int l = 0; l < n; l++)
					if (g.in[k][l] >= 0)
						d[k][l] = src[g.in[k][l]];
			memcpy(x, d, sizeof(d));
			/* columns: r[., j] = B^T d[., j]; rows: v[i, .] = r[i, .] B */
			for (int j = 0; j < 4; j++)
			{
				r[0 + j] = x[0 + j] - x[8 + j];
				r[4 + j] = x[4 + j] + x[8 + j];
				r[8 + j] = x[8 + j] - x[4 + j];
				r[12 + j] = x[4 + j] - x[12 + j];
			}
			for (int i = 0; i < 16; i += 4)
			{
				v[i + 0] = r[i + 0] - r[i + 2];
				v[i + 1] = r[i + 1] + r[i + 2];
				v[i + 2] = r[i + 2] - r[i + 1];
				v[i + 3] = r[i + 1] - r[i + 3];
			}
			for (int p = 0; p < 16; p++)
			{
				float	   *dst = V + p * step + (size_t) c * T + (t - a->t_off);

				if (n == 8)
					memcpy(dst, &v[p], sizeof(v8sf));
				else
					wino_store_n(dst, &v[p], n);
			}
		}
	}
}

/*
 * F(2x2, 3x3) output transform of tiles [t_begin, t_end), every output
 * channel: A^T m A + bias, residual, ReLU, clipped to the map.
 */
static void
winograd_output_tiles_2x2(const winograd_args *a, int t_begin, int t_end)
{
	size_t		T = (size_t) a->Tn;
	size_t		block = (size_t) a->B * a->H * a->W;
	size_t		step = wino_step(a->Cout, (int) T);

	for (int t = t_begin; t < t_end; t += 8)
	{
		wino2_offsets g;
		int			n = wino2_group(t, t_end, a->H, a->W, &g);

		for (int o = 0; o < a->Cout; o++)
		{
			const float *mp = a->M + (size_t) o * T + (t - a->t_off);
			float	   *dst = a->out + (size_t) o * block;
			const float *res = a->residual ? a->residual + (size_t) o * block : NULL;
			float		bo = a->bias ? a->bias[o] : 0.0f;
			v8sf		m[16],
						s[8],
						y[4];
			float		yv[4][8] __attribute__((aligned(32)));

			for (int p = 0; p < 16; p++)
			{
				if (n == 8)
					memcpy(&m[p], mp + p * step, sizeof(v8sf));
				else
					wino_load_n(&m[p], mp + p * step, n);
			}
			/* columns: s[., j] = A^T m[., j]; rows: y[i, .] = s[i, .] A */
			for (int j = 0; j < 4; j++)
			{
				s[0 + j] = m[0 + j] + m[4 + j] + m[8 + j];
				s[4 + j] = m[4 + j] - m[8 + j] - m[12 + j];
			}
			for (int i = 0; i < 2; i++)
			{
				y[2 * i + 0] = s[4 * i + 0] + s[4 * i + 1] + s[4 * i + 2] + bo;
				y[2 * i + 1] = s[4 * i + 1] - s[4 * i + 2] - s[4 * i + 3] + bo;
			}
			memcpy(yv, y, sizeof(yv));
			for (int q = 0; q < 4; q++)
				for (int l = 0; l < n; l++)
				{
					int			idx = g.out[q][l];
					float		val = yv[q][l];

					if (idx < 0)
						continue;
					if (res)
						val += res[idx];
					if (a->relu)
						val = val > 0.0f ? val : 0.0f;
					dst[idx] = val;
				}
		}
	}
}

/*
 * Max pooling of the (channel, image) planes [p_begin, p_end): per output
 * row, the maximum down the window's rows (a loop the compiler vectorizes
 * at the path's width), then across.
 */
static void
maxpool_range(const void *args, int p_begin, int p_end)
{
	const maxpool_args *a = args;
	float	   *out = a->out;
	const float *inp = a->inp;
	int			H = a->H,
				W = a->W,
				k = a->k,
				stride = a->stride,
				pad = a->pad;
	int			Ho = conv_out_size(H, k, stride, pad);
	int			Wo = conv_out_size(W, k, stride, pad);

	float		colmax[1024];

	for (size_t p = p_begin; p < (size_t) p_end; p++)
	{
		const float *src = inp + p * H * W;
		float	   *dst = out + p * Ho * Wo;

		if (W <= 1024)
		{
			/* per output row: the max down the window's rows, then across */
			for (int oy = 0; oy < Ho; oy++)
			{
				int			y_lo = oy * stride - pad,
							y_hi = y_lo + k;

				if (y_lo < 0)
					y_lo = 0;
				if (y_hi > H)
					y_hi = H;
				for (int x = 0; x < W; x++)
					colmax[x] = -FLT_MAX;
				for (int iy = y_lo; iy < y_hi; iy++)
					for (int x = 0; x < W; x++)
						colmax[x] = src[iy * W + x] > colmax[x] ? src[iy * W + x] : colmax[x];
				for (int ox = 0; ox < Wo; ox++)
				{
					int			x_lo = ox * stride - pad,
								x_hi = x_lo + k;
					float		m = -FLT_MAX;

					if (x_lo < 0)
						x_lo = 0;
					if (x_hi > W)
						x_hi = W;
					for (int x = x_lo; x < x_hi; x++)
						m = colmax[x] > m ? colmax[x] : m;
					dst[oy * Wo + ox] = m;
				}
			}
			continue;
		}
		for (int oy = 0; oy < Ho; oy++)
			for (int ox = 0; ox < Wo; ox++)
			{
				float		m = -FLT_MAX;

				for (int ki = 0; ki < k; ki++)
				{
					int			iy = oy * stride - pad + ki;

					if (iy < 0 || iy >= H)
						continue;
					for (int kj = 0; kj < k; kj++)
					{
						int			ix = ox * stride - pad + kj;

						if (ix >= 0 && ix < W && src[iy * W + ix] > m)
							m = src[iy * W + ix];
					}
				}
				dst[oy * Wo + ox] = m;
			}
	}
}

const conv_kernels CONV_KERNELS_TABLE = {
	CONV_KERNELS_NAME,
	im2col_pack,
	phase_pack,
	phase_planes_fill,
	winograd_input_tiles,
	winograd_output_tiles,
	winograd_input_tiles_2x2,
	winograd_output_tiles_2x2,
	maxpool_range
};

#endif
