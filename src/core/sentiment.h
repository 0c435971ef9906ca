/*
 * sentiment.h
 *	  A sentiment model directory, as `mmsa train` writes it and `mmsa
 *	  predict`, `mmsa eval` and the extension read it:
 *
 *	    DIR/model.json           {"format": "mmsa-sentiment-1",
 *	                              "default_fusion": "<name>",
 *	                              "decision_bias": {"<name>": [b0, b1, b2], ...},
 *	                              "ensemble": {"combine": "mean",
 *	                                           "members": ["<name>", ...]}, ...}
 *	    DIR/text/                the text encoder, a Hugging Face BERT
 *	                             (config.json, model.safetensors, vocab.txt)
 *	    DIR/image/               ResNet-50 (config.json, model.safetensors)
 *	    DIR/heads/<name>.safetensors   the seven heads (fusion.h)
 *
 * Posts are classified one at a time (batch 1), so a post gets the same
 * probabilities whatever else is being classified with it.
 *
 * The models a directory offers: the seven heads (fusion_kind) and, when
 * model.json describes one, the ensemble (SENTIMENT_ENSEMBLE), whose
 * probabilities are the mean of its members'.  A model's label is its
 * decision rule applied to its probabilities p: the class k with the
 * largest log p_k + b_k, where b is the model's "decision_bias" (zero when
 * model.json gives none, which is the plain argmax).  `mmsa train` chooses
 * the biases by cross-validation on train (train_heads.c).
 */
#ifndef MMSA_SENTIMENT_H
#define MMSA_SENTIMENT_H

#include <stddef.h>
#include <stdint.h>

#include "bert.h"
#include "fusion.h"
#include "image.h"
#include "mmsa_error.h"
#include "resnet.h"
#include "tokenizer.h"

#define SENTIMENT_FORMAT "mmsa-sentiment-1"

/* The models: fusion_kind 0..6, then the ensemble. */
#define SENTIMENT_ENSEMBLE FUSION_N_KINDS
#define SENTIMENT_N_MODELS (FUSION_N_KINDS + 1)

/* sentiment_model_load flags */
#define SENTIMENT_LOAD_IMAGE 1	/* also load the image encoder */

typedef struct sentiment_model
{
	bert_tokenizer *tokenizer;
	bert_model *text;
	int			max_len;		/* text positions */
	int			hidden;			/* C */
	resnet_model *image;		/* NULL unless SENTIMENT_LOAD_IMAGE */
	image_preprocess_config preprocess;
	image_workspace workspace;
	float	   *pixels;			/* (3,224,224): the image encoder's input
								 * slot (resnet_input_slot), overwritten by
								 * each resnet_forward; owned by image */
	fusion_model *heads[FUSION_N_KINDS];
	int			default_kind;	/* a fusion_kind or SENTIMENT_ENSEMBLE */
	float		bias[SENTIMENT_N_MODELS][3];	/* decision biases (log space) */
	unsigned	ensemble_members;	/* bit k: head k is a member; 0: no
									 * ensemble */
	int32_t    *ids,
			   *mask;			/* (max_len) */
	int			borrowed_encoders;	/* tokenizer, text, image belong to the
									 * caller (sentiment_model_load_heads) */
} sentiment_model;

/* Text features of one post. */
typedef struct sentiment_text
{
	int			T;				/* tokens */
	float	   *H_T;			/* (max_len, C), rows 0..T-1 used */
	float	   *F_T;			/* (C) */
} sentiment_text;

/* Image features of one post. */
typedef struct sentiment_image
{
	float	   *H_I;			/* (49, 2048) */
	float	   *F_I;			/* (2048) */
} sentiment_image;

/*
 * Loads a model directory (layout above).  Every head file must be there.
 * flags: SENTIMENT_LOAD_IMAGE or 0.
 */
