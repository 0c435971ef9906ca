/*
 * test_bert.c
 *	  The layer functions (layers.c) against direct double-precision loops,
 *	  and the BERT model object (bert.c) on a tiny random checkpoint written
 *	  here: buffer reuse across batch shapes, padding independence, input
 *	  validation, cancellation and a checkpoint without pooler; and its int8
 *	  form (bert_int8.c): the sidecar written, mapped and refused when
 *	  missing, truncated or corrupt, the int8 forward pass against fp32
 *	  within a stated bound, the same bit for bit on every kernel path.
 *	  The comparison with PyTorch is test/t/bert_reference.t.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>

#include "bert.h"
#include "cpu.h"
#include "layers.h"
#include "qgemm_isa.h"
#include "safetensors.h"
#include "tap.h"

static unsigned rng_state = 1;

/* Uniform in [-scale, scale). */
static float
rnd(float scale)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return scale * ((float) (rng_state >> 8) / (float) (1 << 24) * 2.0f - 1.0f);
}

static float *
rnd_array(long n, float scale)
{
	float	   *a = malloc(n * sizeof(float));

	for (long i = 0; i < n; i++)
		a[i] = rnd(scale);
	return a;
}

/* ---- layers against direct loops ---------------------------------------- */

static void
test_matmul(void)
{
	int			N = 7,
				C = 13,
				OC = 5;
	float	   *x = rnd_array(N * C, 1),
			   *w = rnd_array(OC * C, 1),
			   *b = rnd_array(OC, 1),
			   *out = rnd_array(N * OC, 100),	/* garbage must be overwritten */
			   *want = malloc(N * OC * sizeof(float));

	for (int n = 0; n < N; n++)
		for (int o = 0; o < OC; o++)
		{
			double		s = b[o];

			for (int c = 0; c < C; c++)
				s += (double) x[n * C + c] * w[o * C + c];
			want[n * OC + o] = (float) s;
		}
	matmul_forward(NULL, out, x, w, b, N, C, OC);
	tap_close_within(out, want, N * OC, 1e-5, "matmul_forward with bias");
	for (int i = 0; i < N * OC; i++)
		want[i] -= b[i % OC];
	matmul_forward(NULL, out, x, w, NULL, N, C, OC);
	tap_close_within(out, want, N * OC, 1e-5, "matmul_forward without bias");
	free(x);
	free(w);
	free(b);
	free(out);
	free(want);
}

static void
test_layernorm(void)
{
	int			N = 5,
				C = 37;
	float	   *x = rnd_array(N * C, 3),
			   *w = rnd_array(C, 1),
			   *b = rnd_array(C, 1),
			   *out = malloc(N * C * sizeof(float)),
			   *want = malloc(N * C * sizeof(float));

	for (int n = 0; n < N; n++)
	{
		double		mean = 0,
					var = 0;

		for (int c = 0; c < C; c++)
			mean += x[n * C + c];
		mean /= C;
		for (int c = 0; c < C; c++)
			var += (x[n * C + c] - mean) * (x[n * C + c] - mean);
		var /= C;
		for (int c = 0; c < C; c++)
			want[n * C + c] = (float) ((x[n * C + c] - mean) / sqrt(var + 1e-12) * w[c] + b[c]);
	}
	layernorm_forward(out, x, w, b, N, C, 1e-12f);
	tap_close_within(out, want, N * C, 1e-5, "layernorm_forward");
	layernorm_forward(x, x, w, b, N, C, 1e-12f);
	tap_close_within(x, want, N * C, 1e-5, "layernorm_forward in place");
	free(x);
	free(w);
	free(b);
	free(out);
	free(want);
}

static void
test_gelu_tanh(void)
{
	long		n = 200001;
	float	   *x = malloc(n * sizeof(float)),
			   *out = malloc(n * sizeof(float)),
			   *want = malloc(n * sizeof(float));

	/* -10 .. 10, plus the clamp boundary of the erf approximation */
	for (long i = 0; i < n; i++)
		x[i] = -10.0f + 20.0f * (float) i / (float) (n - 1);
	x[0] = -4.0f * (float) M_SQRT2;
	x[1] = 4.0f * (float) M_SQRT2;
	x[2] = 0.0f;
	for (long i = 0; i < n; i++)
		want[i] = (float) (0.5 * x[i] * (1.0 + erf(x[i] / M_SQRT2)));
	gelu_forward(out, x, n);
	tap_close_within(out, want, n, 2e-6, "gelu_forward (erf form) on [-10, 10]");
	for (long i = 0; i < n; i++)
		want[i] = (float) tanh(x[i]);
	tanh_forward(out, x, n);
	tap_close_within(out, want, n, 1e-6, "tanh_forward");
	free(x);
	free(out);
	free(want);
}

