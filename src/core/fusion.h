/*
 * fusion.h
 *	  The seven classification heads of the paper (spec/paper.md, sections
 *	  3 and 4) as trainable models on cached encoder features: forward with
 *	  saved activations, backward, every parameter in one float buffer with
 *	  names, save/load as safetensors.
 *
 * Inputs of every head (one batch of B samples, text length T):
 *	 H_T (B,T,C)    text hidden states (BERT's last layer), C = text width
 *	 mask (B,T)     text attention mask, 1 = token, 0 = padding (int32)
 *	 F_T (B,C)      pooled text vector (BERT pooler output)
 *	 H_I (B,NI,DI)  image feature map, token-major (ResNet-50: NI = 49
 *	                positions of the 7x7 map, DI = 2048 channels)
 *	 F_I (B,DI)     pooled image vector (ResNet-50 global average pool)
 * Output: logits (B,3) over (negative, neutral, positive).  The image
 * encoder is frozen; the backward pass returns dH_T and dF_T so that the
 * text encoder can be fine-tuned through the head.
 *
 * ======================================================================
 * The paper's equations and the choices made where it is vague
 * ======================================================================
 * Notation: Linear(n->m) is x W^T + b (PyTorch nn.Linear, W (m,n));
 * LN is LayerNorm over the last dimension with learned scale and shift,
 * eps = 1e-12 everywhere (as BERT); Drop is inverted dropout with
 * p = cfg.dropout (0.1, the "0.1" of the paper's hyper-parameter table,
 * which is also BERT's hidden dropout); GELU is the exact erf form.
 *
 * (0) Classifier.  The paper never defines TextClassifer/ImageClassifer/
 *	 classifier.  CHOICE: Classifier(x) = Linear(n->3)(Drop(x)), the head of
 *	 BertForSequenceClassification (dropout + one linear layer), no hidden
 *	 layer.  Each classifier has its own parameters.
 *
 * (1) "p = softmax(p_T + p_I)".  p_T and p_I are called probability
 *	 vectors but are summed before a softmax, so they are unnormalised
 *	 scores.  CHOICE: logits = p_T + p_I, the sum of the two classifiers'
 *	 outputs, so softmax(logits) is the paper's p and cross-entropy on
 *	 logits trains it; y = argmax(logits).  Single-classifier models
 *	 (bert, resnet, nativecat, ote) return the classifier output.
 *
 * (2) Widths.  H_I tokens are DI = 2048 wide, H_T tokens C = 768.
 *	 CHOICE: where image tokens must meet text tokens (attention in cmac,
 *	 hstec; the token sequence of ote), each image vector goes through a
 *	 learned projection P_I(x) = LN(Linear(DI->C)(x)) (the LN puts it on
 *	 the scale of BERT's LayerNorm-ed states).  Where the paper only
 *	 concatenates vectors ([F_T; F_I], [F_I; a]), F_I enters raw
 *	 (DI wide): a concatenation needs no common width, and a linear
 *	 classifier on the raw vector is the literal reading.
 *
 * (3) Attention(Q, K, V) = multi-head attention as nn.MultiheadAttention /
 *	 BERT self-attention: q = Linear(C->C)(Q), k = Linear(C->C)(K),
 *	 v = Linear(C->C)(V); NH heads of C/NH (NH = the text encoder's heads,
 *	 12); per head softmax(q k^T / sqrt(C/NH) + keymask) with Drop
 *	 (p = cfg.attn_dropout) on the probabilities; heads merged, then
 *	 Linear(C->C) (output projection).  keymask is 0 for keys that are
 *	 tokens and -inf for padded text keys (their probability is exactly 0).
 *
 * ---- bert (the "Bert" row of Table 4: text only) ----------------------
 *	 logits = Classifier(F_T)                                 (C -> 3)
 *
 * ---- resnet ("ResNet" row: image only) --------------------------------
 *	 logits = Classifier(F_I)                                 (DI -> 3)
 *
 * ---- nativecat (3.4) --------------------------------------------------
 *	 p = classifier([F_T; F_I])          logits = Classifier([F_T; F_I])
 *	                                                          (C+DI -> 3)
 *
 * ---- nativecombine (3.4) ----------------------------------------------
 *	 p_T = TextClassifer(F_T)            text_classifier      (C -> 3)
 *	 p_I = ImageClassifer(F_I)           image_classifier     (DI -> 3)
 *	 p = softmax(p_T + p_I)              logits = p_T + p_I   (choice 1)
 *
 * ---- cmac (3.1) -------------------------------------------------------
 *	 HI = P_I(H_I)                       (B,NI,C), image_proj (choice 2)
 *	 A_{I->T} = Attention_{I->T}(H_I, H_T, H_T)
 *	     CHOICE: the arguments are (query, key, value): queries are the
 *	     NI image tokens HI, keys and values the text tokens H_T (padded
 *	     keys masked); module attn_i2t; A_{I->T}: (B,NI,C).
 *	 A_{T->I} = Attention_{T->I}(H_T, H_I, H_I)
 *	     queries the T text tokens, keys/values the NI image tokens HI
 *	     (nothing masked); module attn_t2i; A_{T->I}: (B,T,C).
 *	 "averaged and compressed": CHOICE: mean over the query tokens,
 *	     a_{I->T} = mean_i A_{I->T}[:, i]            (B,C)
 *	     a_{T->I} = sum_t mask_t A_{T->I}[:, t] / sum_t mask_t   (B,C)
 *	     (the queries at padded text positions are left out).
 *	 p_T = TextClassifer([F_T; a_{I->T}])    text_classifier  (2C -> 3)
 *	 p_I = ImageClassifer([F_I; a_{T->I}])   image_classifier (DI+C -> 3)
 *	 logits = p_T + p_I                                       (choice 1)
 *
 * ---- hstec (3.2) ------------------------------------------------------
 *	 H_concat = [H_T; H_I]  CHOICE: concatenation along the sequence of
 *	     the text tokens and the projected image tokens, (B,T+NI,C);
 *	     padded text positions stay in the sequence but are masked as keys.
 *	 A = Attention(H_concat)  CHOICE: "Attention" over one sequence, named
 *	     after a TransformerEncoder, is one transformer encoder layer,
 *	     post-LN as a BERT layer (module encoder):
 *	         X1 = LN_1(X + Drop(Attention(X, X, X)))          (choice 3)
 *	         A  = LN_2(X1 + Drop(Linear(FF->C)(GELU(Linear(C->FF)(X1)))))
 *	     FF = cfg.ffn (4C = 3072 as BERT; PyTorch's default would be 2048).
 *	 a = mean(A, dim=0).squeeze(0)  CHOICE: the mean over the sequence
 *	     (dim 0 is the sequence in PyTorch's (S,B,C) layout), over the
 *	     valid positions only: sum over the T_b real text tokens and the
 *	     NI image tokens divided by T_b + NI.                 (B,C)
 *	 p_T = TextClassifer([F_T; a])           text_classifier  (2C -> 3)
 *	 p_I = ImageClassifer([F_I; a])          image_classifier (DI+C -> 3)
 *	 logits = p_T + p_I                                       (choice 1)
 *
 * ---- ote (3.3) --------------------------------------------------------
 *	 F_concat = concat([F_I, F_T], dim=2)  CHOICE: the two pooled vectors
 *	     as a sequence of two tokens, [P_I(F_I); F_T]: (B,2,C), image first
 *	     as in the equation (image_proj, choice 2, makes the widths meet).
 *	     dim=2 can also be read as a concatenation of (B,1,.) tensors along
 *	     features, (B,1,C+DI); self-attention over a single token is the
 *	     identity mixing (its softmax is 1), so "Attention" would do no
 *	     attending, and the paper credits OTE's lead in Table 4 to
 *	     attention-based fusion; the two-token reading lets text and image
 *	     attend to each other, so it is taken.
 *	 F_attn = Attention(F_concat)  one transformer encoder layer as in
 *	     hstec (module encoder; no mask: both tokens are real).  (B,2,C)
 *	 p = Classifier(F_attn)  CHOICE: F_attn is pooled by the mean of its
 *	     two tokens, then Classifier (C -> 3); logits = that output.
 *
 * Dropout: Drop in every classifier, after the attention output
 * projection and after the FFN of the encoder layer (BERT's hidden
 * dropout sites), p = cfg.dropout; on the attention probabilities,
 * p = cfg.attn_dropout.  Both 0.1 by default, active only in training
 * mode; masks come from dropout_uniform (layers.h) with one site seed per
 * place, so backward recomputes them.
 *
 * Parameter names (safetensors keys), with shapes:
 *	 classifier.{weight,bias}, text_classifier.*, image_classifier.*
 *	     (3,n), (3)
 *	 image_proj.dense.{weight,bias} (C,DI), (C);
 *	 image_proj.LayerNorm.{weight,bias} (C)
 *	 attn_i2t|attn_t2i|encoder.attention .{query,key,value,output}.
 *	     {weight,bias} (C,C), (C)
 *	 encoder.attention_norm.{weight,bias} (C)         LN_1
 *	 encoder.ffn.intermediate.{weight,bias} (FF,C), (FF)
 *	 encoder.ffn.output.{weight,bias} (C,FF), (C)
 *	 encoder.output_norm.{weight,bias} (C)            LN_2
 * Initialisation (fusion_create): Linear weights N(0, 0.02^2), biases 0,
 * LN weight 1 and bias 0 (BERT's initializer_range).
 * Saved files carry the configuration as metadata (mmsa.fusion.kind,
 * .hidden, .heads, .image_width, .image_tokens, .ffn).
 */
