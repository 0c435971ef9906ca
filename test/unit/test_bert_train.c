/*
 * test_bert_train.c
 *	  The trainable BERT (bert_train.c) and the optimizer (optim.c).
 *
 * Without arguments (make unit), TAP:
 *	 - finite differences on a whole tiny model (2 layers, 16 wide, 2 heads,
 *	   vocabulary 30) with dropout on (fixed seed) and padding, for the
 *	   joint loss MLM + 0.5 * classification (with class weights): the
 *	   directional derivative along a random direction over every parameter,
 *	   and on every tensor its largest-gradient coordinate plus random ones;
 *	 - the learning-rate schedule and gradient clipping against closed forms;
 *	 - a training smoke test: 80 AdamW steps (batch 16, peak lr 1e-2, 6
 *	   warm-up steps, clipping at 1, dropout 0.1) on a tiny model (2 layers,
 *	   32 wide, vocabulary 100) and a toy task (MLM on arithmetic sequences +
 *	   a two-class labelling) must bring both losses well down,
 *	   deterministically, and to the same bytes with a thread pool of 2 and
 *	   3 threads (bert_train_set_pool, adamw_step_parallel);
 *	 - save -> bert_model_load -> bert_forward gives the pooled output and
 *	   hidden states of the training forward in eval mode, and
 *	   bert_train_load_weights reads the checkpoint back exactly;
 *	 - errors for bad inputs and calls out of order.
 * With arguments it is the C side of test/t/bert_train_reference.t:
 *	 test_bert_train --compare DIR   losses and gradients of DIR's model
 *	 test_bert_train --adamw DIR     AdamW steps on DIR's gradients
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "bert.h"
#include "bert_train.h"
#include "optim.h"
#include "safetensors.h"
#include "tap.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng = 0x1234567;

static uint64_t
rnd_u64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int
rnd_int(int n)
{
	return (int) (rnd_u64() % (uint64_t) n);
}

static double
rnd_normal(void)
{
	double		u1 = ((rnd_u64() >> 11) + 0.5) / 9007199254740992.0;
	double		u2 = ((rnd_u64() >> 11) + 0.5) / 9007199254740992.0;

	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static bert_config
tiny_config(int V, int C, int L, int NH, int IC, int P)
{
	bert_config c;

	memset(&c, 0, sizeof(c));
	c.vocab_size = V;
	c.hidden_size = C;
	c.num_hidden_layers = L;
	c.num_attention_heads = NH;
	c.intermediate_size = IC;
	c.max_position_embeddings = P;
	c.type_vocab_size = 2;
	c.layer_norm_eps = 1e-12f;
	return c;
}

/* ---- whole-model finite differences -------------------------------------- */

typedef struct
{
	bert_train_model *m;
	int			B,
				T;
	int32_t    *ids,
			   *types,
			   *mask,
			   *mlm_labels,
			   *labels;
	float	   *class_weights;
} fd_case;

/* Joint loss MLM + 0.5 * classification, dropout on with a fixed seed. */
static double
fd_loss(fd_case *c)
{
	mmsa_error err;
	float		mlm,
				cls;

	if (bert_train_forward(c->m, c->ids, c->types, c->mask, c->B, c->T, 1, 42, &err) != MMSA_OK ||
		bert_train_mlm_forward(c->m, c->mlm_labels, &mlm, &err) != MMSA_OK ||
		bert_train_cls_forward(c->m, c->labels, c->class_weights, &cls, &err) != MMSA_OK)
		return NAN;
	return (double) mlm + 0.5 * cls;
}

static int
fd_gradients(fd_case *c)
{
	mmsa_error err;

	bert_train_zero_grad(c->m);
	if (isnan(fd_loss(c)))
		return 0;
	bert_train_mlm_backward(c->m, 1.0f);
	bert_train_cls_backward(c->m, 0.5f);
	return bert_train_backward(c->m, &err) == MMSA_OK;
}

