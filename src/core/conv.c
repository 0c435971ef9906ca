/*
 * conv.c
 *	  Convolution-network layers (see conv.h): convolution by im2col and
 *	  SGEMM, max pooling, global average pooling, layout changes and the
 *	  fully connected head.  Activations are (C, B, H, W).
 */
#include "conv.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CONV_AVX2 1
#endif

/*
 * Parallel regions: fn(arg, thread, nthreads) on every thread of ex (the
 * caller alone when ex has no pool).
 */
static void
run_parallel(const conv_exec *ex, mmsa_pool_fn fn, void *arg)
{
	if (ex && ex->pool && ex->nthreads > 1)
		mmsa_pool_run(ex->pool, fn, arg);
	else
		fn(arg, 0, 1);
}

/* Share [*lo, *hi) of thread t of n in [0, count), rounded to `align`. */
static void
thread_range(int count, int t, int n, int align, int *lo, int *hi)
{
	int			units = (count + align - 1) / align;

	*lo = (int) ((long) units * t / n) * align;
	*hi = (int) ((long) units * (t + 1) / n) * align;
	if (*lo > count)
		*lo = count;
	if (*hi > count)
		*hi = count;
}

static int
exec_threads(const conv_exec *ex)
{
	return (ex && ex->pool) ? ex->nthreads : 1;
}

mmsa_status
conv_exec_init(conv_exec *ex, int nthreads, mmsa_error *err)
{
	size_t		bytes = gemm_bpack_floats(1 << 30) * sizeof(float);
	mmsa_status status;

	memset(ex, 0, sizeof(*ex));
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > CONV_MAX_THREADS)
		nthreads = CONV_MAX_THREADS;
	if (nthreads > 1)
	{
		if ((status = mmsa_pool_create(nthreads, &ex->pool, err)) != MMSA_OK)
			return status;
		nthreads = mmsa_pool_size(ex->pool);
	}
	ex->nthreads = nthreads;
	for (int t = 0; t < nthreads; t++)
		if ((ex->bpack[t] = aligned_alloc(64, (bytes + 63) / 64 * 64)) == NULL)
		{
			conv_exec_free(ex);
			return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		}
	return MMSA_OK;
}

void
conv_exec_free(conv_exec *ex)
{
	mmsa_pool_free(ex->pool);
	for (int t = 0; t < CONV_MAX_THREADS; t++)
		free(ex->bpack[t]);
	memset(ex, 0, sizeof(*ex));
}

size_t
conv2d_packed_floats(int Cout, int Cin, int k)
{
	return gemm_packed_floats(Cout, Cin * k * k);
}

void
conv2d_weight_pack(float *packed, const float *w, int Cout, int Cin, int k)
{
	gemm_pack_a(packed, w, Cout, Cin * k * k, (size_t) Cin * k * k);
}

size_t
conv2d_col_floats(int Cin, int H, int W, int k, int stride, int pad, int images)
{
	int			Ho = conv_out_size(H, k, stride, pad);
	int			Wo = conv_out_size(W, k, stride, pad);

	if (k == 1 && stride == 1 && pad == 0)
		return 0;
	return (size_t) Cin * k * k * (size_t) Ho * Wo * (size_t) images;
}

/*
 * im2col for images b0 .. b0+G-1 of inp: (Cin, B, H, W).
 * col: (Cin*k*k, G*Ho*Wo); row (c*k + ki)*k + kj holds, for every output
 * position, the input pixel under kernel tap (ki, kj) of channel c, or 0
 * where the tap falls into the padding.  im2col_rows fills the rows of
 * the pairs (c, ki) numbered c*k + ki in [r_begin, r_end).
 */
typedef struct im2col_args
{
	float	   *col;
	const float *inp;
	int			B,
				b0,
				G,
				Cin,
				H,
				W,
				k,
				stride,
				pad,
				Ho,
				Wo;
} im2col_args;

