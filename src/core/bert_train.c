/*
 * bert_train.c
 *	  A trainable BERT with MLM and classification heads: parameter layout,
 *	  initialization, loading and saving, training forward and backward.
 *	  See bert_train.h.
 */
#include "bert_train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "layers.h"
#include "safetensors.h"

bert_train_options
bert_train_options_default(void)
{
	bert_train_options o;

	o.num_labels = 2;
	o.hidden_dropout = 0.1f;
	o.attention_dropout = 0.1f;
	o.initializer_range = 0.02f;
	o.pad_token_id = 0;
	return o;
}

/* ---------------------------------------------------------------------
 * Parameter layout
 * ---------------------------------------------------------------------
 */

/*
 * Walks the tensors in their fixed order: with base == NULL only counts
 * them and their floats (and fills m->tensors when it is not NULL); else
 * points the members of t into base.
 */
typedef struct layout_walk
{
	bert_train_model *m;
	float	   *base;
	bert_train_tensors *t;
	long		offset;
	int			count;
} layout_walk;

static float *
place(layout_walk *lw, const char *name, int64_t d0, int64_t d1, int decay)
{
	long		numel = (long) d0 * (d1 > 0 ? d1 : 1);
	float	   *p = lw->base ? lw->base + lw->offset : NULL;

	if (lw->base == NULL && lw->m->tensors != NULL)
	{
		bert_train_tensor *t = &lw->m->tensors[lw->count];

		snprintf(t->name, sizeof(t->name), "%s", name);
		t->ndim = d1 > 0 ? 2 : 1;
		t->shape[0] = d0;
		t->shape[1] = d1 > 0 ? d1 : 0;
		t->offset = lw->offset;
		t->numel = numel;
		t->decay = decay;
	}
	lw->offset += numel;
	lw->count++;
	return p;
}

static void
layout(bert_train_model *m, float *base, bert_train_tensors *t)
{
	const bert_config *c = &m->config;
	int			C = c->hidden_size;
	int			IC = c->intermediate_size;
	int			K = m->opt.num_labels;
	layout_walk lw = {m, base, t, 0, 0};
	bert_train_tensors dummy;
	char		name[96];

	if (t == NULL)
	{
		memset(&dummy, 0, sizeof(dummy));
		t = &dummy;
	}
	t->word_emb = place(&lw, "bert.embeddings.word_embeddings.weight", c->vocab_size, C, 1);
	t->pos_emb = place(&lw, "bert.embeddings.position_embeddings.weight", c->max_position_embeddings, C, 1);
	t->type_emb = place(&lw, "bert.embeddings.token_type_embeddings.weight", c->type_vocab_size, C, 1);
	t->emb_ln_w = place(&lw, "bert.embeddings.LayerNorm.weight", C, 0, 0);
	t->emb_ln_b = place(&lw, "bert.embeddings.LayerNorm.bias", C, 0, 0);
	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		bert_train_layer dl;
		bert_train_layer *L = t->layers ? &t->layers[l] : &dl;

#define P(dst, what, d0, d1, decay) \
		do { \
			snprintf(name, sizeof(name), "bert.encoder.layer.%d.%s", l, (what)); \
			(dst) = place(&lw, name, (d0), (d1), (decay)); \
		} while (0)
		P(L->q_w, "attention.self.query.weight", C, C, 1);
		P(L->q_b, "attention.self.query.bias", C, 0, 0);
		P(L->k_w, "attention.self.key.weight", C, C, 1);
		P(L->k_b, "attention.self.key.bias", C, 0, 0);
		P(L->v_w, "attention.self.value.weight", C, C, 1);
		P(L->v_b, "attention.self.value.bias", C, 0, 0);
		P(L->attn_out_w, "attention.output.dense.weight", C, C, 1);
		P(L->attn_out_b, "attention.output.dense.bias", C, 0, 0);
		P(L->ln1_w, "attention.output.LayerNorm.weight", C, 0, 0);
		P(L->ln1_b, "attention.output.LayerNorm.bias", C, 0, 0);
		P(L->inter_w, "intermediate.dense.weight", IC, C, 1);
		P(L->inter_b, "intermediate.dense.bias", IC, 0, 0);
		P(L->out_w, "output.dense.weight", C, IC, 1);
		P(L->out_b, "output.dense.bias", C, 0, 0);
		P(L->ln2_w, "output.LayerNorm.weight", C, 0, 0);
		P(L->ln2_b, "output.LayerNorm.bias", C, 0, 0);
#undef P
	}
	t->pool_w = place(&lw, "bert.pooler.dense.weight", C, C, 1);
	t->pool_b = place(&lw, "bert.pooler.dense.bias", C, 0, 0);
	t->mlm_dense_w = place(&lw, "cls.predictions.transform.dense.weight", C, C, 1);
	t->mlm_dense_b = place(&lw, "cls.predictions.transform.dense.bias", C, 0, 0);
	t->mlm_ln_w = place(&lw, "cls.predictions.transform.LayerNorm.weight", C, 0, 0);
	t->mlm_ln_b = place(&lw, "cls.predictions.transform.LayerNorm.bias", C, 0, 0);
	t->mlm_bias = place(&lw, "cls.predictions.bias", c->vocab_size, 0, 0);
	t->cls_w = place(&lw, "classifier.weight", K, C, 1);
	t->cls_b = place(&lw, "classifier.bias", K, 0, 0);
	if (base == NULL)
	{
		m->n_params = lw.offset;
		m->n_tensors = lw.count;
	}
}

/* ---------------------------------------------------------------------
 * Creation, initialization
 * ---------------------------------------------------------------------
 */

