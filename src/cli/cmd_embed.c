/*
 * cmd_embed.c
 *	  `mmsa embed`: the BERT encoder's outputs for token ids.
 *
 *	  mmsa embed --model DIR --inputs IN.safetensors --output OUT.safetensors
 *	             [--all-layers] [--threads N]
 *	  mmsa embed --model DIR --text TEXT [--text TEXT ...] [--vocab VOCAB]
 *	             [--max-len N] [--output OUT.safetensors] [--all-layers]
 *	             [--threads N]
 *
 * IN holds "input_ids" (B,T) and optionally "attention_mask" (B,T) and
 * "token_type_ids" (B,T), as I32 or I64 (what a Python script writes).
 * OUT gets "last_hidden_state" (B,T,C), "pooler_output" (B,C) when the model
 * has a pooler, and with --all-layers "hidden_states.0" (the embedding
 * output) .. "hidden_states.L" (B,T,C) as Hugging Face hidden_states.
 *
 * With --text, the texts are tokenized (WordPiece, VOCAB defaulting to
 * DIR/vocab.txt, at most N tokens with [CLS] and [SEP], default the model's
 * max_position_embeddings) into one batch padded to the longest; without
 * --output each text's pooler output is printed as a JSON array, one line
 * per text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bert.h"
#include "cli.h"
#include "safetensors.h"
#include "tokenizer.h"

static void
embed_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa embed --model DIR --inputs IN.safetensors --output OUT.safetensors\n"
			"                  [--all-layers] [--threads N]\n"
			"       mmsa embed --model DIR --text TEXT [--text TEXT ...] [--vocab VOCAB]\n"
			"                  [--max-len N] [--output OUT.safetensors] [--all-layers]\n"
			"                  [--threads N]\n"
			"  DIR holds config.json and model.safetensors (Hugging Face BertModel).\n"
			"  IN holds input_ids (B,T) and optionally attention_mask, token_type_ids\n"
			"  (I32 or I64).  OUT gets last_hidden_state (B,T,C), pooler_output (B,C)\n"
			"  and, with --all-layers, hidden_states.0 .. hidden_states.L (B,T,C).\n"
			"  --text: texts tokenized with VOCAB (default DIR/vocab.txt) into one batch\n"
			"  padded to the longest; without --output, prints each pooler output as a\n"
			"  JSON array, one line per text.\n");
}

/*
 * Tokenizes the n texts into one batch (B = n, T = the longest, at most
 * max_len) of ids and attention mask.
 */
static mmsa_status
tokenize_texts(const char *vocab_path, char **texts, int n, int max_len,
			   int *T, int32_t **ids_out, int32_t **mask_out, mmsa_error *err)
{
	bert_tokenizer *tok = NULL;
	int32_t    *ids = NULL,
			   *mask = NULL;
	int			longest = 1;
	mmsa_status status;

	*ids_out = *mask_out = NULL;
	if (max_len < 2)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "--max-len must be at least 2");
	if ((status = bert_tokenizer_load(vocab_path, &tok, err)) != MMSA_OK)
		return status;
	ids = malloc((size_t) n * max_len * sizeof(int32_t));
	mask = malloc((size_t) n * max_len * sizeof(int32_t));
	if (ids == NULL || mask == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int b = 0; b < n; b++)
	{
		int			len;

		status = bert_tokenize_padded(tok, texts[b], strlen(texts[b]), max_len,
									  ids + (size_t) b * max_len,
									  mask + (size_t) b * max_len, &len, err);
		if (status != MMSA_OK)
			goto fail;
		if (len > longest)
			longest = len;
	}
	/* keep the first `longest` columns of each row */
	for (int b = 0; b < n; b++)
	{
		memmove(ids + (size_t) b * longest, ids + (size_t) b * max_len,
				longest * sizeof(int32_t));
		memmove(mask + (size_t) b * longest, mask + (size_t) b * max_len,
				longest * sizeof(int32_t));
	}
	bert_tokenizer_free(tok);
	*T = longest;
	*ids_out = ids;
	*mask_out = mask;
	return MMSA_OK;