static void
im2col_rows(const im2col_args *a, int r_begin, int r_end)
{
	float	   *col = a->col;
	const float *inp = a->inp;
	int			B = a->B,
				b0 = a->b0,
				G = a->G,
				H = a->H,
				W = a->W,
				k = a->k,
				stride = a->stride,
				pad = a->pad,
				Ho = a->Ho,
				Wo = a->Wo;
	size_t		HoWo = (size_t) Ho * Wo;
	size_t		ncols = (size_t) G * HoWo;

	for (int r = r_begin; r < r_end; r++)
	{
		int			c = r / k,
					ki = r % k;

		for (int kj = 0; kj < k; kj++)
		{
			float	   *dst = col + ((size_t) r * k + kj) * ncols;
			int			ox_lo,
						ox_hi;

			/* output columns whose tap lands inside the row: [ox_lo, ox_hi) */
			ox_lo = (pad - kj + stride - 1) / stride;
			if (pad - kj < 0)
				ox_lo = 0;
			ox_hi = (W - 1 + pad - kj) / stride + 1;
			if (W - 1 + pad - kj < 0)
				ox_hi = 0;
			if (ox_hi > Wo)
				ox_hi = Wo;
			if (ox_lo > ox_hi)
				ox_lo = ox_hi;

			for (int g = 0; g < G; g++)
			{
				const float *plane = inp + ((size_t) c * B + b0 + g) * H * W;

				for (int oy = 0; oy < Ho; oy++)
				{
					float	   *d = dst + g * HoWo + (size_t) oy * Wo;
					int			iy = oy * stride - pad + ki;
					const float *srow;

					if (iy < 0 || iy >= H)
					{
						memset(d, 0, sizeof(float) * Wo);
						continue;
					}
					srow = plane + (size_t) iy * W - pad + kj;
					for (int ox = 0; ox < ox_lo; ox++)
						d[ox] = 0.0f;
					if (stride == 1)
						memcpy(d + ox_lo, srow + ox_lo, sizeof(float) * (ox_hi - ox_lo));
					else
						for (int ox = ox_lo; ox < ox_hi; ox++)
							d[ox] = srow[ox * stride];
					for (int ox = ox_hi; ox < Wo; ox++)
						d[ox] = 0.0f;
				}
			}
		}
	}
}

static void
im2col_thread(void *arg, int t, int n)
{
	const im2col_args *a = arg;
	int			lo,
				hi;

	thread_range(a->Cin * a->k, t, n, 1, &lo, &hi);
	im2col_rows(a, lo, hi);
}

/*
 * One product of a convolution, split between the threads:
 * C (M, N) = act(Ap x B + ...), see gemm_packed_range.
 */
typedef struct product_args
{
	const conv_exec *ex;
	float	   *C;
	size_t		ldc;
	const float *Ap;
	const float *B;
	size_t		ldb;
	int			M,
				N,
				K;
	gemm_epilogue ep;
} product_args;

static void
product_thread(void *arg, int t, int n)
{
	const product_args *a = arg;
	int			m0,
				m1,
				n0,
				n1;

	gemm_thread_share(a->M, a->N, t, n, &m0, &m1, &n0, &n1);
	gemm_packed_range(a->C, a->ldc, a->Ap, a->B, a->ldb, a->M, a->K,
					  m0, m1, n0, n1, &a->ep, a->ex->bpack[t]);
}

static void
run_product(const conv_exec *ex, float *C, size_t ldc, const float *Ap,
			const float *B, size_t ldb, int M, int N, int K,
			const float *bias, const float *residual, size_t ldr, int relu)
{
	product_args a = {ex, C, ldc, Ap, B, ldb, M, N, K, {bias, residual, ldr, relu}};

	run_parallel(ex, product_thread, &a);
}

/*
 * Convolution (see conv.h).  A 1x1 stride-1 convolution multiplies the
 * weights with the whole batch in place; otherwise groups of images are
 * unfolded with im2col and each group's output columns are written by one
 * product straight into their place in out (ldc = B*Ho*Wo).  Bias,
 * residual and ReLU are applied by the product as it stores.
 */
