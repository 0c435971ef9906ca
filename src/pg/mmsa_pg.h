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
#include "tokenizer.h"

/* GUC variables (mmsa.c) */
extern char *mmsa_model_dir;
extern int	mmsa_threads;
extern int	mmsa_max_image_pixels;

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

#endif
