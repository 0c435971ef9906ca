/*
 * bert.c
 *	  The BERT encoder (Hugging Face BertModel) forward pass: configuration,
 *	  weight loading and inference.  See bert.h.
 */
#include "bert.h"
#include "cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <jansson.h>

#include "gemm.h"
#include "layers.h"
#include "qgemm.h"

/* ---------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------
 */

/*
 * Reads the integer config key into *out, checking lo <= value <= hi.
 */
static mmsa_status
config_int(json_t *root, const char *path, const char *key, long lo, long hi,
		   int *out, mmsa_error *err)
{
	json_t	   *v = json_object_get(root, key);
	json_int_t	value;

	if (v == NULL)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "%s: missing key \"%s\"", path, key);
	if (!json_is_integer(v))
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "%s: \"%s\" must be an integer", path, key);
	value = json_integer_value(v);
	if (value < lo || value > hi)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "%s: \"%s\" is %lld, expected %ld..%ld",
							  path, key, (long long) value, lo, hi);
	*out = (int) value;
	return MMSA_OK;
}

mmsa_status
bert_config_load(const char *path, bert_config *cfg, mmsa_error *err)
{
	json_error_t jerr;
	json_t	   *root;
	json_t	   *v;
	mmsa_status status;
	double		eps;

	memset(cfg, 0, sizeof(*cfg));
	root = json_load_file(path, 0, &jerr);
	if (root == NULL)
	{
		FILE	   *probe = fopen(path, "r");

		if (probe == NULL)
			return mmsa_set_error(err, MMSA_ERR_IO,
								  "could not read BERT config \"%s\"", path);
		fclose(probe);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "%s: invalid JSON at line %d: %s",
							  path, jerr.line, jerr.text);
	}
	if (!json_is_object(root))
	{
		json_decref(root);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "%s: expected a JSON object", path);
	}

	if ((status = config_int(root, path, "vocab_size", 1, BERT_MAX_VOCAB,
							 &cfg->vocab_size, err)) != MMSA_OK ||
		(status = config_int(root, path, "hidden_size", 1, BERT_MAX_HIDDEN,
							 &cfg->hidden_size, err)) != MMSA_OK ||
		(status = config_int(root, path, "num_hidden_layers", 1, BERT_MAX_LAYERS,
							 &cfg->num_hidden_layers, err)) != MMSA_OK ||
		(status = config_int(root, path, "num_attention_heads", 1, BERT_MAX_HEADS,
							 &cfg->num_attention_heads, err)) != MMSA_OK ||
		(status = config_int(root, path, "intermediate_size", 1, BERT_MAX_INTERMEDIATE,
							 &cfg->intermediate_size, err)) != MMSA_OK ||
		(status = config_int(root, path, "max_position_embeddings", 1, BERT_MAX_POSITIONS,
							 &cfg->max_position_embeddings, err)) != MMSA_OK ||
		(status = config_int(root, path, "type_vocab_size", 1, BERT_MAX_TOKEN_TYPES,
							 &cfg->type_vocab_size, err)) != MMSA_OK)
		goto fail;

	if (cfg->hidden_size % cfg->num_attention_heads != 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"%s: \"hidden_size\" %d is not divisible by \"num_attention_heads\" %d",
								path, cfg->hidden_size, cfg->num_attention_heads);
		goto fail;
	}

	v = json_object_get(root, "layer_norm_eps");
	if (v == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"%s: missing key \"layer_norm_eps\"", path);
		goto fail;
	}
	eps = json_is_number(v) ? json_number_value(v) : -1.0;
	if (!(eps > 0.0 && eps < 1.0))
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"%s: \"layer_norm_eps\" must be a number between 0 and 1", path);
		goto fail;
	}
	cfg->layer_norm_eps = (float) eps;

	v = json_object_get(root, "hidden_act");
	if (v == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"%s: missing key \"hidden_act\"", path);
		goto fail;
	}
	if (!json_is_string(v) || strcmp(json_string_value(v), "gelu") != 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"%s: \"hidden_act\" must be \"gelu\"", path);
		goto fail;
	}

	v = json_object_get(root, "position_embedding_type");
	if (v != NULL && (!json_is_string(v) ||
					  strcmp(json_string_value(v), "absolute") != 0))
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"%s: \"position_embedding_type\" must be \"absolute\"", path);
		goto fail;
	}

	json_decref(root);
	return MMSA_OK;

fail:
	json_decref(root);
	memset(cfg, 0, sizeof(*cfg));
	return status;
}

/* ---------------------------------------------------------------------
 * Weights
 * ---------------------------------------------------------------------
 */

/*
 * The tensor prefix + name, checked to be 1-d (d0) or 2-d (d0,d1) when d1 is
 * 0 or not.  NULL (with err filled) when missing or of another shape.
 */
static const float *
get_weight(bert_model *m, const char *prefix, const char *name,
		   int64_t d0, int64_t d1, mmsa_error *err)
{
	char		full[256];
	int64_t		shape[2] = {d0, d1};

	snprintf(full, sizeof(full), "%s%s", prefix, name);
	return safetensors_get_f32(&m->file, full, d1 > 0 ? 2 : 1, shape, err);
}

/*
 * The LayerNorm called base (e.g. "embeddings.LayerNorm"), as weight/bias
 * or as the legacy gamma/beta.
 */
