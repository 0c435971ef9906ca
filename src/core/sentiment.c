/*
 * sentiment.c
 *	  Loading a sentiment model directory and classifying one post with any
 *	  of its seven heads or their ensemble, under each model's decision rule
 *	  (see sentiment.h).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentiment.h"

static mmsa_status
join(char *buf, size_t size, const char *dir, const char *name, mmsa_error *err)
{
	if ((size_t) snprintf(buf, size, "%s/%s", dir, name) >= size)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "model path too long: %s/%s", dir, name);
	return MMSA_OK;
}

const char *
sentiment_kind_name(int kind)
{
	if (kind == SENTIMENT_ENSEMBLE)
		return "ensemble";
	return fusion_kind_name((fusion_kind) kind);
}

int
sentiment_kind_from_name(const char *name)
{
	if (strcmp(name, "ensemble") == 0)
		return SENTIMENT_ENSEMBLE;
	return fusion_kind_from_name(name);
}

/*
 * model.json's "decision_bias" (optional): an object of model names, each
 * three finite numbers, into m->bias (zeros for a model not named).
 */
static mmsa_status
read_biases(json_t *root, const char *path, sentiment_model *m, mmsa_error *err)
{
	json_t	   *biases = json_object_get(root, "decision_bias"),
			   *v;
	const char *name;

	memset(m->bias, 0, sizeof(m->bias));
	if (biases == NULL)
		return MMSA_OK;
	if (!json_is_object(biases))
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s: \"decision_bias\" must be an object", path);
	json_object_foreach(biases, name, v)
	{
		int			kind = sentiment_kind_from_name(name);

		if (kind < 0 || !json_is_array(v) || json_array_size(v) != 3)
			return mmsa_set_error(err, MMSA_ERR_FORMAT,
								  "%s: \"decision_bias\" must map model names to three numbers "
								  "(\"%s\" does not)", path, name);
		for (int c = 0; c < 3; c++)
		{
			json_t	   *x = json_array_get(v, c);

			if (!json_is_number(x) || !isfinite(json_number_value(x)) ||
				fabs(json_number_value(x)) > 100)
				return mmsa_set_error(err, MMSA_ERR_FORMAT,
									  "%s: \"decision_bias\" of %s must be three numbers within "
									  "[-100, 100]", path, name);
			m->bias[kind][c] = (float) json_number_value(x);
		}
	}
	return MMSA_OK;
}

/*
 * model.json's "ensemble" (optional): {"combine": "mean", "members":
 * [two or more distinct head names]} into m->ensemble_members.
 */
static mmsa_status
read_ensemble(json_t *root, const char *path, sentiment_model *m, mmsa_error *err)
{
	json_t	   *e = json_object_get(root, "ensemble"),
			   *members,
			   *v;
	const char *combine;
	size_t		i;

	m->ensemble_members = 0;
	if (e == NULL)
		return MMSA_OK;
	combine = json_string_value(json_object_get(e, "combine"));
	members = json_object_get(e, "members");
	if (!json_is_object(e) || combine == NULL || strcmp(combine, "mean") != 0 ||
		!json_is_array(members) || json_array_size(members) < 2)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "%s: \"ensemble\" must be {\"combine\": \"mean\", \"members\": "
							  "[two or more heads]}", path);
	json_array_foreach(members, i, v)
	{
		const char *name = json_string_value(v);
		int			kind = name != NULL ? fusion_kind_from_name(name) : -1;

		if (kind < 0 || (m->ensemble_members & (1u << kind)))
			return mmsa_set_error(err, MMSA_ERR_FORMAT,
								  "%s: the ensemble's members must be distinct heads of the seven",
								  path);
		m->ensemble_members |= 1u << kind;
	}
	return MMSA_OK;
}

/*
 * Reads DIR/model.json: its format, default model, decision biases and
 * ensemble.
 */
static mmsa_status
read_model_json(const char *dir, sentiment_model *m, mmsa_error *err)
{
	char		path[4096];
	json_error_t jerr;
	json_t	   *root;
	const char *format,
			   *fusion;
	int			kind;
	mmsa_status status;

	if ((status = join(path, sizeof(path), dir, "model.json", err)) != MMSA_OK)
		return status;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return mmsa_set_error(err, jerr.line < 0 ? MMSA_ERR_IO : MMSA_ERR_FORMAT,
							  "%s: %s", path, jerr.text);
	format = json_string_value(json_object_get(root, "format"));
	fusion = json_string_value(json_object_get(root, "default_fusion"));
	if (format == NULL || strcmp(format, SENTIMENT_FORMAT) != 0)
		status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s: \"format\" must be \"%s\"", path,
								SENTIMENT_FORMAT);
	else if ((status = read_biases(root, path, m, err)) != MMSA_OK ||
			 (status = read_ensemble(root, path, m, err)) != MMSA_OK)
		;
	else if (fusion == NULL || (kind = sentiment_kind_from_name(fusion)) < 0 ||
			 (kind == SENTIMENT_ENSEMBLE && m->ensemble_members == 0))
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"%s: \"default_fusion\" must name one of the seven heads, or "
								"\"ensemble\" when the file describes one", path);
	else
		m->default_kind = kind;
	json_decref(root);
	return status;
}