static void
test_softmax_residual(void)
{
	int			N = 3,
				C = 11;
	float	   *x = rnd_array(N * C, 20),
			   *want = malloc(N * C * sizeof(float)),
			   *y = rnd_array(N * C, 1),
			   *sum = malloc(N * C * sizeof(float));

	for (int n = 0; n < N; n++)
	{
		double		m = -INFINITY,
					s = 0;

		for (int c = 0; c < C; c++)
			m = fmax(m, x[n * C + c]);
		for (int c = 0; c < C; c++)
			s += exp(x[n * C + c] - m);
		for (int c = 0; c < C; c++)
			want[n * C + c] = (float) (exp(x[n * C + c] - m) / s);
	}
	for (int i = 0; i < N * C; i++)
		sum[i] = x[i] + y[i];
	residual_forward(y, y, x, N * C);
	tap_close_within(y, sum, N * C, 0, "residual_forward");
	softmax_forward(x, N, C);
	tap_close_within(x, want, N * C, 1e-6, "softmax_forward");
	free(x);
	free(want);
	free(y);
	free(sum);
}

/* Direct multi-head attention with a 0/1 mask, in double. */
static void
attention_direct(float *out, const float *q, const float *k, const float *v,
				 const int32_t *mask, int B, int T, int C, int NH)
{
	int			hs = C / NH;
	double	   *p = malloc(T * sizeof(double));

	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = 0; t < T; t++)
			{
				double		m = -INFINITY,
							s = 0;

				for (int u = 0; u < T; u++)
				{
					double		d = 0;

					for (int i = 0; i < hs; i++)
						d += (double) q[(b * T + t) * C + h * hs + i] * k[(b * T + u) * C + h * hs + i];
					p[u] = d / sqrt(hs) + (mask[b * T + u] ? 0.0 : -FLT_MAX);
					m = fmax(m, p[u]);
				}
				for (int u = 0; u < T; u++)
					s += (p[u] = exp(p[u] - m));
				for (int i = 0; i < hs; i++)
				{
					double		o = 0;

					for (int u = 0; u < T; u++)
						o += p[u] / s * v[(b * T + u) * C + h * hs + i];
					out[(b * T + t) * C + h * hs + i] = (float) o;
				}
			}
	free(p);
}

static void
test_attention(void)
{
	int			B = 3,
				T = 6,
				C = 12,
				NH = 3;
	int32_t		mask[18] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	float	   *q = rnd_array(B * T * C, 2),
			   *k = rnd_array(B * T * C, 2),
			   *v = rnd_array(B * T * C, 1),
			   *out = malloc(B * T * C * sizeof(float)),
			   *want = malloc(B * T * C * sizeof(float)),
			   *att = malloc(NH * T * T * sizeof(float)),
			   addmask[18];
	int			uniform = 1;

	attention_mask_forward(addmask, mask, B, T);
	ok(addmask[0] == 0.0f && addmask[9] == -FLT_MAX,
	   "attention_mask_forward: 0 where attended, -FLT_MAX where masked");
	attention_direct(want, q, k, v, mask, B, T, C, NH);
	attention_forward(out, q, k, v, addmask, att, B, T, C, NH);
	tap_close_within(out, want, B * T * C, 1e-5,
					 "attention_forward (3 heads, padded row, all-masked row)");
	/* an all-masked row attends uniformly, as in PyTorch */
	for (int t = 0; t < T; t++)
		for (int u = 0; u < T; u++)
			uniform &= fabsf(att[t * T + u] - 1.0f / T) < 1e-6f;
	ok(uniform, "attention_forward: all-masked row gives uniform probabilities");
	free(q);
	free(k);
	free(v);
	free(out);
	free(want);
	free(att);
}