void
conv2d_forward(const conv_exec *ex, float *out, const float *inp, const float *weight,
			   const float *bias, const float *residual, int relu,
			   int B, int Cin, int H, int W, int Cout,
			   int k, int stride, int pad, float *col, size_t col_floats)
{
	int			Ho = conv_out_size(H, k, stride, pad);
	int			Wo = conv_out_size(W, k, stride, pad);
	size_t		HoWo = (size_t) Ho * Wo;
	size_t		N = (size_t) B * HoWo;
	int			K = Cin * k * k;

	if (k == 1 && stride == 1 && pad == 0)
	{
		run_product(ex, out, N, weight, inp, N, Cout, (int) N, Cin,
					bias, residual, N, relu);
	}
	else
	{
		size_t		per_image = (size_t) K * HoWo;
		int			G = (int) (col_floats / per_image);

		if (G > B)
			G = B;
		if (G < 1)
			G = 1;				/* caller guarantees room for one image */
		for (int b0 = 0; b0 < B; b0 += G)
		{
			int			g = (B - b0 < G) ? B - b0 : G;
			im2col_args ia = {col, inp, B, b0, g, Cin, H, W, k, stride, pad, Ho, Wo};

			run_parallel(ex, im2col_thread, &ia);
			run_product(ex, out + b0 * HoWo, N, weight, col, g * HoWo,
						Cout, (int) (g * HoWo), K, bias,
						residual ? residual + b0 * HoWo : NULL, N, relu);
		}
	}
}

/*
 * Max pooling (see conv.h): each (channel, image) plane separately.
 */
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

static void
maxpool_thread(void *arg, int t, int n)
{
	const maxpool_args *a = arg;
	int			lo,
				hi;

	thread_range(a->planes, t, n, 1, &lo, &hi);
	maxpool_range(a, lo, hi);
}

void
maxpool2d_forward(const conv_exec *ex, float *out, const float *inp, int C, int B,
				  int H, int W, int k, int stride, int pad)
{
	maxpool_args a = {C * B, out, inp, H, W, k, stride, pad};

	run_parallel(ex, maxpool_thread, &a);
}

/*
 * Global average pooling: out (B, C) from inp (C, B, HW).
 */
void
global_avgpool_forward(float *out, const float *inp, int C, int B, int HW)
{
	for (int c = 0; c < C; c++)
		for (int b = 0; b < B; b++)
		{
			const float *src = inp + ((size_t) c * B + b) * HW;
			double		sum = 0.0;

			for (int i = 0; i < HW; i++)
				sum += src[i];
			out[(size_t) b * C + c] = (float) (sum / HW);
		}
}

/*
 * Token-major layout: out (B, HW, C) from inp (C, B, HW).
 */
void
cbhw_to_token_major(float *out, const float *inp, int C, int B, int HW)
{
	for (int c = 0; c < C; c++)
		for (int b = 0; b < B; b++)
		{
			const float *src = inp + ((size_t) c * B + b) * HW;
			float	   *dst = out + (size_t) b * HW * C + c;

			for (int i = 0; i < HW; i++)
				dst[(size_t) i * C] = src[i];
		}
}

/*
 * Channel-major batch: out (C, B, HW) from inp (B, C, HW).
 */
void
nchw_to_cbhw(float *out, const float *inp, int B, int C, int HW)
{
	for (int b = 0; b < B; b++)
		for (int c = 0; c < C; c++)
			memcpy(out + ((size_t) c * B + b) * HW,
				   inp + ((size_t) b * C + c) * HW, sizeof(float) * HW);
}

/*
 * Fully connected layer: out (B, OC) = inp (B, IC) x weight (OC, IC)^T +
 * bias, computed as out^T (OC, B) = weight x inp^T with the packed weight.
 */
void
linear_forward(const conv_exec *ex, float *out, const float *inp,
			   const float *weight, const float *bias,
			   int B, int IC, int OC, float *work)
{
	float	   *inp_t = work,
			   *out_t = work + (size_t) IC * B;

	for (int b = 0; b < B; b++)
		for (int i = 0; i < IC; i++)
			inp_t[(size_t) i * B + b] = inp[(size_t) b * IC + i];
	run_product(ex, out_t, B, weight, inp_t, B, OC, B, IC, bias, NULL, 0, 0);
	for (int b = 0; b < B; b++)
		for (int o = 0; o < OC; o++)
			out[(size_t) b * OC + o] = out_t[(size_t) o * B + b];
}