/* splitmix64 */
static uint64_t
next_u64(uint64_t *state)
{
	uint64_t	z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Standard normal by Box-Muller, from 53-bit uniforms in (0, 1). */
static double
next_normal(uint64_t *state)
{
	double		u1 = ((next_u64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	double		u2 = ((next_u64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);

	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void
init_weights(bert_train_model *m, uint64_t seed)
{
	uint64_t	state = seed;
	int			C = m->config.hidden_size;
	int			pad = m->opt.pad_token_id;

	for (int i = 0; i < m->n_tensors; i++)
	{
		const bert_train_tensor *t = &m->tensors[i];
		float	   *p = m->params + t->offset;

		if (strstr(t->name, "LayerNorm.weight") != NULL)
			for (long j = 0; j < t->numel; j++)
				p[j] = 1.0f;
		else if (t->ndim == 1)
			memset(p, 0, t->numel * sizeof(float));
		else
			for (long j = 0; j < t->numel; j++)
				p[j] = (float) (m->opt.initializer_range * next_normal(&state));
	}
	if (pad >= 0 && pad < m->config.vocab_size)
		memset(m->w.word_emb + (long) pad * C, 0, C * sizeof(float));
}

mmsa_status
bert_train_create(const bert_config *cfg, const bert_train_options *opt,
				  uint64_t seed, bert_train_model **out, mmsa_error *err)
{
	bert_train_model *m;
	int			L = cfg->num_hidden_layers;

	*out = NULL;
	if (cfg->vocab_size < 1 || cfg->hidden_size < 1 || L < 1 ||
		cfg->num_attention_heads < 1 || cfg->intermediate_size < 1 ||
		cfg->max_position_embeddings < 1 || cfg->type_vocab_size < 1 ||
		cfg->hidden_size % cfg->num_attention_heads != 0 ||
		L > BERT_MAX_LAYERS || cfg->hidden_size > BERT_MAX_HIDDEN ||
		!(cfg->layer_norm_eps > 0.0f))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "invalid BERT configuration");
	if (opt->num_labels < 1 || opt->num_labels > BERT_TRAIN_MAX_LABELS)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "num_labels %d out of range 1..%d", opt->num_labels,
							  BERT_TRAIN_MAX_LABELS);
	if (!(opt->hidden_dropout >= 0.0f && opt->hidden_dropout < 1.0f &&
		  opt->attention_dropout >= 0.0f && opt->attention_dropout < 1.0f))
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "dropout probabilities must be in [0, 1)");
	if (!(opt->initializer_range >= 0.0f))
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "initializer_range must not be negative");

	m = calloc(1, sizeof(bert_train_model));
	if (m == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	m->config = *cfg;
	m->opt = *opt;
	m->mlm_rows = -1;
	layout(m, NULL, NULL);		/* counts */
	m->tensors = calloc(m->n_tensors, sizeof(bert_train_tensor));
	m->w.layers = calloc(L, sizeof(bert_train_layer));
	m->g.layers = calloc(L, sizeof(bert_train_layer));
	m->params = malloc(m->n_params * sizeof(float));
	m->grads = calloc(m->n_params, sizeof(float));
	m->class_weights = malloc(opt->num_labels * sizeof(float));
	if (m->tensors == NULL || m->w.layers == NULL || m->g.layers == NULL ||
		m->params == NULL || m->grads == NULL || m->class_weights == NULL)
	{
		bert_train_free(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM,
							  "out of memory for BERT parameters");
	}
	layout(m, NULL, NULL);		/* names and offsets */
	layout(m, m->params, &m->w);
	layout(m, m->grads, &m->g);
	init_weights(m, seed);
	*out = m;
	return MMSA_OK;
}

static void
free_acts(bert_train_model *m)
{
	free(m->act);
	m->act = NULL;
	m->max_rows = 0;
	m->max_T = 0;
	m->att_threads = 0;
	m->have_forward = 0;
}

static void
free_mlm(bert_train_model *m)
{
	free(m->mlm_act);
	m->mlm_act = NULL;
	m->max_mlm = 0;
	m->mlm_rows = -1;
}

void
bert_train_free(bert_train_model *m)
{
	if (m == NULL)
		return;
	free_acts(m);
	free_mlm(m);
	free(m->tensors);
	free(m->w.layers);
	free(m->g.layers);
	free(m->params);
	free(m->grads);
	free(m->class_weights);
	free(m);
}

void
bert_train_set_pool(bert_train_model *m, mmsa_pool *pool)
{
	m->pool = pool;
}

const bert_train_tensor *
bert_train_find(const bert_train_model *m, const char *name)
{
	for (int i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

/* ---------------------------------------------------------------------
 * Loading and saving
 * ---------------------------------------------------------------------
 */

static int
is_head_tensor(const char *name)
{
	return strncmp(name, "bert.pooler.", 12) == 0 ||
		strncmp(name, "cls.", 4) == 0 || strncmp(name, "classifier.", 11) == 0;
}

mmsa_status
bert_train_load_weights(bert_train_model *m, const char *path, int *n_loaded,
						mmsa_error *err)
{
	safetensors_file f;
	mmsa_status status;
	const float **src;
	int			loaded = 0;

	if (n_loaded)
		*n_loaded = 0;
	src = calloc(m->n_tensors, sizeof(const float *));
	if (src == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	if ((status = safetensors_open(path, &f, err)) != MMSA_OK)
	{
		safetensors_close(&f);
		free(src);
		return status;
	}
	/* check every tensor first, so that a bad file changes nothing */
	for (int i = 0; i < m->n_tensors; i++)
	{
		const bert_train_tensor *t = &m->tensors[i];
		const char *name = t->name;

		if (safetensors_find(&f, name) == NULL &&
			strncmp(name, "bert.", 5) == 0 && safetensors_find(&f, name + 5) != NULL)
			name += 5;
		if (safetensors_find(&f, name) == NULL && is_head_tensor(t->name))
			continue;
		src[i] = safetensors_get_f32(&f, name, t->ndim, t->shape, err);
		if (src[i] == NULL)
		{
			safetensors_close(&f);
			free(src);
			return err ? err->status : MMSA_ERR_FORMAT;
		}
	}
	for (int i = 0; i < m->n_tensors; i++)
		if (src[i] != NULL)
		{
			memcpy(m->params + m->tensors[i].offset, src[i],
				   m->tensors[i].numel * sizeof(float));
			loaded++;
		}
	safetensors_close(&f);
	free(src);
	if (n_loaded)
		*n_loaded = loaded;
	return MMSA_OK;
}

static json_t *
config_json(const bert_train_model *m)
{
	const bert_config *c = &m->config;
	json_t	   *root = json_object();
	json_t	   *id2label = json_object();
	json_t	   *label2id = json_object();

	json_object_set_new(root, "architectures",
						json_pack("[s,s]", "BertForMaskedLM", "BertForSequenceClassification"));
	json_object_set_new(root, "model_type", json_string("bert"));
	json_object_set_new(root, "vocab_size", json_integer(c->vocab_size));
	json_object_set_new(root, "hidden_size", json_integer(c->hidden_size));
	json_object_set_new(root, "num_hidden_layers", json_integer(c->num_hidden_layers));
	json_object_set_new(root, "num_attention_heads", json_integer(c->num_attention_heads));
	json_object_set_new(root, "intermediate_size", json_integer(c->intermediate_size));
	json_object_set_new(root, "max_position_embeddings", json_integer(c->max_position_embeddings));
	json_object_set_new(root, "type_vocab_size", json_integer(c->type_vocab_size));
	json_object_set_new(root, "layer_norm_eps", json_real(c->layer_norm_eps));
	json_object_set_new(root, "hidden_act", json_string("gelu"));
	json_object_set_new(root, "position_embedding_type", json_string("absolute"));
	json_object_set_new(root, "hidden_dropout_prob", json_real(m->opt.hidden_dropout));
	json_object_set_new(root, "attention_probs_dropout_prob", json_real(m->opt.attention_dropout));
	json_object_set_new(root, "initializer_range", json_real(m->opt.initializer_range));
	json_object_set_new(root, "pad_token_id", json_integer(m->opt.pad_token_id));
	for (int i = 0; i < m->opt.num_labels; i++)
	{
		char		id[16],
					label[32];

		snprintf(id, sizeof(id), "%d", i);
		snprintf(label, sizeof(label), "LABEL_%d", i);
		json_object_set_new(id2label, id, json_string(label));
		json_object_set_new(label2id, label, json_integer(i));
	}
	json_object_set_new(root, "id2label", id2label);
	json_object_set_new(root, "label2id", label2id);
	return root;
}

mmsa_status
bert_train_save(const bert_train_model *m, const char *dir, mmsa_error *err)
{
	return bert_train_save_as(m, dir, ST_F32, err);
}

mmsa_status
bert_train_save_as(const bert_train_model *m, const char *dir, st_dtype dtype,
				   mmsa_error *err)
{
	char		path[4096];
	json_t	   *cfg;
	st_write_tensor *wt;
	mmsa_status status;

	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not create directory \"%s\": %s",
							  dir, strerror(errno));
	if (snprintf(path, sizeof(path), "%s/config.json", dir) >= (int) sizeof(path))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "model directory name too long");
	cfg = config_json(m);
	if (cfg == NULL || json_dump_file(cfg, path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
	{
		json_decref(cfg);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\"", path);
	}
	json_decref(cfg);

	wt = calloc(m->n_tensors, sizeof(st_write_tensor));
	if (wt == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	for (int i = 0; i < m->n_tensors; i++)
	{
		const bert_train_tensor *t = &m->tensors[i];

		wt[i].name = t->name;
		wt[i].dtype = dtype;
		wt[i].ndim = t->ndim;
		wt[i].shape[0] = t->shape[0];
		wt[i].shape[1] = t->shape[1];
		wt[i].data = m->params + t->offset;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	{
		const char *keys[] = {"format"};
		const char *values[] = {"pt"};

		status = safetensors_write(path, wt, m->n_tensors, keys, values, 1, err);
	}
	free(wt);
	return status;
}

/* ---------------------------------------------------------------------
 * Activations
 * ---------------------------------------------------------------------
 */

mmsa_status
bert_train_adamw_create(const bert_train_model *m, float beta1, float beta2,
						float eps, float weight_decay, adamw_optimizer **out,
						mmsa_error *err)
{
	adamw_segment *seg = malloc(m->n_tensors * sizeof(adamw_segment));
	mmsa_status status;

	*out = NULL;
	if (seg == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	for (int i = 0; i < m->n_tensors; i++)
	{
		seg[i].offset = m->tensors[i].offset;
		seg[i].n = m->tensors[i].numel;
		seg[i].decay = m->tensors[i].decay;
	}
	status = adamw_create(m->n_params, seg, m->n_tensors, beta1, beta2, eps,
						  weight_decay, out, err);
	free(seg);
	return status;
}

void
bert_train_zero_grad(bert_train_model *m)
{
	memset(m->grads, 0, m->n_params * sizeof(float));
}

/*
 * Points *dst at the next n floats of the block (or only counts them when
 * the block is NULL).
 */
static void
carve(float **dst, float *block, size_t *used, size_t n)
{
	if (block != NULL)
		*dst = block + *used;
	*used += n;
}

static void
carve_acts(bert_train_model *m, float *block, size_t *used, long rows, int T)
{
	size_t		L = m->config.num_hidden_layers;
	size_t		C = m->config.hidden_size;
	size_t		IC = m->config.intermediate_size;
	size_t		NH = m->config.num_attention_heads;
	size_t		K = m->opt.num_labels;
	size_t		N = rows;
	size_t		B = rows;			/* batch rows are at most rows */
	size_t		TT = (size_t) T * T;
	float	   *ids = NULL,
			   *types = NULL,
			   *labels = NULL;

	/* int32 arrays share the block (float and int32 are both 4 bytes) */
	carve(&ids, block, used, N);
	carve(&types, block, used, N);
	carve(&labels, block, used, B);
	if (block != NULL)
	{
		m->ids = (int32_t *) ids;
		m->types = (int32_t *) types;
		m->cls_labels = (int32_t *) labels;
	}
	carve(&m->addmask, block, used, N);
	carve(&m->emb_in, block, used, N * C);
	carve(&m->emb_mean, block, used, N);
	carve(&m->emb_rstd, block, used, N);
	carve(&m->hidden, block, used, (L + 1) * N * C);
	carve(&m->q, block, used, L * N * C);
	carve(&m->k, block, used, L * N * C);
	carve(&m->v, block, used, L * N * C);
	carve(&m->ctx, block, used, L * N * C);
	/* B' sequences of NH (T',T') each, B'T' <= rows, T' <= T */
	carve(&m->att, block, used, L * N * NH * (size_t) T);
	carve(&m->ln1_in, block, used, L * N * C);
	carve(&m->ln1_out, block, used, L * N * C);
	carve(&m->ln2_in, block, used, L * N * C);
	carve(&m->ln1_mean, block, used, L * N);
	carve(&m->ln1_rstd, block, used, L * N);
	carve(&m->ln2_mean, block, used, L * N);
	carve(&m->ln2_rstd, block, used, L * N);
	carve(&m->ffn_pre, block, used, L * N * IC);
	carve(&m->ffn_act, block, used, L * N * IC);
	carve(&m->scratch, block, used, N * C);
	carve(&m->att_scratch, block, used, (size_t) m->att_threads * 2 * TT);
	carve(&m->dhidden, block, used, N * C);
	carve(&m->d1, block, used, N * C);
	carve(&m->d2, block, used, N * C);
	carve(&m->dq, block, used, N * C);
	carve(&m->dk, block, used, N * C);
	carve(&m->dv, block, used, N * C);
	carve(&m->dffn1, block, used, N * IC);
	carve(&m->dffn2, block, used, N * IC);
	carve(&m->cls_in, block, used, B * C);
	carve(&m->pooled, block, used, B * C);
	carve(&m->pooled_drop, block, used, B * C);
	carve(&m->cls_d1, block, used, B * C);
	carve(&m->cls_d2, block, used, B * C);
	carve(&m->cls_logits, block, used, B * K);
	carve(&m->cls_probs, block, used, B * K);
	carve(&m->cls_dlogits, block, used, B * K);
}

/*
 * Makes the activation block big enough for B*T rows of length T (rows
 * and T only grow).
 */
static mmsa_status
ensure_acts(bert_train_model *m, int B, int T, mmsa_error *err)
{
	long		rows = (long) B * T;
	size_t		n = 0;
	int			threads = m->pool != NULL ? mmsa_pool_size(m->pool) : 1;

	if (rows <= m->max_rows && T <= m->max_T && threads <= m->att_threads)
		return MMSA_OK;
	if (threads < m->att_threads)
		threads = m->att_threads;
	if (rows < m->max_rows)
		rows = m->max_rows;
	if (T < m->max_T)
		T = m->max_T;
	free_acts(m);
	m->att_threads = threads;
	carve_acts(m, NULL, &n, rows, T);
	m->act = malloc(n * sizeof(float));
	if (m->act == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM,
							  "out of memory for BERT training activations (%ld rows)", rows);
	n = 0;
	carve_acts(m, m->act, &n, rows, T);
	m->max_rows = rows;
	m->max_T = T;
	return MMSA_OK;
}

/* ---------------------------------------------------------------------
 * Forward
 * ---------------------------------------------------------------------
 */

/* Dropout sites: one seed each per step. */
#define SITE_EMB			0
#define SITE_CLS			1
#define SITE_LAYER(l, k)	(16 + 4 * (uint64_t) (l) + (k))	/* k: 0 attention probs,
															 * 1 attention output,
															 * 2 FFN output */

static uint64_t
site_seed(const bert_train_model *m, uint64_t site)
{
	return dropout_site_seed(m->seed, site);
}

/* ---------------------------------------------------------------------
 * Elementwise layers split between the threads of m->pool
 * ---------------------------------------------------------------------
 */

/* Fewer elements than this are not worth waking the pool for. */
#define PARALLEL_MIN_ELEMENTS 4096

/* The arguments of one elementwise layer, as the layer functions take them. */
typedef struct elementwise_args
{
	float	   *out;
	float	   *mean,
			   *rstd;			/* layernorm_forward_train */
	const float *inp,
			   *dout,
			   *weight,
			   *bias;
	float		p,
				eps;
	uint64_t	seed;
	int			C;
} elementwise_args;

/* Computes elements (or rows) lo .. hi-1 of a layer. */
typedef void (*range_fn) (const elementwise_args *a, long lo, long hi);

typedef struct range_job
{
	range_fn	fn;
	const elementwise_args *args;
	long		n;
} range_job;

/* Thread t's part of [0, n): consecutive slices of whole 16-element units. */
static void
range_thread(void *arg, int t, int nthreads)
{
	const range_job *j = arg;
	long		lo,
				hi;

	mmsa_pool_share(j->n, t, nthreads, 16, &lo, &hi);
	if (hi > lo)
		j->fn(j->args, lo, hi);
}

/*
 * fn over [0, n) on the threads of m->pool, or on the caller's thread alone
 * without a pool or when the range covers few elements.  Every element is
 * computed as the serial loop computes it, so the split changes no result.
 */
static void
parallel_range(const bert_train_model *m, long n, long elements, range_fn fn,
			   const elementwise_args *a)
{
	range_job	j = {fn, a, n};

	if (m->pool == NULL || elements < PARALLEL_MIN_ELEMENTS)
		fn(a, 0, n);
	else
		mmsa_pool_run(m->pool, range_thread, &j);
}

static void
gelu_forward_part(const elementwise_args *a, long lo, long hi)
{
	gelu_forward(a->out + lo, a->inp + lo, hi - lo);
}

/* out = (not +=) the gradient through GELU */
static void
gelu_backward_part(const elementwise_args *a, long lo, long hi)
{
	memset(a->out + lo, 0, (hi - lo) * sizeof(float));
	gelu_backward(a->out + lo, a->inp + lo, a->dout + lo, hi - lo);
}

static void
dropout_forward_part(const elementwise_args *a, long lo, long hi)
{
	dropout_forward_range(a->out, a->inp, a->p, a->seed, lo, hi);
}

/* out = (not +=) the gradient through dropout */
static void
dropout_backward_part(const elementwise_args *a, long lo, long hi)
{
	memset(a->out + lo, 0, (hi - lo) * sizeof(float));
	dropout_backward_range(a->out, a->dout, a->p, a->seed, lo, hi);
}

/* rows lo .. hi-1 */
static void
layernorm_forward_part(const elementwise_args *a, long lo, long hi)
{
	layernorm_forward_train(a->out + lo * a->C, a->mean + lo, a->rstd + lo,
							a->inp + lo * a->C, a->weight, a->bias,
							(int) (hi - lo), a->C, a->eps);
}

/* out (n) = gelu(inp) */
static void
gelu_forward_par(const bert_train_model *m, float *out, const float *inp, long n)
{
	elementwise_args a = {.out = out,.inp = inp};

	parallel_range(m, n, n, gelu_forward_part, &a);
}

/* dinp (n) = the gradient dout (n) through gelu at inp (n) */
static void
gelu_backward_par(const bert_train_model *m, float *dinp, const float *inp,
				  const float *dout, long n)
{
	elementwise_args a = {.out = dinp,.inp = inp,.dout = dout};

	parallel_range(m, n, n, gelu_backward_part, &a);
}

/* out (n) = dropout(inp) with probability p and mask seed */
static void
dropout_forward_par(const bert_train_model *m, float *out, const float *inp,
					float p, uint64_t seed, long n)
{
	elementwise_args a = {.out = out,.inp = inp,.p = p,.seed = seed};

	if (p <= 0.0f && out == inp)
		return;					/* outside training: nothing to do */
	parallel_range(m, n, n, dropout_forward_part, &a);
}

/* dinp (n) = the gradient dout (n) through that dropout */
static void
dropout_backward_par(const bert_train_model *m, float *dinp, const float *dout,
					 float p, uint64_t seed, long n)
{
	elementwise_args a = {.out = dinp,.dout = dout,.p = p,.seed = seed};

	parallel_range(m, n, n, dropout_backward_part, &a);
}

/* layernorm_forward_train over N rows of C, split by rows */
static void
layernorm_forward_par(const bert_train_model *m, float *out, float *mean, float *rstd,
					  const float *inp, const float *weight, const float *bias,
					  int N, int C, float eps)
{
	elementwise_args a = {.out = out,.mean = mean,.rstd = rstd,.inp = inp,
	.weight = weight,.bias = bias,.eps = eps,.C = C};

	parallel_range(m, N, (long) N * C, layernorm_forward_part, &a);
}

/* The dropout probabilities of this forward (0 outside training). */
static float
p_hidden(const bert_train_model *m)
{
	return m->training ? m->opt.hidden_dropout : 0.0f;
}

static float
p_attention(const bert_train_model *m)
{
	return m->training ? m->opt.attention_dropout : 0.0f;
}

mmsa_status
bert_train_forward(bert_train_model *m, const int32_t *ids,
				   const int32_t *token_types, const int32_t *mask, int B,
				   int T, int training, uint64_t seed, mmsa_error *err)
{
	const bert_config *c = &m->config;
	int			C = c->hidden_size;
	int			IC = c->intermediate_size;
	int			NH = c->num_attention_heads;
	long		N = (long) B * T;
	size_t		NC = (size_t) N * C;
	size_t		NI = (size_t) N * IC;
	size_t		ATT = (size_t) B * NH * T * T;
	float		eps = c->layer_norm_eps;
	mmsa_status status;

	m->have_forward = 0;
	m->mlm_rows = -1;
	m->cls_done = 0;
	if ((status = bert_check_inputs(&m->config, ids, token_types, mask, B, T, err)) != MMSA_OK ||
		(status = ensure_acts(m, B, T, err)) != MMSA_OK)
		return status;
	m->B = B;
	m->T = T;
	m->training = training != 0;
	m->seed = seed;
	memcpy(m->ids, ids, N * sizeof(int32_t));
	if (token_types != NULL)
		memcpy(m->types, token_types, N * sizeof(int32_t));
	else
		memset(m->types, 0, N * sizeof(int32_t));
	memset(m->dhidden, 0, NC * sizeof(float));

	/* embeddings, LayerNorm, dropout: hidden[0] */
	embeddings_forward(m->emb_in, m->ids, m->types, m->w.word_emb, m->w.pos_emb,
					   m->w.type_emb, B, T, C);
	layernorm_forward_par(m, m->hidden, m->emb_mean, m->emb_rstd, m->emb_in,
						  m->w.emb_ln_w, m->w.emb_ln_b, (int) N, C, eps);
	dropout_forward_par(m, m->hidden, m->hidden, p_hidden(m), site_seed(m, SITE_EMB), NC);
	attention_mask_forward(m->addmask, mask, B, T);

	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		const bert_train_layer *w = &m->w.layers[l];
		const float *x = m->hidden + l * NC;
		float	   *q = m->q + l * NC,
				   *k = m->k + l * NC,
				   *v = m->v + l * NC,
				   *ctx = m->ctx + l * NC,
				   *att = m->att + l * ATT,
				   *ln1_in = m->ln1_in + l * NC,
				   *ln1_out = m->ln1_out + l * NC,
				   *ln2_in = m->ln2_in + l * NC,
				   *ffn_pre = m->ffn_pre + l * NI,
				   *ffn_act = m->ffn_act + l * NI;

		if (mmsa_interrupted())
			return mmsa_set_error(err, MMSA_ERR_CANCELED, "canceled");

		/* self-attention */
		matmul_forward(m->pool, q, x, w->q_w, w->q_b, (int) N, C, C);
		matmul_forward(m->pool, k, x, w->k_w, w->k_b, (int) N, C, C);
		matmul_forward(m->pool, v, x, w->v_w, w->v_b, (int) N, C, C);
		attention_forward_train(m->pool, ctx, att, m->att_scratch, q, k, v, m->addmask,
								B, T, C, NH, p_attention(m),
								site_seed(m, SITE_LAYER(l, 0)));
		/* ln1_out = LN1(dropout(ctx Wo^T + bo) + x) */
		matmul_forward(m->pool, m->scratch, ctx, w->attn_out_w, w->attn_out_b, (int) N, C, C);
		dropout_forward_par(m, m->scratch, m->scratch, p_hidden(m),
							site_seed(m, SITE_LAYER(l, 1)), NC);
		residual_forward(ln1_in, m->scratch, x, NC);
		layernorm_forward_par(m, ln1_out, m->ln1_mean + l * N, m->ln1_rstd + l * N,
							  ln1_in, w->ln1_w, w->ln1_b, (int) N, C, eps);
		/* hidden[l+1] = LN2(dropout(gelu(ln1_out Wi^T + bi) Wo2^T + bo2) + ln1_out) */
		matmul_forward(m->pool, ffn_pre, ln1_out, w->inter_w, w->inter_b, (int) N, C, IC);
		gelu_forward_par(m, ffn_act, ffn_pre, NI);
		matmul_forward(m->pool, m->scratch, ffn_act, w->out_w, w->out_b, (int) N, IC, C);
		dropout_forward_par(m, m->scratch, m->scratch, p_hidden(m),
							site_seed(m, SITE_LAYER(l, 2)), NC);
		residual_forward(ln2_in, m->scratch, ln1_out, NC);
		layernorm_forward_par(m, m->hidden + (l + 1) * NC, m->ln2_mean + l * N,
							  m->ln2_rstd + l * N, ln2_in, w->ln2_w, w->ln2_b,
							  (int) N, C, eps);
	}
	m->have_forward = 1;
	return MMSA_OK;
}

/* The last hidden state of the last forward: (B,T,C). */
static float *
last_hidden(const bert_train_model *m)
{
	return m->hidden + (size_t) m->config.num_hidden_layers * m->B * m->T *
		m->config.hidden_size;
}

/* Makes the MLM block big enough for M rows. */
static mmsa_status
ensure_mlm(bert_train_model *m, long M, mmsa_error *err)
{
	size_t		C = m->config.hidden_size;
	size_t		V = m->config.vocab_size;
	float	   *block;
	size_t		n = 0;

	if (M <= m->max_mlm && m->mlm_act != NULL)
		return MMSA_OK;
	free_mlm(m);
	block = malloc(((size_t) M * (2 + 6 * C + 2 + 2 * V)) * sizeof(float));
	if (block == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM,
							  "out of memory for the MLM head (%ld positions)", M);
	m->mlm_act = block;
	m->mlm_index = (int32_t *) block;
	m->mlm_targets = (int32_t *) (block + M);
	n = 2 * M;
	carve(&m->mlm_in, block, &n, M * C);
	carve(&m->mlm_pre, block, &n, M * C);
	carve(&m->mlm_gelu, block, &n, M * C);
	carve(&m->mlm_ln, block, &n, M * C);
	carve(&m->mlm_d1, block, &n, M * C);
	carve(&m->mlm_d2, block, &n, M * C);
	carve(&m->mlm_mean, block, &n, M);
	carve(&m->mlm_rstd, block, &n, M);
	carve(&m->mlm_probs, block, &n, M * V);
	carve(&m->mlm_dlogits, block, &n, M * V);
	m->max_mlm = M;
	return MMSA_OK;
}

mmsa_status
bert_train_mlm_forward(bert_train_model *m, const int32_t *labels, float *loss,
					   mmsa_error *err)
{
	int			C = m->config.hidden_size;
	int			V = m->config.vocab_size;
	long		N;
	long		M = 0;
	const float *hidden;
	mmsa_status status;

	*loss = 0.0f;
	if (!m->have_forward)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "MLM head called before the encoder forward");
	N = (long) m->B * m->T;
	for (long i = 0; i < N; i++)
	{
		if (labels[i] >= V)
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "MLM label %d at row %ld is outside the vocabulary (size %d)",
								  labels[i], i, V);
		if (labels[i] >= 0)
			M++;
	}
	m->mlm_rows = 0;
	if (M == 0)
		return MMSA_OK;
	if ((status = ensure_mlm(m, M, err)) != MMSA_OK)
		return status;
	/* gather the labelled rows */
	hidden = last_hidden(m);
	M = 0;
	for (long i = 0; i < N; i++)
		if (labels[i] >= 0)
		{
			m->mlm_index[M] = (int32_t) i;
			m->mlm_targets[M] = labels[i];
			memcpy(m->mlm_in + M * C, hidden + i * C, C * sizeof(float));
			M++;
		}
	/* transform: dense, GELU, LayerNorm */
	matmul_forward(m->pool, m->mlm_pre, m->mlm_in, m->w.mlm_dense_w, m->w.mlm_dense_b, (int) M, C, C);
	gelu_forward_par(m, m->mlm_gelu, m->mlm_pre, M * C);
	layernorm_forward_par(m, m->mlm_ln, m->mlm_mean, m->mlm_rstd, m->mlm_gelu,
						  m->w.mlm_ln_w, m->w.mlm_ln_b, (int) M, C,
						  m->config.layer_norm_eps);
	/* decoder tied to the word embeddings, then softmax cross-entropy */
	matmul_forward(m->pool, m->mlm_probs, m->mlm_ln, m->w.word_emb, m->w.mlm_bias, (int) M, C, V);
	*loss = crossentropy_forward(m->mlm_probs, m->mlm_probs, m->mlm_targets, NULL, (int) M, V);
	m->mlm_rows = (int) M;
	return MMSA_OK;
}

void
bert_train_mlm_backward(bert_train_model *m, float dloss)
{
	int			C = m->config.hidden_size;
	int			V = m->config.vocab_size;
	int			M = m->mlm_rows;

	if (M <= 0)
		return;
	memset(m->mlm_dlogits, 0, (size_t) M * V * sizeof(float));
	crossentropy_backward(m->mlm_dlogits, m->mlm_probs, m->mlm_targets, NULL, M, V, dloss);
	memset(m->mlm_d1, 0, (size_t) M * C * sizeof(float));
	matmul_backward(m->pool, m->mlm_d1, m->g.word_emb, m->g.mlm_bias, m->mlm_dlogits,
					m->mlm_ln, m->w.word_emb, M, C, V);
	memset(m->mlm_d2, 0, (size_t) M * C * sizeof(float));
	layernorm_backward(m->mlm_d2, m->g.mlm_ln_w, m->g.mlm_ln_b, m->mlm_d1,
					   m->mlm_gelu, m->w.mlm_ln_w, m->mlm_mean, m->mlm_rstd, M, C);
	gelu_backward_par(m, m->mlm_d1, m->mlm_pre, m->mlm_d2, (long) M * C);
	memset(m->mlm_d2, 0, (size_t) M * C * sizeof(float));
	matmul_backward(m->pool, m->mlm_d2, m->g.mlm_dense_w, m->g.mlm_dense_b, m->mlm_d1,
					m->mlm_in, m->w.mlm_dense_w, M, C, C);
	/* scatter into the gradient of the last hidden state */
	for (int r = 0; r < M; r++)
	{
		float	   *dst = m->dhidden + (size_t) m->mlm_index[r] * C;
		const float *src = m->mlm_d2 + (size_t) r * C;

		for (int i = 0; i < C; i++)
			dst[i] += src[i];
	}
}

mmsa_status
bert_train_cls_forward(bert_train_model *m, const int32_t *labels,
					   const float *class_weights, float *loss,
					   mmsa_error *err)
{
	int			C = m->config.hidden_size;
	int			K = m->opt.num_labels;
	int			B = m->B;
	const float *hidden;

	*loss = 0.0f;
	if (!m->have_forward)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "classification head called before the encoder forward");
	for (int b = 0; b < B; b++)
		if (labels != NULL && labels[b] >= K)
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "label %d of batch row %d is outside 0..%d",
								  labels[b], b, K - 1);
	if (class_weights != NULL)
		for (int k = 0; k < K; k++)
			if (!(class_weights[k] >= 0.0f && class_weights[k] < INFINITY))
				return mmsa_set_error(err, MMSA_ERR_INVALID,
									  "class weight %d is not a finite non-negative number", k);
	/* pooler over the first token, dropout, classifier */
	hidden = last_hidden(m);
	for (int b = 0; b < B; b++)
		memcpy(m->cls_in + (size_t) b * C, hidden + (size_t) b * m->T * C, C * sizeof(float));
	matmul_forward(m->pool, m->pooled, m->cls_in, m->w.pool_w, m->w.pool_b, B, C, C);
	tanh_forward(m->pooled, m->pooled, (long) B * C);
	dropout_forward(m->pooled_drop, m->pooled, p_hidden(m), site_seed(m, SITE_CLS),
					(long) B * C);
	matmul_forward(m->pool, m->cls_logits, m->pooled_drop, m->w.cls_w, m->w.cls_b, B, C, K);
	if (labels != NULL)
		memcpy(m->cls_labels, labels, B * sizeof(int32_t));
	else
		for (int b = 0; b < B; b++)
			m->cls_labels[b] = -100;
	m->use_class_weights = class_weights != NULL;
	if (class_weights != NULL)
		memcpy(m->class_weights, class_weights, K * sizeof(float));
	*loss = crossentropy_forward(m->cls_probs, m->cls_logits, m->cls_labels,
								 m->use_class_weights ? m->class_weights : NULL, B, K);
	m->cls_done = 1;
	return MMSA_OK;
}

void
bert_train_cls_backward(bert_train_model *m, float dloss)
{
	int			C = m->config.hidden_size;
	int			K = m->opt.num_labels;
	int			B = m->B;

	if (!m->cls_done)
		return;
	memset(m->cls_dlogits, 0, (size_t) B * K * sizeof(float));
	crossentropy_backward(m->cls_dlogits, m->cls_probs, m->cls_labels,
						  m->use_class_weights ? m->class_weights : NULL, B, K, dloss);
	memset(m->cls_d1, 0, (size_t) B * C * sizeof(float));
	matmul_backward(m->pool, m->cls_d1, m->g.cls_w, m->g.cls_b, m->cls_dlogits,
					m->pooled_drop, m->w.cls_w, B, C, K);
	memset(m->cls_d2, 0, (size_t) B * C * sizeof(float));
	dropout_backward(m->cls_d2, m->cls_d1, p_hidden(m), site_seed(m, SITE_CLS), (long) B * C);
	memset(m->cls_d1, 0, (size_t) B * C * sizeof(float));
	tanh_backward(m->cls_d1, m->pooled, m->cls_d2, (long) B * C);
	memset(m->cls_d2, 0, (size_t) B * C * sizeof(float));
	matmul_backward(m->pool, m->cls_d2, m->g.pool_w, m->g.pool_b, m->cls_d1, m->cls_in,
					m->w.pool_w, B, C, C);
	for (int b = 0; b < B; b++)
	{
		float	   *dst = m->dhidden + (size_t) b * m->T * C;
		const float *src = m->cls_d2 + (size_t) b * C;

		for (int i = 0; i < C; i++)
			dst[i] += src[i];
	}
}

/* ---------------------------------------------------------------------
 * Backward
 * ---------------------------------------------------------------------
 */

mmsa_status
bert_train_backward(bert_train_model *m, mmsa_error *err)
{
	const bert_config *c = &m->config;
	int			C = c->hidden_size;
	int			IC = c->intermediate_size;
	int			NH = c->num_attention_heads;
	int			B = m->B,
				T = m->T;
	int			N = B * T;
	size_t		NC = (size_t) N * C;
	size_t		NI = (size_t) N * IC;
	size_t		ATT = (size_t) B * NH * T * T;
	float	   *dy = m->dhidden;	/* gradient of the current layer output */

	if (!m->have_forward)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "backward pass before a forward pass");

	for (int l = c->num_hidden_layers - 1; l >= 0; l--)
	{
		const bert_train_layer *w = &m->w.layers[l];
		bert_train_layer *g = &m->g.layers[l];
		const float *x = m->hidden + l * NC;

		if (mmsa_interrupted())
			return mmsa_set_error(err, MMSA_ERR_CANCELED, "canceled");

		/* LN2: d1 = d ln2_in, which is also the residual part of d ln1_out */
		memset(m->d1, 0, NC * sizeof(float));
		layernorm_backward(m->d1, g->ln2_w, g->ln2_b, dy, m->ln2_in + l * NC,
						   w->ln2_w, m->ln2_mean + l * N, m->ln2_rstd + l * N, N, C);
		/* FFN: d2 = d (FFN output before dropout) */
		dropout_backward_par(m, m->d2, m->d1, p_hidden(m), site_seed(m, SITE_LAYER(l, 2)), NC);
		memset(m->dffn1, 0, NI * sizeof(float));
		matmul_backward(m->pool, m->dffn1, g->out_w, g->out_b, m->d2, m->ffn_act + l * NI,
						w->out_w, N, IC, C);
		gelu_backward_par(m, m->dffn2, m->ffn_pre + l * NI, m->dffn1, NI);
		/* d1 += the FFN path: d1 = d ln1_out */
		matmul_backward(m->pool, m->d1, g->inter_w, g->inter_b, m->dffn2, m->ln1_out + l * NC,
						w->inter_w, N, C, IC);
		/* LN1: dy = d ln1_in, which is also the residual part of dx */
		memset(dy, 0, NC * sizeof(float));
		layernorm_backward(dy, g->ln1_w, g->ln1_b, m->d1, m->ln1_in + l * NC,
						   w->ln1_w, m->ln1_mean + l * N, m->ln1_rstd + l * N, N, C);
		/* attention output projection: d1 = d ctx */
		dropout_backward_par(m, m->d2, dy, p_hidden(m), site_seed(m, SITE_LAYER(l, 1)), NC);
		memset(m->d1, 0, NC * sizeof(float));
		matmul_backward(m->pool, m->d1, g->attn_out_w, g->attn_out_b, m->d2, m->ctx + l * NC,
						w->attn_out_w, N, C, C);
		/* attention */
		memset(m->dq, 0, NC * sizeof(float));
		memset(m->dk, 0, NC * sizeof(float));
		memset(m->dv, 0, NC * sizeof(float));
		attention_backward(m->pool, m->dq, m->dk, m->dv, m->att_scratch, m->d1,
						   m->q + l * NC, m->k + l * NC, m->v + l * NC,
						   m->att + l * ATT, B, T, C, NH, p_attention(m),
						   site_seed(m, SITE_LAYER(l, 0)));
		/* dy += the q, k, v paths: dy = dx */
		matmul_backward(m->pool, dy, g->q_w, g->q_b, m->dq, x, w->q_w, N, C, C);
		matmul_backward(m->pool, dy, g->k_w, g->k_b, m->dk, x, w->k_w, N, C, C);
		matmul_backward(m->pool, dy, g->v_w, g->v_b, m->dv, x, w->v_w, N, C, C);
	}

	/* embeddings: dropout, LayerNorm, the three tables */
	dropout_backward_par(m, m->d1, dy, p_hidden(m), site_seed(m, SITE_EMB), NC);
	memset(m->d2, 0, NC * sizeof(float));
	layernorm_backward(m->d2, m->g.emb_ln_w, m->g.emb_ln_b, m->d1, m->emb_in,
					   m->w.emb_ln_w, m->emb_mean, m->emb_rstd, N, C);
	embeddings_backward(m->g.word_emb, m->g.pos_emb, m->g.type_emb, m->d2,
						m->ids, m->types, m->opt.pad_token_id, B, T, C);
	/* the gradient of the last hidden state is used up */
	m->have_forward = 0;
	return MMSA_OK;
}
