/*
 * bert_train.h
 *	  A trainable BERT (Hugging Face BertModel) with the masked-language-model
 *	  head of BertForMaskedLM and the sequence-classification head of
 *	  BertForSequenceClassification: training forward that keeps its
 *	  activations, backward pass, weight initialization, loading and saving
 *	  as a standard Hugging Face checkpoint.
 *
 * All parameters live in one contiguous float buffer (and their gradients
 * in another of the same layout), tensor by tensor, each with its Hugging
 * Face name and shape:
 *	 bert.embeddings.{word,position,token_type}_embeddings.weight,
 *	 bert.embeddings.LayerNorm.{weight,bias},
 *	 bert.encoder.layer.N.{attention.self.{query,key,value},
 *	   attention.output.dense, intermediate.dense, output.dense}.{weight,bias},
 *	 bert.encoder.layer.N.{attention.output,output}.LayerNorm.{weight,bias},
 *	 bert.pooler.dense.{weight,bias},
 *	 cls.predictions.transform.dense.{weight,bias},
 *	 cls.predictions.transform.LayerNorm.{weight,bias}, cls.predictions.bias
 *	   (the decoder weight is tied to the word embeddings, as in Hugging Face),
 *	 classifier.{weight,bias}.
 * bert_train_save writes them so that bert_model_load (bert.h) and Hugging
 * Face from_pretrained read the result.
 *
 * Use per step:
 *	 bert_train_zero_grad(m);
 *	 bert_train_forward(m, ids, types, mask, B, T, 1, step_seed, err);
 *	 bert_train_mlm_forward(m, mlm_labels, &loss, err);   and/or
 *	 bert_train_cls_forward(m, labels, class_weights, &loss, err);
 *	 bert_train_mlm_backward(m, 1.0f);  and/or  bert_train_cls_backward(m, 1.0f);
 *	 bert_train_backward(m, err);
 *	 adamw_step(opt, m->params, m->grads, lr);
 * Dropout (training = 1) follows Hugging Face BERT: on the embedding
 * output, on the attention probabilities, on the two dense outputs of
 * every layer before their residual, and on the pooled output before the
 * classifier.  Masks come from the step seed through counter-based draws
 * (layers.h dropout_forward), so a step is reproducible.  The products
 * (sgemm.c), the attention's (batch row, head) pairs and the elementwise
 * layers (GELU, dropout, LayerNorm's forward) run on the caller's thread,
 * or split between the threads of a pool given with bert_train_set_pool,
 * with the same results bit for bit for any number of threads.
 */
#ifndef MMSA_BERT_TRAIN_H
#define MMSA_BERT_TRAIN_H

#include <stdint.h>

#include "bert.h"
#include "mmsa_error.h"
#include "optim.h"
#include "safetensors.h"
#include "threadpool.h"

#define BERT_TRAIN_MAX_LABELS	4096

typedef struct bert_train_options
{
	int			num_labels;		/* classes of the classification head */
	float		hidden_dropout; /* hidden_dropout_prob, 0.1 in BERT */
	float		attention_dropout;	/* attention_probs_dropout_prob, 0.1 */
	float		initializer_range;	/* std of the normal init, 0.02 */
	int			pad_token_id;	/* its word embedding gets no gradient */
} bert_train_options;

/* num_labels 2, dropouts 0.1, initializer_range 0.02, pad_token_id 0 */
bert_train_options bert_train_options_default(void);

/* Pointers to the tensors of one encoder layer in a parameter buffer. */
typedef struct bert_train_layer
{
	float	   *q_w,
			   *q_b,
			   *k_w,
			   *k_b,
			   *v_w,
			   *v_b;			/* (C,C), (C) each */
	float	   *attn_out_w,
			   *attn_out_b;		/* (C,C), (C) */
	float	   *ln1_w,
			   *ln1_b;			/* (C), (C) */
	float	   *inter_w,
			   *inter_b;		/* (I,C), (I) */
	float	   *out_w,
			   *out_b;			/* (C,I), (C) */
	float	   *ln2_w,
			   *ln2_b;			/* (C), (C) */
} bert_train_layer;