fail:
	bert_tokenizer_free(tok);
	free(ids);
	free(mask);
	return status;
}

/*
 * Reads the 2-d integer tensor name of f into a fresh int32 array, checking
 * its shape against *B, *T when they are positive (else setting them).
 * *out stays NULL when the tensor is absent and not required.
 */
static mmsa_status
read_int_tensor(safetensors_file *f, const char *name, int required,
				int *B, int *T, int32_t **out, mmsa_error *err)
{
	const st_tensor *t = safetensors_find(f, name);
	const uint8_t *src;

	*out = NULL;
	if (t == NULL)
		return required ? mmsa_set_error(err, MMSA_ERR_FORMAT,
										 "\"%s\" has no tensor \"%s\"", f->path, name)
			: MMSA_OK;
	if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1 ||
		t->shape[0] > BERT_MAX_BATCH || t->shape[1] > BERT_MAX_POSITIONS)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "tensor \"%s\" must have shape (batch, seq)", name);
	if (t->dtype != ST_I32 && t->dtype != ST_I64)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "tensor \"%s\" must be I32 or I64, not %s",
							  name, st_dtype_name(t->dtype));
	if (*B > 0 && (t->shape[0] != *B || t->shape[1] != *T))
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "tensor \"%s\" has shape (%lld,%lld), expected (%d,%d) as input_ids",
							  name, (long long) t->shape[0], (long long) t->shape[1], *B, *T);
	*B = (int) t->shape[0];
	*T = (int) t->shape[1];
	*out = malloc((size_t) t->numel * sizeof(int32_t));
	if (*out == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	src = t->data;
	for (int64_t i = 0; i < t->numel; i++)
	{
		if (t->dtype == ST_I32)
		{
			int32_t		v;

			memcpy(&v, src + 4 * i, 4);
			(*out)[i] = v;
		}
		else
		{
			int64_t		v;

			memcpy(&v, src + 8 * i, 8);
			/* out-of-range values become -1, which the model rejects */
			(*out)[i] = (v < INT32_MIN || v > INT32_MAX) ? -1 : (int32_t) v;
		}
	}
	return MMSA_OK;
}

