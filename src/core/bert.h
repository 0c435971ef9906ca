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
 *
 * Packed weights.  By default bert_model_load also keeps a private copy of
 * every encoder layer's dense weights in the packed layout of gemm.h (the
 * query, key and value weights stacked into one (3C, C) matrix), made once
 * at load, and the forward pass runs its products on gemm.c's micro-kernel
 * instead of OpenBLAS, which would repack the weights on every call.  That
 * path keeps the activations feature-major ((C, B*T): one row per feature,
 * one column per token), which is the right-hand operand gemm.c wants, so
 * a layer needs no transposes; only the embedding output and the returned
 * hidden states are transposed.  The copy costs as much memory as the
 * encoder's weights (about 340 MB for bert-base); BERT_LOAD_UNPACKED skips
 * it and runs the products on OpenBLAS with the mapped weights, as do
 * calls of more than BERT_PACKED_MAX_TOKENS tokens on paths other than
 * avx512.  The mapped F32 weights are never written.
 *
 * Shared weights.  `mmsa pack` (bert_model_write_packed) writes
 * dir/model.packed (packfile.h): every array the forward passes read, in
 * F32 (the embeddings, LayerNorms, biases, pooler, the dense weights
 * unpacked for the OpenBLAS path, converted from F16/BF16 when stored so)
 * and the packed layers, at offsets computed from the configuration.  When
 * it exists and was made from this model.safetensors with this
 * configuration, bert_model_load maps it read-only and points every weight
 * into it: no private copy of any weight, and every process that loads the
 * model shares one copy through the page cache.  model.safetensors is then
 * read only for its identity.  Otherwise (missing, stale, malformed) the
 * model is built privately as described above, with the same arrays and
 * kernels, so the results are the same bit for bit.
 */
#ifndef MMSA_BERT_H
#define MMSA_BERT_H

#include <stdint.h>

#include "mmsa_error.h"
#include "packfile.h"
#include "precision.h"
#include "qgemm.h"
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

/*
 * One encoder layer's dense weights in gemm.h's packed layout (private
 * memory, see the top of this file).
 */
typedef struct bert_packed_layer
{
	float	   *qkv;			/* packed (3C, C): query, key, value rows */
	float	   *qkv_b;			/* (3C): query, key, value biases */
	float	   *attn_out;		/* packed (C, C) */
	float	   *inter;			/* packed (I, C) */
	float	   *out;			/* packed (C, I) */
} bert_packed_layer;

/*
 * int8 inference (bert_int8.c).  The four products of each layer (query,
 * key and value stacked; attention output; intermediate; output) run on
 * qgemm.h's integer kernels: weights symmetric int8 per output row, written
 * once by `mmsa pack` into dir/model.int8.packed and mapped read-only like
 * model.packed; activations quantized per token as each product runs
 * (dynamic per-column scales and zero points, qgemm.h), so no calibration
 * is needed.  The attention's own products, the softmax, GELU, the
 * LayerNorms, the embeddings and the pooler stay fp32.
 */
#define BERT_INT8_FILE "model.int8.packed"

/* One product's int8 weights, (M, K): pointers into the mapped sidecar. */
typedef struct bert_qmatrix
{
	const float *scale;			/* (M) weight scale of each row */
	const int32_t *row_sum;		/* (M) sum of each row's int8 weights */
	const int8_t *weight;		/* qgemm_pack_a of the int8 weights */
} bert_qmatrix;

typedef struct bert_qlayer
{
	const float *qkv_b;			/* (3C) query, key, value biases */
	bert_qmatrix qkv;			/* (3C, C) */
	bert_qmatrix attn_out;		/* (C, C) */
	bert_qmatrix inter;			/* (I, C) */
	bert_qmatrix out;			/* (C, I) */
} bert_qlayer;

/*
 * On the avx2 and portable paths the packed path serves calls of at most
 * this many tokens (B*T); longer ones run on OpenBLAS even when the
 * weights are packed.  Measured on a 2-core AVX2 EPYC (bert-base, 2
 * threads, forward pass against OpenBLAS): 20-25% faster at 64 tokens,
 * about 10% at 256, even at 512, 1-9% slower at 1024, where OpenBLAS's
 * repacking of the weights is spread over enough tokens and its kernel is
 * the faster one.  On the avx512 path the packed path serves every call:
 * on a 2-core AVX-512 EPYC at 1,024 tokens it took 512 ms against
 * OpenBLAS's 878 ms with its AVX2 kernel (OPENBLAS_CORETYPE=Haswell) and
 * 515 ms with its AVX-512 one (test/bench/HISTORY.md).
 */
#define BERT_PACKED_MAX_TOKENS	256