#ifndef MMSA_FUSION_H
#define MMSA_FUSION_H

#include <stddef.h>
#include <stdint.h>

#include "mmsa_error.h"

#define FUSION_CLASSES 3

typedef enum fusion_kind
{
	FUSION_BERT,
	FUSION_RESNET,
	FUSION_NATIVECAT,
	FUSION_NATIVECOMBINE,
	FUSION_CMAC,
	FUSION_HSTEC,
	FUSION_OTE
} fusion_kind;

#define FUSION_N_KINDS 7

/* Which inputs a head reads (fusion_inputs). */
#define FUSION_USES_HT	1		/* H_T and the mask */
#define FUSION_USES_FT	2
#define FUSION_USES_HI	4
#define FUSION_USES_FI	8

typedef struct fusion_config
{
	fusion_kind kind;
	int			hidden;			/* C, the text width (768) */
	int			heads;			/* NH, attention heads (12) */
	int			image_width;	/* DI (2048) */
	int			image_tokens;	/* NI (49) */
	int			ffn;			/* FF, encoder FFN width (4C) */
	float		dropout;		/* hidden/classifier dropout (0.1) */
	float		attn_dropout;	/* attention-probability dropout (0.1) */
} fusion_config;

/* One named parameter tensor: params[offset .. offset + numel). */
typedef struct fusion_tensor
{
	char		name[64];
	int			ndim;
	int64_t		shape[2];
	size_t		offset;
	size_t		numel;
} fusion_tensor;

