/*
 * model_cache.c
 *	  The installed model, loaded once per backend and kept for its life:
 *	  the text and image encoders, and the sentiment heads around them.
 *
 * Weights are mmap'ed read-only (safetensors.c), so every backend that
 * loads the same files shares their pages through the operating system's
 * page cache; only small work buffers are private.  The cache is keyed by
 * mmsa.model_dir: a superuser who changes the setting gets the new model
 * on the next call.
 */
#include "postgres.h"

#include <sys/stat.h>

#include "utils/memutils.h"

#include "mmsa_pg.h"

#include <jansson.h>

static mmsa_text_encoder text_encoder;
static mmsa_image_encoder image_encoder;

/* Frees whatever the cache holds. */
static void
text_encoder_reset(void)
{
	if (text_encoder.bert != NULL)
		bert_model_free(text_encoder.bert);
	if (text_encoder.tokenizer != NULL)
		bert_tokenizer_free(text_encoder.tokenizer);
	if (text_encoder.dir != NULL)
		pfree(text_encoder.dir);
	memset(&text_encoder, 0, sizeof(text_encoder));
}

/*
 * Returns the text encoder of the installed model with its tokenizer
 * loaded: <mmsa.model_dir>/text/vocab.txt, and the maximum length from
 * config.json beside it (512 when there is none yet).
 */