mmsa_status
sentiment_model_describe(const char *dir, char *fusion, size_t n, double *default_acc,
						 char **val_json, mmsa_error *err)
{
	char		path[4096];
	json_error_t jerr;
	json_t	   *root,
			   *acc,
			   *a;
	const char *name;
	mmsa_status status;

	fusion[0] = '\0';
	*default_acc = -1;
	*val_json = NULL;
	if ((status = join(path, sizeof(path), dir, "model.json", err)) != MMSA_OK)
		return status;
	root = json_load_file(path, 0, &jerr);
	if (root == NULL)
		return mmsa_set_error(err, jerr.line < 0 ? MMSA_ERR_IO : MMSA_ERR_FORMAT,
							  "%s: %s", path, jerr.text);
	name = json_string_value(json_object_get(root, "default_fusion"));
	acc = json_object_get(root, "val_accuracy");
	if (name != NULL)
		snprintf(fusion, n, "%s", name);
	if (name != NULL && json_is_object(acc) && json_is_number(a = json_object_get(acc, name)))
		*default_acc = json_number_value(a);
	if (json_is_object(acc))
		*val_json = json_dumps(acc, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
	json_decref(root);
	return MMSA_OK;
}

/* Sizes and work buffers that follow from the text encoder m->text. */
static mmsa_status
init_text_buffers(sentiment_model *m, mmsa_error *err)
{
	m->max_len = m->text->config.max_position_embeddings;
	m->hidden = m->text->config.hidden_size;
	m->ids = malloc(sizeof(int32_t) * m->max_len);
	m->mask = malloc(sizeof(int32_t) * m->max_len);
	if (m->ids == NULL || m->mask == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	return MMSA_OK;
}

/* DIR/heads/<name>.safetensors, each checked against the encoders' widths. */
static mmsa_status
load_heads(sentiment_model *m, const char *dir, mmsa_error *err)
{
	char		path[4096];
	mmsa_status status;

	for (int k = 0; k < FUSION_N_KINDS; k++)
	{
		char		name[64];
		const fusion_config *c;

		snprintf(name, sizeof(name), "heads/%s.safetensors", fusion_kind_name((fusion_kind) k));
		if ((status = join(path, sizeof(path), dir, name, err)) != MMSA_OK ||
			(status = fusion_load(path, &m->heads[k], err)) != MMSA_OK)
			return status;
		c = fusion_get_config(m->heads[k]);
		if (c->kind != (fusion_kind) k || c->hidden != m->hidden ||
			c->image_width != RESNET_FEATURES || c->image_tokens != RESNET_TOKENS)
			return mmsa_set_error(err, MMSA_ERR_FORMAT,
								  "%s: a %s head of width %d for images %dx%d does not fit the text "
								  "encoder (width %d) and ResNet-50 (%dx%d)", path,
								  fusion_kind_name(c->kind), c->hidden, c->image_tokens,
								  c->image_width, m->hidden, RESNET_TOKENS, RESNET_FEATURES);
	}
	return MMSA_OK;
}

/* The preprocessing check and pixel buffer that follow from m->image. */
static mmsa_status
init_image_buffers(sentiment_model *m, const char *image_dir, mmsa_error *err)
{
	if (m->preprocess.crop != RESNET_IMAGE_SIZE)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s/config.json: crop must be %d",
							  image_dir, RESNET_IMAGE_SIZE);
	/* the image encoder's own input slot: no private copy of the image */
	m->pixels = resnet_input_slot(m->image, err);
	if (m->pixels == NULL)
		return err->status;
	return MMSA_OK;
}

mmsa_status
sentiment_model_load(const char *dir, int flags, sentiment_model **out,
					 mmsa_error *err)
{
	sentiment_model *m;
	char		path[4096];
	mmsa_status status;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	if ((status = read_model_json(dir, m, err)) != MMSA_OK)
		goto fail;

	/* text encoder */
	if ((status = join(path, sizeof(path), dir, "text/vocab.txt", err)) != MMSA_OK ||
		(status = bert_tokenizer_load(path, &m->tokenizer, err)) != MMSA_OK ||
		(status = join(path, sizeof(path), dir, "text", err)) != MMSA_OK ||
		(status = bert_model_load(path, &m->text, err)) != MMSA_OK ||
		(status = init_text_buffers(m, err)) != MMSA_OK)
		goto fail;

	/* heads */
	if ((status = load_heads(m, dir, err)) != MMSA_OK)
		goto fail;

	/* image encoder */
	if (flags & SENTIMENT_LOAD_IMAGE)
	{
		if ((status = join(path, sizeof(path), dir, "image", err)) != MMSA_OK ||
			(status = resnet_model_load(path, &m->image, err)) != MMSA_OK ||
			(status = image_preprocess_config_from_string(m->image->preprocess_json,
														  &m->preprocess, err)) != MMSA_OK ||
			(status = init_image_buffers(m, path, err)) != MMSA_OK)
			goto fail;
	}
	*out = m;
	return MMSA_OK;

fail:
	sentiment_model_free(m);
	return status;
}

mmsa_status
sentiment_model_load_heads(const char *dir, bert_tokenizer *tokenizer,
						   bert_model *text, resnet_model *image,
						   const image_preprocess_config *preprocess,
						   sentiment_model **out, mmsa_error *err)
{
	sentiment_model *m;
	char		path[4096];
	mmsa_status status;

	*out = NULL;
	if (tokenizer == NULL || text == NULL || (image != NULL && preprocess == NULL))
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "sentiment_model_load_heads needs a tokenizer, a text encoder and, "
							  "with an image encoder, its preprocessing");
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	m->borrowed_encoders = 1;
	m->tokenizer = tokenizer;
	m->text = text;
	m->image = image;
	if ((status = read_model_json(dir, m, err)) != MMSA_OK ||
		(status = init_text_buffers(m, err)) != MMSA_OK ||
		(status = load_heads(m, dir, err)) != MMSA_OK)
		goto fail;
	if (image != NULL)
	{
		m->preprocess = *preprocess;
		if ((status = join(path, sizeof(path), dir, "image", err)) != MMSA_OK ||
			(status = init_image_buffers(m, path, err)) != MMSA_OK)
			goto fail;
	}
	*out = m;
	return MMSA_OK;

fail:
	sentiment_model_free(m);
	return status;
}