/*
 * Winograd F(2x2, 3x3) weight transform: U[p] (Cout, Cin) for the 16
 * positions p = 4*i + j of G g G^T, G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
 */
void
winograd_weight_transform(float *U, const float *w, int Cout, int Cin)
{
	static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

	for (int o = 0; o < Cout; o++)
		for (int c = 0; c < Cin; c++)
		{
			const float *g = w + ((size_t) o * Cin + c) * 9;
			double		Gg[4][3];

			for (int i = 0; i < 4; i++)
				for (int j = 0; j < 3; j++)
					Gg[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
			for (int i = 0; i < 4; i++)
				for (int j = 0; j < 4; j++)
					U[((size_t) (i * 4 + j) * Cout + o) * Cin + c] =
						(float) (Gg[i][0] * G[j][0] + Gg[i][1] * G[j][1] + Gg[i][2] * G[j][2]);
		}
}

size_t
winograd_packed_floats(int Cout, int Cin)
{
	return 16 * gemm_packed_floats(Cout, Cin);
}

/* Up: the 16 matrices U[p] (Cout, Cin) of U, each packed by gemm_pack_a. */
void
winograd_weight_pack(float *Up, const float *U, int Cout, int Cin)
{
	size_t		per = gemm_packed_floats(Cout, Cin);

	for (int p = 0; p < 16; p++)
		gemm_pack_a(Up + p * per, U + (size_t) p * Cout * Cin, Cout, Cin, Cin);
}

size_t
winograd_floats(int C, int B, int H, int W)
{
	return (size_t) 16 * C * B * ((H + 1) / 2) * ((W + 1) / 2);
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
	int			phase;			/* see conv2d_winograd_forward */
} winograd_args;

#ifdef CONV_AVX2

/*
 * The vectorized transforms work on up to 8 tiles of one tile row at a
 * time (lane i = tile tx + i), every channel: the 4x4 inputs of the 8
 * tiles are loaded as rows of 4 and transposed into 16 vectors of 8, the
 * transform is done on whole vectors, and each of the 16 results is one
 * 8-wide store into V.  The output side is the mirror image.
 */

/* 4 floats of row `row` (H x W plane) from column x0, zero outside. */
static inline __m128
load4_padded(const float *plane, int H, int W, int y, int x0)
{
	float		v[4];

	if (y < 0 || y >= H)
		return _mm_setzero_ps();
	if (x0 >= 0 && x0 + 3 < W)
		return _mm_loadu_ps(plane + (size_t) y * W + x0);
	for (int j = 0; j < 4; j++)
		v[j] = (x0 + j >= 0 && x0 + j < W) ? plane[(size_t) y * W + x0 + j] : 0.0f;
	return _mm_loadu_ps(v);
}

/* Stores the first n lanes of v at dst. */
static inline void
store_lanes(float *dst, __m256 v, int n)
{
	if (n == 8)
		_mm256_storeu_ps(dst, v);
	else
	{
		float		t[8];

		_mm256_storeu_ps(t, v);
		memcpy(dst, t, sizeof(float) * n);
	}
}

static void
winograd_input_tiles(const winograd_args *a, int t_begin, int t_end)
{
	const float *inp = a->inp;
	float	   *V = a->V;
	int			B = a->B,
				Cin = a->Cin,
				H = a->H,
				W = a->W;
	int			th = (H + 1) / 2,
				tw = (W + 1) / 2;
	size_t		T = (size_t) B * th * tw;
	size_t		HW = (size_t) H * W;

	for (int t = t_begin; t < t_end;)
	{
		int			b = t / (th * tw),
					ty = (t / tw) % th,
					tx = t % tw;
		int			n = tw - tx;
		int			y0 = 2 * ty - 1;

		if (n > 8)
			n = 8;
		if (n > t_end - t)
			n = t_end - t;
		for (int c = 0; c < Cin; c++)
		{
			const float *plane = inp + ((size_t) c * B + b) * HW;
			__m256		d[4][4],
						r[4][4];

			/* d[i][j] lane l = input (y0 + i, 2(tx + l) - 1 + j) */
			for (int i = 0; i < 4; i++)
			{
				__m128		q[8];

				for (int l = 0; l < 8; l++)
					q[l] = l < n ? load4_padded(plane, H, W, y0 + i, 2 * (tx + l) - 1) :
						_mm_setzero_ps();
				_MM_TRANSPOSE4_PS(q[0], q[1], q[2], q[3]);
				_MM_TRANSPOSE4_PS(q[4], q[5], q[6], q[7]);
				for (int j = 0; j < 4; j++)
					d[i][j] = _mm256_set_m128(q[4 + j], q[j]);
			}
			/* rows: B^T d */
			for (int j = 0; j < 4; j++)
			{
				r[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
				r[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
				r[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
				r[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
			}
			/* columns: (B^T d) B, V[4i + j][c][t ..] */
			for (int i = 0; i < 4; i++)
			{
				float	   *v = V + ((size_t) (i * 4) * Cin + c) * T + t;
				size_t		step = (size_t) Cin * T;

				store_lanes(v, _mm256_sub_ps(r[i][0], r[i][2]), n);
				store_lanes(v + step, _mm256_add_ps(r[i][1], r[i][2]), n);
				store_lanes(v + 2 * step, _mm256_sub_ps(r[i][2], r[i][1]), n);
				store_lanes(v + 3 * step, _mm256_sub_ps(r[i][1], r[i][3]), n);
			}
		}
		t += n;
	}
}

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
	int			th = (H + 1) / 2,
				tw = (W + 1) / 2;
	size_t		T = (size_t) B * th * tw;
	size_t		HW = (size_t) H * W;
	size_t		step = (size_t) Cout * T;

	for (int t = t_begin; t < t_end;)
	{
		int			b = t / (th * tw),
					ty = (t / tw) % th,
					tx = t % tw;
		int			n = tw - tx;
		/* 8 whole 2x2 tiles inside the map: two rows of 16 outputs */
		int			whole;

		if (n > 8)
			n = 8;
		if (n > t_end - t)
			n = t_end - t;
		whole = (n == 8 && 2 * ty + 1 < H && 2 * (tx + 7) + 1 < W);
		for (int o = 0; o < Cout; o++)
		{
			const float *mp = M + (size_t) o * T + t;
			float	   *oplane = out + ((size_t) o * B + b) * HW;
			const float *rplane = residual ? residual + ((size_t) o * B + b) * HW : NULL;
			__m256		m[16],
						s[2][4],
						y[2][2],
						bo = _mm256_set1_ps(bias ? bias[o] : 0.0f);

			for (int p = 0; p < 16; p++)
			{
				if (n == 8)
					m[p] = _mm256_loadu_ps(mp + p * step);
				else
				{
					float		tmp[8] = {0};

					memcpy(tmp, mp + p * step, sizeof(float) * n);
					m[p] = _mm256_loadu_ps(tmp);
				}
			}
			for (int j = 0; j < 4; j++)
			{
				s[0][j] = _mm256_add_ps(_mm256_add_ps(m[j], m[4 + j]), m[8 + j]);
				s[1][j] = _mm256_sub_ps(_mm256_sub_ps(m[4 + j], m[8 + j]), m[12 + j]);
			}
			for (int i = 0; i < 2; i++)
			{
				y[i][0] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[i][0], s[i][1]), s[i][2]), bo);
				y[i][1] = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[i][1], s[i][2]), s[i][3]), bo);
			}
			if (whole)
			{
				for (int i = 0; i < 2; i++)
				{
					size_t		idx = (size_t) (2 * ty + i) * W + 2 * tx;
					__m256		lo = _mm256_unpacklo_ps(y[i][0], y[i][1]),
								hi = _mm256_unpackhi_ps(y[i][0], y[i][1]),
								v0 = _mm256_permute2f128_ps(lo, hi, 0x20),
								v1 = _mm256_permute2f128_ps(lo, hi, 0x31);

					if (rplane)
					{
						v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rplane + idx));
						v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rplane + idx + 8));
					}
					if (relu)
					{
						v0 = _mm256_max_ps(v0, _mm256_setzero_ps());
						v1 = _mm256_max_ps(v1, _mm256_setzero_ps());
					}
					_mm256_storeu_ps(oplane + idx, v0);
					_mm256_storeu_ps(oplane + idx + 8, v1);
				}
			}
			else
			{
				float		yv[2][2][8];

				for (int i = 0; i < 2; i++)
					for (int j = 0; j < 2; j++)
						_mm256_storeu_ps(yv[i][j], y[i][j]);
				for (int l = 0; l < n; l++)
					for (int i = 0; i < 2 && 2 * ty + i < H; i++)
						for (int j = 0; j < 2 && 2 * (tx + l) + j < W; j++)
						{
							size_t		idx = (size_t) (2 * ty + i) * W + 2 * (tx + l) + j;
							float		v = yv[i][j][l] + (rplane ? rplane[idx] : 0.0f);

							oplane[idx] = (relu && v < 0.0f) ? 0.0f : v;
						}
			}
		}
		t += n;
	}
}

