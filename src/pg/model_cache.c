/*
 * model_cache.c
 *	  The installed model, loaded once per backend and kept for its life.
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

static mmsa_text_encoder text_encoder;

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
 * Returns the BERT weights of the text encoder, mapping them on first use.
 */
bert_model *
mmsa_text_encoder_weights(mmsa_text_encoder *enc)
{
	mmsa_error	err;

	if (enc->bert == NULL)
	{
		bert_model *bert = NULL;

		if (bert_model_load(enc->dir, &bert, &err) != MMSA_OK)
			mmsa_report_error(&err, MMSA_ORIGIN_MODEL);
		if (bert->config.max_position_embeddings < enc->max_length)
			enc->max_length = bert->config.max_position_embeddings;
		enc->bert = bert;
	}
	return enc->bert;
}