/* Pointers to every tensor in a parameter (or gradient) buffer. */
typedef struct bert_train_tensors
{
	float	   *word_emb;		/* (V,C), also the MLM decoder weight */
	float	   *pos_emb;		/* (maxT,C) */
	float	   *type_emb;		/* (TV,C) */
	float	   *emb_ln_w,
			   *emb_ln_b;		/* (C) */
	bert_train_layer *layers;	/* L of them */
	float	   *pool_w,
			   *pool_b;			/* (C,C), (C) */
	float	   *mlm_dense_w,
			   *mlm_dense_b;	/* (C,C), (C) */
	float	   *mlm_ln_w,
			   *mlm_ln_b;		/* (C) */
	float	   *mlm_bias;		/* (V) */
	float	   *cls_w,
			   *cls_b;			/* (K,C), (K) with K = num_labels */
} bert_train_tensors;

/* Name, shape and place of one tensor in the buffers. */
typedef struct bert_train_tensor
{
	char		name[96];
	int			ndim;
	int64_t		shape[2];
	long		offset;
	long		numel;
	int			decay;			/* weight decay applies (not LayerNorm, biases) */
} bert_train_tensor;

typedef struct bert_train_model
{
	bert_config config;
	bert_train_options opt;

	long		n_params;
	float	   *params;			/* (n_params) */
	float	   *grads;			/* (n_params) */
	bert_train_tensors w;		/* into params */
	bert_train_tensors g;		/* into grads, same layout */
	int			n_tensors;
	bert_train_tensor *tensors;

	mmsa_pool  *pool;			/* elementwise work (not owned), or NULL */

	/* the last forward */
	int			B,
				T;
	int			training;
	uint64_t	seed;
	int			have_forward;
	int			mlm_rows;		/* M of the last MLM forward, -1 if none */
	int			cls_done;		/* classification forward done */

	/* activations, sized for max_rows = B*T rows of length max_T */
	long		max_rows;
	int			max_T;
	int			att_threads;	/* att_scratch's share count */
	float	   *act;			/* one block holding everything below */
	int32_t    *ids,
			   *types;			/* (B,T) copies of the inputs */
	float	   *addmask;		/* (B,T) */
	float	   *emb_in;			/* (B,T,C) sum of the embeddings */
	float	   *emb_mean,
			   *emb_rstd;		/* (B,T) */
	float	   *hidden;			/* (L+1,B,T,C) each layer's input, then the
								 * last hidden state */
	float	   *q,
			   *k,
			   *v,
			   *ctx;			/* (L,B,T,C) each */
	float	   *att;			/* (L,B,NH,T,T) attention probabilities */
	float	   *ln1_in,
			   *ln1_out,
			   *ln2_in;			/* (L,B,T,C) each */
	float	   *ln1_mean,
			   *ln1_rstd,
			   *ln2_mean,
			   *ln2_rstd;		/* (L,B,T) each */
	float	   *ffn_pre,
			   *ffn_act;		/* (L,B,T,I) before and after GELU */
	float	   *scratch;		/* (B,T,C) */
	float	   *att_scratch;	/* (att_threads,2,T,T) */
	float	   *dhidden;		/* (B,T,C) gradient of the last hidden state */
	float	   *d1,
			   *d2,
			   *dq,
			   *dk,
			   *dv;				/* (B,T,C) gradient work buffers */
	float	   *dffn1,
			   *dffn2;			/* (B,T,I) */
	/* classification head, for max_rows batch rows */
	float	   *cls_in,
			   *pooled,
			   *pooled_drop,
			   *cls_d1,
			   *cls_d2;			/* (B,C) */
	float	   *cls_logits,
			   *cls_probs,
			   *cls_dlogits;	/* (B,K) */
	int32_t    *cls_labels;		/* (B) */
	float	   *class_weights;	/* (K), owned copy of the last weights */
	int			use_class_weights;
	/* MLM head, for max_mlm rows */
	long		max_mlm;
	float	   *mlm_act;		/* one block holding everything below */
	int32_t    *mlm_index,
			   *mlm_targets;	/* (M) row in B*T and its label */
	float	   *mlm_in,
			   *mlm_pre,
			   *mlm_gelu,
			   *mlm_ln,
			   *mlm_d1,
			   *mlm_d2;			/* (M,C) */
	float	   *mlm_mean,
			   *mlm_rstd;		/* (M) */
	float	   *mlm_probs,
			   *mlm_dlogits;	/* (M,V) */
} bert_train_model;

/*
 * A model of configuration cfg with weights initialized as Hugging Face
 * BertPreTrainedModel._init_weights does (Linear and Embedding weights
 * normal(0, initializer_range) from a generator seeded with seed, the
 * padding token's embedding 0, biases 0, LayerNorm weight 1 and bias 0).
 */