#else							/* portable transforms, one tile at a time */

/*
 * Input transform of tiles [t_begin, t_end), every channel:
 * V[p][c][t] = (B^T d B)[p] of the 4x4 input tile d at (2ty-1, 2tx-1).
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
	int			th = (H + 1) / 2,
				tw = (W + 1) / 2;
	size_t		T = (size_t) B * th * tw;
	size_t		HW = (size_t) H * W;
	size_t		step = (size_t) Cin * T;

	for (int c = 0; c < Cin; c++)
		for (int t = t_begin; t < t_end; t++)
		{
			int			b = t / (th * tw),
						ty = (t / tw) % th,
						tx = t % tw;
			const float *plane = inp + ((size_t) c * B + b) * HW;
			int			y0 = 2 * ty - 1,
						x0 = 2 * tx - 1;
			float		d[4][4],
						r[4][4];

			if (y0 >= 0 && x0 >= 0 && y0 + 3 < H && x0 + 3 < W)
			{
				for (int i = 0; i < 4; i++)
					for (int j = 0; j < 4; j++)
						d[i][j] = plane[(size_t) (y0 + i) * W + x0 + j];
			}
			else
			{
				for (int i = 0; i < 4; i++)
					for (int j = 0; j < 4; j++)
					{
						int			y = y0 + i,
									x = x0 + j;

						d[i][j] = (y >= 0 && y < H && x >= 0 && x < W) ?
							plane[(size_t) y * W + x] : 0.0f;
					}
			}
			/* rows: B^T d */
			for (int j = 0; j < 4; j++)
			{
				r[0][j] = d[0][j] - d[2][j];
				r[1][j] = d[1][j] + d[2][j];
				r[2][j] = d[2][j] - d[1][j];
				r[3][j] = d[1][j] - d[3][j];
			}
			/* columns: (B^T d) B */
			for (int i = 0; i < 4; i++)
			{
				float	   *v = V + ((size_t) (i * 4) * Cin + c) * T + t;

				v[0] = r[i][0] - r[i][2];
				v[step] = r[i][1] + r[i][2];
				v[2 * step] = r[i][2] - r[i][1];
				v[3 * step] = r[i][1] - r[i][3];
			}
		}
}