static void
test_whole_model_fd(void)
{
	bert_config cfg = tiny_config(30, 16, 2, 2, 32, 8);
	bert_train_options opt = bert_train_options_default();
	fd_case		c;
	bert_train_model *m;
	mmsa_error	err;
	float	   *grads,
			   *dir;
	double		gd = 0.0,
				fd;
	const double eps_dir = 1e-3;
	const float eps = 1e-2f;
	int			bad = 0,
				checked = 0;
	double		worst_rel = 0.0,
				worst_abs = 0.0;
	int32_t		ids[] = {1, 5, 9, 12, 7, 3, 2, 0,
						 1, 8, 21, 4, 2, 0, 0, 0,
						 1, 17, 29, 11, 6, 25, 14, 2};
	int32_t		types[] = {0, 0, 0, 0, 1, 1, 1, 0,
						   0, 0, 0, 1, 1, 0, 0, 0,
						   0, 0, 0, 0, 0, 1, 1, 1};
	int32_t		mask[] = {1, 1, 1, 1, 1, 1, 1, 0,
						  1, 1, 1, 1, 1, 0, 0, 0,
						  1, 1, 1, 1, 1, 1, 1, 1};
	int32_t		mlm_labels[] = {-100, 5, -100, -100, 18, -100, -100, -100,
								-100, -100, 21, -100, -100, -100, -100, -100,
								-100, -100, -100, 3, -100, -100, 14, -100};
	int32_t		labels[] = {2, 0, 1};
	float		class_weights[] = {1.0f, 2.0f, 0.5f};

	opt.num_labels = 3;
	opt.pad_token_id = -1;		/* the true gradient of every embedding row */
	opt.initializer_range = 0.2f;	/* larger weights, larger gradients */
	if (!ok(bert_train_create(&cfg, &opt, 7, &m, &err) == MMSA_OK, "tiny model created"))
	{
		diag("%s", err.message);
		return;
	}
	/* LayerNorm scales and shifts away from 1 and 0 */
	for (int i = 0; i < m->n_tensors; i++)
		if (strstr(m->tensors[i].name, "LayerNorm") != NULL || m->tensors[i].ndim == 1)
			for (long j = 0; j < m->tensors[i].numel; j++)
				m->params[m->tensors[i].offset + j] += 0.2f * (float) rnd_normal();
	c = (fd_case) {m, 3, 8, ids, types, mask, mlm_labels, labels, class_weights};
	ok(fd_gradients(&c), "forward + backward of the tiny model");
	grads = malloc(m->n_params * sizeof(float));
	memcpy(grads, m->grads, m->n_params * sizeof(float));

	/* directional derivative along a random direction */
	dir = malloc(m->n_params * sizeof(float));
	for (long i = 0; i < m->n_params; i++)
	{
		dir[i] = (float) rnd_normal();
		gd += (double) dir[i] * grads[i];
	}
	{
		float	   *saved = malloc(m->n_params * sizeof(float));
		double		plus,
					minus;

		memcpy(saved, m->params, m->n_params * sizeof(float));
		for (long i = 0; i < m->n_params; i++)
			m->params[i] = saved[i] + (float) eps_dir * dir[i];
		plus = fd_loss(&c);
		for (long i = 0; i < m->n_params; i++)
			m->params[i] = saved[i] - (float) eps_dir * dir[i];
		minus = fd_loss(&c);
		memcpy(m->params, saved, m->n_params * sizeof(float));
		free(saved);
		fd = (plus - minus) / (2.0 * eps_dir);
	}
	ok(fabs(fd - gd) <= 1e-2 * fabs(gd),
	   "whole tiny model, all %ld parameters along a random direction: numeric %.6f, analytic %.6f, rel err %.2e (tol 1e-2)",
	   m->n_params, fd, gd, fabs(fd - gd) / fabs(gd));

	/* per tensor: the largest-gradient coordinate and 3 random ones */
	for (int ti = 0; ti < m->n_tensors; ti++)
	{
		const bert_train_tensor *t = &m->tensors[ti];
		long		coords[4];
		long		best = 0;

		for (long j = 1; j < t->numel; j++)
			if (fabsf(grads[t->offset + j]) > fabsf(grads[t->offset + best]))
				best = j;
		coords[0] = best;
		for (int r = 1; r < 4; r++)
			coords[r] = rnd_int((int) t->numel);
		for (int r = 0; r < 4; r++)
		{
			long		i = t->offset + coords[r];
			float		saved = m->params[i];
			double		plus,
						minus,
						an = grads[i],
						diff,
						scale;

			m->params[i] = saved + eps;
			plus = fd_loss(&c);
			m->params[i] = saved - eps;
			minus = fd_loss(&c);
			m->params[i] = saved;
			fd = (plus - minus) / ((double) (saved + eps) - (double) (saved - eps));
			diff = fabs(fd - an);
			scale = fmax(fabs(fd), fabs(an));
			checked++;
			worst_abs = fmax(worst_abs, diff);
			if (scale > 1e-3)
				worst_rel = fmax(worst_rel, diff / scale);
			if (!(diff <= 2e-2 * scale + 2e-4) || (r == 0 && !(an != 0.0)))
			{
				if (bad++ < 5)
					diag("%s[%ld]: numeric %.6g analytic %.6g", t->name, coords[r], fd, an);
			}
		}
	}
	ok(bad == 0, "whole tiny model, %d coordinates over all %d tensors (each one's largest gradient + 3 random): "
	   "max abs diff %.2e, max rel err %.2e (eps 1e-2, tol 2e-2 rel + 2e-4 abs)",
	   checked, m->n_tensors, worst_abs, worst_rel);
	free(grads);
	free(dir);
	bert_train_free(m);
}