static mmsa_status
get_layernorm(bert_model *m, const char *prefix, const char *base,
			  const float **w, const float **b, mmsa_error *err)
{
	char		name[256];
	int			C = m->config.hidden_size;
	int			legacy;

	snprintf(name, sizeof(name), "%s%s.weight", prefix, base);
	legacy = safetensors_find(&m->file, name) == NULL;
	snprintf(name, sizeof(name), "%s.%s", base, legacy ? "gamma" : "weight");
	if ((*w = get_weight(m, prefix, name, C, 0, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;
	snprintf(name, sizeof(name), "%s.%s", base, legacy ? "beta" : "bias");
	if ((*b = get_weight(m, prefix, name, C, 0, err)) == NULL)
		return err ? err->status : MMSA_ERR_FORMAT;
	return MMSA_OK;
}

#define GET(dst, name, d0, d1) \
	do { \
		if (((dst) = get_weight(m, prefix, (name), (d0), (d1), err)) == NULL) \
			return err ? err->status : MMSA_ERR_FORMAT; \
	} while (0)

/* Looks up and shape-checks every tensor of the model. */
static mmsa_status
bind_weights(bert_model *m, mmsa_error *err)
{
	const bert_config *c = &m->config;
	int			C = c->hidden_size;
	int			IC = c->intermediate_size;
	const char *prefix;
	char		name[256];
	mmsa_status status;

	if (safetensors_find(&m->file, "embeddings.word_embeddings.weight") != NULL)
		prefix = "";
	else if (safetensors_find(&m->file, "bert.embeddings.word_embeddings.weight") != NULL)
		prefix = "bert.";
	else
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "\"%s\" has no tensor \"embeddings.word_embeddings.weight\" "
							  "(nor \"bert.embeddings.word_embeddings.weight\"): not a BERT checkpoint",
							  m->file.path);

	GET(m->word_emb, "embeddings.word_embeddings.weight", c->vocab_size, C);
	GET(m->pos_emb, "embeddings.position_embeddings.weight", c->max_position_embeddings, C);
	GET(m->type_emb, "embeddings.token_type_embeddings.weight", c->type_vocab_size, C);
	if ((status = get_layernorm(m, prefix, "embeddings.LayerNorm",
								&m->emb_ln_w, &m->emb_ln_b, err)) != MMSA_OK)
		return status;

	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		bert_layer_weights *w = &m->layers[l];

#define LAYER(dst, what, d0, d1) \
		do { \
			snprintf(name, sizeof(name), "encoder.layer.%d.%s", l, (what)); \
			GET(dst, name, d0, d1); \
		} while (0)

		LAYER(w->q_w, "attention.self.query.weight", C, C);
		LAYER(w->q_b, "attention.self.query.bias", C, 0);
		LAYER(w->k_w, "attention.self.key.weight", C, C);
		LAYER(w->k_b, "attention.self.key.bias", C, 0);
		LAYER(w->v_w, "attention.self.value.weight", C, C);
		LAYER(w->v_b, "attention.self.value.bias", C, 0);
		LAYER(w->attn_out_w, "attention.output.dense.weight", C, C);
		LAYER(w->attn_out_b, "attention.output.dense.bias", C, 0);
		LAYER(w->inter_w, "intermediate.dense.weight", IC, C);
		LAYER(w->inter_b, "intermediate.dense.bias", IC, 0);
		LAYER(w->out_w, "output.dense.weight", C, IC);
		LAYER(w->out_b, "output.dense.bias", C, 0);
#undef LAYER
		snprintf(name, sizeof(name), "encoder.layer.%d.attention.output.LayerNorm", l);
		if ((status = get_layernorm(m, prefix, name, &w->ln1_w, &w->ln1_b, err)) != MMSA_OK)
			return status;
		snprintf(name, sizeof(name), "encoder.layer.%d.output.LayerNorm", l);
		if ((status = get_layernorm(m, prefix, name, &w->ln2_w, &w->ln2_b, err)) != MMSA_OK)
			return status;
	}

	/* BertModel(add_pooling_layer=False) checkpoints have no pooler */
	snprintf(name, sizeof(name), "%spooler.dense.weight", prefix);
	if (safetensors_find(&m->file, name) != NULL)
	{
		GET(m->pool_w, "pooler.dense.weight", C, C);
		GET(m->pool_b, "pooler.dense.bias", C, 0);
	}
	return MMSA_OK;
}

#undef GET

/* n floats rounded up to a whole number of 64-byte lines */
static size_t
round_floats(size_t n)
{
	return (n + 15) / 16 * 16;
}

/*
 * Leading dimension of the feature-major (features, N) activations of the
 * packed path: N rounded up to 16 floats, 16 more when that is a multiple
 * of 256 (1 KiB), so that the rows of a 6 x 16 tile do not all fall into
 * the same L1 cache set (batch 16 x 64 tokens would make it 4 KiB).
 */
static long
feature_ld(long N)
{
	long		ld = (N + 15) / 16 * 16;

	if (ld % 256 == 0)
		ld += 16;
	return ld;
}

/* Floats of one layer's packed weights, and of each part. */
static size_t
packed_layer_floats(const bert_config *c, size_t parts[5])
{
	size_t		C = c->hidden_size;
	size_t		IC = c->intermediate_size;

	parts[0] = round_floats(gemm_packed_floats(3 * C, C));	/* qkv */
	parts[1] = round_floats(3 * C); /* qkv biases */
	parts[2] = round_floats(gemm_packed_floats(C, C));	/* attention output */
	parts[3] = round_floats(gemm_packed_floats(IC, C)); /* intermediate */
	parts[4] = round_floats(gemm_packed_floats(C, IC)); /* output */
	return parts[0] + parts[1] + parts[2] + parts[3] + parts[4];
}

/* Points m->packed[l] into block (L layers of packed_layer_floats). */
static void
place_packed(bert_model *m, float *block)
{
	size_t		parts[5];
	size_t		layer_floats = packed_layer_floats(&m->config, parts);

	m->packed_block = block;
	for (int l = 0; l < m->config.num_hidden_layers; l++)
	{
		bert_packed_layer *p = &m->packed[l];

		p->qkv = block + layer_floats * l;
		p->qkv_b = p->qkv + parts[0];
		p->attn_out = p->qkv_b + parts[1];
		p->inter = p->attn_out + parts[2];
		p->out = p->inter + parts[3];
	}
}

/*
 * Packs every layer's dense weights (gemm.h layout) into one private block:
 * query, key and value stacked into one (3C, C) matrix with their biases
 * side by side, then attention output, intermediate and output.
 */
static mmsa_status
pack_weights(bert_model *m, mmsa_error *err)
{
	const bert_config *c = &m->config;
	size_t		C = c->hidden_size;
	size_t		IC = c->intermediate_size;
	size_t		parts[5];
	size_t		layer_floats = packed_layer_floats(c, parts);
	float	   *stacked;
	float	   *block;

	m->packed_bytes = layer_floats * c->num_hidden_layers * sizeof(float);
	block = aligned_alloc(64, m->packed_bytes);
	m->packed = calloc(c->num_hidden_layers, sizeof(bert_packed_layer));
	stacked = malloc(3 * C * C * sizeof(float));
	if (block == NULL || m->packed == NULL || stacked == NULL)
	{
		free(stacked);
		free(block);
		return mmsa_set_error(err, MMSA_ERR_NOMEM,
							  "out of memory for the packed BERT weights (%zu bytes)",
							  m->packed_bytes);
	}
	memset(block, 0, m->packed_bytes);
	place_packed(m, block);
	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		const bert_layer_weights *w = &m->layers[l];
		bert_packed_layer *p = &m->packed[l];

		memcpy(stacked, w->q_w, C * C * sizeof(float));
		memcpy(stacked + C * C, w->k_w, C * C * sizeof(float));
		memcpy(stacked + 2 * C * C, w->v_w, C * C * sizeof(float));
		gemm_pack_a(p->qkv, stacked, 3 * C, C, C);
		memcpy(p->qkv_b, w->q_b, C * sizeof(float));
		memcpy(p->qkv_b + C, w->k_b, C * sizeof(float));
		memcpy(p->qkv_b + 2 * C, w->v_b, C * sizeof(float));
		gemm_pack_a(p->attn_out, w->attn_out_w, C, C, C);
		gemm_pack_a(p->inter, w->inter_w, IC, C, C);
		gemm_pack_a(p->out, w->out_w, C, IC, IC);
		if (mmsa_interrupted())
		{
			free(stacked);
			return mmsa_set_error(err, MMSA_ERR_CANCELED, "canceled");
		}
	}
	free(stacked);
	return MMSA_OK;
}

/* ---------------------------------------------------------------------
 * The shared sidecar (bert.h, packfile.h)
 * ---------------------------------------------------------------------
 */

/*
 * The model's plain F32 arrays in the sidecar's order: the addresses of
 * the pointers (slot) and their float counts (n).  slot and n hold
 * bert_max_slots(c) entries.  Returns the number of slots.
 */
static int
bert_max_slots(const bert_config *c)
{
	return 7 + 16 * c->num_hidden_layers;
}