/*
 * Output transform of tiles [t_begin, t_end), every output channel:
 * A^T m A with A^T = [1 1 1 0; 0 1 -1 -1], + bias, residual, ReLU.
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
	int			th = (H + 1) / 2,
				tw = (W + 1) / 2;
	size_t		T = (size_t) B * th * tw;
	size_t		HW = (size_t) H * W;
	size_t		step = (size_t) Cout * T;

	for (int o = 0; o < Cout; o++)
	{
		float		bo = bias ? bias[o] : 0.0f;

		for (int t = t_begin; t < t_end; t++)
		{
			int			b = t / (th * tw),
						ty = (t / tw) % th,
						tx = t % tw;
			float	   *oplane = out + ((size_t) o * B + b) * HW;
			const float *rplane = residual ? residual + ((size_t) o * B + b) * HW : NULL;
			const float *mp = M + (size_t) o * T + t;
			float		m[16],
						s[2][4],
						y[2][2];

			for (int p = 0; p < 16; p++)
				m[p] = mp[p * step];
			for (int j = 0; j < 4; j++)
			{
				s[0][j] = m[j] + m[4 + j] + m[8 + j];
				s[1][j] = m[4 + j] - m[8 + j] - m[12 + j];
			}
			for (int i = 0; i < 2; i++)
			{
				y[i][0] = s[i][0] + s[i][1] + s[i][2];
				y[i][1] = s[i][1] - s[i][2] - s[i][3];
			}
			for (int i = 0; i < 2; i++)
			{
				int			yy = 2 * ty + i;

				if (yy >= H)
					break;
				for (int j = 0; j < 2; j++)
				{
					int			xx = 2 * tx + j;
					size_t		idx = (size_t) yy * W + xx;
					float		v;

					if (xx >= W)
						break;
					v = y[i][j] + bo + (rplane ? rplane[idx] : 0.0f);
					oplane[idx] = (relu && v < 0.0f) ? 0.0f : v;
				}
			}
		}
	}
}

#endif

/*
 * The work of one thread.  Phase 0: its own range of tiles through the
 * input transform, the 16 products (its columns of each) and the output
 * transform, so the threads never wait for each other.  For few tiles
 * (small maps) that would make every thread stream all the weights, so
 * then the work is three regions: 1, input transform by tiles; 2, the
 * products by rows of the weights; 3, output transform by tiles.
 */
