/*
 * bert.h
 *	  The BERT encoder (Hugging Face BertModel) forward pass.
 *
 * Same semantics as transformers.BertModel in inference mode: embeddings
 * (word + absolute position + token type, then LayerNorm), post-LayerNorm
 * encoder layers with erf GELU, the additive attention mask
 * (1 - mask) * finfo(float32).min, and the tanh pooler over the [CLS]
 * (first) hidden state.  The configuration comes from a Hugging Face
 * config.json, the weights from model.safetensors with Hugging Face tensor
 * names (bare or with the "bert." prefix; LayerNorm weight/bias or the
 * legacy gamma/beta), F32 or F16.  F32 weights are used in place inside the
 * mapped file.
 */
#ifndef MMSA_BERT_H
#define MMSA_BERT_H

#include <stdint.h>

#include "mmsa_error.h"
#include "safetensors.h"
#include "threadpool.h"

/* Upper bounds accepted in config.json (bert-base is well inside them). */
#define BERT_MAX_VOCAB			(1 << 22)
#define BERT_MAX_HIDDEN			8192
#define BERT_MAX_LAYERS			128
#define BERT_MAX_HEADS			256
#define BERT_MAX_INTERMEDIATE	65536
#define BERT_MAX_POSITIONS		65536
#define BERT_MAX_TOKEN_TYPES	1024
#define BERT_MAX_BATCH			65536
#define BERT_MAX_ROWS			(1 << 22)	/* B*T */
#define BERT_MAX_THREADS		64

typedef struct bert_config
{
	int			vocab_size;
	int			hidden_size;	/* C */
	int			num_hidden_layers;	/* L */
	int			num_attention_heads;	/* NH */
	int			intermediate_size;	/* I */
	int			max_position_embeddings;
	int			type_vocab_size;
	float		layer_norm_eps;
} bert_config;

/* The weights of one encoder layer, pointers into the safetensors file. */
typedef struct bert_layer_weights
{
	const float *q_w,
			   *q_b;			/* (C,C), (C) */
	const float *k_w,
			   *k_b;			/* (C,C), (C) */
	const float *v_w,
			   *v_b;			/* (C,C), (C) */
	const float *attn_out_w,
			   *attn_out_b;		/* (C,C), (C) */
	const float *ln1_w,
			   *ln1_b;			/* (C), (C): attention.output.LayerNorm */
	const float *inter_w,
			   *inter_b;		/* (I,C), (I) */
	const float *out_w,
			   *out_b;			/* (C,I), (C) */
	const float *ln2_w,
			   *ln2_b;			/* (C), (C): output.LayerNorm */
} bert_layer_weights;

typedef struct bert_model
{
	bert_config config;
	safetensors_file file;

	const float *word_emb;		/* (V,C) */
	const float *pos_emb;		/* (maxT,C) */
	const float *type_emb;		/* (TV,C) */
	const float *emb_ln_w,
			   *emb_ln_b;		/* (C), (C) */
	bert_layer_weights *layers; /* L of them */
	const float *pool_w,
			   *pool_b;			/* (C,C), (C); NULL when the file has no pooler */

	/* work buffers, sized for max_rows = B*T rows and max_T, grown on demand */
	long		max_rows;
	int			max_T;
	int			att_slots;		/* threads the att scratch has room for */
	mmsa_pool  *pool;			/* threads of the forward pass */
	int			pool_threads;	/* the thread count it was made for */
	float	   *x;				/* (B,T,C) the residual stream */
	float	   *q,
			   *k,
			   *v;				/* (B,T,C) */
	float	   *ctx;			/* (B,T,C) attention output, heads merged */
	float	   *proj;			/* (B,T,C) a projection before its residual */
	float	   *ffn;			/* (B,T,I) */
	float	   *addmask;		/* (B,T) */
	float	   *att;			/* (att_slots,T,T) */
	float	   *cls;			/* (B,C) */
} bert_model;

/*
 * Reads and validates a Hugging Face BERT config.json.  Bad or missing
 * values give MMSA_ERR_FORMAT with a message naming the key.
 */
mmsa_status bert_config_load(const char *config_json_path, bert_config *cfg,
							 mmsa_error *err);

/*
 * Loads dir/config.json and dir/model.safetensors, checking the name and
 * shape of every tensor against the configuration.
 */
mmsa_status bert_model_load(const char *dir, bert_model **out, mmsa_error *err);

/* Frees the model and its work buffers and unmaps its file (NULL is fine). */
void		bert_model_free(bert_model *m);

/*
 * The forward pass.  It uses the work buffers of m, so one model serves one
 * caller at a time.  It runs on as many threads as OpenBLAS is set to
 * (openblas_set_num_threads): the model keeps a pool of that many threads
 * (the caller's included) that split every product, the attention heads and
 * the row-wise passes, with OpenBLAS set to one thread meanwhile (restored
 * on return).
 * ids: (B,T) token ids < vocab_size; mask: (B,T) 1 = attend, 0 = padding,
 * or NULL for all ones; T <= max_position_embeddings.
 * hidden: (B,T,C) last hidden state, or NULL; pooled: (B,C) pooler output,
 * or NULL.
 */
mmsa_status bert_forward(bert_model *m, const int32_t *ids, const int32_t *mask,
						 int B, int T, float *hidden, float *pooled,
						 mmsa_error *err);

/*
 * The forward pass with token type ids and every layer's output.
 * token_types: (B,T) ids < type_vocab_size, or NULL for all zeros.
 * all_hidden: (L+1,B,T,C) the embedding output then each layer's output
 * (Hugging Face hidden_states), or NULL.  hidden, pooled as bert_forward.
 */
mmsa_status bert_forward_ex(bert_model *m, const int32_t *ids,
							const int32_t *token_types, const int32_t *mask,
							int B, int T, float *all_hidden, float *hidden,
							float *pooled, mmsa_error *err);

#endif