/* ---- schedule and clipping ----------------------------------------------- */

static void
test_schedule_and_clip(void)
{
	float		g[4] = {3.0f, 4.0f, 0.0f, 0.0f};
	float		norm;
	int			good = 1;

	good &= lr_linear_warmup_decay(0, 10, 110, 1e-3f) == 0.0f;
	good &= fabsf(lr_linear_warmup_decay(5, 10, 110, 1e-3f) - 5e-4f) < 1e-9f;
	good &= fabsf(lr_linear_warmup_decay(10, 10, 110, 1e-3f) - 1e-3f) < 1e-9f;
	good &= fabsf(lr_linear_warmup_decay(60, 10, 110, 1e-3f) - 5e-4f) < 1e-9f;
	good &= lr_linear_warmup_decay(110, 10, 110, 1e-3f) == 0.0f;
	good &= lr_linear_warmup_decay(200, 10, 110, 1e-3f) == 0.0f;
	good &= fabsf(lr_linear_warmup_decay(3, 0, 10, 1.0f) - 0.7f) < 1e-6f;
	ok(good, "lr schedule: 0 at step 0, peak at the end of warm-up, half way down, 0 at and after the end");
	norm = clip_grad_norm(g, 4, 1.0f);
	ok(fabsf(norm - 5.0f) < 1e-6f && fabsf(g[0] - 0.6f) < 1e-5f && fabsf(g[1] - 0.8f) < 1e-5f,
	   "clip_grad_norm: norm 5 returned, clipped to (%.6f, %.6f)", g[0], g[1]);
	norm = clip_grad_norm(g, 4, 10.0f);
	ok(fabsf(g[0] - 0.6f) < 1e-5f, "clip_grad_norm: below max_norm leaves gradients alone");
}

/* ---- training smoke test -------------------------------------------------- */

#define SM_B 16
#define SM_T 12

/*
 * A batch of the toy task: [CLS]=1, a class word 4 + (a >= 5), then
 * 10 + 45 (a >= 5) + a % 5 + 4(t-2) at positions t = 2.. with a random
 * a in 0..9 (the two classes use disjoint words),
 * [SEP]=2, padding 0 for short rows; ~15% of positions 2.. masked
 * ([MASK]=3) with their token as MLM label (predictable from the position
 * and the neighbours); the class is a >= 5 (so also the class word).
 */
