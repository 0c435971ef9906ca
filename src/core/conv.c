/*
 * conv.c
 *	  Convolution-network layers (see conv.h): convolution by im2col and
 *	  SGEMM, max pooling, global average pooling, layout changes and the
 *	  fully connected head.  Activations are (C, B, H, W).
 */
#include "conv.h"

#include <cblas.h>
#include <float.h>
#include <string.h>

/*
 * The passes between matrix products (im2col, Winograd transforms,
 * bias/ReLU, pooling) are written as functions over a range of channels,
 * fn(args, begin, end).  They run on the calling thread: spreading them
 * over threads of our own was measured here and gained a few percent on
 * an idle machine but lost 10-20% when the cores were shared, as they are
 * between PostgreSQL backends (OpenBLAS's own threads stay busy-waiting).
 */
typedef void (*range_fn) (const void *args, int begin, int end);

static inline void
run_range(int n, range_fn fn, const void *args)
{
	if (n > 0)
		fn(args, 0, n);
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
 * where the tap falls into the padding.
 */
typedef struct im2col_args
{
	float	   *col;
	const float *inp;
	int			B,
				b0,
				G,
				H,
				W,
				k,
				stride,
				pad,
				Ho,
				Wo;
} im2col_args;

static void
im2col_range(const void *args, int c_begin, int c_end)
{
	const im2col_args *a = args;
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

	for (int c = c_begin; c < c_end; c++)
		for (int ki = 0; ki < k; ki++)
			for (int kj = 0; kj < k; kj++)
			{
				float	   *dst = col + ((size_t) (c * k + ki) * k + kj) * ncols;
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

static void
im2col_cbhw(float *col, const float *inp, int B, int b0, int G,
			int Cin, int H, int W, int k, int stride, int pad, int Ho, int Wo)
{
	im2col_args a = {col, inp, B, b0, G, H, W, k, stride, pad, Ho, Wo};

	run_range(Cin, im2col_range, &a);
}

typedef struct epilogue_args
{
	float	   *out;
	const float *bias;
	const float *residual;
	int			relu;
	size_t		N;
} epilogue_args;

static void
epilogue_range(const void *args, int c_begin, int c_end)
{
	const epilogue_args *a = args;
	float	   *out = a->out;
	const float *bias = a->bias,
			   *residual = a->residual;
	int			relu = a->relu;
	size_t		N = a->N;

	for (int c = c_begin; c < c_end; c++)
	{
		float	   *row = out + (size_t) c * N;
		const float *res = residual ? residual + (size_t) c * N : NULL;
		float		b = bias ? bias[c] : 0.0f;

		if (res)
			for (size_t i = 0; i < N; i++)
				row[i] += b + res[i];
		else if (b != 0.0f)
			for (size_t i = 0; i < N; i++)
				row[i] += b;
		if (relu)
			for (size_t i = 0; i < N; i++)
				row[i] = row[i] > 0.0f ? row[i] : 0.0f;
	}
}

/*
 * Adds bias (and residual), then applies the ReLU, over out: (Cout, N).
 */
static void
bias_residual_relu(float *out, const float *bias, const float *residual,
				   int relu, int Cout, size_t N)
{
	epilogue_args a = {out, bias, residual, relu, N};

	run_range(Cout, epilogue_range, &a);
}

/*
 * Convolution (see conv.h).  A 1x1 stride-1 convolution multiplies the
 * weights with the whole batch in place; otherwise groups of images are
 * unfolded with im2col and each group's output columns are written by one
 * SGEMM straight into their place in out (ldc = B*Ho*Wo).
 */
void
conv2d_forward(float *out, const float *inp, const float *weight,
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
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
					Cout, (int) N, Cin, 1.0f, weight, Cin, inp, (int) N,
					0.0f, out, (int) N);
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

			im2col_cbhw(col, inp, B, b0, g, Cin, H, W, k, stride, pad, Ho, Wo);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
						Cout, (int) (g * HoWo), K, 1.0f, weight, K,
						col, (int) (g * HoWo),
						0.0f, out + b0 * HoWo, (int) N);
		}
	}
	bias_residual_relu(out, bias, residual, relu, Cout, N);
}

/*
 * Max pooling (see conv.h): each (channel, image) plane separately.
 */