typedef struct fusion_model fusion_model;	/* opaque; see fusion.c */

/* "bert" .. "ote" <-> kind; fusion_kind_from_name returns -1 if unknown. */
const char *fusion_kind_name(fusion_kind kind);
int			fusion_kind_from_name(const char *name);

/* The production configuration (768, 12 heads, 2048 x 49, FFN 3072, 0.1). */
fusion_config fusion_default_config(fusion_kind kind);

/* FUSION_USES_* flags of the inputs the kind reads. */
int			fusion_inputs(fusion_kind kind);

/*
 * A new model with freshly initialised parameters (seeded, reproducible)
 * and zero gradients.  Free with fusion_free.
 */
mmsa_status fusion_create(const fusion_config *cfg, uint64_t seed,
						  fusion_model **out, mmsa_error *err);
void		fusion_free(fusion_model *m);

/*
 * Configuration, parameter buffer, gradient buffer and tensor table.  A
 * model from fusion_load reads its parameters in place in the file's
 * read-only mapping (shared by every process that loads the file);
 * fusion_params makes a private writable copy on first call.  Gradients
 * (fusion_grads, fusion_zero_grad, fusion_backward) are allocated on first
 * use, so a model used only for inference holds no gradient memory.
 * fusion_params and fusion_grads return NULL when out of memory.
 */
const fusion_config *fusion_get_config(const fusion_model *m);
float	   *fusion_params(fusion_model *m);
float	   *fusion_grads(fusion_model *m);
size_t		fusion_num_params(const fusion_model *m);
int			fusion_num_tensors(const fusion_model *m);
const fusion_tensor *fusion_tensor_at(const fusion_model *m, int i);
const fusion_tensor *fusion_find_tensor(const fusion_model *m, const char *name);
void		fusion_zero_grad(fusion_model *m);

/*
 * Forward pass: logits (B,3).  Inputs the kind does not read
 * (fusion_inputs) may be NULL; mask NULL means no padding.  Every mask row
 * must hold 0/1 values with at least one 1.  training != 0 applies dropout
 * with masks drawn from seed; otherwise dropout is off.  The activations
 * are kept in the model for fusion_backward, which also reads the input
 * arrays again: they must stay unchanged until then.  Work buffers grow to
 * the largest (B,T) seen and are reused.  B*(T+NI) may be at most 2^24
 * (MMSA_ERR_LIMIT).
 */
mmsa_status fusion_forward(fusion_model *m, const float *H_T,
						   const int32_t *mask, const float *F_T,
						   const float *H_I, const float *F_I,
						   int B, int T, float *logits,
						   int training, uint64_t seed, mmsa_error *err);

/*
 * Backward pass of the last fusion_forward, given dlogits (B,3): ADDS the
 * parameter gradients into fusion_grads(m) (call fusion_zero_grad first)
 * and WRITES dH_T (B,T,C) and dF_T (B,C) (either may be NULL; zeros where
 * the kind does not read that input).
 */
mmsa_status fusion_backward(fusion_model *m, const float *dlogits,
							float *dH_T, float *dF_T, mmsa_error *err);

/* Saves the parameters (float32) with the configuration as metadata. */
mmsa_status fusion_save(const fusion_model *m, const char *path, mmsa_error *err);

/*
 * A model from a file written by fusion_save (or any safetensors file with
 * the same metadata and tensor names): every tensor must be present with
 * exactly the expected shape.  dropout rates come from the defaults.
 */
mmsa_status fusion_load(const char *path, fusion_model **out, mmsa_error *err);

#endif