void
sentiment_model_free(sentiment_model *m)
{
	if (m == NULL)
		return;
	if (!m->borrowed_encoders)
	{
		bert_tokenizer_free(m->tokenizer);
		bert_model_free(m->text);
		resnet_model_free(m->image);
	}
	image_workspace_free(&m->workspace);
	for (int k = 0; k < FUSION_N_KINDS; k++)
		fusion_free(m->heads[k]);
	free(m->ids);
	free(m->mask);
	free(m);
}

mmsa_status
sentiment_text_alloc(const sentiment_model *m, sentiment_text *t, mmsa_error *err)
{
	t->T = 0;
	t->H_T = malloc(sizeof(float) * m->max_len * m->hidden);
	t->F_T = malloc(sizeof(float) * m->hidden);
	if (t->H_T == NULL || t->F_T == NULL)
	{
		sentiment_text_free(t);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	return MMSA_OK;
}

void
sentiment_text_free(sentiment_text *t)
{
	free(t->H_T);
	free(t->F_T);
	t->H_T = t->F_T = NULL;
}

mmsa_status
sentiment_image_alloc(sentiment_image *im, mmsa_error *err)
{
	im->H_I = malloc(sizeof(float) * RESNET_TOKENS * RESNET_FEATURES);
	im->F_I = malloc(sizeof(float) * RESNET_FEATURES);
	if (im->H_I == NULL || im->F_I == NULL)
	{
		sentiment_image_free(im);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	return MMSA_OK;
}

void
sentiment_image_free(sentiment_image *im)
{
	free(im->H_I);
	free(im->F_I);
	im->H_I = im->F_I = NULL;
}

mmsa_status
sentiment_encode_text(sentiment_model *m, const char *text, size_t len,
					  sentiment_text *out, mmsa_error *err)
{
	mmsa_status status;
	int			n;

	status = bert_tokenize(m->tokenizer, text, len, m->max_len, m->ids, &n, err);
	if (status != MMSA_OK)
		return status;
	for (int t = 0; t < n; t++)
		m->mask[t] = 1;
	out->T = n;
	return bert_forward(m->text, m->ids, m->mask, 1, n, out->H_T, out->F_T, err);
}

mmsa_status
sentiment_encode_image(sentiment_model *m, const uint8_t *data, size_t len,
					   const image_decode_options *opt, sentiment_image *out,
					   mmsa_error *err)
{
	mmsa_image	img = {0};
	image_decode_options o;
	mmsa_status status;

	if (m->image == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "the model was loaded without its image encoder");
	if (opt == NULL)
		image_decode_options_init(&o);
	else
		o = *opt;
	status = image_decode(data, len, &o, &img, err);
	if (status == MMSA_OK)
		status = image_preprocess(&img, &m->preprocess, &m->workspace, m->pixels, err);
	image_free(&img);
	if (status == MMSA_OK)
		status = resnet_forward(m->image, m->pixels, 1, out->H_I, out->F_I, NULL, err);
	return status;
}

/* The probabilities of head kind on one post's features. */
static mmsa_status
classify_head(sentiment_model *m, fusion_kind kind, const sentiment_text *text,
			  const sentiment_image *image, float probs[3], mmsa_error *err)
{
	int			uses;
	int			T;
	float		logits[3];
	mmsa_status status;

	uses = fusion_inputs(kind);
	if ((uses & (FUSION_USES_HT | FUSION_USES_FT)) && text == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "the %s model needs the post's text",
							  fusion_kind_name(kind));
	if ((uses & (FUSION_USES_HI | FUSION_USES_FI)) && image == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "the %s model needs the post's image",
							  fusion_kind_name(kind));
	T = text != NULL ? text->T : 1;
	for (int t = 0; t < T; t++)
		m->mask[t] = 1;
	status = fusion_forward(m->heads[kind],
							text ? text->H_T : NULL, text ? m->mask : NULL,
							text ? text->F_T : NULL,
							image ? image->H_I : NULL, image ? image->F_I : NULL,
							1, T, logits, 0, 0, err);
	if (status != MMSA_OK)
		return status;
	sentiment_softmax(logits, probs);
	return MMSA_OK;
}

mmsa_status
sentiment_classify(sentiment_model *m, int kind, const sentiment_text *text,
				   const sentiment_image *image, float probs[3], mmsa_error *err)
{
	float		sum[3] = {0, 0, 0},
				p[3];
	int			n = 0;
	mmsa_status status;

	if (kind < 0 || kind >= SENTIMENT_N_MODELS)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "unknown model kind %d", kind);
	if (kind != SENTIMENT_ENSEMBLE)
		return classify_head(m, (fusion_kind) kind, text, image, probs, err);
	if (m->ensemble_members == 0)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "this model directory has no ensemble");
	/* the mean of the members' probabilities, added in head order */
	for (int k = 0; k < FUSION_N_KINDS; k++)
	{
		if (!(m->ensemble_members & (1u << k)))
			continue;
		if ((status = classify_head(m, (fusion_kind) k, text, image, p, err)) != MMSA_OK)
			return status;
		for (int c = 0; c < 3; c++)
			sum[c] += p[c];
		n++;
	}
	for (int c = 0; c < 3; c++)
		probs[c] = sum[c] / (float) n;
	return MMSA_OK;
}

