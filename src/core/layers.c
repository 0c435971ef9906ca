/*
 * layers.c
 *	  Forward passes of the neural-network layers (see layers.h).
 *
 * The products of training (matmul_forward, matmul_backward and the
 * attention of attention_forward_train and attention_backward) run on
 * sgemm.c, the project's kernels, on the threads of the pool they are
 * given; those of the BERT inference path that serves unpacked weights
 * (matmul_forward_cols, attention_forward, attention_head_forward) on
 * CBLAS (OpenBLAS).  The rest are simple loops that the compiler
 * vectorizes.
 */
#include "layers.h"
#include "layers_isa.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "sgemm.h"

/*
 * Sum of n floats, and sum of squared deviations from mean, each in 8
 * interleaved partial sums, which the compiler turns into vector adds (a
 * single running sum would have to stay scalar to keep its rounding order).
 */
static inline float
sum8(const float *x, int n)
{
	float		acc[8] = {0};
	float		sum = 0.0f;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			acc[j] += x[i + j];
	for (; i < n; i++)
		sum += x[i];
	return sum + ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
		((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static inline float
sumsq8(const float *x, float mean, int n)
{
	float		acc[8] = {0};
	float		sum = 0.0f;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
		{
			float		d = x[i + j] - mean;

			acc[j] += d * d;
		}
	for (; i < n; i++)
	{
		float		d = x[i] - mean;

		sum += d * d;
	}
	return sum + ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
		((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void
embeddings_forward(float *out, const int32_t *ids, const int32_t *token_types,
				   const float *wte, const float *wpe, const float *wtt,
				   int B, int T, int C)
{
	for (int b = 0; b < B; b++)
	{
		for (int t = 0; t < T; t++)
		{
			long		bt = (long) b * T + t;
			float	   *o = out + bt * C;
			const float *w = wte + (long) ids[bt] * C;
			const float *p = wpe + (long) t * C;
			const float *s = wtt + (long) (token_types ? token_types[bt] : 0) * C;

			for (int i = 0; i < C; i++)
				o[i] = w[i] + s[i] + p[i];
		}
	}
}

void
layernorm_forward(float *out, const float *inp, const float *weight,
				  const float *bias, int N, int C, float eps)
{
	for (int n = 0; n < N; n++)
	{
		const float *x = inp + (long) n * C;
		float	   *o = out + (long) n * C;
		float		mean;
		float		var;
		float		rstd;

		mean = sum8(x, C) / C;
		var = sumsq8(x, mean, C) / C;
		rstd = 1.0f / sqrtf(var + eps);
		for (int i = 0; i < C; i++)
			o[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
	}
}

/*
 * Columns [o0, o1) of every row of out (N, OC) set to the bias (or zero),
 * for a product to accumulate onto: one pass over out instead of the
 * product's own beta pass plus a bias pass.
 */
static void
fill_bias(float *out, const float *bias, int N, int OC, int o0, int o1)
{
	for (int n = 0; n < N; n++)
	{
		float	   *o = out + (long) n * OC + o0;

		if (bias != NULL)
			memcpy(o, bias + o0, (o1 - o0) * sizeof(float));
		else
			memset(o, 0, (o1 - o0) * sizeof(float));
	}
}

void
matmul_forward_cols(float *out, const float *inp, const float *weight,
					const float *bias, int N, int C, int OC, int o0, int o1)
{
	int			width = o1 - o0;

	if (width <= 0)
		return;
	fill_bias(out, bias, N, OC, o0, o1);
	/* out[:, o0:o1] (N,width) += inp (N,C) . weight[o0:o1]^T (C,width) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, width, C,
				1.0f, inp, C, weight + (long) o0 * C, C, 1.0f, out + o0, OC);
}

void
matmul_forward(mmsa_pool *pool, float *out, const float *inp, const float *weight,
			   const float *bias, int N, int C, int OC)
{
	fill_bias(out, bias, N, OC, 0, OC);
	/* out (N,OC) += inp (N,C) . weight^T (C,OC) */
	mmsa_sgemm(pool, SGEMM_N, SGEMM_T, N, OC, C, 1.0f, inp, C, weight, C, 1.0f, out, OC);
}

/* GELU, by the kernels of the path in use (layers_isa.h). */
void
gelu_forward(float *out, const float *inp, long N)
{
	mmsa_layer_kernels()->gelu(out, inp, N);
}

void
tanh_forward(float *out, const float *inp, long N)
{
	for (long i = 0; i < N; i++)
		out[i] = tanhf(inp[i]);
}

void
residual_forward(float *out, const float *a, const float *b, long N)
{
	for (long i = 0; i < N; i++)
		out[i] = a[i] + b[i];
}

/* Softmax of one row of n values, in place. */
static inline void
softmax_row(float *x, int n)
{
	float		maxval = -INFINITY;
	float		sum = 0.0f;
	float		scale;

	for (int i = 0; i < n; i++)
		if (x[i] > maxval)
			maxval = x[i];
	for (int i = 0; i < n; i++)
	{
		x[i] = expf(x[i] - maxval);
		sum += x[i];
	}
	scale = 1.0f / sum;
	for (int i = 0; i < n; i++)
		x[i] *= scale;
}

void
softmax_forward(float *x, int N, int C)
{
	for (int n = 0; n < N; n++)
		softmax_row(x + (long) n * C, C);
}

void
attention_mask_forward(float *out, const int32_t *mask, int B, int T)
{
	for (long i = 0; i < (long) B * T; i++)
		out[i] = (mask == NULL || mask[i] != 0) ? 0.0f : -FLT_MAX;
}

/* Each row of att (T,T) plus addmask (T), then its softmax, in place. */
static void
masked_softmax_rows(float *att, const float *addmask, int T)
{
	for (int t = 0; t < T; t++)
	{
		float	   *row = att + (long) t * T;

		for (int s = 0; s < T; s++)
			row[s] += addmask[s];
		softmax_row(row, T);
	}
}

void
attention_head_forward(float *out, const float *q, const float *k,
					   const float *v, const float *addmask, float *att,
					   int T, int C, int hs)
{
	float		scale = 1.0f / sqrtf((float) hs);

	/* att (T,T) = q_h (T,hs) . k_h^T (hs,T) / sqrt(hs) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs,
				scale, q, C, k, C, 0.0f, att, T);
	masked_softmax_rows(att, addmask, T);
	/* out_h (T,hs) = att (T,T) . v_h (T,hs) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T,
				1.0f, att, T, v, C, 0.0f, out, C);
}

void
attention_forward(float *out, const float *q, const float *k, const float *v,
				  const float *addmask, float *att, int B, int T, int C, int NH)
{
	int			hs = C / NH;

	for (int b = 0; b < B; b++)
	{
		for (int h = 0; h < NH; h++)
		{
			long		off = (long) b * T * C + (long) h * hs;

			attention_head_forward(out + off, q + off, k + off, v + off,
								   addmask + (long) b * T,
								   att + (long) h * T * T, T, C, hs);
		}
	}
}

/* ---------------------------------------------------------------------
 * Training: forwards that keep activations, and backward passes
 * ---------------------------------------------------------------------
 */

void
embeddings_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
					const int32_t *ids, const int32_t *token_types,
					int pad_id, int B, int T, int C)
{
	for (int b = 0; b < B; b++)
	{
		for (int t = 0; t < T; t++)
		{
			long		bt = (long) b * T + t;
			const float *d = dout + bt * C;

			if (dwte != NULL && ids[bt] != pad_id)
			{
				float	   *w = dwte + (long) ids[bt] * C;

				for (int i = 0; i < C; i++)
					w[i] += d[i];
			}
			if (dwpe != NULL)
			{
				float	   *p = dwpe + (long) t * C;

				for (int i = 0; i < C; i++)
					p[i] += d[i];
			}
			if (dwtt != NULL)
			{
				float	   *s = dwtt + (long) (token_types ? token_types[bt] : 0) * C;

				for (int i = 0; i < C; i++)
					s[i] += d[i];
			}
		}
	}
}

void
layernorm_forward_train(float *out, float *mean, float *rstd, const float *inp,
						const float *weight, const float *bias, int N, int C,
						float eps)
{
	for (int n = 0; n < N; n++)
	{
		const float *x = inp + (long) n * C;
		float	   *o = out + (long) n * C;
		float		m;
		float		var;
		float		s;

		/* the same sums as layernorm_forward, so the same values */
		m = sum8(x, C) / C;
		var = sumsq8(x, m, C) / C;
		s = 1.0f / sqrtf(var + eps);
		for (int i = 0; i < C; i++)
			o[i] = (x[i] - m) * s * weight[i] + bias[i];
		mean[n] = m;
		rstd[n] = s;
	}
}

/*
 * With xhat = (x - mean) rstd and g = dout * weight:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)).
 */
void
layernorm_backward(float *dinp, float *dweight, float *dbias,
				   const float *dout, const float *inp, const float *weight,
				   const float *mean, const float *rstd, int N, int C)
{
	for (int n = 0; n < N; n++)
	{
		const float *x = inp + (long) n * C;
		const float *d = dout + (long) n * C;
		float		m = mean[n];
		float		s = rstd[n];
		float		g_mean = 0.0f;
		float		gx_mean = 0.0f;

		for (int i = 0; i < C; i++)
		{
			float		xhat = (x[i] - m) * s;
			float		g = d[i] * weight[i];

			g_mean += g;
			gx_mean += g * xhat;
			if (dweight != NULL)
				dweight[i] += d[i] * xhat;
			if (dbias != NULL)
				dbias[i] += d[i];
		}
		g_mean /= C;
		gx_mean /= C;
		if (dinp != NULL)
		{
			float	   *dx = dinp + (long) n * C;

			for (int i = 0; i < C; i++)
			{
				float		xhat = (x[i] - m) * s;

				dx[i] += s * (d[i] * weight[i] - g_mean - xhat * gx_mean);
			}
		}
	}
}

void
matmul_backward(mmsa_pool *pool, float *dinp, float *dweight, float *dbias,
				const float *dout, const float *inp, const float *weight,
				int N, int C, int OC)
{
	/* dinp (N,C) += dout (N,OC) . weight (OC,C) */
	if (dinp != NULL)
		mmsa_sgemm(pool, SGEMM_N, SGEMM_N, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
	/* dweight (OC,C) += dout^T (OC,N) . inp (N,C) */
	if (dweight != NULL)
		mmsa_sgemm(pool, SGEMM_T, SGEMM_N, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
	if (dbias != NULL)
		for (int n = 0; n < N; n++)
		{
			const float *d = dout + (long) n * OC;

			for (int o = 0; o < OC; o++)
				dbias[o] += d[o];
		}
}

NON_TRAPPING_MATH
void
gelu_backward(float *dinp, const float *inp, const float *dout, long N)
{
	const float inv_sqrt2 = 0.70710678118654752f;
	const float inv_sqrt_2pi = 0.39894228040143268f;

	for (long i = 0; i < N; i++)
	{
		float		x = inp[i];
		float		cdf = 0.5f * (1.0f + erf_approx(x * inv_sqrt2));
		float		pdf = inv_sqrt_2pi * expf(-0.5f * x * x);

		dinp[i] += dout[i] * (cdf + x * pdf);
	}
}

void
tanh_backward(float *dinp, const float *out, const float *dout, long N)
{
	for (long i = 0; i < N; i++)
		dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void
residual_backward(float *da, float *db, const float *dout, long N)
{
	for (long i = 0; i < N; i++)
	{
		if (da != NULL)
			da[i] += dout[i];
		if (db != NULL)
			db[i] += dout[i];
	}
}

/* splitmix64's output function */
static inline uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 24 bits, a function of (seed, i) only. */
float
dropout_uniform(uint64_t seed, uint64_t i)
{
	uint64_t	z = mix64(seed + (i + 1) * 0x9E3779B97F4A7C15ULL);

	return (float) (z >> 40) * (1.0f / 16777216.0f);
}

uint64_t
dropout_site_seed(uint64_t step_seed, uint64_t site)
{
	return mix64(mix64(step_seed) ^ (site * 0xD1B54A32D192ED03ULL + 1));
}

void
dropout_forward(float *out, const float *inp, float p, uint64_t seed, long N)
{
	dropout_forward_range(out, inp, p, seed, 0, N);
}

void
dropout_forward_range(float *out, const float *inp, float p, uint64_t seed,
					  long lo, long hi)
{
	float		scale;

	if (p <= 0.0f)
	{
		if (out != inp && hi > lo)
			memcpy(out + lo, inp + lo, (hi - lo) * sizeof(float));
		return;
	}
	scale = 1.0f / (1.0f - p);
	for (long i = lo; i < hi; i++)
		out[i] = dropout_uniform(seed, (uint64_t) i) < p ? 0.0f : inp[i] * scale;
}

void
dropout_backward(float *dinp, const float *dout, float p, uint64_t seed, long N)
{
	dropout_backward_range(dinp, dout, p, seed, 0, N);
}

void
dropout_backward_range(float *dinp, const float *dout, float p, uint64_t seed,
					   long lo, long hi)
{
	float		scale;

	if (p <= 0.0f)
	{
		for (long i = lo; i < hi; i++)
			dinp[i] += dout[i];
		return;
	}
	scale = 1.0f / (1.0f - p);
	for (long i = lo; i < hi; i++)
		if (dropout_uniform(seed, (uint64_t) i) >= p)
			dinp[i] += dout[i] * scale;
}

/*
 * The masked attention probabilities at att (T,T), dropped into dst (T,T)
 * where element (t,s) has counter base + t*T + s.
 */
static void
attention_dropout(float *dst, const float *att, int T, float p, uint64_t seed,
				  uint64_t base)
{
	float		scale = 1.0f / (1.0f - p);

	for (long i = 0; i < (long) T * T; i++)
		dst[i] = dropout_uniform(seed, base + (uint64_t) i) < p ? 0.0f : att[i] * scale;
}

/*
 * One (batch row, head) of attention_forward_train on sgemm.c, on the
 * calling thread: a (T,T) left holding the probabilities, out_h (T,hs)
 * their product with v_h, after dropout into drop (T,T) when p > 0
 * (element i by dropout_uniform(seed, base + i)).
 */
static void
head_forward_train(float *out, float *a, float *drop, const float *q,
				   const float *k, const float *v, const float *addmask,
				   int T, int C, int hs, float p, uint64_t seed, uint64_t base)
{
	float		scale = 1.0f / sqrtf((float) hs);

	/* a (T,T) = q_h (T,hs) . k_h^T (hs,T) / sqrt(hs) */
	mmsa_sgemm(NULL, SGEMM_N, SGEMM_T, T, T, hs, scale, q, C, k, C, 0.0f, a, T);
	masked_softmax_rows(a, addmask, T);
	if (p > 0.0f)
	{
		attention_dropout(drop, a, T, p, seed, base);
		a = drop;
	}
	/* out_h (T,hs) = a (T,T) . v_h (T,hs) */
	mmsa_sgemm(NULL, SGEMM_N, SGEMM_N, T, hs, T, 1.0f, a, T, v, C, 0.0f, out, C);
}

/*
 * Gradient of one (batch row, head) of attention_forward_train, on the
 * calling thread; scratch: (2,T,T).
 */
static void
head_backward(float *dq, float *dk, float *dv, float *scratch,
			  const float *dout, const float *q, const float *k, const float *v,
			  const float *a, int T, int C, int hs, float p, uint64_t seed,
			  uint64_t base)
{
	float		scale = 1.0f / sqrtf((float) hs);
	float	   *dropped = scratch;
	float	   *datt = scratch + (long) T * T;
	const float *d = a;

	if (p > 0.0f)
	{
		attention_dropout(dropped, a, T, p, seed, base);
		d = dropped;
	}
	/* dv_h (T,hs) += D^T (T,T) . dout_h (T,hs) */
	mmsa_sgemm(NULL, SGEMM_T, SGEMM_N, T, hs, T, 1.0f, d, T, dout, C, 1.0f, dv, C);
	/* datt (T,T) = dout_h (T,hs) . v_h^T (hs,T) */
	mmsa_sgemm(NULL, SGEMM_N, SGEMM_T, T, T, hs, 1.0f, dout, C, v, C, 0.0f, datt, T);
	if (p > 0.0f)
	{
		float		keep_scale = 1.0f / (1.0f - p);

		for (long i = 0; i < (long) T * T; i++)
			datt[i] = dropout_uniform(seed, base + (uint64_t) i) < p
				? 0.0f : datt[i] * keep_scale;
	}
	/* softmax backward, row by row */
	for (int t = 0; t < T; t++)
	{
		const float *ar = a + (long) t * T;
		float	   *dr = datt + (long) t * T;
		float		dot = 0.0f;

		for (int s = 0; s < T; s++)
			dot += dr[s] * ar[s];
		for (int s = 0; s < T; s++)
			dr[s] = ar[s] * (dr[s] - dot);
	}
	/* dq_h (T,hs) += dS (T,T) . k_h (T,hs) / sqrt(hs) */
	mmsa_sgemm(NULL, SGEMM_N, SGEMM_N, T, hs, T, scale, datt, T, k, C, 1.0f, dq, C);
	/* dk_h (T,hs) += dS^T (T,T) . q_h (T,hs) / sqrt(hs) */
	mmsa_sgemm(NULL, SGEMM_T, SGEMM_N, T, hs, T, scale, datt, T, q, C, 1.0f, dk, C);
}

/* The (batch row, head) pairs of a training attention pass. */
typedef struct attention_job
{
	int			backward;
	float	   *out,			/* forward: out; backward: dq, dk, dv */
			   *att,
			   *dk,
			   *dv;
	float	   *scratch;		/* per thread: (T,T) forward, (2,T,T) backward */
	const float *dout,
			   *q,
			   *k,
			   *v,
			   *addmask;
	int			B,
				T,
				C,
				NH;
	float		p;
	uint64_t	seed;
} attention_job;

static void
attention_thread(void *arg, int thread, int nthreads)
{
	const attention_job *j = arg;
	int			T = j->T,
				hs = j->C / j->NH;
	long		TT = (long) T * T,
				lo,
				hi;
	float	   *scratch = j->scratch + (j->backward ? 2 : 1) * TT * thread;

	mmsa_pool_share((long) j->B * j->NH, thread, nthreads, 1, &lo, &hi);
	for (long bh = lo; bh < hi; bh++)
	{
		long		b = bh / j->NH,
					h = bh % j->NH;
		long		off = b * T * j->C + h * hs;

		if (j->backward)
			head_backward(j->out + off, j->dk + off, j->dv + off, scratch,
						  j->dout + off, j->q + off, j->k + off, j->v + off,
						  j->att + bh * TT, T, j->C, hs, j->p, j->seed,
						  (uint64_t) (bh * TT));
		else
			head_forward_train(j->out + off, j->att + bh * TT, scratch, j->q + off,
							   j->k + off, j->v + off, j->addmask + b * T, T, j->C,
							   hs, j->p, j->seed, (uint64_t) (bh * TT));
	}
}

/* Runs job j's pairs on the pool's threads, or on the caller's alone. */
static void
attention_run(mmsa_pool *pool, attention_job *j)
{
	if (pool != NULL && mmsa_pool_size(pool) > 1 && j->B * j->NH > 1)
		mmsa_pool_run(pool, attention_thread, j);
	else
		attention_thread(j, 0, 1);
}

void
attention_forward_train(mmsa_pool *pool, float *out, float *att, float *scratch,
						const float *q, const float *k, const float *v,
						const float *addmask, int B, int T, int C, int NH,
						float p, uint64_t seed)
{
	attention_job j = {.backward = 0, .out = out, .att = att, .scratch = scratch,
		.q = q, .k = k, .v = v, .addmask = addmask, .B = B, .T = T, .C = C,
	.NH = NH, .p = p, .seed = seed};

	attention_run(pool, &j);
}

/*
 * Per (batch row, head), with A the probabilities, D = dropout(A) and
 * S = q k^T / sqrt(hs) + mask:
 *	 dv += D^T dout;  dD = dout v^T;  dA = dropout_backward(dD);
 *	 dS = A * (dA - rowsum(dA * A));  dq += dS k / sqrt(hs);
 *	 dk += dS^T q / sqrt(hs).
 */
void
attention_backward(mmsa_pool *pool, float *dq, float *dk, float *dv, float *scratch,
				   const float *dout, const float *q, const float *k,
				   const float *v, const float *att, int B, int T, int C,
				   int NH, float p, uint64_t seed)
{
	attention_job j = {.backward = 1, .out = dq, .dk = dk, .dv = dv,
		.att = (float *) att, .scratch = scratch, .dout = dout, .q = q, .k = k,
	.v = v, .B = B, .T = T, .C = C, .NH = NH, .p = p, .seed = seed};

	attention_run(pool, &j);
}

float
crossentropy_forward(float *probs, const float *logits, const int32_t *targets,
					 const float *class_weights, int N, int V)
{
	double		loss = 0.0;
	double		wsum = 0.0;

	for (int n = 0; n < N; n++)
	{
		float	   *pr = probs + (long) n * V;
		int32_t		y = targets[n];
		double		w;

		if (pr != logits + (long) n * V)
			memcpy(pr, logits + (long) n * V, V * sizeof(float));
		softmax_row(pr, V);
		if (y < 0)
			continue;
		w = class_weights ? class_weights[y] : 1.0;
		/* -log softmax from the logits, exact also for tiny probabilities */
		{
			const float *lg = logits == probs ? NULL : logits + (long) n * V;
			double		nll;

			if (lg != NULL)
			{
				float		maxval = -INFINITY;
				double		sum = 0.0;

				for (int i = 0; i < V; i++)
					if (lg[i] > maxval)
						maxval = lg[i];
				for (int i = 0; i < V; i++)
					sum += exp((double) lg[i] - maxval);
				nll = log(sum) - ((double) lg[y] - maxval);
			}
			else
				nll = -log(pr[y] > 0.0f ? (double) pr[y] : (double) FLT_MIN);
			loss += w * nll;
		}
		wsum += w;
	}
	return wsum > 0.0 ? (float) (loss / wsum) : 0.0f;
}

void
crossentropy_backward(float *dlogits, const float *probs,
					  const int32_t *targets, const float *class_weights,
					  int N, int V, float dloss)
{
	double		wsum = 0.0;

	for (int n = 0; n < N; n++)
		if (targets[n] >= 0)
			wsum += class_weights ? class_weights[targets[n]] : 1.0;
	if (wsum <= 0.0)
		return;
	for (int n = 0; n < N; n++)
	{
		int32_t		y = targets[n];
		const float *pr = probs + (long) n * V;
		float	   *d = dlogits + (long) n * V;
		float		g;

		if (y < 0)
			continue;
		g = (float) (dloss * (class_weights ? class_weights[y] : 1.0) / wsum);
		for (int i = 0; i < V; i++)
			d[i] += g * pr[i];
		d[y] -= g;
	}
}