static void
toy_batch(uint64_t *state, int32_t *ids, int32_t *mask, int32_t *mlm,
		  int32_t *labels)
{
	for (int b = 0; b < SM_B; b++)
	{
		int			a,
					len;

		*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
		a = (int) ((*state >> 33) % 10);
		len = SM_T - (int) ((*state >> 20) % 4);	/* 9..12 tokens */
		labels[b] = a >= 5;
		for (int t = 0; t < SM_T; t++)
		{
			int			i = b * SM_T + t;

			mlm[i] = -100;
			mask[i] = t < len;
			if (t == 0)
				ids[i] = 1;
			else if (t == 1)
				ids[i] = 4 + labels[b];	/* a "sentiment word" */
			else if (t == len - 1)
				ids[i] = 2;
			else if (t >= len)
				ids[i] = 0;
			else
			{
				ids[i] = 10 + 45 * labels[b] + a % 5 + 4 * (t - 2);
				*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
				if (t > 1 && (*state >> 33) % 100 < 15)
				{
					mlm[i] = ids[i];
					ids[i] = 3;
				}
			}
		}
	}
}

/* Trains a tiny model; returns first/last mean losses via out params. */
static int
train_tiny(bert_train_model *m, int steps, double *mlm_first, double *mlm_last,
		   double *cls_first, double *cls_last, mmsa_error *err)
{
	adamw_optimizer *opt;
	int32_t		ids[SM_B * SM_T],
				mask[SM_B * SM_T],
				mlm[SM_B * SM_T],
				labels[SM_B];
	uint64_t	data_state = 99;
	int			window = 8;

	*mlm_first = *mlm_last = *cls_first = *cls_last = 0.0;
	if (bert_train_adamw_create(m, 0.9f, 0.999f, 1e-6f, 0.01f, &opt, err) != MMSA_OK)
		return 0;
	for (int step = 0; step < steps; step++)
	{
		float		lm,
					lc;

		toy_batch(&data_state, ids, mask, mlm, labels);
		bert_train_zero_grad(m);
		if (bert_train_forward(m, ids, NULL, mask, SM_B, SM_T, 1, 1000 + step, err) != MMSA_OK ||
			bert_train_mlm_forward(m, mlm, &lm, err) != MMSA_OK ||
			bert_train_cls_forward(m, labels, NULL, &lc, err) != MMSA_OK)
		{
			adamw_free(opt);
			return 0;
		}
		bert_train_mlm_backward(m, 1.0f);
		bert_train_cls_backward(m, 1.0f);
		if (bert_train_backward(m, err) != MMSA_OK)
		{
			adamw_free(opt);
			return 0;
		}
		clip_grad_norm(m->grads, m->n_params, 1.0f);
		adamw_step_parallel(opt, m->params, m->grads,
							lr_linear_warmup_decay(step, 6, steps, 1e-2f), m->pool);
		if (step < window)
		{
			*mlm_first += lm / window;
			*cls_first += lc / window;
		}
		if (step >= steps - window)
		{
			*mlm_last += lm / window;
			*cls_last += lc / window;
		}
	}
	adamw_free(opt);
	return 1;
}