static void
test_embeddings(void)
{
	int			B = 2,
				T = 3,
				C = 4;
	int32_t		ids[6] = {0, 4, 2, 3, 3, 1};
	int32_t		types[6] = {0, 1, 1, 0, 0, 1};
	float	   *wte = rnd_array(5 * C, 1),
			   *wpe = rnd_array(4 * C, 1),
			   *wtt = rnd_array(2 * C, 1),
			   out[24],
			   want[24];

	for (int i = 0; i < B * T; i++)
		for (int c = 0; c < C; c++)
			want[i * C + c] = wte[ids[i] * C + c] + wpe[(i % T) * C + c] + wtt[types[i] * C + c];
	embeddings_forward(out, ids, types, wte, wpe, wtt, B, T, C);
	tap_close_within(out, want, B * T * C, 1e-6, "embeddings_forward with token types");
	for (int i = 0; i < B * T; i++)
		for (int c = 0; c < C; c++)
			want[i * C + c] += wtt[c] - wtt[types[i] * C + c];
	embeddings_forward(out, ids, NULL, wte, wpe, wtt, B, T, C);
	tap_close_within(out, want, B * T * C, 1e-6, "embeddings_forward, token types NULL = 0");
	free(wte);
	free(wpe);
	free(wtt);
}

/* ---- the model on a tiny random checkpoint -------------------------------- */

#define V 50
#define C 64
#define NH 4
#define IC 128
#define L 2
#define P 10

static char tmpdir[] = "/tmp/mmsa-test-bert-XXXXXX";

/* Writes config.json and model.safetensors (with or without pooler). */
static int
write_tiny_model(const char *dir, int with_pooler)
{
	char		path[512];
	FILE	   *f;
	st_write_tensor t[64];
	float	   *arrays[64];
	char		names[64][96];
	int			n = 0;
	mmsa_error	err;
	mmsa_status status;

#define ADD(name_, d0, d1, base, scale) \
	do { \
		snprintf(names[n], sizeof(names[n]), "%s", (name_)); \
		arrays[n] = rnd_array((long) (d0) * ((d1) ? (d1) : 1), (scale)); \
		for (long i_ = 0; (base) != 0.0f && i_ < (long) (d0) * ((d1) ? (d1) : 1); i_++) \
			arrays[n][i_] += (base); \
		t[n] = (st_write_tensor) {names[n], ST_F32, (d1) ? 2 : 1, {(d0), (d1)}, arrays[n]}; \
		n++; \
	} while (0)

	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return 0;
	fprintf(f, "{\"vocab_size\": %d, \"hidden_size\": %d, \"num_hidden_layers\": %d,"
			" \"num_attention_heads\": %d, \"intermediate_size\": %d,"
			" \"max_position_embeddings\": %d, \"type_vocab_size\": 2,"
			" \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}\n",
			V, C, L, NH, IC, P);
	fclose(f);

	ADD("embeddings.word_embeddings.weight", V, C, 0.0f, 1.0f);
	ADD("embeddings.position_embeddings.weight", P, C, 0.0f, 1.0f);
	ADD("embeddings.token_type_embeddings.weight", 2, C, 0.0f, 1.0f);
	ADD("embeddings.LayerNorm.weight", C, 0, 1.0f, 0.2f);
	ADD("embeddings.LayerNorm.bias", C, 0, 0.0f, 0.2f);
	for (int l = 0; l < L; l++)
	{
		char		nm[96];

#define LAYER(what, d0, d1, base, scale) \
		do { \
			snprintf(nm, sizeof(nm), "encoder.layer.%d.%s", l, (what)); \
			ADD(nm, d0, d1, base, scale); \
		} while (0)
		LAYER("attention.self.query.weight", C, C, 0.0f, 0.5f);
		LAYER("attention.self.query.bias", C, 0, 0.0f, 0.1f);
		LAYER("attention.self.key.weight", C, C, 0.0f, 0.5f);
		LAYER("attention.self.key.bias", C, 0, 0.0f, 0.1f);
		LAYER("attention.self.value.weight", C, C, 0.0f, 0.5f);
		LAYER("attention.self.value.bias", C, 0, 0.0f, 0.1f);
		LAYER("attention.output.dense.weight", C, C, 0.0f, 0.5f);
		LAYER("attention.output.dense.bias", C, 0, 0.0f, 0.1f);
		LAYER("attention.output.LayerNorm.weight", C, 0, 1.0f, 0.2f);
		LAYER("attention.output.LayerNorm.bias", C, 0, 0.0f, 0.2f);
		LAYER("intermediate.dense.weight", IC, C, 0.0f, 0.5f);
		LAYER("intermediate.dense.bias", IC, 0, 0.0f, 0.1f);
		LAYER("output.dense.weight", C, IC, 0.0f, 0.5f);
		LAYER("output.dense.bias", C, 0, 0.0f, 0.1f);
		LAYER("output.LayerNorm.weight", C, 0, 1.0f, 0.2f);
		LAYER("output.LayerNorm.bias", C, 0, 0.0f, 0.2f);
#undef LAYER
	}
	if (with_pooler)
	{
		ADD("pooler.dense.weight", C, C, 0.0f, 0.5f);
		ADD("pooler.dense.bias", C, 0, 0.0f, 0.1f);
	}
#undef ADD
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	status = safetensors_write(path, t, n, NULL, NULL, 0, &err);
	for (int i = 0; i < n; i++)
		free(arrays[i]);
	return status == MMSA_OK;
}