static void
winograd_thread(void *arg, int t, int n)
{
	const winograd_args *a = arg;
	int			T = a->B * ((a->H + 1) / 2) * ((a->W + 1) / 2);
	size_t		per = gemm_packed_floats(a->Cout, a->Cin);
	int			t0,
				t1,
				m0 = 0,
				m1 = a->Cout;

	thread_range(T, t, n, T >= 64 * n ? GEMM_NR : 1, &t0, &t1);
	if (a->phase == 2)
	{
		t0 = 0;
		t1 = T;
		thread_range(a->Cout, t, n, GEMM_MR, &m0, &m1);
	}
	if (t0 >= t1 || m0 >= m1)
		return;
	if (a->phase == 0 || a->phase == 1)
		winograd_input_tiles(a, t0, t1);
	/* M[p] (Cout, T) = U[p] (Cout, Cin) x V[p] (Cin, T), columns t0 .. t1 */
	if (a->phase == 0 || a->phase == 2)
		for (int p = 0; p < 16; p++)
			gemm_packed_range(a->M + (size_t) p * a->Cout * T, T, a->Up + p * per,
							  a->V + (size_t) p * a->Cin * T, T, a->Cout, a->Cin,
							  m0, m1, t0, t1, NULL, a->ex->bpack[t]);
	if (a->phase == 0 || a->phase == 3)
		winograd_output_tiles(a, t0, t1);
}

/*
 * Winograd F(2x2, 3x3) convolution (see conv.h).  Tiles are numbered
 * t = (b * th + ty) * tw + tx; V: (16, Cin, T), M: (16, Cout, T).
 */
void
conv2d_winograd_forward(const conv_exec *ex, float *out, const float *inp,
						const float *Up, const float *bias,
						const float *residual, int relu,
						int B, int Cin, int H, int W, int Cout,
						float *V, float *M)
{
	winograd_args a = {ex, out, inp, Up, bias, residual, relu, B, Cin, H, W, Cout, V, M, 0};
	int			T = B * ((H + 1) / 2) * ((W + 1) / 2);
	int			threads = exec_threads(ex);

	if (threads == 1 || T >= 64 * threads)
		run_parallel(ex, winograd_thread, &a);
	else
		for (a.phase = 1; a.phase <= 3; a.phase++)
			run_parallel(ex, winograd_thread, &a);
}