static int
bert_slots(bert_model *m, int has_pooler, const float ***slot, size_t *n)
{
	const bert_config *c = &m->config;
	size_t		C = c->hidden_size;
	size_t		IC = c->intermediate_size;
	int			k = 0;

#define SLOT(field, count) do { slot[k] = &(field); n[k] = (count); k++; } while (0)
	SLOT(m->word_emb, (size_t) c->vocab_size * C);
	SLOT(m->pos_emb, (size_t) c->max_position_embeddings * C);
	SLOT(m->type_emb, (size_t) c->type_vocab_size * C);
	SLOT(m->emb_ln_w, C);
	SLOT(m->emb_ln_b, C);
	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		bert_layer_weights *w = &m->layers[l];

		SLOT(w->q_w, C * C);
		SLOT(w->q_b, C);
		SLOT(w->k_w, C * C);
		SLOT(w->k_b, C);
		SLOT(w->v_w, C * C);
		SLOT(w->v_b, C);
		SLOT(w->attn_out_w, C * C);
		SLOT(w->attn_out_b, C);
		SLOT(w->ln1_w, C);
		SLOT(w->ln1_b, C);
		SLOT(w->inter_w, IC * C);
		SLOT(w->inter_b, IC);
		SLOT(w->out_w, C * IC);
		SLOT(w->out_b, C);
		SLOT(w->ln2_w, C);
		SLOT(w->ln2_b, C);
	}
	if (has_pooler)
	{
		SLOT(m->pool_w, C * C);
		SLOT(m->pool_b, C);
	}
#undef SLOT
	return k;
}

/* The sidecar header's description of the layout. */
static void
sidecar_config(const bert_config *c, int has_pooler, int64_t config[MMSA_PACK_CONFIG])
{
	memset(config, 0, sizeof(int64_t) * MMSA_PACK_CONFIG);
	config[0] = c->vocab_size;
	config[1] = c->hidden_size;
	config[2] = c->num_hidden_layers;
	config[3] = c->num_attention_heads;
	config[4] = c->intermediate_size;
	config[5] = c->max_position_embeddings;
	config[6] = c->type_vocab_size;
	config[7] = has_pooler;
	config[8] = GEMM_MR;
}

/*
 * Maps dir/model.packed and points every weight of m into it, when it is
 * there and matches m's source and configuration.  Anything else: not
 * MMSA_OK, m unchanged (the caller builds privately).
 */
static mmsa_status
try_sidecar(bert_model *m, const char *dir)
{
	char		path[4096];
	mmsa_error	err;
	int64_t		want[MMSA_PACK_CONFIG];
	int			has_pooler;
	int			nslots = bert_max_slots(&m->config);
	const float ***slot = NULL;
	size_t	   *n = NULL;
	size_t		parts[5];
	size_t		total = 0,
				packed_floats;
	const float *at;

	snprintf(path, sizeof(path), "%s/%s", dir, MMSA_PACK_FILE);
	if (mmsa_pack_open(path, MMSA_PACK_KIND_BERT, &m->source_id, &m->pack, &err) != MMSA_OK)
		return err.status;
	has_pooler = m->pack.config[7] == 1;
	sidecar_config(&m->config, has_pooler, want);
	if (memcmp(want, m->pack.config, sizeof(want)) != 0)
		goto stale;
	slot = malloc(nslots * sizeof(*slot));
	n = malloc(nslots * sizeof(*n));
	m->layers = calloc(m->config.num_hidden_layers, sizeof(bert_layer_weights));
	m->packed = calloc(m->config.num_hidden_layers, sizeof(bert_packed_layer));
	if (!slot || !n || !m->layers || !m->packed)
		goto stale;
	nslots = bert_slots(m, has_pooler, slot, n);
	for (int i = 0; i < nslots; i++)
		total += round_floats(n[i]);
	packed_floats = packed_layer_floats(&m->config, parts) * m->config.num_hidden_layers;
	if (total + packed_floats != m->pack.data_floats)
		goto stale;
	at = m->pack.data;
	for (int i = 0; i < nslots; i++)
	{
		*slot[i] = at;
		at += round_floats(n[i]);
	}
	/* read-only: the forward pass never writes its weights */
	place_packed(m, (float *) at);
	m->packed_bytes = packed_floats * sizeof(float);
	free(slot);
	free(n);
	return MMSA_OK;

stale:
	free(slot);
	free(n);
	free(m->layers);
	free(m->packed);
	m->layers = NULL;
	m->packed = NULL;
	mmsa_pack_close(&m->pack);
	return MMSA_ERR_FORMAT;
}

