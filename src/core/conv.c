/*
 * conv.c
 *	  Convolution-network layers (see conv.h): convolution as a matrix
 *	  product over the im2col unfolding (gathered as it is packed) or by
 *	  Winograd, max pooling, global average pooling, layout changes and
 *	  the fully connected head.  Activations are (C, B, H, W).
 */
#include "conv.h"

#include <stdlib.h>
#include <string.h>

#include "conv_isa.h"
#include "gemm.h"
#include "qgemm.h"

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
	{
		free(ex->bpack[t]);
		free(ex->qwork[t]);
	}
	memset(ex, 0, sizeof(*ex));
}

mmsa_status
conv_exec_reserve_int8(conv_exec *ex, int max_k, mmsa_error *err)
{
	size_t		bytes = (qgemm_work_bytes(max_k) + 63) / 64 * 64;

	if (ex->qwork_bytes >= bytes || ex->nthreads < 1)
		return MMSA_OK;			/* enough, or no threads yet (conv_exec_init) */
	for (int t = 0; t < ex->nthreads; t++)
	{
		free(ex->qwork[t]);
		if ((ex->qwork[t] = aligned_alloc(64, bytes)) == NULL)
		{
			ex->qwork_bytes = 0;
			return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		}
		memset(ex->qwork[t], 0, bytes);	/* touched once, here */
	}
	ex->qwork_bytes = bytes;
	return MMSA_OK;
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
conv2d_work_floats(int Cin, int B, int H, int W, int k, int stride, int pad)
{
	int			Ho = conv_out_size(H, k, stride, pad),
				Wo = conv_out_size(W, k, stride, pad);

	/* stride 2, and a row split in two with its padding fits PHASE_ROW_FLOATS */
	if (stride != 2 || (pad + 1) / 2 + Wo + k + (W + 1) / 2 > PHASE_ROW_FLOATS)
		return 0;
	return (size_t) Cin * phase_count(k) * k * B * (Ho + (k - 1) / 2) * Wo;
}

/*
 * The threads build the planes' rows that their share of the product
 * reads (gemm_thread_share), so that the packing finds them in its own
 * core's cache: rows (b, y) of every plane, numbered b * Hq + y, from the
 * one of the first output column of the share on.
 */
static void
phase_build_thread(void *arg, int t, int n)
{
	const phase_planes *a = arg;
	const conv_kernels *kern = mmsa_conv_kernels();
	int			phases = phase_count(a->k),
				HoWo = a->Ho * a->Wo,
				N = a->B * HoWo;
	size_t		plane = phase_plane_floats(a);
	int			m0,
				m1,
				n0,
				n1;
	long		r0,
				r1;

	gemm_thread_share(a->Cout, N, t, n, &m0, &m1, &n0, &n1);
	if (n0 == 0 && n1 == N)		/* shared by rows of the weights: any split */
		mmsa_pool_share((long) a->B * a->Hq, t, n, 1, &r0, &r1);
	else
	{
		r0 = (long) (n0 / HoWo) * a->Hq + n0 % HoWo / a->Wo;
		r1 = (long) (n1 / HoWo) * a->Hq + n1 % HoWo / a->Wo;
	}
	for (int i = 0; i < a->Cin; i++)
		kern->phase_planes_fill(a->q + (size_t) i * phases * a->k * plane, plane,
								a->inp + (size_t) i * a->B * a->H * a->W, a, r0, r1);
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
	const float *B;				/* dense B (K, N), leading dimension ldb */
	size_t		ldb;
	const gemm_b_source *src;	/* or B packed by a function */
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
	if (a->src)
		gemm_packed_range_src(a->C, a->ldc, a->Ap, a->src, a->M, a->K,
							  m0, m1, n0, n1, &a->ep, a->ex->bpack[t]);
	else
		gemm_packed_range(a->C, a->ldc, a->Ap, a->B, a->ldb, a->M, a->K,
						  m0, m1, n0, n1, &a->ep, a->ex->bpack[t]);
}

static void
run_product(const conv_exec *ex, float *C, size_t ldc, const float *Ap,
			const float *B, size_t ldb, const gemm_b_source *src,
			int M, int N, int K,
			const float *bias, const float *residual, size_t ldr, int relu)
{
	product_args a = {ex, C, ldc, Ap, B, ldb, src, M, N, K, {bias, residual, ldr, relu}};

	run_parallel(ex, product_thread, &a);
}

/*
 * Convolution (see conv.h).  A 1x1 stride-1 convolution multiplies the
 * weights with the whole batch in place; any other is the same product
 * with the im2col unfolding of the batch as B: read from phase planes
 * built in `work` for stride 2 when it has room, else gathered block by
 * block into the packing buffers (im2col_pack).  Bias, residual and ReLU
 * are applied by the product as it stores.
 */
void
conv2d_forward(const conv_exec *ex, float *out, const float *inp, const float *weight,
			   const float *bias, const float *residual, int relu,
			   int B, int Cin, int H, int W, int Cout,
			   int k, int stride, int pad, float *work, size_t work_floats)
{
	int			Ho = conv_out_size(H, k, stride, pad);
	int			Wo = conv_out_size(W, k, stride, pad);
	size_t		N = (size_t) B * Ho * Wo;
	int			K = Cin * k * k;
	size_t		phase_floats = conv2d_work_floats(Cin, B, H, W, k, stride, pad);

	if (k == 1 && stride == 1 && pad == 0)
		run_product(ex, out, N, weight, inp, N, NULL, Cout, (int) N, Cin,
					bias, residual, N, relu);
	else if (phase_floats > 0 && work && work_floats >= phase_floats)
	{
		int			Hq = Ho + (k - 1) / 2;
		phase_planes ps = {work, inp, Cin, Cout, B, H, W, k, pad, Ho, Wo, Hq};
		gemm_b_source src = {mmsa_conv_kernels()->phase_pack, &ps};

		run_parallel(ex, phase_build_thread, &ps);
		if (k == 1)				/* one plane a channel: a dense (Cin, N) */
			run_product(ex, out, N, weight, work, N, NULL, Cout, (int) N, K,
						bias, residual, N, relu);
		else
			run_product(ex, out, N, weight, NULL, 0, &src, Cout, (int) N, K,
						bias, residual, N, relu);
	}
	else
	{
		im2col_source is = {inp, B, H, W, k, stride, pad, Ho, Wo};
		gemm_b_source src = {mmsa_conv_kernels()->im2col_pack, &is};

		run_product(ex, out, N, weight, NULL, 0, &src, Cout, (int) N, K,
					bias, residual, N, relu);
	}
}

/*
 * The im2col unfolding (im2col_source) as rows of floats for qgemm.c:
 * row r = (c, ki, kj) at output columns [n0, n0 + nc).
 */
static void
im2col_rows(const void *ctx, float *dst, int r, int n0, int nc)
{
	const im2col_source *s = ctx;
	int			k2 = s->k * s->k,
				c = r / k2,
				ki = r % k2 / s->k,
				kj = r % s->k,
				HoWo = s->Ho * s->Wo,
				b = n0 / HoWo,
				oy = n0 % HoWo / s->Wo,
				ox = n0 % s->Wo;
	const float *plane = s->inp + ((size_t) c * s->B + b) * s->H * s->W;

	if (s->pad == 0)
	{
		/* no padding (the strided 1x1 convolutions): runs of an output row */
		for (int i = 0; i < nc;)
		{
			int			run = s->Wo - ox < nc - i ? s->Wo - ox : nc - i;
			const float *src = plane + (size_t) (oy * s->stride + ki) * s->W + ox * s->stride + kj;

			for (int x = 0; x < run; x++)
				dst[i + x] = src[(size_t) x * s->stride];
			i += run;
			ox += run;
			if (ox == s->Wo)
			{
				ox = 0;
				if (++oy == s->Ho)
				{
					oy = 0;
					plane += (size_t) s->H * s->W;
				}
			}
		}
		return;
	}
	for (int i = 0; i < nc; i++)
	{
		int			iy = oy * s->stride - s->pad + ki,
					ix = ox * s->stride - s->pad + kj;

		dst[i] = (iy >= 0 && iy < s->H && ix >= 0 && ix < s->W) ? plane[(size_t) iy * s->W + ix] : 0.0f;
		if (++ox == s->Wo)
		{
			ox = 0;
			if (++oy == s->Ho)
			{
				oy = 0;
				plane += (size_t) s->H * s->W;
			}
		}
	}
}

typedef struct qproduct_args
{
	const conv_exec *ex;
	float	   *C;
	const int8_t *Ap;
	const float *B;				/* dense (K, N), or NULL: src */
	const qgemm_b_rows *src;
	const float *act_inv;
	int			M,
				N,
				K;
	qgemm_epilogue ep;
} qproduct_args;

static void
qproduct_thread(void *arg, int t, int n)
{
	const qproduct_args *a = arg;
	int			m0,
				m1,
				n0,
				n1;

	qgemm_thread_share(a->M, a->N, t, n, &m0, &m1, &n0, &n1);
	if (m0 < m1 && n0 < n1)
		qgemm_range(a->C, a->N, a->Ap, a->B, a->N, a->src, a->act_inv, a->M, a->K,
					m0, m1, n0, n1, &a->ep, a->ex->qwork[t]);
}

/*
 * int8 convolution (see conv.h): one product, split between the threads
 * as conv2d_forward's.
 */
void
qconv2d_forward(const conv_exec *ex, float *out, const float *inp,
				const int8_t *qweight, const float *scale, const float *act_inv,
				const float *bias, const float *residual, int relu,
				int B, int Cin, int H, int W, int Cout,
				int k, int stride, int pad)
{
	int			Ho = conv_out_size(H, k, stride, pad);
	int			Wo = conv_out_size(W, k, stride, pad);
	int			N = B * Ho * Wo;
	im2col_source is = {inp, B, H, W, k, stride, pad, Ho, Wo};
	qgemm_b_rows src = {im2col_rows, &is};
	int			dense = k == 1 && stride == 1 && pad == 0;
	qproduct_args a = {ex, out, qweight, dense ? inp : NULL, dense ? NULL : &src, act_inv,
	Cout, N, Cin * k * k, {.scale = scale, .bias = bias, .residual = residual,
	.ldr = (size_t) N, .relu = relu}};

	run_parallel(ex, qproduct_thread, &a);
}

/*
 * Max pooling (see conv.h): each (channel, image) plane separately, by the
 * kernels of the path in use (maxpool_range, conv_kernels.h).
 */
static void
maxpool_thread(void *arg, int t, int n)
{
	const maxpool_args *a = arg;
	long		lo,
				hi;

	mmsa_pool_share(a->planes, t, n, 1, &lo, &hi);
	mmsa_conv_kernels()->maxpool_range(a, (int) lo, (int) hi);
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
	run_product(ex, out_t, B, weight, inp_t, B, NULL, OC, B, IC, bias, NULL, 0, 0);
	for (int b = 0; b < B; b++)
		for (int o = 0; o < OC; o++)
			out[(size_t) b * OC + o] = out_t[(size_t) o * B + b];
}

/*
 * Winograd F(4x4, 3x3) (Lavin and Gray): a 4x4 block of outputs from a 6x6
 * input tile d (tiles overlap by 2) is A^T [(G g G^T) .* (B^T d B)] A:
 * 36 multiplications per 16 outputs instead of 144, and the 36 positions
 * of the transformed tiles are 36 matrix products over the channels.
 *
 *   G = [ 1/4     0     0  ]   B^T = [ 4  0 -5  0  1  0 ]   A^T = [ 1  1  1  1  1  0 ]
 *       [-1/6  -1/6  -1/6  ]         [ 0 -4 -4  1  1  0 ]         [ 0  1 -1  2 -2  0 ]
 *       [-1/6   1/6  -1/6  ]         [ 0  4 -4 -1  1  0 ]         [ 0  1  1  4  4  0 ]
 *       [1/24  1/12   1/6  ]         [ 0 -2 -1  2  1  0 ]         [ 0  1 -1  8 -8  1 ]
 *       [1/24 -1/12   1/6  ]         [ 0  2 -1 -2  1  0 ]
 *       [   0     0     1  ]         [ 0  4  0 -5  0  1 ]
 *
 * F(2x2, 3x3), for small maps (ResNet-50's 7x7 stage), is the same with
 * a 4x4 input tile (stride 2) and 16 positions:
 *
 *   G = [  1     0     0  ]   B^T = [ 1  0 -1  0 ]   A^T = [ 1  1  1  0 ]
 *       [ 1/2   1/2   1/2 ]         [ 0  1  1  0 ]         [ 0  1 -1 -1 ]
 *       [ 1/2  -1/2   1/2 ]         [ 0 -1  1  0 ]
 *       [  0     0     1  ]         [ 0  1  0 -1 ]
 *
 * The transforms (src/core/isa/conv_kernels.h, compiled once per path)
 * work on 8 tiles at once (F(4x4): of a tile row, lane l = tile tx + l;
 * F(2x2): any 8 in a row of the numbering) with GCC/Clang vector types,
 * which become AVX registers on the avx2 and avx512 paths and SSE in the
 * portable build.
 */

/*
 * Weight transform: U[p] (Cout, Cin) for the P = (m+2)^2 positions p =
 * (m+2)*i + j of G g G^T, in double.
 */
void
winograd_weight_transform(float *U, const float *w, int Cout, int Cin, int m)
{
	static const double G4[6][3] = {
		{1.0 / 4, 0, 0},
		{-1.0 / 6, -1.0 / 6, -1.0 / 6},
		{-1.0 / 6, 1.0 / 6, -1.0 / 6},
		{1.0 / 24, 1.0 / 12, 1.0 / 6},
		{1.0 / 24, -1.0 / 12, 1.0 / 6},
		{0, 0, 1}};
	static const double G2[4][3] = {
		{1, 0, 0},
		{0.5, 0.5, 0.5},
		{0.5, -0.5, 0.5},
		{0, 0, 1}};
	const double (*G)[3] = m == WINOGRAD_F2 ? G2 : G4;
	int			a = m + 2;

	for (int o = 0; o < Cout; o++)
		for (int c = 0; c < Cin; c++)
		{
			const float *g = w + ((size_t) o * Cin + c) * 9;
			double		Gg[WINO_A][3];

			for (int i = 0; i < a; i++)
				for (int j = 0; j < 3; j++)
					Gg[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
			for (int i = 0; i < a; i++)
				for (int j = 0; j < a; j++)
					U[((size_t) (i * a + j) * Cout + o) * Cin + c] =
						(float) (Gg[i][0] * G[j][0] + Gg[i][1] * G[j][1] + Gg[i][2] * G[j][2]);
		}
}

size_t
winograd_packed_floats(int Cout, int Cin, int m)
{
	return winograd_positions(m) * gemm_packed_floats(Cout, Cin);
}

/* Up: the P matrices U[p] (Cout, Cin) of U, each packed by gemm_pack_a. */
void
winograd_weight_pack(float *Up, const float *U, int Cout, int Cin, int m)
{
	size_t		per = gemm_packed_floats(Cout, Cin);

	for (int p = 0; p < winograd_positions(m); p++)
		gemm_pack_a(Up + p * per, U + (size_t) p * Cout * Cin, Cout, Cin, Cin);
}

size_t
winograd_pass_floats(int C, int tiles, int m)
{
	return winograd_positions(m) * wino_step(C, tiles);
}

size_t
winograd_floats(int C, int B, int H, int W, int m)
{
	return winograd_pass_floats(C, B * wino_tiles(H, m) * wino_tiles(W, m), m);
}

/* Tiles of C channels whose transform fits in `floats` (winograd_pass_floats's inverse). */
static size_t
wino_tiles_within(size_t floats, int C, int m)
{
	size_t		P = winograd_positions(m),
				pad = P * WINOGRAD_ROW_PAD;

	return floats > pad ? (floats - pad) / (P * (C < 1 ? 1 : C)) : 0;
}

int
winograd_pass_tiles(int Cin, int Cout, size_t v_floats, size_t m_floats, int m)
{
	size_t		n = wino_tiles_within(v_floats, Cin, m),
				nm = wino_tiles_within(m_floats, Cout, m);

	if (nm < n)
		n = nm;

	/*
	 * Passes of more tiles are slower, not faster: at 4 images a pass,
	 * the 56x56 layers of 64 channels took 1.30 ms an image in passes of
	 * 112 tiles against 1.52 in passes of 528 to 1072 (V and M of 5 to 10
	 * MB each, out of every cache); at 1 image, passes of 32 tiles took
	 * 1.3 to 2.4 ms against 1.2 to 1.4 in passes of 98 to 144.
	 */
	if (n > WINOGRAD_PASS_MAX_TILES)
		n = WINOGRAD_PASS_MAX_TILES;
	/* whole micro-tiles of columns for the products when there is room */
	if (n >= GEMM_NR)
		n -= n % GEMM_NR;
	if (n < 1)
		n = 1;
	if (n > (size_t) 1 << 30)
		n = (size_t) 1 << 30;
	return (int) n;
}

/*
 * Weights (floats, all 36 positions) small enough that every thread may
 * stream them all: passes of few tiles then still split by tiles (phase 0)
 * rather than in three regions with a wait between each.  64 x 64
 * channels (stage 1 of ResNet-50) are 147,456 floats.
 */
#define WINO_SMALL_WEIGHTS ((size_t) 160 * 1024)

/*
 * The work of one thread.  Phase 0: its own range of tiles through the
 * input transform, the 36 products (its columns of each) and the output
 * transform, so the threads never wait for each other.  For few tiles
 * (small maps) that would make every thread stream all the weights, so
 * then the work is three regions: 1, input transform by tiles; 2, the
 * products by rows of the weights; 3, output transform by tiles.
 */
static void
winograd_thread(void *arg, int t, int n)
{
	const winograd_args *a = arg;
	const conv_kernels *kern = mmsa_conv_kernels();
	int			T = a->Tn;
	size_t		per = gemm_packed_floats(a->Cout, a->Cin);
	int			f2 = a->m == WINOGRAD_F2;
	long		t0,
				t1,
				m0 = 0,
				m1 = a->Cout;

	mmsa_pool_share(T, t, n, a->phase == 0 ? GEMM_NR : 1, &t0, &t1);
	if (a->phase == 2)
	{
		t0 = 0;
		t1 = T;
		mmsa_pool_share(a->Cout, t, n, GEMM_MR, &m0, &m1);
	}
	if (t0 >= t1 || m0 >= m1)
		return;
	if (a->phase == 0 || a->phase == 1)
		(f2 ? kern->winograd_input_2x2 : kern->winograd_input) (a, a->t_off + t0, a->t_off + t1);
	/* M[p] (Cout, T) = U[p] (Cout, Cin) x V[p] (Cin, T), columns t0 .. t1 */
	if (a->phase == 0 || a->phase == 2)
		for (int p = 0; p < winograd_positions(a->m); p++)
			gemm_packed_range(a->M + p * wino_step(a->Cout, T), T, a->Up + p * per,
							  a->V + p * wino_step(a->Cin, T), T, a->Cout, a->Cin,
							  m0, m1, t0, t1, NULL, a->ex->bpack[t]);
	if (a->phase == 0 || a->phase == 3)
		(f2 ? kern->winograd_output_2x2 : kern->winograd_output) (a, a->t_off + t0, a->t_off + t1);
}

/*
 * Winograd F(m x m, 3x3) convolution (see conv.h).  Tiles are numbered
 * t = (b * th + ty) * tw + tx and done in passes of nearly equal size, of
 * at most as many as V and M hold (winograd_pass_tiles); in a pass of Tn
 * tiles, V: (P, Cin, Tn), M: (P, Cout, Tn).  Each
 * tile's transforms and each column of the products are computed alone,
 * so the passes change no result.
 */
void
conv2d_winograd_forward(const conv_exec *ex, float *out, const float *inp,
						const float *Up, const float *bias,
						const float *residual, int relu,
						int B, int Cin, int H, int W, int Cout,
						float *V, size_t v_floats, float *M, size_t m_floats, int m)
{
	winograd_args a = {ex, out, inp, Up, bias, residual, relu, B, Cin, H, W, Cout, V, M, m, 0, 0, 0};
	int			T = B * wino_tiles(H, m) * wino_tiles(W, m);
	int			threads = exec_threads(ex);
	int			pass = winograd_pass_tiles(Cin, Cout, v_floats, m_floats, m);

	if (pass < T)
	{
		/* passes of nearly equal size, in whole micro-tiles of columns */
		int			passes = (T + pass - 1) / pass,
					even = ((T + passes - 1) / passes + GEMM_NR - 1) / GEMM_NR * GEMM_NR;

		if (even < pass)
			pass = even;
	}
	else
		pass = T;
	for (a.t_off = 0; a.t_off < T; a.t_off += pass)
	{
		a.Tn = T - a.t_off < pass ? T - a.t_off : pass;
		if (threads == 1 || a.Tn >= 64 * threads ||
			(a.Tn >= GEMM_NR * threads && (size_t) winograd_positions(m) * Cin * Cout <= WINO_SMALL_WEIGHTS))
		{
			a.phase = 0;
			run_parallel(ex, winograd_thread, &a);
		}
		else
			for (a.phase = 1; a.phase <= 3; a.phase++)
				run_parallel(ex, winograd_thread, &a);
	}
}
