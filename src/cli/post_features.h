/*
 * post_features.h
 *	  What `mmsa predict` and `mmsa eval` share: opening a sentiment model
 *	  directory (the installed default when none is given) and encoding one
 *	  post of a posts.csv, its text and its image IMAGES/<id>.jpg.
 */
#ifndef MMSA_POST_FEATURES_H
#define MMSA_POST_FEATURES_H

#include "csv.h"
#include "sentiment.h"

/* Where `make install` puts the default model (the Makefile defines it). */
#ifndef MMSA_INSTALLED_MODEL_DIR
#define MMSA_INSTALLED_MODEL_DIR "/usr/share/postgresql/15/mmsa"
#endif

typedef struct post_features
{
	sentiment_text text;
	sentiment_image image;
	int			has_image;		/* 0 when IMAGES/<id>.jpg does not exist */
} post_features;

/* The options `mmsa predict` and `mmsa eval` share. */
typedef struct post_options
{
	const char *model_dir;		/* --model, NULL: the installed default */
	const char *posts;			/* --posts CSV */
	const char *images;			/* --images DIR */
	const char *split;			/* --split NAME, NULL: every row */
	int			threads;		/* --threads N, 0: OpenBLAS's default */
	const char *precision;		/* --precision fp32|int8, NULL: fp32 */
} post_options;

/*
 * Consumes argv[*i] and its value when it is one of the shared options
 * (advancing *i); returns 1 if it did, 0 otherwise.
 */
int			post_options_parse(post_options *o, int argc, char **argv, int *i);

/*
 * Checks that --posts and --images were given (else prints why, prefixed
 * with cmd, and returns 2), applies --threads, loads the posts of the split,
 * the model and the feature buffers.  Returns 0, or 1 after printing the
 * error.
 */
int			post_options_open(const post_options *o, const char *cmd, mmsa_posts *posts,
							  sentiment_model **m, post_features *pf);

/* Loads dir (NULL: the installed default) with its image encoder. */
mmsa_status post_model_open(const char *dir, sentiment_model **m, mmsa_error *err);

mmsa_status post_features_alloc(const sentiment_model *m, post_features *pf,
								mmsa_error *err);
void		post_features_free(post_features *pf);

/*
 * Encodes a post: its text, and its image images_dir/<id>.jpg when that
 * file exists (has_image = 0 otherwise).  An image that exists but does not
 * decode is an error naming the file.
 */
mmsa_status post_features_encode(sentiment_model *m, const char *images_dir,
								 const char *id, const char *text,
								 post_features *pf, mmsa_error *err);

#endif
