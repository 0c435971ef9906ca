/*
 * mmsa_pg.h
 *	  Declarations shared by the PostgreSQL glue of mmsa (src/pg).
 */
#ifndef MMSA_PG_H
#define MMSA_PG_H

#include "postgres.h"

#include "utils/array.h"

#include "bert.h"
#include "image.h"
#include "resnet.h"
#include "mmsa_error.h"
#include "sentiment.h"
#include "tokenizer.h"

/* GUC variables (mmsa.c) */
extern char *mmsa_model_dir;
extern int	mmsa_threads;
extern int	mmsa_max_image_pixels;
extern char *mmsa_isa_setting;
extern int	mmsa_precision_setting;	/* mmsa_precision */

/*
 * Where an error came from decides its SQLSTATE: a bad model file is the
 * installation's problem, a bad argument is the caller's.
 */
typedef enum mmsa_error_origin
{
	MMSA_ORIGIN_MODEL,			/* files under mmsa.model_dir */
	MMSA_ORIGIN_INPUT			/* the function's arguments */
} mmsa_error_origin;

/* Raises err as an ERROR with a fitting SQLSTATE; never returns. */
void		mmsa_report_error(const mmsa_error *err, mmsa_error_origin origin) pg_attribute_noreturn();

/* A real[] of the n values v (mmsa.c). */
ArrayType  *mmsa_float4_array(const float *v, int n);

/* Sets the OpenBLAS thread count from mmsa.threads (mmsa.c). */
void		mmsa_prepare_threads(void);

/*
 * The text encoder of the installed model, loaded once per backend
 * (model_cache.c).  The tokenizer and maximum length are always present;
 * bert is loaded on first use by mmsa_text_encoder_weights().
 */
typedef struct mmsa_text_encoder
{
	char	   *dir;			/* <mmsa.model_dir>/text */
	bert_tokenizer *tokenizer;
	int			max_length;		/* max_position_embeddings, or 512 */
	bert_model *bert;			/* NULL until weights are needed */
} mmsa_text_encoder;

mmsa_text_encoder *mmsa_text_encoder_get(void);
bert_model *mmsa_text_encoder_weights(mmsa_text_encoder *enc);

/*
 * The image encoder of the installed model (<mmsa.model_dir>/image), loaded
 * once per backend (model_cache.c), with its preprocessing configuration.
 */
typedef struct mmsa_image_encoder
{
	char	   *dir;			/* <mmsa.model_dir>/image */
	resnet_model *resnet;
	image_preprocess_config preprocess;
} mmsa_image_encoder;

mmsa_image_encoder *mmsa_image_encoder_get(void);

/*
 * The sentiment model of the installed model (model.json and the seven
 * heads under <mmsa.model_dir>), loaded once per backend around the cached
 * text and image encoders above, which it borrows rather than loading them
 * a second time; with work buffers for one post's features, allocated once
 * (model_cache.c).
 */
typedef struct mmsa_sentiment_cache
{
	char	   *dir;			/* mmsa.model_dir it was loaded from */
	sentiment_model *model;		/* encoders borrowed from the caches above */
	sentiment_text text;		/* one post's text features */
	sentiment_image image;		/* one post's image features */
} mmsa_sentiment_cache;

mmsa_sentiment_cache *mmsa_sentiment_get(void);

/*
 * Classifies one post (sentiment_functions.c).  kind is a fusion_kind, or
 * -1 for the model's default; a NULL image gives the text model (bert), a
 * NULL body the image model (resnet).  Returns the label index (0
 * negative, 1 neutral, 2 positive) and fills probs, or returns -1 when both
 * are NULL.
 */
int			mmsa_classify_post(text *body, bytea *image, int kind, float probs[3]);

/* The OIDs of the three values of the label enum typid, in label order. */
void		mmsa_label_oids(Oid typid, Oid oids[3]);

#endif