mmsa_status
bert_model_write_packed(const bert_model *cm, const char *path, mmsa_error *err)
{
	bert_model *m = (bert_model *) cm;	/* bert_slots takes field addresses */
	int			has_pooler = m->pool_w != NULL;
	int			nslots = bert_max_slots(&m->config);
	const float ***slot;
	size_t	   *n;
	size_t		parts[5];
	size_t		total = 0,
				packed_floats;
	int64_t		config[MMSA_PACK_CONFIG];
	mmsa_pack_writer w;
	mmsa_status status;

	if (m->packed == NULL || m->packed_block == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "the model was loaded without its packed weights");
	slot = malloc(nslots * sizeof(*slot));
	n = malloc(nslots * sizeof(*n));
	if (!slot || !n)
	{
		free(slot);
		free(n);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	nslots = bert_slots(m, has_pooler, slot, n);
	for (int i = 0; i < nslots; i++)
		total += round_floats(n[i]);
	packed_floats = packed_layer_floats(&m->config, parts) * m->config.num_hidden_layers;
	sidecar_config(&m->config, has_pooler, config);
	status = mmsa_pack_write_begin(&w, path, MMSA_PACK_KIND_BERT, config, &m->source_id,
								   total + packed_floats, err);
	for (int i = 0; status == MMSA_OK && i < nslots; i++)
		status = mmsa_pack_write_floats(&w, *slot[i], n[i], err);
	if (status == MMSA_OK)
		status = mmsa_pack_write_floats(&w, m->packed_block, packed_floats, err);
	if (status == MMSA_OK)
		status = mmsa_pack_write_end(&w, err);
	free(slot);
	free(n);
	return status;
}

mmsa_status
bert_model_load(const char *dir, bert_model **out, mmsa_error *err)
{
	return bert_model_load_flags(dir, 0, out, err);
}

mmsa_status
bert_model_load_flags(const char *dir, int flags, bert_model **out,
					  mmsa_error *err)
{
	char		path[4096];
	bert_model *m;
	mmsa_status status;

	*out = NULL;
	/* the kernels' path: an error, not SIGILL, on a CPU without AVX2 */
	if ((status = mmsa_isa_init(err)) != MMSA_OK)
		return status;
	m = calloc(1, sizeof(bert_model));
	if (m == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");

	if (snprintf(path, sizeof(path), "%s/config.json", dir) >= (int) sizeof(path))
	{
		free(m);
		return mmsa_set_error(err, MMSA_ERR_INVALID, "model directory name too long");
	}
	if ((status = bert_config_load(path, &m->config, err)) != MMSA_OK)
	{
		free(m);
		return status;
	}
	if ((m->dir = strdup(dir)) == NULL)
	{
		free(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	{
		mmsa_error	ierr;

		/*
		 * The identity names the sidecars (model.packed, model.int8.packed);
		 * a missing file is reported by safetensors_open below.
		 */
		if (mmsa_pack_identity_of(path, &m->source_id, &ierr) == MMSA_OK &&
			!(flags & (BERT_LOAD_UNPACKED | BERT_LOAD_NO_SIDECAR)) &&
			try_sidecar(m, dir) == MMSA_OK)
		{
			*out = m;
			return MMSA_OK;
		}
	}
	if ((status = safetensors_open(path, &m->file, err)) != MMSA_OK)
	{
		safetensors_close(&m->file);
		free(m->dir);
		free(m);
		return status;
	}
	m->layers = calloc(m->config.num_hidden_layers, sizeof(bert_layer_weights));
	if (m->layers == NULL)
	{
		bert_model_free(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	if ((status = bind_weights(m, err)) != MMSA_OK ||
		(!(flags & BERT_LOAD_UNPACKED) && (status = pack_weights(m, err)) != MMSA_OK))
	{
		bert_model_free(m);
		return status;
	}
	*out = m;
	return MMSA_OK;
}

static void
free_buffers(bert_model *m)
{
	free(m->x);
	free(m->q);					/* k and v are in the same block */
	free(m->ctx);
	free(m->proj);
	free(m->ffn);
	free(m->addmask);
	free(m->att);
	free(m->cls);
	free(m->stats);
	free(m->gemm_work);
	free(m->qcols_block);
	m->x = m->q = m->k = m->v = m->ctx = m->proj = m->ffn = NULL;
	m->addmask = m->att = m->cls = m->stats = m->gemm_work = m->qcols_block = NULL;
	memset(&m->qcols, 0, sizeof(m->qcols));
	m->gemm_work_floats = 0;
	m->max_rows = 0;
	m->max_T = 0;
	m->att_slots = 0;
}

void
bert_model_free(bert_model *m)
{
	if (m == NULL)
		return;
	free_buffers(m);
	mmsa_pool_free(m->pool);
	safetensors_close(&m->file);
	free(m->layers);
	free(m->packed);
	if (m->pack.map == NULL)
		free(m->packed_block);
	mmsa_pack_close(&m->pack);
	free(m->qlayers);
	mmsa_pack_close(&m->qpack);
	free(m->dir);
	free(m);
}

/*
 * Makes the work buffers big enough for B*T rows of length T and att_slots
 * (T,T) attention scratch areas (they only grow, so repeated calls of the
 * same size allocate nothing).
 */
static mmsa_status
ensure_buffers(bert_model *m, int B, int T, int att_slots, mmsa_error *err)
{
	long		rows = (long) B * T;
	size_t		C = m->config.hidden_size;
	size_t		IC = m->config.intermediate_size;
	size_t		hs = C / m->config.num_attention_heads;
	size_t		apack,
				work,
				qwork,
				cap;

	if (rows <= m->max_rows && T <= m->max_T && att_slots <= m->att_slots)
		return MMSA_OK;
	if (rows < m->max_rows)
		rows = m->max_rows;
	if (T < m->max_T)
		T = m->max_T;
	if (att_slots < m->att_slots)
		att_slots = m->att_slots;
	free_buffers(m);

	/*
	 * Per thread of the packed path: gemm.c's work buffer for the largest
	 * K, a packed key or value head, and two rows of softmax statistics.
	 */
	apack = gemm_packed_floats(T, hs);
	if (gemm_packed_floats(hs, T) > apack)
		apack = gemm_packed_floats(hs, T);
	work = gemm_bpack_floats(IC > C ? IC : C);
	if (gemm_bpack_floats(T) > work)
		work = gemm_bpack_floats(T);
	work = round_floats(work) + round_floats(apack) + 2 * round_floats(T);
	/* or qgemm.c's, for the int8 products */
	qwork = round_floats((qgemm_work_bytes(IC > C ? IC : C) + 3) / 4);
	if (qwork > work)
		work = qwork;

	/* room for rows tokens, or for feature_ld(rows) columns */
	cap = feature_ld(rows);
	m->x = malloc(cap * C * sizeof(float));
	m->q = malloc(3 * cap * C * sizeof(float));
	if (m->q != NULL)
	{
		m->k = m->q + cap * C;
		m->v = m->k + cap * C;
	}
	m->ctx = malloc(cap * C * sizeof(float));
	m->proj = malloc(cap * C * sizeof(float));
	m->ffn = malloc(cap * IC * sizeof(float));
	m->addmask = malloc(rows * sizeof(float));
	m->att = malloc(att_slots * T * T * sizeof(float));
	m->cls = malloc(rows * C * sizeof(float));
	m->stats = malloc(2 * cap * sizeof(float));
	m->gemm_work = aligned_alloc(64, att_slots * work * sizeof(float));
	m->qcols_block = aligned_alloc(64, 3 * round_floats(qgemm_cols_len(cap)) * sizeof(float));
	if (m->qcols_block != NULL)
	{
		m->qcols.s = m->qcols_block;
		m->qcols.inv = m->qcols.s + round_floats(qgemm_cols_len(cap));
		m->qcols.z = (int32_t *) (m->qcols.inv + round_floats(qgemm_cols_len(cap)));
	}
	if (!m->x || !m->q || !m->ctx || !m->proj || !m->ffn ||
		!m->addmask || !m->att || !m->cls || !m->stats || !m->gemm_work || !m->qcols_block)
	{
		free_buffers(m);
		return mmsa_set_error(err, MMSA_ERR_NOMEM,
							  "out of memory for BERT work buffers (%ld rows)", rows);
	}
	m->max_rows = rows;
	m->max_T = T;
	m->att_slots = att_slots;
	m->gemm_work_floats = work;
	return MMSA_OK;
}

/* ---------------------------------------------------------------------
 * Forward pass
 * ---------------------------------------------------------------------
 */

/*
 * Checks that a batch of inputs is in range for a model of configuration c
 * (shared by inference and training).
 */
mmsa_status
bert_check_inputs(const bert_config *c, const int32_t *ids, const int32_t *token_types,
				  const int32_t *mask, int B, int T, mmsa_error *err)
{
	long		n = (long) B * T;

	if (B < 1 || B > BERT_MAX_BATCH)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "batch size %d out of range 1..%d", B, BERT_MAX_BATCH);
	if (T < 1)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "sequence length %d must be positive", T);
	if (n > BERT_MAX_ROWS)
		return mmsa_set_error(err, MMSA_ERR_LIMIT,
							  "batch size x sequence length %ld exceeds %d", n, BERT_MAX_ROWS);
	if (T > c->max_position_embeddings)
		return mmsa_set_error(err, MMSA_ERR_LIMIT,
							  "sequence length %d exceeds max_position_embeddings %d",
							  T, c->max_position_embeddings);
	for (long i = 0; i < n; i++)
	{
		if (ids[i] < 0 || ids[i] >= c->vocab_size)
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "token id %d at batch row %ld, position %ld is outside the vocabulary (size %d)",
								  ids[i], i / T, i % T, c->vocab_size);
		if (token_types != NULL &&
			(token_types[i] < 0 || token_types[i] >= c->type_vocab_size))
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "token type id %d at batch row %ld, position %ld is outside 0..%d",
								  token_types[i], i / T, i % T, c->type_vocab_size - 1);
		if (mask != NULL && mask[i] != 0 && mask[i] != 1)
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "attention mask value %d at batch row %ld, position %ld is not 0 or 1",
								  mask[i], i / T, i % T);
	}
	return MMSA_OK;
}

/*
 * The forward pass runs on the model's thread pool: every step is a job
 * that each thread does its share of (its own rows or columns of a product,
 * its own (batch row, head) pairs of attention, its own rows of a row-wise
 * pass).
 * OpenBLAS is set to one thread meanwhile, so that its sgemms run inside
 * our threads instead of starting threads of their own.
 */
typedef enum bert_job_kind
{
	JOB_MATMUL,					/* out = inp W^T + b */
	JOB_MATMUL_GELU,			/* out = gelu(inp W^T + b) */
	JOB_QKV,					/* q, k, v projections of x */
	JOB_ATTENTION,				/* ctx from q, k, v; split by (row, head) */
	JOB_ATTENTION_OUT,			/* x = LN1(proj + x), split by rows */
	JOB_FFN_OUT,				/* x = LN2(proj + x), split by rows */
	/* the packed path, on feature-major (C, N) activations */
	JOB_GEMM,					/* c = act(ap x bm + ep), split by gemm.c */
	JOB_QCOLS,					/* per-token int8 parameters of bm, by columns */
	JOB_QGEMM,					/* the same at int8 (qa), split by qgemm.c */
	JOB_ATTENTION_T,			/* ctx from q, k, v; split by (row, head) */
	JOB_LAYERNORM_T				/* x = LN(proj) per column, split by columns */
} bert_job_kind;

typedef struct bert_job
{
	bert_job_kind kind;
	bert_model *m;
	const bert_layer_weights *w;
	int			B,
				T;
	/* JOB_MATMUL */
	float	   *out;
	const float *inp,
			   *weight,
			   *bias;
	int			N,
				C,
				OC;
	/* JOB_GEMM: c (M, N) = act(ap (M, K) x bm (K, N) + ep), gelu or none */
	size_t		ld;				/* and the other feature-major jobs */
	float	   *c;
	const float *ap,
			   *bm;
	int			M,
				K;
	gemm_epilogue ep;
	int			gelu;
	/* JOB_QGEMM: ap, ep replaced by */
	const bert_qmatrix *qa;
	qgemm_epilogue qep;
	/* JOB_LAYERNORM_T */
	const float *ln_w,
			   *ln_b;
} bert_job;

/*
 * inp (rows, cols) transposed into out (cols, rows), leading dimensions
 * ldi and ldo, in 16 x 16 blocks so that both sides stay in cache.
 */
static void
transpose(float *out, size_t ldo, const float *inp, size_t ldi, int rows, int cols)
{
	for (int r0 = 0; r0 < rows; r0 += 16)
		for (int c0 = 0; c0 < cols; c0 += 16)
		{
			int			r1 = r0 + 16 < rows ? r0 + 16 : rows;
			int			c1 = c0 + 16 < cols ? c0 + 16 : cols;

			for (int c = c0; c < c1; c++)
				for (int r = r0; r < r1; r++)
					out[(size_t) c * ldo + r] = inp[(size_t) r * ldi + c];
		}
}

/*
 * LayerNorm of columns [n0, n1) of inp (C, ld), feature-major: each column
 * (token) normalized over its C rows, into out (may be inp).  mean, rstd:
 * (ld) scratch, of which these columns are used.  The loops run along rows,
 * so that they are vectorized over the columns.
 */
static void
layernorm_cols(float *out, const float *inp, const float *weight,
			   const float *bias, float *mean, float *rstd, int C, size_t ld,
			   size_t n0, size_t n1, float eps)
{
	size_t		w = n1 - n0;
	float	   *mu = mean + n0;
	float	   *rs = rstd + n0;

	for (size_t j = 0; j < w; j++)
		mu[j] = rs[j] = 0.0f;
	for (int c = 0; c < C; c++)
	{
		const float *x = inp + (size_t) c * ld + n0;

		for (size_t j = 0; j < w; j++)
			mu[j] += x[j];
	}
	for (size_t j = 0; j < w; j++)
		mu[j] /= C;
	for (int c = 0; c < C; c++)
	{
		const float *x = inp + (size_t) c * ld + n0;

		for (size_t j = 0; j < w; j++)
		{
			float		d = x[j] - mu[j];

			rs[j] += d * d;
		}
	}
	for (size_t j = 0; j < w; j++)
		rs[j] = 1.0f / sqrtf(rs[j] / C + eps);
	for (int c = 0; c < C; c++)
	{
		const float *x = inp + (size_t) c * ld + n0;
		float	   *o = out + (size_t) c * ld + n0;
		float		wc = weight[c],
					bc = bias[c];

		for (size_t j = 0; j < w; j++)
			o[j] = (x[j] - mu[j]) * rs[j] * wc + bc;
	}
}

/*
 * One attention head of one sequence, feature-major: qT, kT, vT (hs, T)
 * are the head's rows of the (3C, N) projections (leading dimension ld),
 * ctxT (hs, T) its rows of the (C, N) context.  addmask: (T).
 * att: (T, T) scratch, holding att[s][t] = weight of key s for query t;
 * apack: a packed (T, hs) or (hs, T) operand; colstat: (2, T) scratch;
 * bpack: gemm.c's work buffer.
 *
 *   att (T, T) = K_h (T, hs) / sqrt(hs) x qT (hs, T) + addmask per key row
 *   softmax of each column of att (over the keys)
 *   ctxT (hs, T) = vT (hs, T) x att (T, T)
 *
 * Both products run on gemm.c, K_h packed here straight from kT (a packed
 * panel holds 6 keys side by side, which are contiguous in kT).
 */
static void
attention_head_forward_t(float *ctxT, const float *qT, const float *kT,
						 const float *vT, size_t ld, const float *addmask,
						 float *att, float *apack, float *colstat,
						 float *bpack, int T, int hs)
{
	float		scale = 1.0f / sqrtf((float) hs);
	gemm_epilogue ep = {.bias = addmask};
	int			panels = (T + GEMM_MR - 1) / GEMM_MR;
	float	   *mx = colstat;
	float	   *sum = colstat + T;

	for (int p = 0; p < panels; p++)
		for (int d = 0; d < hs; d++)
		{
			const float *k = kT + (size_t) d * ld + p * GEMM_MR;
			float	   *a = apack + ((size_t) p * hs + d) * GEMM_MR;

			for (int r = 0; r < GEMM_MR; r++)
				a[r] = p * GEMM_MR + r < T ? k[r] * scale : 0.0f;
		}
	gemm_packed_range(att, T, apack, qT, ld, T, hs, 0, T, 0, T, &ep, bpack);

	/* softmax over s of att[s][t], for every t at once */
	for (int t = 0; t < T; t++)
	{
		mx[t] = att[t];
		sum[t] = 0.0f;
	}
	for (int s = 1; s < T; s++)
	{
		const float *row = att + (size_t) s * T;

		for (int t = 0; t < T; t++)
			mx[t] = row[t] > mx[t] ? row[t] : mx[t];
	}
	for (int s = 0; s < T; s++)
	{
		float	   *row = att + (size_t) s * T;

		for (int t = 0; t < T; t++)
		{
			row[t] = expf(row[t] - mx[t]);
			sum[t] += row[t];
		}
	}
	for (int t = 0; t < T; t++)
		sum[t] = 1.0f / sum[t];
	for (int s = 0; s < T; s++)
	{
		float	   *row = att + (size_t) s * T;

		for (int t = 0; t < T; t++)
			row[t] *= sum[t];
	}

	gemm_pack_a(apack, vT, hs, T, ld);
	gemm_packed_range(ctxT, ld, apack, att, T, hs, T, 0, hs, 0, T, NULL, bpack);
}

/* Share [*begin, *end) of n items for thread i of nthreads. */
static void
share(long n, int i, int nthreads, long *begin, long *end)
{
	*begin = n * i / nthreads;
	*end = n * (i + 1) / nthreads;
}

/*
 * share for the columns of feature-major activations: in blocks of 16, so
 * that no cache line is written by two threads.
 */
static void
share_columns(long n, int i, int nthreads, long *begin, long *end)
{
	share((n + 15) / 16, i, nthreads, begin, end);
	*begin *= 16;
	*end = *end * 16 < n ? *end * 16 : n;
}

static void
bert_job_run(void *arg, int i, int nthreads)
{
	bert_job   *j = arg;
	bert_model *m = j->m;
	int			C = m->config.hidden_size;
	int			NH = m->config.num_attention_heads;
	int			hs = C / NH;
	long		r0,
				r1;

	switch (j->kind)
	{
		case JOB_MATMUL:
		case JOB_MATMUL_GELU:
		case JOB_QKV:
			{
				/*
				 * Each thread packs the whole of the operand that is not
				 * split, so split the one whose copy would cost more: rows
				 * (of inp) when there are more rows than output columns,
				 * else columns in blocks of 16 (the sgemm kernels' width).
				 */
				int			by_rows = j->N > j->OC;
				long		n0 = 0,
							n1 = j->N;
				int			o0 = 0,
							o1 = j->OC;

				if (by_rows)
					share(j->N, i, nthreads, &n0, &n1);
				else
				{
					long		b0,
								b1;

					share((j->OC + 15) / 16, i, nthreads, &b0, &b1);
					o0 = (int) (b0 * 16);
					o1 = (int) (b1 * 16 < j->OC ? b1 * 16 : j->OC);
				}
				if (n1 <= n0 || o1 <= o0)
					break;
				if (j->kind == JOB_QKV)
				{
					const bert_layer_weights *w = j->w;
					size_t		off = (size_t) n0 * C;
					int			rows = (int) (n1 - n0);

					matmul_forward_cols(m->q + off, m->x + off, w->q_w, w->q_b, rows, C, C, o0, o1);
					matmul_forward_cols(m->k + off, m->x + off, w->k_w, w->k_b, rows, C, C, o0, o1);
					matmul_forward_cols(m->v + off, m->x + off, w->v_w, w->v_b, rows, C, C, o0, o1);
					break;
				}
				matmul_forward_cols(j->out + (size_t) n0 * j->OC, j->inp + (size_t) n0 * j->C,
									j->weight, j->bias, (int) (n1 - n0), j->C, j->OC, o0, o1);
				if (j->kind == JOB_MATMUL_GELU)
					for (long n = n0; n < n1; n++)
						gelu_forward(j->out + (size_t) n * j->OC + o0,
									 j->out + (size_t) n * j->OC + o0, o1 - o0);
				break;
			}
		case JOB_ATTENTION:
			share((long) j->B * NH, i, nthreads, &r0, &r1);
			for (long p = r0; p < r1; p++)
			{
				long		b = p / NH;
				size_t		off = (size_t) b * j->T * C + (size_t) (p % NH) * hs;

				attention_head_forward(m->ctx + off, m->q + off, m->k + off,
									   m->v + off, m->addmask + b * j->T,
									   m->att + (size_t) i * j->T * j->T,
									   j->T, C, hs);
			}
			break;
		case JOB_ATTENTION_OUT:
		case JOB_FFN_OUT:
			{
				const float *ln_w = j->kind == JOB_ATTENTION_OUT ? j->w->ln1_w : j->w->ln2_w;
				const float *ln_b = j->kind == JOB_ATTENTION_OUT ? j->w->ln1_b : j->w->ln2_b;

				share((long) j->B * j->T, i, nthreads, &r0, &r1);
				residual_forward(m->proj + r0 * C, m->proj + r0 * C, m->x + r0 * C,
								 (r1 - r0) * C);
				layernorm_forward(m->x + r0 * C, m->proj + r0 * C, ln_w, ln_b,
								  (int) (r1 - r0), C, m->config.layer_norm_eps);
				break;
			}
		case JOB_GEMM:
		case JOB_QGEMM:
			{
				int			m0,
							m1,
							n0,
							n1;
				float	   *work = m->gemm_work + (size_t) i * m->gemm_work_floats;

				if (j->kind == JOB_QGEMM)
					qgemm_thread_share(j->M, j->N, i, nthreads, &m0, &m1, &n0, &n1);
				else
					gemm_thread_share(j->M, j->N, i, nthreads, &m0, &m1, &n0, &n1);
				if (m0 >= m1 || n0 >= n1)
					break;
				if (j->kind == JOB_QGEMM)
					qgemm_range(j->c, j->ld, j->qa->weight, j->bm, j->ld, NULL, NULL, j->M, j->K,
								m0, m1, n0, n1, &j->qep, work);
				else
					gemm_packed_range(j->c, j->ld, j->ap, j->bm, j->ld, j->M, j->K,
									  m0, m1, n0, n1, &j->ep, work);
				if (j->gelu)
					for (int r = m0; r < m1; r++)
						gelu_forward(j->c + (size_t) r * j->ld + n0,
									 j->c + (size_t) r * j->ld + n0, n1 - n0);
				break;
			}
		case JOB_QCOLS:
			share_columns(j->N, i, nthreads, &r0, &r1);
			if (r0 < r1)
				qgemm_column_params(j->bm, j->ld, j->K, (int) r0, (int) r1, j->N, &m->qcols);
			break;
		case JOB_ATTENTION_T:
			{
				size_t		ld = j->ld;
				float	   *work = m->gemm_work + (size_t) i * m->gemm_work_floats;
				size_t		bpack_floats = gemm_bpack_floats(m->config.intermediate_size > C ?
															 m->config.intermediate_size : C);
				float	   *apack,
						   *colstat;

				if (gemm_bpack_floats(j->T) > bpack_floats)
					bpack_floats = gemm_bpack_floats(j->T);
				apack = work + round_floats(bpack_floats);
				colstat = apack + round_floats(gemm_packed_floats(j->T, hs) > gemm_packed_floats(hs, j->T) ?
											   gemm_packed_floats(j->T, hs) :
											   gemm_packed_floats(hs, j->T));
				share((long) j->B * NH, i, nthreads, &r0, &r1);
				for (long p = r0; p < r1; p++)
				{
					long		b = p / NH;
					size_t		off = (size_t) (p % NH) * hs * ld + (size_t) b * j->T;

					attention_head_forward_t(m->ctx + off, m->q + off,
											 m->q + (size_t) C * ld + off,
											 m->q + 2 * (size_t) C * ld + off, ld,
											 m->addmask + b * j->T,
											 m->att + (size_t) i * j->T * j->T,
											 apack, colstat, work, j->T, hs);
				}
				break;
			}
		case JOB_LAYERNORM_T:
			{
				share_columns((long) j->B * j->T, i, nthreads, &r0, &r1);
				if (r0 >= r1)
					break;
				layernorm_cols(m->x, m->proj, j->ln_w, j->ln_b, m->stats, m->stats + j->ld,
							   C, j->ld, r0, r1, m->config.layer_norm_eps);
				break;
			}
	}
}

/* Runs a job on the pool, or on this thread alone when it is small. */
static void
run_job(bert_model *m, bert_job *j, long work)
{
	if (work < 16384)
		bert_job_run(j, 0, 1);
	else
		mmsa_pool_run(m->pool, bert_job_run, j);
}

static void
run_matmul(bert_model *m, bert_job_kind kind, float *out, const float *inp,
		   const float *weight, const float *bias, int N, int C, int OC)
{
	bert_job	j = {.kind = kind, .m = m, .out = out, .inp = inp,
	.weight = weight, .bias = bias, .N = N, .C = C, .OC = OC};

	run_job(m, &j, (long) N * OC);
}

static void
run_qkv(bert_model *m, const bert_layer_weights *w, int N)
{
	int			C = m->config.hidden_size;
	bert_job	j = {.kind = JOB_QKV, .m = m, .w = w, .N = N, .C = C, .OC = C};

	run_job(m, &j, 3L * N * C);
}

static void
run_rows(bert_model *m, bert_job_kind kind, const bert_layer_weights *w,
		 int B, int T, long work)
{
	bert_job	j = {.kind = kind, .m = m, .w = w, .B = B, .T = T,
	.ld = feature_ld((long) B * T)};

	run_job(m, &j, work);
}

/*
 * c (M, N) = act(ap (M, K) x bm (K, N) + bias [+ residual (M, N)]), all
 * with leading dimension ld; act is GELU when gelu, else none.
 */
static void
run_gemm(bert_model *m, float *c, const float *ap, const float *bm, int M,
		 int K, int N, size_t ld, const float *bias, const float *residual,
		 int gelu)
{
	bert_job	j = {.kind = JOB_GEMM, .m = m, .N = N, .ld = ld, .c = c,
		.ap = ap, .bm = bm, .M = M, .K = K, .gelu = gelu};

	j.ep.bias = bias;
	j.ep.residual = residual;
	j.ep.ldr = ld;
	run_job(m, &j, (long) M * N);
}

/*
 * run_gemm at int8: c (M, N) = act(qa (M, K) x q(bm) (K, N) + bias
 * [+ residual]), bm quantized per token (column) as it is packed.
 */
static void
run_qgemm(bert_model *m, float *c, const bert_qmatrix *qa, const float *bm, int M,
		  int K, int N, size_t ld, const float *bias, const float *residual,
		  int gelu)
{
	bert_job	j = {.kind = JOB_QCOLS, .m = m, .N = N, .ld = ld, .bm = bm, .K = K};

	/* each token's scale and zero point, then the product */
	run_job(m, &j, (long) K * N / 4);
	j = (bert_job) {.kind = JOB_QGEMM, .m = m, .N = N, .ld = ld, .c = c,
		.qa = qa, .bm = bm, .M = M, .K = K, .gelu = gelu};
	j.qep.cols = &m->qcols;
	j.qep.scale = qa->scale;
	j.qep.row_sum = qa->row_sum;
	j.qep.bias = bias;
	j.qep.residual = residual;
	j.qep.ldr = ld;
	run_job(m, &j, (long) M * N);
}

/* The four dense products of an encoder layer. */
typedef enum bert_product
{
	PRODUCT_QKV,				/* query, key and value, stacked */
	PRODUCT_ATTN_OUT,
	PRODUCT_INTER,
	PRODUCT_OUT
} bert_product;

/*
 * Product p of layer l at the model's precision: run_gemm on the packed
 * weights, or run_qgemm on the int8 ones.
 */
static void
run_product(bert_model *m, int l, bert_product p, float *c, const float *bm, int M,
			int K, int N, size_t ld, const float *bias, const float *residual, int gelu)
{
	if (m->precision == MMSA_PRECISION_INT8)
	{
		const bert_qlayer *q = &m->qlayers[l];
		const bert_qmatrix *qa[] = {&q->qkv, &q->attn_out, &q->inter, &q->out};

		run_qgemm(m, c, qa[p], bm, M, K, N, ld, bias, residual, gelu);
	}
	else
	{
		const bert_packed_layer *pk = &m->packed[l];
		const float *ap[] = {pk->qkv, pk->attn_out, pk->inter, pk->out};

		run_gemm(m, c, ap[p], bm, M, K, N, ld, bias, residual, gelu);
	}
}

/* Layer l's query, key and value biases side by side, where its products read them. */
static const float *
qkv_bias(const bert_model *m, int l)
{
	return m->precision == MMSA_PRECISION_INT8 ? m->qlayers[l].qkv_b : m->packed[l].qkv_b;
}

static void
run_layernorm_t(bert_model *m, const float *ln_w, const float *ln_b, int B,
				int T, size_t ld)
{
	bert_job	j = {.kind = JOB_LAYERNORM_T, .m = m, .B = B, .T = T, .ld = ld,
	.ln_w = ln_w, .ln_b = ln_b};

	run_job(m, &j, (long) B * T * m->config.hidden_size / 8);
}

/*
 * Makes the pool as big as OpenBLAS's thread count (the thread setting of
 * the application), at most BERT_MAX_THREADS.
 */
static mmsa_status
ensure_pool(bert_model *m, int nthreads, mmsa_error *err)
{
	if (m->pool != NULL && m->pool_threads == nthreads)
		return MMSA_OK;
	mmsa_pool_free(m->pool);
	m->pool = NULL;
	m->pool_threads = 0;
	if (mmsa_pool_create(nthreads, &m->pool, err) != MMSA_OK)
		return err ? err->status : MMSA_ERR_NOMEM;
	m->pool_threads = nthreads;
	return MMSA_OK;
}

/*
 * The forward pass on the packed weights (see bert.h): the residual stream
 * x, the projections, the context and the feed-forward activations are all
 * feature-major, (features, N) with N = B*T columns, so that each is the
 * right-hand operand of the next product as it stands.  The caller has set
 * up the pool, the buffers and addmask.
 */
static mmsa_status
forward_packed(bert_model *m, const int32_t *ids, const int32_t *token_types,
			   int B, int T, float *all_hidden, float *hidden, float *pooled,
			   mmsa_error *err)
{
	const bert_config *c = &m->config;
	int			C = c->hidden_size;
	int			IC = c->intermediate_size;
	int			NH = c->num_attention_heads;
	int			N = B * T;
	size_t		ld = feature_ld(N);
	size_t		layer_floats = (size_t) N * C;

	/* embeddings (N, C), token-major, then x (C, N) */
	embeddings_forward(m->proj, ids, token_types, m->word_emb, m->pos_emb,
					   m->type_emb, B, T, C);
	layernorm_forward(m->proj, m->proj, m->emb_ln_w, m->emb_ln_b, N, C, c->layer_norm_eps);
	if (all_hidden != NULL)
		memcpy(all_hidden, m->proj, layer_floats * sizeof(float));
	transpose(m->x, ld, m->proj, C, N, C);

	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		const bert_layer_weights *w = &m->layers[l];

		if (mmsa_interrupted())
			return mmsa_set_error(err, MMSA_ERR_CANCELED, "canceled");

		/* q, k, v (3C, N); attention; x = LN1(Wo ctx + bo + x) */
		run_product(m, l, PRODUCT_QKV, m->q, m->x, 3 * C, C, N, ld, qkv_bias(m, l), NULL, 0);
		run_rows(m, JOB_ATTENTION_T, w, B, T, (long) B * NH * T * T);
		run_product(m, l, PRODUCT_ATTN_OUT, m->proj, m->ctx, C, C, N, ld, w->attn_out_b, m->x, 0);
		run_layernorm_t(m, w->ln1_w, w->ln1_b, B, T, ld);

		/* x = LN2(Wout gelu(Wi x + bi) + bout + x) */
		run_product(m, l, PRODUCT_INTER, m->ffn, m->x, IC, C, N, ld, w->inter_b, NULL, 1);
		run_product(m, l, PRODUCT_OUT, m->proj, m->ffn, C, IC, N, ld, w->out_b, m->x, 0);
		run_layernorm_t(m, w->ln2_w, w->ln2_b, B, T, ld);

		if (all_hidden != NULL)
			transpose(all_hidden + (size_t) (l + 1) * layer_floats, C, m->x, ld, C, N);
	}

	if (hidden != NULL)
		transpose(hidden, C, m->x, ld, C, N);
	if (pooled != NULL)
	{
		/* pooled (B,C) = tanh(x[:, 0, :] W^T + b) */
		for (int b = 0; b < B; b++)
			for (int i = 0; i < C; i++)
				m->cls[(size_t) b * C + i] = m->x[(size_t) i * ld + (size_t) b * T];
		run_matmul(m, JOB_MATMUL, pooled, m->cls, m->pool_w, m->pool_b, B, C, C);
		tanh_forward(pooled, pooled, (long) B * C);
	}
	return MMSA_OK;
}