static void
test_smoke_and_roundtrip(const char *tmpdir)
{
	bert_config cfg = tiny_config(100, 32, 2, 2, 64, 16);
	bert_train_options opt = bert_train_options_default();
	bert_train_model *m,
			   *m2;
	mmsa_error	err;
	double		mlm0,
				mlm1,
				cls0,
				cls1,
				again[4];
	int			steps = 80;
	char		dir[4096];

	if (!ok(bert_train_create(&cfg, &opt, 11, &m, &err) == MMSA_OK, "smoke model created"))
		return;
	if (!ok(train_tiny(m, steps, &mlm0, &mlm1, &cls0, &cls1, &err), "%d training steps run", steps))
	{
		diag("%s", err.message);
		bert_train_free(m);
		return;
	}
	ok(mlm1 < 0.6 * mlm0,
	   "MLM loss falls: mean of the first 8 steps %.3f, of the last 8 %.3f (must be < 0.6x)", mlm0, mlm1);
	ok(cls1 < 0.25 * cls0,
	   "classification loss falls: first 8 steps %.3f, last 8 %.3f (must be < 0.25x)", cls0, cls1);
	/* deterministic: the same seeds give the same losses */
	if (bert_train_create(&cfg, &opt, 11, &m2, &err) == MMSA_OK &&
		train_tiny(m2, steps, &again[0], &again[1], &again[2], &again[3], &err))
		ok(again[0] == mlm0 && again[1] == mlm1 && again[2] == cls0 && again[3] == cls1 &&
		   memcmp(m->params, m2->params, m->n_params * sizeof(float)) == 0,
		   "training is deterministic: same losses and weights on a second run");
	else
		ok(0, "training is deterministic: second run failed");
	bert_train_free(m2);

	/*
	 * The elementwise layers and AdamW split between the threads of a pool
	 * (2 threads, and 3 for uneven slices) give the same bytes as one thread.
	 */
	for (int threads = 2; threads <= 3; threads++)
	{
		mmsa_pool  *pool = NULL;

		m2 = NULL;
		if (mmsa_pool_create(threads, &pool, &err) == MMSA_OK &&
			bert_train_create(&cfg, &opt, 11, &m2, &err) == MMSA_OK)
		{
			bert_train_set_pool(m2, pool);
			if (train_tiny(m2, steps, &again[0], &again[1], &again[2], &again[3], &err))
				ok(mmsa_pool_size(pool) == threads &&
				   again[0] == mlm0 && again[1] == mlm1 && again[2] == cls0 && again[3] == cls1 &&
				   memcmp(m->params, m2->params, m->n_params * sizeof(float)) == 0,
				   "training with a pool of %d threads gives the same losses and weights, bit for bit",
				   threads);
			else
				ok(0, "training with a pool of %d threads: %s", threads, err.message);
		}
		else
			ok(0, "pool of %d threads and model: %s", threads, err.message);
		bert_train_free(m2);
		mmsa_pool_free(pool);
	}

	/* save -> bert_model_load -> bert_forward */
	snprintf(dir, sizeof(dir), "%s/bert_train_roundtrip", tmpdir);
	if (!ok(bert_train_save(m, dir, &err) == MMSA_OK, "bert_train_save to %s", dir))
	{
		diag("%s", err.message);
		bert_train_free(m);
		return;
	}
	{
		int32_t		ids[SM_B * SM_T],
					mask[SM_B * SM_T],
					mlm[SM_B * SM_T],
					labels[SM_B];
		uint64_t	st = 5;
		bert_model *bm;
		float		loss;
		float	   *pooled = malloc(SM_B * 32 * sizeof(float)),
				   *hidden = malloc(SM_B * SM_T * 32 * sizeof(float));
		const float *train_hidden;
		int			n_loaded = 0;

		toy_batch(&st, ids, mask, mlm, labels);
		if (bert_train_forward(m, ids, NULL, mask, SM_B, SM_T, 0, 0, &err) != MMSA_OK ||
			bert_train_cls_forward(m, labels, NULL, &loss, &err) != MMSA_OK)
			ok(0, "eval forward: %s", err.message);
		train_hidden = m->hidden + 2L * SM_B * SM_T * 32;
		if (ok(bert_model_load(dir, &bm, &err) == MMSA_OK, "bert_model_load reads the saved checkpoint"))
		{
			if (ok(bert_forward(bm, ids, mask, SM_B, SM_T, hidden, pooled, &err) == MMSA_OK,
				   "bert_forward on it"))
			{
				tap_close_within(pooled, m->pooled, SM_B * 32, 1e-5,
								 "round trip: bert_forward pooled output = training forward (eval mode)");
				tap_close_within(hidden, train_hidden, SM_B * SM_T * 32, 1e-5,
								 "round trip: bert_forward last hidden state = training forward (eval mode)");
			}
			bert_model_free(bm);
		}
		/* bert_train_load_weights into a fresh model */
		if (bert_train_create(&cfg, &opt, 12345, &m2, &err) == MMSA_OK)
		{
			char		path[4200];

			int			loaded;

			snprintf(path, sizeof(path), "%s/model.safetensors", dir);
			loaded = bert_train_load_weights(m2, path, &n_loaded, &err) == MMSA_OK;
			ok(loaded && n_loaded == m2->n_tensors &&
			   memcmp(m->params, m2->params, m->n_params * sizeof(float)) == 0,
			   "bert_train_load_weights reads all %d tensors back exactly", n_loaded);
			bert_train_free(m2);
		}
		/* training mode differs (dropout) and is reproducible per seed */
		{
			float		a,
						b,
						c;

			bert_train_forward(m, ids, NULL, mask, SM_B, SM_T, 1, 7, &err);
			bert_train_cls_forward(m, labels, NULL, &a, &err);
			bert_train_forward(m, ids, NULL, mask, SM_B, SM_T, 1, 7, &err);
			bert_train_cls_forward(m, labels, NULL, &b, &err);
			bert_train_forward(m, ids, NULL, mask, SM_B, SM_T, 1, 8, &err);
			bert_train_cls_forward(m, labels, NULL, &c, &err);
			ok(a == b && a != c && a != loss,
			   "dropout: loss %.5f with seed 7 twice, %.5f with seed 8, %.5f in eval mode", a, c, loss);
		}
		free(pooled);
		free(hidden);
	}
	bert_train_free(m);
}