mmsa_text_encoder *
mmsa_text_encoder_get(void)
{
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	mmsa_error	err;
	bert_tokenizer *tokenizer = NULL;
	int			max_length = 512;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/text", mmsa_model_dir ? mmsa_model_dir : "");
	if (text_encoder.dir != NULL && strcmp(text_encoder.dir, dir) == 0)
		return &text_encoder;
	text_encoder_reset();

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (stat(path, &st) == 0)
	{
		bert_config config;

		if (bert_config_load(path, &config, &err) != MMSA_OK)
			mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
		max_length = config.max_position_embeddings;
	}

	snprintf(path, sizeof(path), "%s/vocab.txt", dir);
	if (bert_tokenizer_load(path, &tokenizer, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);

	text_encoder.tokenizer = tokenizer;
	text_encoder.max_length = max_length;
	text_encoder.dir = MemoryContextStrdup(TopMemoryContext, dir);
	return &text_encoder;
}

/*
 * The ERROR of an encoder that cannot be put at mmsa.precision: a missing
 * int8 sidecar is 58P01 with a hint that says how to make it (from: what
 * it is made from, or ""), a stale or corrupt one XX001.
 */
static void
report_precision_error(const mmsa_error *err, const char *dir, const char *from)
{
	ereport(ERROR,
			(errcode(err->status == MMSA_ERR_IO ? ERRCODE_UNDEFINED_FILE :
					 err->status == MMSA_ERR_NOMEM ? ERRCODE_OUT_OF_MEMORY :
					 ERRCODE_DATA_CORRUPTED),
			 errmsg("mmsa: %s", err->message),
			 errhint("`mmsa pack --model %s` writes the int8 weights%s (make install "
					 "installs them with the model); or SET mmsa.precision = 'fp32'.",
					 dir, from)));
}

/*
 * Returns the BERT weights of the text encoder, mapping them on first use,
 * at mmsa.precision: int8 maps text/model.int8.packed on first use (errors
 * as report_precision_error says; the encoder stays as it was).
 */
bert_model *
mmsa_text_encoder_weights(mmsa_text_encoder *enc)
{
	mmsa_error	err;

	if (enc->bert == NULL)
	{
		bert_model *bert = NULL;

		/* the model's thread pool is sized from mmsa.threads */
		mmsa_prepare_threads();

		if (bert_model_load(enc->dir, &bert, &err) != MMSA_OK)
			mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
		if (bert->config.max_position_embeddings < enc->max_length)
			enc->max_length = bert->config.max_position_embeddings;
		enc->bert = bert;
	}
	if (enc->bert->precision != (mmsa_precision) mmsa_precision_setting &&
		bert_model_set_precision(enc->bert, (mmsa_precision) mmsa_precision_setting, &err) != MMSA_OK)
		report_precision_error(&err, enc->dir, "");
	return enc->bert;
}

/* Frees whatever the image encoder cache holds. */
static void
image_encoder_reset(void)
{
	if (image_encoder.resnet != NULL)
		resnet_model_free(image_encoder.resnet);
	if (image_encoder.dir != NULL)
		pfree(image_encoder.dir);
	memset(&image_encoder, 0, sizeof(image_encoder));
}

/*
 * Puts the image encoder at mmsa.precision.  int8 maps image/model.int8.packed
 * on first use; a missing one is an ERROR (58P01) whose hint says how to
 * make it, a stale or corrupt one (XX001) is refused, and the encoder
 * stays as it was.
 */
static void
image_encoder_apply_precision(resnet_model *resnet, const char *dir)
{
	mmsa_error	err;
	char		from[MAXPGPATH + 32];

	if (resnet->precision == (mmsa_precision) mmsa_precision_setting)
		return;
	snprintf(from, sizeof(from), " from %s/%s", dir, RESNET_CALIB_FILE);
	if (resnet_model_set_precision(resnet, (mmsa_precision) mmsa_precision_setting, &err) != MMSA_OK)
		report_precision_error(&err, dir, from);
}

/*
 * Returns the image encoder of the installed model: ResNet-50 from
 * <mmsa.model_dir>/image (config.json, model.safetensors, labels), with the
 * preprocessing its config.json records (torchvision's when it records
 * none).
 */
mmsa_image_encoder *
mmsa_image_encoder_get(void)
{
	char		dir[MAXPGPATH];
	mmsa_error	err;
	resnet_model *resnet = NULL;
	image_preprocess_config preprocess;

	snprintf(dir, sizeof(dir), "%s/image", mmsa_model_dir ? mmsa_model_dir : "");
	if (image_encoder.dir != NULL && strcmp(image_encoder.dir, dir) == 0)
	{
		image_encoder_apply_precision(image_encoder.resnet, dir);
		return &image_encoder;
	}
	image_encoder_reset();

	/* the model's thread pool is sized from mmsa.threads */
	mmsa_prepare_threads();
	if (resnet_model_load(dir, &resnet, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);

	image_preprocess_config_torchvision(&preprocess);
	if (resnet->preprocess_json != NULL)
	{
		json_error_t jerr;
		json_t	   *obj = json_loads(resnet->preprocess_json, 0, &jerr);
		mmsa_status status;

		if (obj == NULL)
			status = mmsa_set_error(&err, MMSA_ERR_FORMAT, "bad preprocessing object in %s/config.json: %s",
									dir, jerr.text);
		else
		{
			status = image_preprocess_config_from_json(obj, &preprocess, &err);
			json_decref(obj);
		}
		if (status != MMSA_OK)
		{
			resnet_model_free(resnet);
			mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
		}
	}
	image_encoder.resnet = resnet;
	image_encoder.preprocess = preprocess;
	image_encoder.dir = MemoryContextStrdup(TopMemoryContext, dir);
	image_encoder_apply_precision(resnet, dir);
	return &image_encoder;
}

static mmsa_sentiment_cache sentiment;

/* Frees the sentiment cache (its heads and buffers, not the encoders). */
static void
sentiment_reset(void)
{
	sentiment_text_free(&sentiment.text);
	sentiment_image_free(&sentiment.image);
	sentiment_model_free(sentiment.model);
	if (sentiment.dir != NULL)
		pfree(sentiment.dir);
	memset(&sentiment, 0, sizeof(sentiment));
}

/*
 * Returns the installed sentiment model: <mmsa.model_dir>/model.json (the
 * default fusion) and heads/, around the text and image encoders of the
 * caches above.  Rebuilt when mmsa.model_dir changes, and whenever one of
 * those caches has reloaded an encoder, so that it never points at freed
 * ones.
 */
mmsa_sentiment_cache *
mmsa_sentiment_get(void)
{
	const char *dir = mmsa_model_dir ? mmsa_model_dir : "";
	char		path[MAXPGPATH];
	struct stat st;
	mmsa_text_encoder *tenc;
	bert_model *bert;
	mmsa_image_encoder *ienc;
	sentiment_model *m = NULL;
	mmsa_error	err;

	/*
	 * Without model.json there is no trained model here, whatever else the
	 * directory holds: say so before loading the encoders.
	 */
	if (sentiment.dir == NULL || strcmp(sentiment.dir, dir) != 0)
	{
		snprintf(path, sizeof(path), "%s/model.json", dir);
		if (stat(path, &st) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("mmsa: no trained sentiment model in \"%s\"", dir),
					 errdetail("\"%s\" does not exist: %m.", path),
					 errhint("Install the trained model (`make install` installs it under "
							 "<sharedir>/mmsa once weights/model.json exists), or have a "
							 "superuser point mmsa.model_dir at a directory written by "
							 "`mmsa train`.")));
	}

	tenc = mmsa_text_encoder_get();
	bert = mmsa_text_encoder_weights(tenc);
	ienc = mmsa_image_encoder_get();
	if (sentiment.dir != NULL && strcmp(sentiment.dir, dir) == 0 &&
		sentiment.model->tokenizer == tenc->tokenizer &&
		sentiment.model->text == bert &&
		sentiment.model->image == ienc->resnet)
		return &sentiment;
	sentiment_reset();

	if (sentiment_model_load_heads(dir, tenc->tokenizer, bert, ienc->resnet,
								   &ienc->preprocess, &m, &err) != MMSA_OK)
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
	if (sentiment_text_alloc(m, &sentiment.text, &err) != MMSA_OK ||
		sentiment_image_alloc(&sentiment.image, &err) != MMSA_OK)
	{
		sentiment_text_free(&sentiment.text);
		sentiment_model_free(m);
		mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
	}
	sentiment.model = m;
	sentiment.dir = MemoryContextStrdup(TopMemoryContext, dir);
	return &sentiment;
}