static int	cancel_now = 0;

static int
cancel_hook(void)
{
	return cancel_now;
}

static void
test_model(void)
{
	char		dir[512],
				nopool[512];
	bert_model *m = NULL;
	mmsa_error	err;
	int32_t		ids[3 * P],
				mask[3 * P];
	float		hidden1[P * C],
				pooled1[C],
				hidden3[3 * P * C],
				pooled3[3 * C],
				again[P * C];
	int			T = 7;

	mmsa_clear_error(&err);
	snprintf(dir, sizeof(dir), "%s/with_pooler", tmpdir);
	snprintf(nopool, sizeof(nopool), "%s/without_pooler", tmpdir);
	if (mkdir(dir, 0700) != 0 || mkdir(nopool, 0700) != 0 ||
		!ok(write_tiny_model(dir, 1) && write_tiny_model(nopool, 0),
			"tiny checkpoints written"))
		return;
	if (!ok(bert_model_load(dir, &m, &err) == MMSA_OK, "bert_model_load"))
	{
		diag("%s", err.message);
		return;
	}
	ok(m->config.hidden_size == C && m->config.num_hidden_layers == L &&
	   fabsf(m->config.layer_norm_eps - 1e-12f) < 1e-18f, "config read");

	/* row 0: 5 real tokens then padding (garbage ids under mask 0) */
	for (int i = 0; i < T; i++)
	{
		ids[i] = (i * 7 + 3) % V;
		mask[i] = i < 5;
	}
	ok(bert_forward(m, ids, mask, 1, T, hidden1, pooled1, &err) == MMSA_OK, "forward B=1");

	/* the same row inside a batch of 3 of another padding, after a bigger call */
	for (int b = 1; b < 3; b++)
		for (int i = 0; i < T; i++)
		{
			ids[b * T + i] = (i * 11 + b) % V;
			mask[b * T + i] = i < T - b;
		}
	ok(bert_forward(m, ids, mask, 3, T, hidden3, pooled3, &err) == MMSA_OK, "forward B=3");
	tap_close_within(hidden3, hidden1, T * C, 1e-4, "row 0 alone and in a batch of 3 agree");
	tap_close_within(pooled3, pooled1, C, 1e-4, "pooled row 0 alone and in a batch of 3 agree");

	/* padded positions' ids do not change the real positions */
	ids[5] = 1;
	ids[6] = 2;
	ok(bert_forward(m, ids, mask, 1, T, again, NULL, &err) == MMSA_OK, "forward with other padding ids");
	tap_close_within(again, hidden1, 5 * C, 1e-6, "ids under mask 0 do not change the real positions");

	/* work buffers reused: a smaller call after a bigger one is unchanged */
	ids[5] = (5 * 7 + 3) % V;
	ids[6] = (6 * 7 + 3) % V;
	ok(bert_forward(m, ids, mask, 1, T, again, NULL, &err) == MMSA_OK &&
	   memcmp(again, hidden1, sizeof(again[0]) * T * C) == 0,
	   "same input, same output after the buffers grew");

	/* validation */
	ids[3] = V;
	ok(bert_forward(m, ids, mask, 1, T, again, NULL, &err) == MMSA_ERR_INVALID &&
	   strstr(err.message, "vocabulary") != NULL, "id = vocab_size rejected: %s", err.message);
	ids[3] = -5;
	ok(bert_forward(m, ids, mask, 1, T, again, NULL, &err) == MMSA_ERR_INVALID,
	   "negative id rejected: %s", err.message);
	ids[3] = (3 * 7 + 3) % V;
	ok(bert_forward(m, ids, NULL, 1, P + 1, again, NULL, &err) == MMSA_ERR_LIMIT,
	   "T > max_position_embeddings rejected: %s", err.message);
	ok(bert_forward(m, ids, NULL, 0, T, again, NULL, &err) == MMSA_ERR_INVALID,
	   "B = 0 rejected: %s", err.message);
	ok(bert_forward(m, ids, NULL, 1, P, again, NULL, &err) == MMSA_OK,
	   "T = max_position_embeddings, mask NULL");

	/* cancellation between layers */
	mmsa_set_interrupt_hook(cancel_hook);
	cancel_now = 1;
	ok(bert_forward(m, ids, mask, 1, T, again, NULL, &err) == MMSA_ERR_CANCELED,
	   "interrupt hook cancels the forward pass");
	cancel_now = 0;
	ok(bert_forward(m, ids, mask, 1, T, again, NULL, &err) == MMSA_OK &&
	   memcmp(again, hidden1, sizeof(again[0]) * T * C) == 0,
	   "after a cancel the model still gives the same output");
	mmsa_set_interrupt_hook(NULL);

	/* one thread and two (the thread pool) agree on a batch big enough to split */
	{
		int			BB = 48;
		int32_t    *bids = malloc(BB * P * sizeof(int32_t));
		int32_t    *bmask = malloc(BB * P * sizeof(int32_t));
		float	   *h1 = malloc((size_t) BB * P * C * sizeof(float));
		float	   *h2 = malloc((size_t) BB * P * C * sizeof(float));
		float		p1[48 * C],
					p2[48 * C];
		int			saved = openblas_get_num_threads();

		_Static_assert(24 * P <= BERT_PACKED_MAX_TOKENS && 32 * 8 <= BERT_PACKED_MAX_TOKENS,
					   "the packed-path tests below must stay on the packed path");

		for (int i = 0; i < BB * P; i++)
		{
			bids[i] = (i * 13 + 7) % V;
			bmask[i] = (i % P) < P - (i / P) % 4;
		}
		openblas_set_num_threads(1);
		ok(bert_forward(m, bids, bmask, BB, P, h1, p1, &err) == MMSA_OK, "B=48 on one thread");
		openblas_set_num_threads(2);
		ok(bert_forward(m, bids, bmask, BB, P, h2, p2, &err) == MMSA_OK, "B=48 on two threads");
		ok(openblas_get_num_threads() == 2, "OpenBLAS thread count restored after the forward pass");
		tap_close_within(h2, h1, (long) BB * P * C, 1e-4, "hidden states, one thread vs two");
		tap_close_within(p2, p1, BB * C, 1e-4, "pooled, one thread vs two");
		openblas_set_num_threads(saved);

		/*
		 * the OpenBLAS products on the mapped weights (BERT_LOAD_UNPACKED)
		 * and gemm.c's on the packed copy agree, on one thread and two
		 */
		{
			bert_model *u = NULL;

			ok(m->packed != NULL && m->packed_bytes > 0, "weights packed by default");
			ok(bert_model_load_flags(dir, BERT_LOAD_UNPACKED, &u, &err) == MMSA_OK &&
			   u->packed == NULL && u->packed_block == NULL,
			   "BERT_LOAD_UNPACKED: no packed copy");
			if (u != NULL)
			{
				float		up[48 * C];

				for (int threads = 1; threads <= 2; threads++)
				{
					char		what[64];

					openblas_set_num_threads(threads);
					/* 24 x 10 tokens: within BERT_PACKED_MAX_TOKENS */
					ok(bert_forward(u, bids, bmask, 24, P, h1, up, &err) == MMSA_OK &&
					   bert_forward(m, bids, bmask, 24, P, h2, p2, &err) == MMSA_OK,
					   "B=24 unpacked and packed, %d thread(s)", threads);
					snprintf(what, sizeof(what), "hidden states, packed vs unpacked, %d thread(s)", threads);
					tap_close_within(h2, h1, 24L * P * C, 1e-4, what);
					snprintf(what, sizeof(what), "pooled, packed vs unpacked, %d thread(s)", threads);
					tap_close_within(p2, up, 24 * C, 1e-4, what);
				}
				/* 32 x 8 = 256 tokens: the padded leading dimension */
				ok(bert_forward(u, bids, bmask, 32, 8, h1, NULL, &err) == MMSA_OK &&
				   bert_forward(m, bids, bmask, 32, 8, h2, NULL, &err) == MMSA_OK,
				   "B=32, T=8 unpacked and packed");
				tap_close_within(h2, h1, 256L * C, 1e-4,
								 "B=32, T=8 (256 columns), packed vs unpacked");
				ok(bert_forward(u, ids, mask, 1, T, again, NULL, &err) == MMSA_OK,
				   "unpacked B=1");
				tap_close_within(again, hidden1, T * C, 1e-4,
								 "B=1 with padding, packed vs unpacked");
				openblas_set_num_threads(saved);
				bert_model_free(u);
			}
		}
		free(bids);
		free(bmask);
		free(h1);
		free(h2);
	}
	bert_model_free(m);

	/* a checkpoint without pooler: hidden states yes, pooled no */
	m = NULL;
	ok(bert_model_load(nopool, &m, &err) == MMSA_OK && m->pool_w == NULL,
	   "checkpoint without pooler loads");
	if (m != NULL)
	{
		ok(bert_forward(m, ids, mask, 1, T, again, NULL, &err) == MMSA_OK,
		   "without pooler: hidden states");
		ok(bert_forward(m, ids, mask, 1, T, again, pooled1, &err) == MMSA_ERR_UNSUPPORTED,
		   "without pooler: pooled output refused: %s", err.message);
		bert_model_free(m);
	}
	bert_model_free(NULL);
}