/* ---- bad input ----------------------------------------------------------- */

static void
test_errors(const char *tmpdir)
{
	bert_config cfg = tiny_config(20, 8, 1, 2, 16, 4);
	bert_train_options opt = bert_train_options_default();
	bert_train_model *m;
	mmsa_error	err;
	int32_t		ids[4] = {1, 2, 3, 4};
	int32_t		bad_ids[4] = {1, 20, 3, 4};
	int32_t		labels[4] = {-100, 25, -100, -100};
	int32_t		cls_labels[1] = {2};
	float		loss;

	if (!ok(bert_train_create(&cfg, &opt, 1, &m, &err) == MMSA_OK, "small model for error checks"))
		return;
	ok(bert_train_backward(m, &err) == MMSA_ERR_INVALID, "backward before forward: %s", err.message);
	ok(bert_train_mlm_forward(m, labels, &loss, &err) == MMSA_ERR_INVALID,
	   "MLM head before forward: %s", err.message);
	ok(bert_train_forward(m, bad_ids, NULL, NULL, 1, 4, 1, 0, &err) == MMSA_ERR_INVALID,
	   "token id = vocab size: %s", err.message);
	ok(bert_train_forward(m, ids, NULL, NULL, 1, 5, 1, 0, &err) == MMSA_ERR_LIMIT,
	   "T > max_position_embeddings: %s", err.message);
	ok(bert_train_forward(m, ids, NULL, NULL, 1, 4, 1, 0, &err) == MMSA_OK, "good forward");
	ok(bert_train_mlm_forward(m, labels, &loss, &err) == MMSA_ERR_INVALID,
	   "MLM label outside the vocabulary: %s", err.message);
	ok(bert_train_cls_forward(m, cls_labels, NULL, &loss, &err) == MMSA_ERR_INVALID,
	   "class label >= num_labels: %s", err.message);
	/* checkpoints that do not fit: a missing encoder tensor, a wrong shape */
	{
		char		path[4200];
		float	   *other = calloc(20 * 8, sizeof(float));
		float		saved = m->params[8];	/* row 1: row 0 is the zeroed [PAD] */
		st_write_tensor wt = {"bert.embeddings.word_embeddings.weight", ST_F32, 2,
		{20, 8}, other};

		snprintf(path, sizeof(path), "%s/partial.safetensors", tmpdir);
		if (safetensors_write(path, &wt, 1, NULL, NULL, 0, &err) == MMSA_OK)
			ok(bert_train_load_weights(m, path, NULL, &err) != MMSA_OK &&
			   strstr(err.message, "position_embeddings") != NULL,
			   "checkpoint without the position embeddings: %s", err.message);
		else
			ok(0, "partial checkpoint written: %s", err.message);
		wt.shape[0] = 19;
		snprintf(path, sizeof(path), "%s/shape.safetensors", tmpdir);
		if (safetensors_write(path, &wt, 1, NULL, NULL, 0, &err) == MMSA_OK)
			ok(bert_train_load_weights(m, path, NULL, &err) != MMSA_OK &&
			   strstr(err.message, "word_embeddings") != NULL,
			   "checkpoint with word embeddings of another shape: %s", err.message);
		else
			ok(0, "wrong-shape checkpoint written: %s", err.message);
		ok(m->params[8] == saved && saved != 0.0f, "a failed load leaves the weights unchanged");
		snprintf(path, sizeof(path), "%s/missing.safetensors", tmpdir);
		ok(bert_train_load_weights(m, path, NULL, &err) == MMSA_ERR_IO,
		   "missing checkpoint file: %s", err.message);
		free(other);
	}
	bert_train_free(m);
	opt.num_labels = 0;
	ok(bert_train_create(&cfg, &opt, 1, &m, &err) == MMSA_ERR_INVALID, "num_labels 0: %s", err.message);
	opt = bert_train_options_default();
	opt.hidden_dropout = 1.0f;
	ok(bert_train_create(&cfg, &opt, 1, &m, &err) == MMSA_ERR_INVALID, "dropout 1: %s", err.message);
}