mmsa_status bert_train_create(const bert_config *cfg,
							  const bert_train_options *opt, uint64_t seed,
							  bert_train_model **out, mmsa_error *err);

void		bert_train_free(bert_train_model *m);

/*
 * Splits the products, the attention and the elementwise layers of later
 * passes between the threads of pool (NULL: the caller's thread only).
 * The pool stays the caller's and must outlive its use; results do not
 * depend on it.
 */
void		bert_train_set_pool(bert_train_model *m, mmsa_pool *pool);

/* The tensor called name (e.g. "bert.pooler.dense.weight"), or NULL. */
const bert_train_tensor *bert_train_find(const bert_train_model *m,
										 const char *name);

/*
 * Copies the weights of a safetensors checkpoint into the model.  Tensor
 * names may have the "bert." prefix or not.  Every encoder tensor must be
 * present with its shape; head tensors (pooler, cls.predictions,
 * classifier) that are missing keep their current values, as when
 * fine-tuning starts from a pre-trained checkpoint.  *n_loaded (may be
 * NULL) gets the number of tensors read.  Every tensor is checked before
 * any is copied, so on error the model is unchanged.
 */
mmsa_status bert_train_load_weights(bert_train_model *m, const char *path,
									int *n_loaded, mmsa_error *err);

/*
 * Writes dir/config.json and dir/model.safetensors (F32, every tensor
 * under its name above); dir is created if missing.
 */
mmsa_status bert_train_save(const bert_train_model *m, const char *dir,
							mmsa_error *err);

/* bert_train_save with every tensor stored as dtype (ST_F32 or ST_F16). */
mmsa_status bert_train_save_as(const bert_train_model *m, const char *dir,
							   st_dtype dtype, mmsa_error *err);

/*
 * An AdamW optimizer over every parameter of m, with weight decay on the
 * tensors whose decay flag is set (all but LayerNorm weights and biases,
 * as Hugging Face's no_decay = ["bias", "LayerNorm.weight"]).
 */
mmsa_status bert_train_adamw_create(const bert_train_model *m, float beta1,
									float beta2, float eps, float weight_decay,
									adamw_optimizer **out, mmsa_error *err);

/* Zeroes the parameter gradients. */
void		bert_train_zero_grad(bert_train_model *m);

/*
 * The encoder forward pass, keeping activations for the backward pass.
 * With training = 0 there is no dropout and the result equals bert_forward
 * (to float rounding); with training = 1, dropout with masks drawn from
 * seed.  Inputs as bert_forward_ex: ids (B,T), token_types (B,T) or NULL,
 * mask (B,T) of 0/1 or NULL.  The last hidden state is then at
 * m->hidden + L*B*T*C.  Also clears the gradient of the last hidden state
 * that the heads' backward passes add into.
 */
mmsa_status bert_train_forward(bert_train_model *m, const int32_t *ids,
							   const int32_t *token_types,
							   const int32_t *mask, int B, int T,
							   int training, uint64_t seed, mmsa_error *err);

/*
 * The MLM head on the positions whose label is >= 0 (-100 = ignored, as
 * Hugging Face): transform (dense, GELU, LayerNorm), decoder tied to the
 * word embeddings plus cls.predictions.bias, and the mean cross-entropy
 * into *loss (0 when no position is labelled).
 * labels: (B,T) of the last bert_train_forward.
 */
mmsa_status bert_train_mlm_forward(bert_train_model *m, const int32_t *labels,
								   float *loss, mmsa_error *err);

/*
 * The classification head: pooler (dense + tanh over the first token),
 * dropout, classifier; the cross-entropy of labels (B) (negative =
 * ignored) weighted by class_weights (num_labels, or NULL), the mean of
 * torch.nn.CrossEntropyLoss(weight=class_weights), into *loss.
 * Logits are then at m->cls_logits (B,K), the pooled output at m->pooled.
 */
mmsa_status bert_train_cls_forward(bert_train_model *m, const int32_t *labels,
								   const float *class_weights, float *loss,
								   mmsa_error *err);

/*
 * Backward passes of the heads for dloss times their loss: add into the
 * head's parameter gradients and into the gradient of the last hidden
 * state.  Call after the head's forward.
 */
void		bert_train_mlm_backward(bert_train_model *m, float dloss);
void		bert_train_cls_backward(bert_train_model *m, float dloss);

/*
 * The encoder backward pass from the gradient of the last hidden state
 * that the heads left, adding into the parameter gradients.
 */
mmsa_status bert_train_backward(bert_train_model *m, mmsa_error *err);

#endif