/*
 * int8 (bert_int8.c) on the tiny checkpoint: the sidecar's errors, then the
 * forward pass against fp32.  The bound: hidden states are LayerNorm
 * outputs (about unit scale); with 7-bit activations per token and 8-bit
 * weights per row over two layers, the tiny random model (weights of
 * scale 0.5, no training: far less smooth than a trained one) stays within
 * 0.5 of fp32 on every value and its mean error below 0.07 (measured
 * 2026-12-07: max 0.28, mean 0.048; pooled max 0.32).  A product that lost
 * its bias or residual would be off by more.
 */
static void
test_int8(void)
{
	char		dir[512],
				path[600];
	bert_model *m = NULL,
			   *u = NULL;
	mmsa_error	err;
	int			B = 3,
				T = 7;
	int32_t		ids[3 * 7],
				mask[3 * 7];
	float		f32[3 * 7 * C],
				q8[3 * 7 * C],
				again[3 * 7 * C],
				pf[3 * C],
				pq[3 * C];
	double		mean = 0;
	FILE	   *fp;

	snprintf(dir, sizeof(dir), "%s/with_pooler", tmpdir);
	for (int i = 0; i < B * T; i++)
	{
		ids[i] = (i * 17 + 5) % V;
		mask[i] = i % T < T - i / T;
	}
	if (!ok(bert_model_load(dir, &m, &err) == MMSA_OK, "int8: model loads"))
		return;
	ok(bert_model_set_precision(m, MMSA_PRECISION_INT8, &err) == MMSA_ERR_IO &&
	   strstr(err.message, "mmsa pack") != NULL && m->precision == MMSA_PRECISION_FP32,
	   "int8 without model.int8.packed: MMSA_ERR_IO, the hint names mmsa pack, still fp32: %s",
	   err.message);
	ok(bert_model_write_int8(dir, &err) == MMSA_OK, "bert_model_write_int8");
	ok(bert_forward(m, ids, mask, B, T, f32, pf, &err) == MMSA_OK &&
	   bert_model_set_precision(m, MMSA_PRECISION_INT8, &err) == MMSA_OK &&
	   bert_forward(m, ids, mask, B, T, q8, pq, &err) == MMSA_OK,
	   "fp32 then int8 forward passes");
	for (long i = 0; i < (long) B * T * C; i++)
		mean += fabs((double) q8[i] - f32[i]) / ((double) B * T * C);
	ok(max_abs_diff(q8, f32, (long) B * T * C) < 0.5 && mean < 0.07,
	   "int8 hidden states within 0.5 of fp32, mean error < 0.07 (max %.4f, mean %.4f)",
	   max_abs_diff(q8, f32, (long) B * T * C), mean);
	ok(max_abs_diff(pq, pf, B * C) < 0.5, "int8 pooled within 0.5 of fp32 (max %.4f)",
	   max_abs_diff(pq, pf, B * C));
	ok(max_abs_diff(q8, f32, (long) B * T * C) > 0, "and int8 is not fp32");

	/* every kernel path gives the same floats: the sums are exact */
	mmsa_isa_use_qgemm(&qgemm_kernels_generic);
	ok(bert_forward(m, ids, mask, B, T, again, NULL, &err) == MMSA_OK &&
	   memcmp(again, q8, sizeof(again)) == 0, "int8: the portable integer loops give the same bits");
	mmsa_isa_use_qgemm(NULL);

	/* one thread and two */
	{
		int			saved = openblas_get_num_threads();

		openblas_set_num_threads(1);
		ok(bert_forward(m, ids, mask, B, T, again, NULL, &err) == MMSA_OK,
		   "int8 on one thread");
		tap_close_within(again, q8, (long) B * T * C, 1e-5, "int8, one thread vs two");
		openblas_set_num_threads(saved);
	}

	/* the mapped OpenBLAS model runs int8 on the same weights */
	ok(bert_model_load_flags(dir, BERT_LOAD_UNPACKED, &u, &err) == MMSA_OK &&
	   bert_model_set_precision(u, MMSA_PRECISION_INT8, &err) == MMSA_OK &&
	   bert_forward(u, ids, mask, B, T, again, NULL, &err) == MMSA_OK,
	   "BERT_LOAD_UNPACKED model at int8");
	tap_close_within(again, q8, (long) B * T * C, 1e-5, "int8, unpacked model vs packed");
	bert_model_free(u);
	u = NULL;

	ok(bert_model_set_precision(m, MMSA_PRECISION_FP32, &err) == MMSA_OK &&
	   bert_forward(m, ids, mask, B, T, again, NULL, &err) == MMSA_OK &&
	   memcmp(again, f32, sizeof(again)) == 0, "back to fp32: the fp32 output, bit for bit");
	bert_model_free(m);
	m = NULL;

	/* a corrupt sidecar (one weight byte changed) and a truncated one are refused */
	snprintf(path, sizeof(path), "%s/%s", dir, BERT_INT8_FILE);
	fp = fopen(path, "r+b");
	if (fp != NULL)
	{
		long		size;
		int			c;

		fseek(fp, 0, SEEK_END);
		size = ftell(fp);
		fseek(fp, size - 100, SEEK_SET);
		c = fgetc(fp);
		fseek(fp, size - 100, SEEK_SET);
		fputc(c ^ 0x40, fp);
		fclose(fp);
	}
	ok(bert_model_load(dir, &m, &err) == MMSA_OK &&
	   bert_model_set_precision(m, MMSA_PRECISION_INT8, &err) == MMSA_ERR_FORMAT &&
	   strstr(err.message, "corrupt") != NULL && m->precision == MMSA_PRECISION_FP32,
	   "a changed byte: MMSA_ERR_FORMAT, still fp32: %s", err.message);
	bert_model_free(m);
	m = NULL;
	ok(truncate(path, 4096) == 0 && bert_model_load(dir, &m, &err) == MMSA_OK &&
	   bert_model_set_precision(m, MMSA_PRECISION_INT8, &err) == MMSA_ERR_FORMAT,
	   "a truncated sidecar: MMSA_ERR_FORMAT: %s", err.message);
	bert_model_free(m);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL)
	{
		ok(0, "mkdtemp");
		return tap_done();
	}
	test_matmul();
	test_layernorm();
	test_gelu_tanh();
	test_softmax_residual();
	test_attention();
	test_embeddings();
	test_model();
	test_int8();
	{
		char		cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			diag("could not remove %s", tmpdir);
	}
	return tap_done();
}