/*
 * What dir/model.json says of the model, without loading it: the default
 * model's name (fusion, n bytes; "" when absent), its val accuracy
 * (*default_acc, or -1) and every head's as compact JSON with sorted keys
 * (*val_json, malloc'd; NULL when absent).  MMSA_ERR_IO without a
 * model.json, MMSA_ERR_FORMAT when it is not JSON.
 */
mmsa_status sentiment_model_describe(const char *dir, char *fusion, size_t n,
									 double *default_acc, char **val_json,
									 mmsa_error *err);

mmsa_status sentiment_model_load(const char *dir, int flags,
								 sentiment_model **out, mmsa_error *err);

/*
 * Loads only DIR/model.json and DIR/heads/ around encoders the caller has
 * already loaded (the extension's per-backend cache): tokenizer and text
 * are required; image may be NULL (no image features then), and preprocess
 * is its preprocessing configuration.  The encoders are borrowed:
 * sentiment_model_free leaves them to their owner, who must keep them
 * alive as long as the model.
 */
mmsa_status sentiment_model_load_heads(const char *dir, bert_tokenizer *tokenizer,
									   bert_model *text, resnet_model *image,
									   const image_preprocess_config *preprocess,
									   sentiment_model **out, mmsa_error *err);
void		sentiment_model_free(sentiment_model *m);

/* Buffers for one post's features (free with the _free functions). */
mmsa_status sentiment_text_alloc(const sentiment_model *m, sentiment_text *t,
								 mmsa_error *err);
void		sentiment_text_free(sentiment_text *t);
mmsa_status sentiment_image_alloc(sentiment_image *im, mmsa_error *err);
void		sentiment_image_free(sentiment_image *im);

/* H_T and F_T of a text (len bytes of UTF-8), truncated to max_len tokens. */
mmsa_status sentiment_encode_text(sentiment_model *m, const char *text,
								  size_t len, sentiment_text *out,
								  mmsa_error *err);

/*
 * H_I and F_I of an encoded image (JPEG or PNG bytes), decoded with opt
 * (NULL: defaults) and preprocessed as the image model's config says.
 * The defaults decode at full size, as `mmsa features` does for the
 * cache the heads were trained on, so both see the same pixels.
 */
mmsa_status sentiment_encode_image(sentiment_model *m, const uint8_t *data,
								   size_t len, const image_decode_options *opt,
								   sentiment_image *out, mmsa_error *err);

/*
 * The probabilities (negative, neutral, positive) of model kind (a
 * fusion_kind or SENTIMENT_ENSEMBLE) on one post's features.  text may be
 * NULL only for resnet, image only for bert.
 */
mmsa_status sentiment_classify(sentiment_model *m, int kind,
							   const sentiment_text *text,
							   const sentiment_image *image, float probs[3],
							   mmsa_error *err);

/* The probabilities of a head's three logits (a softmax, as sentiment_classify's). */
void		sentiment_softmax(const float logits[3], float probs[3]);

/* The index of the largest of three scores, probabilities or logits (first on ties). */
int			sentiment_argmax(const float probs[3]);

/*
 * The label of probabilities probs under biases bias: the k with the
 * largest logf(probs[k]) + bias[k] (first on ties; a zero probability never
 * wins against a positive one).  With zero biases, sentiment_argmax.
 */
int			sentiment_decide_biased(const float bias[3], const float probs[3]);

/*
 * The inputs model kind of m reads (FUSION_USES_* bits): a head's, or the
 * union of the ensemble's members'.
 */
int			sentiment_inputs(const sentiment_model *m, int kind);

/* The label model kind of m gives to its probabilities probs. */
int			sentiment_decide(const sentiment_model *m, int kind, const float probs[3]);

/*
 * "bert" .. "ote", "ensemble" <-> model kind; sentiment_kind_from_name
 * returns -1 for an unknown name.  Whether m has the ensemble:
 * m->ensemble_members != 0.
 */
const char *sentiment_kind_name(int kind);
int			sentiment_kind_from_name(const char *name);

#endif