/* ---- driver for test/t/bert_train_reference.t ---------------------------- */

static const st_tensor *
need(safetensors_file *f, const char *name, st_dtype dtype)
{
	const st_tensor *t = safetensors_find(f, name);

	if (t == NULL || t->dtype != dtype)
	{
		fprintf(stderr, "missing %s tensor %s\n", st_dtype_name(dtype), name);
		exit(2);
	}
	return t;
}

static int
write_grads(bert_train_model *m, float loss, const char *path)
{
	st_write_tensor *wt = calloc(m->n_tensors + 1, sizeof(st_write_tensor));
	mmsa_error	err;
	int			rc;

	for (int i = 0; i < m->n_tensors; i++)
	{
		const bert_train_tensor *t = &m->tensors[i];

		wt[i] = (st_write_tensor) {t->name, ST_F32, t->ndim, {t->shape[0], t->shape[1]},
		m->grads + t->offset};
	}
	wt[m->n_tensors] = (st_write_tensor) {"loss", ST_F32, 1, {1}, &loss};
	rc = safetensors_write(path, wt, m->n_tensors + 1, NULL, NULL, 0, &err) == MMSA_OK;
	if (!rc)
		fprintf(stderr, "%s\n", err.message);
	free(wt);
	return rc;
}

static int
driver_compare(const char *dir)
{
	char		path[4200];
	bert_config cfg;
	bert_train_options opt = bert_train_options_default();
	bert_train_model *m;
	safetensors_file in;
	mmsa_error	err;
	const st_tensor *ids,
			   *types,
			   *mask,
			   *mlm,
			   *labels,
			   *weights;
	int			B,
				T;
	float		loss;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (bert_config_load(path, &cfg, &err) != MMSA_OK)
		goto fail;
	snprintf(path, sizeof(path), "%s/inputs.safetensors", dir);
	if (safetensors_open(path, &in, &err) != MMSA_OK)
		goto fail;
	ids = need(&in, "input_ids", ST_I32);
	types = need(&in, "token_type_ids", ST_I32);
	mask = need(&in, "attention_mask", ST_I32);
	mlm = need(&in, "mlm_labels", ST_I32);
	labels = need(&in, "labels", ST_I32);
	weights = need(&in, "class_weights", ST_F32);
	B = (int) ids->shape[0];
	T = (int) ids->shape[1];
	opt.num_labels = (int) weights->shape[0];
	opt.hidden_dropout = opt.attention_dropout = 0.0f;
	if (bert_train_create(&cfg, &opt, 1, &m, &err) != MMSA_OK)
		goto fail;
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	if (bert_train_load_weights(m, path, NULL, &err) != MMSA_OK)
		goto fail;

	/* MLM */
	bert_train_zero_grad(m);
	if (bert_train_forward(m, ids->data, types->data, mask->data, B, T, 1, 1, &err) != MMSA_OK ||
		bert_train_mlm_forward(m, mlm->data, &loss, &err) != MMSA_OK)
		goto fail;
	bert_train_mlm_backward(m, 1.0f);
	if (bert_train_backward(m, &err) != MMSA_OK)
		goto fail;
	snprintf(path, sizeof(path), "%s/c_grads_mlm.safetensors", dir);
	if (!write_grads(m, loss, path))
		return 1;
	/* classification with class weights */
	bert_train_zero_grad(m);
	if (bert_train_forward(m, ids->data, types->data, mask->data, B, T, 1, 1, &err) != MMSA_OK ||
		bert_train_cls_forward(m, labels->data, weights->data, &loss, &err) != MMSA_OK)
		goto fail;
	bert_train_cls_backward(m, 1.0f);
	if (bert_train_backward(m, &err) != MMSA_OK)
		goto fail;
	snprintf(path, sizeof(path), "%s/c_grads_cls.safetensors", dir);
	if (!write_grads(m, loss, path))
		return 1;
	bert_train_free(m);
	safetensors_close(&in);
	return 0;
fail:
	fprintf(stderr, "test_bert_train --compare: %s\n", err.message);
	return 1;
}