/*
 * Whether a call of n tokens runs on the packed weights: on the avx512
 * path every call, on the others calls of at most BERT_PACKED_MAX_TOKENS
 * (bert.h says why).
 */
static int
packed_serves(const bert_model *m, long n)
{
	mmsa_isa	isa = mmsa_isa_current();

	if (m->packed == NULL)
		return 0;
	return n <= BERT_PACKED_MAX_TOKENS ||
		isa == MMSA_ISA_AVX512 || isa == MMSA_ISA_AVX512_SIMDE;
}

mmsa_status
bert_forward_ex(bert_model *m, const int32_t *ids, const int32_t *token_types,
				const int32_t *mask, int B, int T, float *all_hidden,
				float *hidden, float *pooled, mmsa_error *err)
{
	const bert_config *c = &m->config;
	int			C = c->hidden_size;
	int			IC = c->intermediate_size;
	int			NH = c->num_attention_heads;
	int			N;
	int			blas_threads;
	size_t		layer_floats;
	mmsa_status status;

	if ((status = bert_check_inputs(&m->config, ids, token_types, mask, B, T, err)) != MMSA_OK)
		return status;
	if (pooled != NULL && m->pool_w == NULL)
		return mmsa_set_error(err, MMSA_ERR_UNSUPPORTED,
							  "\"%s\" has no pooler (pooler.dense.weight)", m->file.path);
	blas_threads = openblas_get_num_threads();
	if (blas_threads < 1)
		blas_threads = 1;
	if (blas_threads > BERT_MAX_THREADS)
		blas_threads = BERT_MAX_THREADS;
	if ((status = ensure_pool(m, blas_threads, err)) != MMSA_OK ||
		(status = ensure_buffers(m, B, T, mmsa_pool_size(m->pool), err)) != MMSA_OK)
		return status;
	N = B * T;
	layer_floats = (size_t) N * C;
	if (blas_threads > 1)
		openblas_set_num_threads(1);
	attention_mask_forward(m->addmask, mask, B, T);

	if (m->precision == MMSA_PRECISION_INT8 || packed_serves(m, N))
	{
		status = forward_packed(m, ids, token_types, B, T, all_hidden, hidden,
								pooled, err);
		goto done;
	}

	/* embeddings: x (N,C) */
	embeddings_forward(m->x, ids, token_types, m->word_emb, m->pos_emb,
					   m->type_emb, B, T, C);
	layernorm_forward(m->x, m->x, m->emb_ln_w, m->emb_ln_b, N, C, c->layer_norm_eps);
	if (all_hidden != NULL)
		memcpy(all_hidden, m->x, layer_floats * sizeof(float));
	for (int l = 0; l < c->num_hidden_layers; l++)
	{
		const bert_layer_weights *w = &m->layers[l];

		if (mmsa_interrupted())
		{
			status = mmsa_set_error(err, MMSA_ERR_CANCELED, "canceled");
			goto done;
		}

		/* self-attention, then post-LayerNorm over the residual */
		run_qkv(m, w, N);
		run_rows(m, JOB_ATTENTION, w, B, T, (long) B * NH * T * T);
		run_matmul(m, JOB_MATMUL, m->proj, m->ctx, w->attn_out_w, w->attn_out_b, N, C, C);
		run_rows(m, JOB_ATTENTION_OUT, w, B, T, (long) N * C / 8);

		/* feed-forward, then post-LayerNorm over the residual */
		run_matmul(m, JOB_MATMUL_GELU, m->ffn, m->x, w->inter_w, w->inter_b, N, C, IC);
		run_matmul(m, JOB_MATMUL, m->proj, m->ffn, w->out_w, w->out_b, N, IC, C);
		run_rows(m, JOB_FFN_OUT, w, B, T, (long) N * C / 8);

		if (all_hidden != NULL)
			memcpy(all_hidden + (size_t) (l + 1) * layer_floats, m->x,
				   layer_floats * sizeof(float));
	}

	if (hidden != NULL)
		memcpy(hidden, m->x, layer_floats * sizeof(float));
	if (pooled != NULL)
	{
		/* pooled (B,C) = tanh(x[:, 0, :] W^T + b) */
		for (int b = 0; b < B; b++)
			memcpy(m->cls + (size_t) b * C, m->x + (size_t) b * T * C,
				   C * sizeof(float));
		run_matmul(m, JOB_MATMUL, pooled, m->cls, m->pool_w, m->pool_b, B, C, C);
		tanh_forward(pooled, pooled, (long) B * C);
	}
	status = MMSA_OK;

done:
	if (blas_threads > 1)
		openblas_set_num_threads(blas_threads);
	return status;
}

mmsa_status
bert_forward(bert_model *m, const int32_t *ids, const int32_t *mask,
			 int B, int T, float *hidden, float *pooled, mmsa_error *err)
{
	return bert_forward_ex(m, ids, NULL, mask, B, T, NULL, hidden, pooled, err);
}