typedef struct maxpool_args
{
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

	for (size_t p = p_begin; p < (size_t) p_end; p++)
	{
		const float *src = inp + p * H * W;
		float	   *dst = out + p * Ho * Wo;

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

void
maxpool2d_forward(float *out, const float *inp, int C, int B,
				  int H, int W, int k, int stride, int pad)
{
	maxpool_args a = {out, inp, H, W, k, stride, pad};

	run_range(C * B, maxpool_range, &a);
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
 * Fully connected layer: out (B, OC) = inp (B, IC) x weight (OC, IC)^T + bias.
 */
void
linear_forward(float *out, const float *inp, const float *weight,
			   const float *bias, int B, int IC, int OC)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				B, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
	if (bias)
		for (int b = 0; b < B; b++)
			for (int o = 0; o < OC; o++)
				out[(size_t) b * OC + o] += bias[o];
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
winograd_floats(int C, int B, int H, int W)
{
	return (size_t) 16 * C * B * ((H + 1) / 2) * ((W + 1) / 2);
}

typedef struct winograd_args
{
	float	   *out;
	const float *inp;
	const float *bias;
	const float *residual;
	int			relu,
				B,
				Cin,
				H,
				W,
				Cout;
	float	   *V;
	const float *M;
} winograd_args;

/* Input transform of channels [c_begin, c_end): V[p][c][t] = (B^T d B)[p] */
static void
winograd_input_range(const void *args, int c_begin, int c_end)
{
	const winograd_args *a = args;
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

	for (int c = c_begin; c < c_end; c++)
		for (int b = 0; b < B; b++)
		{
			const float *plane = inp + ((size_t) c * B + b) * HW;

			for (int ty = 0; ty < th; ty++)
				for (int tx = 0; tx < tw; tx++)
				{
					size_t		t = ((size_t) b * th + ty) * tw + tx;
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
						size_t		step = (size_t) Cin * T;

						v[0] = r[i][0] - r[i][2];
						v[step] = r[i][1] + r[i][2];
						v[2 * step] = r[i][2] - r[i][1];
						v[3 * step] = r[i][1] - r[i][3];
					}
				}
		}
}

/*
 * Output transform of channels [o_begin, o_end): A^T m A with
 * A^T = [1 1 1 0; 0 1 -1 -1], + bias, residual, ReLU.
 */
static void
winograd_output_range(const void *args, int o_begin, int o_end)
{
	const winograd_args *a = args;
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

	for (int o = o_begin; o < o_end; o++)
	{
		float		bo = bias ? bias[o] : 0.0f;

		for (int b = 0; b < B; b++)
		{
			float	   *oplane = out + ((size_t) o * B + b) * HW;
			const float *rplane = residual ? residual + ((size_t) o * B + b) * HW : NULL;

			for (int ty = 0; ty < th; ty++)
				for (int tx = 0; tx < tw; tx++)
				{
					size_t		t = ((size_t) b * th + ty) * tw + tx;
					const float *mp = M + (size_t) o * T + t;
					size_t		step = (size_t) Cout * T;
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
}

/*
 * Winograd F(2x2, 3x3) convolution (see conv.h).  Tiles are numbered
 * t = (b * th + ty) * tw + tx; V: (16, Cin, T), M: (16, Cout, T).
 */
void
conv2d_winograd_forward(float *out, const float *inp, const float *U,
						const float *bias, const float *residual, int relu,
						int B, int Cin, int H, int W, int Cout,
						float *V, float *M)
{
	winograd_args a = {out, inp, bias, residual, relu, B, Cin, H, W, Cout, V, M};
	size_t		T = (size_t) B * ((H + 1) / 2) * ((W + 1) / 2);

	run_range(Cin, winograd_input_range, &a);

	/* 16 products: M[p] (Cout, T) = U[p] (Cout, Cin) x V[p] (Cin, T) */
	for (int p = 0; p < 16; p++)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
					Cout, (int) T, Cin, 1.0f, U + (size_t) p * Cout * Cin, Cin,
					V + (size_t) p * Cin * T, (int) T,
					0.0f, M + (size_t) p * Cout * T, (int) T);

	run_range(Cout, winograd_output_range, &a);
}
