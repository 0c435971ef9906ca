/*
 * post_features.c
 *	  Opening a model and encoding one post for `mmsa predict` and `mmsa
 *	  eval` (see post_features.h).
 */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "post_features.h"

int
post_options_parse(post_options *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];

	if (*i + 1 >= argc)
		return 0;
	if (strcmp(a, "--model") == 0)
		o->model_dir = argv[++*i];
	else if (strcmp(a, "--posts") == 0)
		o->posts = argv[++*i];
	else if (strcmp(a, "--images") == 0)
		o->images = argv[++*i];
	else if (strcmp(a, "--split") == 0)
		o->split = argv[++*i];
	else if (strcmp(a, "--threads") == 0)
		o->threads = atoi(argv[++*i]);
	else if (strcmp(a, "--precision") == 0)
		o->precision = argv[++*i];
	else
		return 0;
	return 1;
}

int
post_options_open(const post_options *o, const char *cmd, mmsa_posts *posts,
				  sentiment_model **m, post_features *pf)
{
	mmsa_error	err;
	mmsa_precision precision = MMSA_PRECISION_DEFAULT;

	if (o->precision && mmsa_precision_parse(o->precision, &precision, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa %s: %s\n", cmd, err.message);
		return 2;
	}
	if (o->posts == NULL || o->images == NULL)
	{
		fprintf(stderr, "mmsa %s: --posts and --images are required (see mmsa %s --help)\n", cmd, cmd);
		return 2;
	}
	if (o->threads > 0)
		openblas_set_num_threads(o->threads);
	if (posts_load(o->posts, o->split, posts, &err) != MMSA_OK ||
		posts_check_unique_ids(posts, o->posts, &err) != MMSA_OK ||
		post_model_open(o->model_dir, m, &err) != MMSA_OK ||
		resnet_model_set_precision((*m)->image, precision, &err) != MMSA_OK ||
		bert_model_set_precision((*m)->text, precision, &err) != MMSA_OK ||
		post_features_alloc(*m, pf, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa %s: %s: %s\n", cmd, mmsa_status_name(err.status), err.message);
		return 1;
	}
	return 0;
}

mmsa_status
post_model_open(const char *dir, sentiment_model **m, mmsa_error *err)
{
	return sentiment_model_load(dir != NULL ? dir : MMSA_INSTALLED_MODEL_DIR,
								SENTIMENT_LOAD_IMAGE, m, err);
}

mmsa_status
post_features_alloc(const sentiment_model *m, post_features *pf, mmsa_error *err)
{
	mmsa_status status;

	memset(pf, 0, sizeof(*pf));
	status = sentiment_text_alloc(m, &pf->text, err);
	if (status == MMSA_OK)
		status = sentiment_image_alloc(&pf->image, err);
	if (status != MMSA_OK)
		post_features_free(pf);
	return status;
}

void
post_features_free(post_features *pf)
{
	sentiment_text_free(&pf->text);
	sentiment_image_free(&pf->image);
}

mmsa_status
post_features_encode(sentiment_model *m, const char *images_dir, const char *id,
					 const char *text, post_features *pf, mmsa_error *err)
{
	char		path[4096];
	struct stat st;
	uint8_t    *data;
	size_t		len;
	mmsa_status status;

	status = sentiment_encode_text(m, text, strlen(text), &pf->text, err);
	if (status != MMSA_OK)
		return status;
	if (snprintf(path, sizeof(path), "%s/%s.jpg", images_dir, id) >= (int) sizeof(path))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "image path too long for post %s", id);
	pf->has_image = stat(path, &st) == 0;
	if (!pf->has_image)
		return MMSA_OK;
	status = cli_read_file(path, CLI_MAX_IMAGE_FILE_BYTES, &data, &len, err);
	if (status != MMSA_OK)
		return status;
	status = sentiment_encode_image(m, data, len, NULL, &pf->image, err);
	free(data);
	if (status != MMSA_OK)
	{
		char		msg[sizeof(err->message)];

		snprintf(msg, sizeof(msg), "%s", err->message);
		return mmsa_set_error(err, status, "%s: %s", path, msg);
	}
	return MMSA_OK;
}