/*
 * adamw_in.safetensors: params (n), grads (S,n), decay (n) 0/1,
 * hparams [lr, beta1, beta2, eps, weight_decay, warmup, total, max_norm].
 * Writes adamw_out.safetensors: params (S,n) after each step.
 */
static int
driver_adamw(const char *dir)
{
	char		path[4200];
	safetensors_file in;
	mmsa_error	err;
	const st_tensor *p0,
			   *g,
			   *decay,
			   *hp;
	const float *h;
	long		n;
	int			S,
				nseg = 0;
	adamw_segment *seg;
	adamw_optimizer *opt;
	float	   *params,
			   *grads,
			   *out;
	st_write_tensor wt;

	snprintf(path, sizeof(path), "%s/adamw_in.safetensors", dir);
	if (safetensors_open(path, &in, &err) != MMSA_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	p0 = need(&in, "params", ST_F32);
	g = need(&in, "grads", ST_F32);
	decay = need(&in, "decay", ST_F32);
	hp = need(&in, "hparams", ST_F32);
	h = hp->data;
	n = p0->numel;
	S = (int) g->shape[0];
	/* segments: runs of equal decay */
	seg = malloc(n * sizeof(adamw_segment));
	for (long i = 0; i < n; i++)
	{
		int			d = ((const float *) decay->data)[i] != 0.0f;

		if (nseg > 0 && seg[nseg - 1].decay == d)
			seg[nseg - 1].n++;
		else
			seg[nseg++] = (adamw_segment) {i, 1, d};
	}
	if (adamw_create(n, seg, nseg, h[1], h[2], h[3], h[4], &opt, &err) != MMSA_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	params = malloc(n * sizeof(float));
	grads = malloc(n * sizeof(float));
	out = malloc((size_t) S * n * sizeof(float));
	memcpy(params, p0->data, n * sizeof(float));
	for (int s = 0; s < S; s++)
	{
		memcpy(grads, (const float *) g->data + (size_t) s * n, n * sizeof(float));
		if (h[7] > 0.0f)
			clip_grad_norm(grads, n, h[7]);
		adamw_step(opt, params, grads, lr_linear_warmup_decay(s, (long) h[5], (long) h[6], h[0]));
		memcpy(out + (size_t) s * n, params, n * sizeof(float));
	}
	wt = (st_write_tensor) {"params", ST_F32, 2, {S, n}, out};
	snprintf(path, sizeof(path), "%s/adamw_out.safetensors", dir);
	if (safetensors_write(path, &wt, 1, NULL, NULL, 0, &err) != MMSA_OK)
	{
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	adamw_free(opt);
	free(seg);
	free(params);
	free(grads);
	free(out);
	safetensors_close(&in);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *tmp;
	char		tmpdir[4096];

	if (argc == 3 && strcmp(argv[1], "--compare") == 0)
		return driver_compare(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--adamw") == 0)
		return driver_adamw(argv[2]);
	if (argc != 1)
	{
		fprintf(stderr, "usage: %s [--compare DIR | --adamw DIR]\n", argv[0]);
		return 2;
	}
	openblas_set_num_threads(1);
	tmp = getenv("MMSA_TMP");
	snprintf(tmpdir, sizeof(tmpdir), "%s/mmsa-test-bert-train.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
	{
		ok(0, "scratch directory %s", tmpdir);
		return tap_done();
	}
	test_whole_model_fd();
	test_schedule_and_clip();
	test_smoke_and_roundtrip(tmpdir);
	test_errors(tmpdir);
	{
		char		cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			diag("could not remove %s", tmpdir);
	}
	return tap_done();
}