void
sentiment_softmax(const float logits[3], float probs[3])
{
	float		mx = fmaxf(logits[0], fmaxf(logits[1], logits[2])),
				sum = 0;

	for (int i = 0; i < 3; i++)
		sum += probs[i] = expf(logits[i] - mx);
	for (int i = 0; i < 3; i++)
		probs[i] /= sum;
}

int
sentiment_argmax(const float probs[3])
{
	int			best = 0;

	for (int i = 1; i < 3; i++)
		if (probs[i] > probs[best])
			best = i;
	return best;
}

int
sentiment_decide_biased(const float bias[3], const float probs[3])
{
	float		score[3];

	for (int i = 0; i < 3; i++)
		score[i] = probs[i] > 0 ? logf(probs[i]) + bias[i] : -INFINITY;
	return sentiment_argmax(score);
}

int
sentiment_inputs(const sentiment_model *m, int kind)
{
	int			uses = 0;

	if (kind != SENTIMENT_ENSEMBLE)
		return fusion_inputs((fusion_kind) kind);
	for (int k = 0; k < FUSION_N_KINDS; k++)
		if (m->ensemble_members & (1u << k))
			uses |= fusion_inputs((fusion_kind) k);
	return uses;
}

int
sentiment_decide(const sentiment_model *m, int kind, const float probs[3])
{
	if (kind < 0 || kind >= SENTIMENT_N_MODELS)
		return sentiment_argmax(probs);
	return sentiment_decide_biased(m->bias[kind], probs);
}