/* bert_model_load_flags flags */
#define BERT_LOAD_UNPACKED		0x1 /* no packed copy: OpenBLAS products */
#define BERT_LOAD_NO_SIDECAR	0x2 /* build privately even if model.packed matches */

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
	bert_packed_layer *packed;	/* L of them, or NULL (BERT_LOAD_UNPACKED) */
	float	   *packed_block;	/* the memory they point into (private, or in
								 * the mapped sidecar) */
	size_t		packed_bytes;
	mmsa_pack_map pack;			/* the mapped sidecar, when used */
	mmsa_pack_identity source_id;	/* of model.safetensors */
	char	   *dir;			/* the model directory */

	/* int8 (bert_model_set_precision) */
	mmsa_precision precision;
	bert_qlayer *qlayers;		/* L of them, into qpack, when mapped */
	mmsa_pack_map qpack;

	/* work buffers, sized for max_rows = B*T rows and max_T, grown on demand */
	long		max_rows;
	int			max_T;
	int			att_slots;		/* threads the att scratch has room for */
	mmsa_pool  *pool;			/* threads of the forward pass */
	int			pool_threads;	/* the thread count it was made for */
	float	   *x;				/* (B,T,C) the residual stream */
	float	   *q,
			   *k,
			   *v;				/* (B,T,C) each, one block (q is its start);
								 * packed path: (3C, B*T) */
	float	   *ctx;			/* (B,T,C) attention output, heads merged */
	float	   *proj;			/* (B,T,C) a projection before its residual */
	float	   *ffn;			/* (B,T,I) */
	float	   *addmask;		/* (B,T) */
	float	   *att;			/* (att_slots,T,T) */
	float	   *cls;			/* (B,C) */
	float	   *stats;			/* (2,B*T) LayerNorm means and 1/stddevs */
	float	   *gemm_work;		/* (att_slots, gemm_work_floats) */
	size_t		gemm_work_floats;
	float	   *qcols_block;	/* int8: the activations' per-token scales, */
	qgemm_cols	qcols;			/* inverses and zero points, in it */
} bert_model;

/*
 * Reads and validates a Hugging Face BERT config.json.  Bad or missing
 * values give MMSA_ERR_FORMAT with a message naming the key.
 */
mmsa_status bert_config_load(const char *config_json_path, bert_config *cfg,
							 mmsa_error *err);

/*
 * Loads dir/config.json and dir/model.safetensors, checking the name and
 * shape of every tensor against the configuration, and packs the dense
 * weights (bert_model_load_flags with flags 0).
 */
mmsa_status bert_model_load(const char *dir, bert_model **out, mmsa_error *err);

/* bert_model_load with flags: BERT_LOAD_UNPACKED or 0. */
mmsa_status bert_model_load_flags(const char *dir, int flags, bert_model **out,
								  mmsa_error *err);

/*
 * Writes the sidecar (see the top of this file) of a model loaded with its
 * packed copy, atomically, to path (usually dir/model.packed).
 */
mmsa_status bert_model_write_packed(const bert_model *m, const char *path,
									mmsa_error *err);

/*
 * Writes dir/model.int8.packed (BERT_INT8_FILE) for the model in dir,
 * atomically: each product's weights quantized per output row (qgemm.h)
 * from the fp32 weights, with the model.safetensors identity in its header
 * and a checksum of its data.
 */
mmsa_status bert_model_write_int8(const char *dir, mmsa_error *err);

/*
 * Puts the model at precision p.  int8 maps dir/model.int8.packed on first
 * use and checks it (identity, layout, checksum, scales): missing gives
 * MMSA_ERR_IO, stale or corrupt MMSA_ERR_FORMAT, and the model stays as it
 * was.  int8 runs every call on the feature-major path (bert_forward).
 */
mmsa_status bert_model_set_precision(bert_model *m, mmsa_precision p, mmsa_error *err);

/* Frees the model and its work buffers and unmaps its file (NULL is fine). */
void		bert_model_free(bert_model *m);

/*
 * Checks a batch for a model of configuration c: 1 <= B <= BERT_MAX_BATCH,
 * T >= 1, B*T <= BERT_MAX_ROWS, T <= max_position_embeddings, ids inside
 * the vocabulary, token types (may be NULL) inside type_vocab_size, mask
 * (may be NULL) values 0 or 1.  bert_forward and the trainable BERT call it.
 */
mmsa_status bert_check_inputs(const bert_config *c, const int32_t *ids,
							  const int32_t *token_types, const int32_t *mask,
							  int B, int T, mmsa_error *err);

/*
 * The forward pass.  It uses the work buffers of m, so one model serves one
 * caller at a time.  It runs on as many threads as OpenBLAS is set to
 * (openblas_set_num_threads): the model keeps a pool of that many threads
 * (the caller's included) that split every product, the attention heads and
 * the row-wise passes, with OpenBLAS set to one thread meanwhile (restored
 * on return).  The packed and unpacked paths agree to rounding (the sums
 * are taken in another order).
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