int
cmd_embed(int argc, char **argv)
{
	const char *model_dir = NULL;
	const char *inputs_path = NULL;
	const char *output_path = NULL;
	const char *vocab_path = NULL;
	char		vocab_default[4096];
	char	  **texts = NULL;
	int			n_texts = 0;
	int			max_len = 0;
	int			all_layers = 0;
	int			threads = 0;
	mmsa_error	err;
	safetensors_file in;
	bert_model *model = NULL;
	int32_t    *ids = NULL,
			   *mask = NULL,
			   *types = NULL;
	float	   *all_hidden = NULL,
			   *hidden = NULL,
			   *pooled = NULL;
	st_write_tensor *outs = NULL;
	char	  **names = NULL;
	int			B = 0,
				T = 0,
				n_out = 0,
				L = 0,
				C = 0;
	int			rc = 1;

	memset(&in, 0, sizeof(in));
	mmsa_clear_error(&err);
	texts = calloc(argc, sizeof(char *));
	if (texts == NULL)
	{
		fprintf(stderr, "mmsa embed: out of memory\n");
		return 1;
	}
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			embed_usage(stdout);
			free(texts);
			return 0;
		}
		else if (strcmp(argv[i], "--all-layers") == 0)
			all_layers = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--model") == 0)
			model_dir = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--inputs") == 0)
			inputs_path = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--output") == 0)
			output_path = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--text") == 0)
			texts[n_texts++] = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--vocab") == 0)
			vocab_path = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--max-len") == 0)
			max_len = atoi(argv[++i]);
		else
		{
			fprintf(stderr, "mmsa embed: unknown or incomplete option \"%s\"\n", argv[i]);
			embed_usage(stderr);
			free(texts);
			return 2;
		}
	}
	if (model_dir == NULL || (inputs_path == NULL) == (n_texts == 0) ||
		(inputs_path != NULL && output_path == NULL))
	{
		embed_usage(stderr);
		free(texts);
		return 2;
	}
	if (threads > 0)
		openblas_set_num_threads(threads);

	if (bert_model_load(model_dir, &model, &err) != MMSA_OK)
		goto done;
	if (inputs_path != NULL)
	{
		if (safetensors_open(inputs_path, &in, &err) != MMSA_OK ||
			read_int_tensor(&in, "input_ids", 1, &B, &T, &ids, &err) != MMSA_OK ||
			read_int_tensor(&in, "attention_mask", 0, &B, &T, &mask, &err) != MMSA_OK ||
			read_int_tensor(&in, "token_type_ids", 0, &B, &T, &types, &err) != MMSA_OK)
			goto done;
	}
	else
	{
		if (vocab_path == NULL)
		{
			snprintf(vocab_default, sizeof(vocab_default), "%s/vocab.txt", model_dir);
			vocab_path = vocab_default;
		}
		if (max_len <= 0)
			max_len = model->config.max_position_embeddings;
		B = n_texts;
		if (tokenize_texts(vocab_path, texts, n_texts, max_len, &T, &ids, &mask,
						   &err) != MMSA_OK)
			goto done;
	}
	L = model->config.num_hidden_layers;
	C = model->config.hidden_size;

	hidden = malloc((size_t) B * T * C * sizeof(float));
	pooled = malloc((size_t) B * C * sizeof(float));
	if (all_layers)
		all_hidden = malloc((size_t) (L + 1) * B * T * C * sizeof(float));
	outs = calloc(L + 3, sizeof(st_write_tensor));
	names = calloc(L + 1, sizeof(char *));
	if (!hidden || !pooled || (all_layers && !all_hidden) || !outs || !names)
	{
		mmsa_set_error(&err, MMSA_ERR_NOMEM, "out of memory");
		goto done;
	}
	if (bert_forward_ex(model, ids, types, mask, B, T, all_hidden, hidden,
						model->pool_w ? pooled : NULL, &err) != MMSA_OK)
		goto done;

	outs[n_out++] = (st_write_tensor)
	{
		"last_hidden_state", ST_F32, 3, {B, T, C}, hidden
	};
	if (model->pool_w != NULL)
		outs[n_out++] = (st_write_tensor)
	{
		"pooler_output", ST_F32, 2, {B, C}, pooled
	};
	for (int l = 0; all_layers && l <= L; l++)
	{
		names[l] = malloc(32);
		if (names[l] == NULL)
		{
			mmsa_set_error(&err, MMSA_ERR_NOMEM, "out of memory");
			goto done;
		}
		snprintf(names[l], 32, "hidden_states.%d", l);
		outs[n_out++] = (st_write_tensor)
		{
			names[l], ST_F32, 3, {B, T, C}, all_hidden + (size_t) l * B * T * C
		};
	}
	if (output_path == NULL)
	{
		/* --text without --output: one JSON array per text */
		if (model->pool_w == NULL)
		{
			mmsa_set_error(&err, MMSA_ERR_UNSUPPORTED,
						   "the model has no pooler; use --output for the hidden states");
			goto done;
		}
		for (int b = 0; b < B; b++)
		{
			for (int i = 0; i < C; i++)
				printf("%s%.7g", i == 0 ? "[" : ", ", pooled[(size_t) b * C + i]);
			printf("]\n");
		}
	}
	else if (safetensors_write(output_path, outs, n_out, NULL, NULL, 0, &err) != MMSA_OK)
		goto done;
	rc = 0;

done:
	if (rc != 0)
		fprintf(stderr, "mmsa embed: %s\n", err.message[0] ? err.message : "failed");
	for (int l = 0; names && l <= L; l++)
		free(names[l]);
	free(names);
	free(texts);
	free(outs);
	free(all_hidden);
	free(hidden);
	free(pooled);
	free(ids);
	free(mask);
	free(types);
	bert_model_free(model);
	safetensors_close(&in);
	return rc;
}
