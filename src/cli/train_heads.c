/*
 * train_heads.c
 *	  `mmsa train`, stage 2: the paper's seven heads (fusion.h) on
 *	  MVSA-Single train, with both encoders frozen.
 *
 * Text features come from the encoder of stage 1 as saved (OUT/text, the
 * float16 weights that ship), image features from the ResNet-50 cache.
 * Every head trains for --head-epochs epochs of --head-batch posts with
 * AdamW (warm-up over the first 10% of the steps, then linear decay),
 * dropout 0.1 as the paper; after each epoch it is scored on val and the
 * best epoch is kept (val is the selection split, as the paper's protocol
 * has it).  Then the decision stage (below) chooses each model's decision
 * rule and the ensemble by 5-fold cross-validation on train, and the model
 * with the best val accuracy under its rule, of the seven heads and the
 * ensemble, becomes the default in OUT/model.json.
 *
 * The heads train two at a time (one per core, --threads), each on its
 * own thread (their products on sgemm.c, on that thread alone), so a
 * head's numbers do not depend on the thread count.
 *
 * Resuming: a finished head leaves WORK/head-<name>.json (its kept epoch
 * and the text encoder file it was trained on); a later run skips it.
 */
#include <jansson.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bert.h"
#include "cli.h"
#include "csv.h"
#include "decision.h"
#include "feature_cache.h"
#include "fusion.h"
#include "metrics.h"
#include "optim.h"
#include "resnet.h"
#include "safetensors.h"
#include "sentiment.h"
#include "text_dataset.h"
#include "tokenizer.h"
#include "train_common.h"
#include "train_stages.h"

#define ENCODE_BATCH 32
#define EVAL_BATCH 64
#define CLIP_NORM 1.0f
#define TOKEN_VALUES ((size_t) RESNET_TOKENS * RESNET_FEATURES)

/* Frozen features of every post, and its split and label. */
typedef struct head_data
{
	int64_t		n;
	int			C;
	int			NH;				/* the text encoder's attention heads */
	int			max_T;
	int		   *T;				/* (n) text tokens */
	int64_t    *h_off;			/* (n) offset of the post's H_T rows */
	float	   *H_T;			/* (sum T, C) */
	float	   *F_T;			/* (n, C) */
	int64_t    *row;			/* (n) row in the feature cache */
	int		   *label;			/* (n) */
	int64_t    *train,
			   *val;			/* indices of the splits */
	int64_t		n_train,
				n_val;
	feature_cache cache;
} head_data;

/* Batch buffers, sized for max B and max_T. */
typedef struct head_batch
{
	float	   *H_T,
			   *F_T,
			   *H_I,
			   *F_I,
			   *logits,
			   *dlogits;
	int32_t    *mask;
	int		   *labels;
} head_batch;

static void
head_data_free(head_data *d)
{
	free(d->T);
	free(d->h_off);
	free(d->H_T);
	free(d->F_T);
	free(d->row);
	free(d->label);
	free(d->train);
	free(d->val);
	if (d->cache.rows.n > 0)
		feature_cache_close(&d->cache);
}

/* Encodes every post's text with the saved encoder and maps its image row. */
static mmsa_status
head_data_load(const train_options *o, const char *posts_csv, const char *features,
			   head_data *d, mmsa_error *err)
{
	mmsa_posts	p = {0};
	bert_model *bert = NULL;
	bert_tokenizer *tok = NULL;
	text_dataset texts = {0};
	text_plan	plan = {0};
	char		dir[4096];
	int32_t    *ids = NULL,
			   *mask = NULL;
	float	   *hidden = NULL,
			   *pooled = NULL;
	int64_t		total_rows = 0;
	mmsa_status status;

	memset(d, 0, sizeof(*d));
	if ((status = posts_load(posts_csv, NULL, &p, err)) != MMSA_OK)
		return status;
	if (p.numeric_ids == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s: ids must be integers", posts_csv);
		goto done;
	}
	if ((status = feature_cache_open(features, o->image_model, &d->cache, err)) != MMSA_OK)
		goto done;
	/* the encoder's own vocabulary and tokenizer_config.json, as inference reads them */
	if ((status = train_path(dir, sizeof(dir), o->out_dir, "text", err)) != MMSA_OK ||
		(status = bert_model_load(dir, &bert, err)) != MMSA_OK ||
		(status = train_path(dir, sizeof(dir), o->out_dir, "text/vocab.txt", err)) != MMSA_OK ||
		(status = bert_tokenizer_load(dir, &tok, err)) != MMSA_OK)
		goto done;
	d->n = p.n;
	d->C = bert->config.hidden_size;
	d->NH = bert->config.num_attention_heads;
	d->max_T = bert->config.max_position_embeddings;
	d->T = calloc(p.n, sizeof(int));
	d->h_off = calloc(p.n, sizeof(int64_t));
	d->F_T = malloc(sizeof(float) * p.n * d->C);
	d->row = malloc(sizeof(int64_t) * p.n);
	d->label = malloc(sizeof(int) * p.n);
	d->train = malloc(sizeof(int64_t) * p.n);
	d->val = malloc(sizeof(int64_t) * p.n);
	ids = malloc(sizeof(int32_t) * ENCODE_BATCH * d->max_T);
	mask = malloc(sizeof(int32_t) * ENCODE_BATCH * d->max_T);
	hidden = malloc(sizeof(float) * ENCODE_BATCH * d->max_T * d->C);
	pooled = malloc(sizeof(float) * ENCODE_BATCH * d->C);
	if (!d->T || !d->h_off || !d->F_T || !d->row || !d->label || !d->train || !d->val ||
		!ids || !mask || !hidden || !pooled)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (int64_t i = 0; i < p.n; i++)
	{
		d->row[i] = feature_cache_find(&d->cache, p.numeric_ids[i]);
		if (d->row[i] < 0)
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT, "post %lld has no image features in %s",
									(long long) p.numeric_ids[i], features);
			goto done;
		}
		d->label[i] = p.labels[i];
		if (strcmp(p.groups[i], "train") == 0 && p.labels[i] >= 0)
			d->train[d->n_train++] = i;
		else if (strcmp(p.groups[i], "val") == 0 && p.labels[i] >= 0)
			d->val[d->n_val++] = i;
	}
	if (d->n_train == 0 || d->n_val == 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s has no labelled train or val posts", posts_csv);
		goto done;
	}
	if ((status = text_dataset_add(&texts, tok, p.texts, NULL, p.n, d->max_T, err)) != MMSA_OK)
		goto done;
	for (int64_t i = 0; i < p.n; i++)
	{
		d->T[i] = text_dataset_length(&texts, i);
		d->h_off[i] = total_rows;
		total_rows += d->T[i];
	}
	d->H_T = malloc(sizeof(float) * total_rows * d->C);
	if (d->H_T == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((status = text_dataset_plan(&texts, ENCODE_BATCH, 1, &plan, err)) != MMSA_OK)
		goto done;
	for (int64_t b = 0; b < plan.n_batches; b++)
	{
		const int64_t *idx = plan.order + plan.batch_start[b];
		int			B = (int) (plan.batch_start[b + 1] - plan.batch_start[b]);
		int			T = text_dataset_batch(&texts, idx, B, bert_tokenizer_pad_id(tok), ids, mask, NULL);

		if ((status = bert_forward(bert, ids, mask, B, T, hidden, pooled, err)) != MMSA_OK)
			goto done;
		for (int i = 0; i < B; i++)
		{
			memcpy(d->H_T + d->h_off[idx[i]] * d->C, hidden + (size_t) i * T * d->C,
				   sizeof(float) * d->T[idx[i]] * d->C);
			memcpy(d->F_T + idx[i] * d->C, pooled + (size_t) i * d->C, sizeof(float) * d->C);
		}
	}
	fprintf(stderr, "mmsa train: heads: %lld posts encoded (%lld train, %lld val)\n",
			(long long) p.n, (long long) d->n_train, (long long) d->n_val);

done:
	text_plan_free(&plan);
	text_dataset_free(&texts);
	bert_model_free(bert);
	bert_tokenizer_free(tok);
	posts_free(&p);
	free(ids);
	free(mask);
	free(hidden);
	free(pooled);
	return status;
}

static void
head_batch_free(head_batch *b)
{
	free(b->H_T);
	free(b->F_T);
	free(b->H_I);
	free(b->F_I);
	free(b->logits);
	free(b->dlogits);
	free(b->mask);
	free(b->labels);
}

static mmsa_status
head_batch_alloc(head_batch *b, const head_data *d, int B, mmsa_error *err)
{
	memset(b, 0, sizeof(*b));
	b->H_T = malloc(sizeof(float) * B * d->max_T * d->C);
	b->F_T = malloc(sizeof(float) * B * d->C);
	b->H_I = malloc(sizeof(float) * B * TOKEN_VALUES);
	b->F_I = malloc(sizeof(float) * B * RESNET_FEATURES);
	b->logits = malloc(sizeof(float) * B * 3);
	b->dlogits = malloc(sizeof(float) * B * 3);
	b->mask = malloc(sizeof(int32_t) * B * d->max_T);
	b->labels = malloc(sizeof(int) * B);
	if (!b->H_T || !b->F_T || !b->H_I || !b->F_I || !b->logits || !b->dlogits || !b->mask || !b->labels)
	{
		head_batch_free(b);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	return MMSA_OK;
}

/*
 * Gathers posts idx[0..B) into b (text padded to the longest, image
 * tokens from float16); only the inputs the kind reads.  Returns T.
 */
static int
gather(const head_data *d, const int64_t *idx, int B, int uses, head_batch *b)
{
	int			T = 1;

	for (int i = 0; i < B; i++)
		if (d->T[idx[i]] > T)
			T = d->T[idx[i]];
	for (int i = 0; i < B; i++)
	{
		int64_t		p = idx[i];
		int64_t		row = d->row[p];

		b->labels[i] = d->label[p];
		if (uses & FUSION_USES_HT)
		{
			memcpy(b->H_T + (size_t) i * T * d->C, d->H_T + d->h_off[p] * d->C,
				   sizeof(float) * d->T[p] * d->C);
			memset(b->H_T + ((size_t) i * T + d->T[p]) * d->C, 0,
				   sizeof(float) * (T - d->T[p]) * d->C);
			for (int t = 0; t < T; t++)
				b->mask[i * T + t] = t < d->T[p];
		}
		if (uses & FUSION_USES_FT)
			memcpy(b->F_T + (size_t) i * d->C, d->F_T + p * d->C, sizeof(float) * d->C);
		if (uses & FUSION_USES_HI)
		{
			const uint16_t *src = d->cache.rows.tokens + row * TOKEN_VALUES;

			for (size_t j = 0; j < TOKEN_VALUES; j++)
				b->H_I[i * TOKEN_VALUES + j] = st_f16_to_f32(src[j]);
		}
		if (uses & FUSION_USES_FI)
			memcpy(b->F_I + (size_t) i * RESNET_FEATURES, d->cache.rows.pooled + row * RESNET_FEATURES,
				   sizeof(float) * RESNET_FEATURES);
	}
	return T;
}

/*
 * The plain-argmax labels (pred, may be NULL) and probabilities (probs,
 * (n, 3), may be NULL) of the posts idx[0..n) in eval mode.
 */
static mmsa_status
predict(fusion_model *fm, const head_data *d, const int64_t *idx, int64_t n,
		head_batch *b, int *pred, float *probs, mmsa_error *err)
{
	int			uses = fusion_inputs(fusion_get_config(fm)->kind);

	for (int64_t s = 0; s < n; s += EVAL_BATCH)
	{
		int			B = (int) (n - s < EVAL_BATCH ? n - s : EVAL_BATCH);
		int			T = gather(d, idx + s, B, uses, b);
		mmsa_status status;

		status = fusion_forward(fm, b->H_T, b->mask, b->F_T, b->H_I, b->F_I, B, T, b->logits,
								0, 0, err);
		if (status != MMSA_OK)
			return status;
		for (int i = 0; i < B; i++)
		{
			if (pred != NULL)
				pred[s + i] = sentiment_argmax(b->logits + 3 * i);
			if (probs != NULL)
				sentiment_softmax(b->logits + 3 * i, probs + 3 * (s + i));
		}
	}
	return MMSA_OK;
}

/* Mean cross-entropy of logits (B,3) and its gradient into dlogits. */
static float
cross_entropy(const float *logits, const int *labels, int B, float *dlogits)
{
	double		loss = 0;

	for (int i = 0; i < B; i++)
	{
		const float *l = logits + 3 * i;
		float		mx = fmaxf(l[0], fmaxf(l[1], l[2]));
		float		e[3],
					sum = 0;

		for (int k = 0; k < 3; k++)
			sum += e[k] = expf(l[k] - mx);
		for (int k = 0; k < 3; k++)
			dlogits[3 * i + k] = (e[k] / sum - (k == labels[i])) / B;
		loss -= log(e[labels[i]] / sum);
	}
	return (float) (loss / B);
}

/* The text encoder file's size and time, to tell whether heads are stale. */
static void
text_stamp(const train_options *o, char *buf, size_t size)
{
	char		path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/text/model.safetensors", o->out_dir);
	if (stat(path, &st) != 0)
		snprintf(buf, size, "none");
	else
		snprintf(buf, size, "%lld:%lld.%09ld", (long long) st.st_size, (long long) st.st_mtim.tv_sec,
				 st.st_mtim.tv_nsec);
}

/*
 * A freshly initialised head of kind, with its AdamW optimizer.  salt is 0
 * for the heads that ship and distinct for each cross-validation fold, so
 * that every model draws its own initial weights, batch order and dropout.
 */
static mmsa_status
head_create(const train_options *o, fusion_kind kind, const head_data *d, uint64_t salt,
			fusion_model **fm, adamw_optimizer **opt, mmsa_error *err)
{
	fusion_config cfg = fusion_default_config(kind);
	adamw_segment *segs;
	int			n_tensors;
	mmsa_status status;

	*fm = NULL;
	*opt = NULL;
	cfg.hidden = d->C;
	cfg.heads = d->NH;
	cfg.ffn = 4 * d->C;
	if ((status = fusion_create(&cfg, o->seed * 31 + (uint64_t) kind + salt, fm, err)) != MMSA_OK)
		return status;
	n_tensors = fusion_num_tensors(*fm);
	segs = calloc(n_tensors, sizeof(adamw_segment));
	if (segs == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n_tensors; i++)
	{
		const fusion_tensor *t = fusion_tensor_at(*fm, i);

		segs[i].offset = (long) t->offset;
		segs[i].n = (long) t->numel;
		segs[i].decay = t->ndim == 2;	/* not biases, not LayerNorm */
	}
	status = adamw_create((long) fusion_num_params(*fm), segs, n_tensors, 0.9f, 0.999f, 1e-8f, 0.01f,
						  opt, err);
	free(segs);
	return status;
}

/*
 * One epoch of training on the posts pool[0..n_pool), shuffled into order
 * (n_pool) by a seed of epoch and salt; *step counts the optimizer steps
 * of a run of total steps (the learning-rate schedule).  The mean training
 * loss into *loss.
 */
static mmsa_status
run_epoch(const train_options *o, fusion_kind kind, fusion_model *fm, adamw_optimizer *opt,
		  const head_data *d, const int64_t *pool, int64_t n_pool, int64_t *order, int epoch,
		  uint64_t salt, long *step, long total, head_batch *b, double *loss, mmsa_error *err)
{
	long		per_epoch = (long) ((n_pool + o->head_batch - 1) / o->head_batch);
	int			uses = fusion_inputs(kind);
	double		loss_sum = 0;
	mmsa_status status;

	for (int64_t i = 0; i < n_pool; i++)
		order[i] = pool[i];
	seeded_shuffle(order, n_pool, o->seed * 1000003ULL + (uint64_t) kind * 7919 + epoch + salt);
	for (long s = 0; s < per_epoch; s++, (*step)++)
	{
		int64_t		first = s * o->head_batch;
		int			B = (int) (n_pool - first < o->head_batch ? n_pool - first : o->head_batch);
		int			T = gather(d, order + first, B, uses, b);
		float		lr = lr_linear_warmup_decay(*step, total / 10, total, o->head_lr);

		fusion_zero_grad(fm);
		if ((status = fusion_forward(fm, b->H_T, b->mask, b->F_T, b->H_I, b->F_I, B, T, b->logits, 1,
									 o->seed * 104729ULL + (uint64_t) kind * 1299709ULL +
									 (uint64_t) *step + salt, err)) != MMSA_OK)
			return status;
		loss_sum += cross_entropy(b->logits, b->labels, B, b->dlogits);
		if ((status = fusion_backward(fm, b->dlogits, NULL, NULL, err)) != MMSA_OK)
			return status;
		clip_grad_norm(fusion_grads(fm), (long) fusion_num_params(fm), CLIP_NORM);
		adamw_step(opt, fusion_params(fm), fusion_grads(fm), lr);
	}
	*loss = loss_sum / per_epoch;
	return MMSA_OK;
}

/*
 * Trains one head, keeps its best val epoch, saves it; metrics on val into
 * *val_metrics.
 */
static int
train_one(const train_options *o, fusion_kind kind, const head_data *d,
		  class_metrics *val_metrics)
{
	fusion_model *fm = NULL;
	adamw_optimizer *opt = NULL;
	head_batch	b;
	int64_t    *order = NULL;
	float	   *best = NULL;
	int		   *pred = NULL,
			   *truth = NULL;
	double		best_acc = -1;
	int			best_epoch = 0;
	long		per_epoch = (long) ((d->n_train + o->head_batch - 1) / o->head_batch);
	long		total = per_epoch * o->head_epochs;
	long		step = 0;
	double		t0 = cli_now_ms();
	char		path[4096],
				name[64];
	mmsa_error	err;
	int			rc = 1;

	memset(&b, 0, sizeof(b));
	if (head_create(o, kind, d, 0, &fm, &opt, &err) != MMSA_OK ||
		head_batch_alloc(&b, d, EVAL_BATCH > o->head_batch ? EVAL_BATCH : o->head_batch, &err) != MMSA_OK)
		goto fail;
	order = malloc(sizeof(int64_t) * d->n_train);
	best = malloc(sizeof(float) * fusion_num_params(fm));
	pred = malloc(sizeof(int) * d->n_val);
	truth = malloc(sizeof(int) * d->n_val);
	if (!order || !best || !pred || !truth)
	{
		mmsa_set_error(&err, MMSA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int64_t i = 0; i < d->n_val; i++)
		truth[i] = d->label[d->val[i]];

	for (int epoch = 0; epoch < o->head_epochs; epoch++)
	{
		double		loss;
		class_metrics vm;

		if (run_epoch(o, kind, fm, opt, d, d->train, d->n_train, order, epoch, 0, &step, total, &b,
					  &loss, &err) != MMSA_OK)
			goto fail;
		if (predict(fm, d, d->val, d->n_val, &b, pred, NULL, &err) != MMSA_OK ||
			metrics_compute(truth, pred, d->n_val, &vm, &err) != MMSA_OK)
			goto fail;
		if (vm.accuracy > best_acc)
		{
			best_acc = vm.accuracy;
			best_epoch = epoch + 1;
			*val_metrics = vm;
			memcpy(best, fusion_params(fm), sizeof(float) * fusion_num_params(fm));
		}
		{
			char		extra[160];

			snprintf(extra, sizeof(extra), "%s epoch %d: train loss %.4f, val acc %.2f%%, macro F1 %.2f%%",
					 fusion_kind_name(kind), epoch + 1, loss, 100 * vm.accuracy,
					 100 * vm.macro_f1);
			train_progress("heads: epoch", epoch + 1, o->head_epochs, t0, 0, extra);
		}
	}

	/* keep the best epoch */
	memcpy(fusion_params(fm), best, sizeof(float) * fusion_num_params(fm));
	snprintf(name, sizeof(name), "heads/%s.safetensors", fusion_kind_name(kind));
	if (train_path(path, sizeof(path), o->out_dir, name, &err) != MMSA_OK ||
		fusion_save(fm, path, &err) != MMSA_OK)
		goto fail;
	fprintf(stderr, "mmsa train: heads: %s kept at epoch %d (val acc %.2f%%), written to %s\n",
			fusion_kind_name(kind), best_epoch, 100 * best_acc, path);

	/* the resume marker */
	{
		char		stamp[128];
		json_t	   *j;

		text_stamp(o, stamp, sizeof(stamp));
		snprintf(name, sizeof(name), "head-%s.json", fusion_kind_name(kind));
		j = json_pack("{s:s,s:i}", "text_model", stamp, "epoch", best_epoch);
		if (j == NULL || train_path(path, sizeof(path), o->work_dir, name, &err) != MMSA_OK ||
			json_dump_file(j, path, JSON_INDENT(2)) != 0)
		{
			json_decref(j);
			mmsa_set_error(&err, MMSA_ERR_IO, "could not write %s", path);
			goto fail;
		}
		json_decref(j);
	}
	rc = 0;
	goto done;

fail:
	fprintf(stderr, "mmsa train: heads: %s: %s: %s\n", fusion_kind_name(kind),
			mmsa_status_name(err.status), err.message);
done:
	head_batch_free(&b);
	adamw_free(opt);
	fusion_free(fm);
	free(order);
	free(best);
	free(pred);
	free(truth);
	return rc;
}

/*
 * Whether a head finished earlier on the current text encoder; if so its
 * val metrics are recomputed from the saved file.
 */
static int
head_done(const train_options *o, fusion_kind kind, const head_data *d,
		  class_metrics *val_metrics)
{
	char		path[4096],
				name[64],
				stamp[128];
	json_t	   *j;
	const char *was;
	int			same;
	fusion_model *fm = NULL;
	head_batch	b;
	int		   *pred,
			   *truth;
	mmsa_error	err;
	int			ok = 0;

	snprintf(name, sizeof(name), "head-%s.json", fusion_kind_name(kind));
	if (train_path(path, sizeof(path), o->work_dir, name, &err) != MMSA_OK)
		return 0;
	j = json_load_file(path, 0, NULL);
	if (j == NULL)
		return 0;
	text_stamp(o, stamp, sizeof(stamp));
	was = json_string_value(json_object_get(j, "text_model"));
	same = was != NULL && strcmp(was, stamp) == 0;
	json_decref(j);
	snprintf(name, sizeof(name), "heads/%s.safetensors", fusion_kind_name(kind));
	if (!same || train_path(path, sizeof(path), o->out_dir, name, &err) != MMSA_OK ||
		fusion_load(path, &fm, &err) != MMSA_OK)
		return 0;
	pred = malloc(sizeof(int) * d->n_val);
	truth = malloc(sizeof(int) * d->n_val);
	if (pred && truth && head_batch_alloc(&b, d, EVAL_BATCH, &err) == MMSA_OK)
	{
		for (int64_t i = 0; i < d->n_val; i++)
			truth[i] = d->label[d->val[i]];
		ok = predict(fm, d, d->val, d->n_val, &b, pred, NULL, &err) == MMSA_OK &&
			metrics_compute(truth, pred, d->n_val, val_metrics, &err) == MMSA_OK;
		head_batch_free(&b);
	}
	free(pred);
	free(truth);
	fusion_free(fm);
	if (ok)
		fprintf(stderr, "mmsa train: heads: %s already trained (val acc %.2f%%)\n",
				fusion_kind_name(kind), 100 * val_metrics->accuracy);
	return ok;
}

/*
 * The heads train in parallel, one per thread (o->threads of them), each
 * with its products on its own thread: two heads on two cores run faster
 * than one head on both, and a head's result never depends on how many
 * threads ran.
 */
typedef struct heads_queue
{
	pthread_mutex_t lock;
	int			next;			/* into heads_order */
	int			failed;
	int			missing;		/* a head neither trained nor asked for */
	const train_options *o;
	const head_data *d;
	class_metrics *vm;			/* (FUSION_N_KINDS) */
} heads_queue;

/* The costliest first, so that the workers finish close together. */
static const fusion_kind heads_order[FUSION_N_KINDS] = {
	FUSION_HSTEC, FUSION_CMAC, FUSION_OTE, FUSION_NATIVECOMBINE, FUSION_NATIVECAT,
	FUSION_RESNET, FUSION_BERT
};

static void *
heads_worker(void *arg)
{
	heads_queue *q = arg;

	for (;;)
	{
		int			k;

		pthread_mutex_lock(&q->lock);
		k = q->failed || q->next >= FUSION_N_KINDS ? -1 : (int) heads_order[q->next++];
		pthread_mutex_unlock(&q->lock);
		if (k < 0)
			return NULL;
		if (q->o->heads_mask != 0 && !(q->o->heads_mask & (1 << k)))
		{
			/* not asked for: it must have been trained before */
			if (head_done(q->o, (fusion_kind) k, q->d, &q->vm[k]))
				continue;
			fprintf(stderr, "mmsa train: heads: %s is not trained yet and not in --heads\n",
					fusion_kind_name((fusion_kind) k));
			pthread_mutex_lock(&q->lock);
			q->missing = 1;
			pthread_mutex_unlock(&q->lock);
			continue;
		}
		if (q->o->heads_mask == 0 && head_done(q->o, (fusion_kind) k, q->d, &q->vm[k]))
			continue;
		if (train_one(q->o, (fusion_kind) k, q->d, &q->vm[k]) != 0)
		{
			pthread_mutex_lock(&q->lock);
			q->failed = 1;
			pthread_mutex_unlock(&q->lock);
		}
	}
}

/*
 * ---- The decision stage: out-of-fold probabilities, rules, ensemble ----
 *
 * Val chooses the heads' epochs and the default model, so the decision
 * rules and the ensemble are chosen on train alone: train is cut into
 * DECISION_FOLDS folds (a seeded shuffle, post j of it in fold j % 5);
 * for each head and fold a fresh head (its own seeds) trains on the other
 * folds for as many epochs as the shipped head was kept at, on the same
 * learning-rate schedule, and gives its probabilities on the fold.  Those
 * out-of-fold probabilities of every train post choose each model's
 * biases (decision.h, at most DECISION_MAX_ACC_DROP of accuracy given up)
 * and the ensemble's members: the five fusion heads or all seven, the one
 * with the larger out-of-fold macro F1 under its own rule (the five on
 * equal figures).  Val then scores the eight models under their rules,
 * and the best val accuracy names the default.
 *
 * Resuming: each (head, fold) leaves WORK/oof-<name>-<fold>.json.
 */
#define DECISION_FOLDS 5
#define DECISION_MAX_ACC_DROP 0.01
#define FOLD_SALT 0x9E3779B97F4A7C15ULL

/* The epoch a trained head was kept at (WORK/head-<name>.json), or -1. */
static int
head_kept_epoch(const train_options *o, fusion_kind kind)
{
	char		path[4096],
				name[64];
	json_t	   *j;
	int			epoch = -1;
	mmsa_error	err;

	snprintf(name, sizeof(name), "head-%s.json", fusion_kind_name(kind));
	if (train_path(path, sizeof(path), o->work_dir, name, &err) != MMSA_OK ||
		(j = json_load_file(path, 0, NULL)) == NULL)
		return -1;
	if (json_is_integer(json_object_get(j, "epoch")))
		epoch = (int) json_integer_value(json_object_get(j, "epoch"));
	json_decref(j);
	return epoch;
}

typedef struct oof_queue
{
	pthread_mutex_t lock;
	int			next;			/* job = heads_order index * folds + fold */
	int			failed;
	int			folds;
	const train_options *o;
	const head_data *d;
	const int  *fold;			/* (n_train) fold of d->train[i] */
	const int  *epochs;			/* (FUSION_N_KINDS) */
	float	   *oof;			/* (FUSION_N_KINDS, n_train, 3) */
	long		done,
				resumed;
	double		t0;
} oof_queue;

/*
 * The out-of-fold probabilities of head kind on fold f into
 * q->oof[kind][i] for the train posts i of the fold: read back from
 * WORK/oof-<name>-<f>.json when it was made with the same text encoder,
 * seed and epochs, else trained and written there.
 */
static mmsa_status
oof_one(oof_queue *q, fusion_kind kind, int f, int *resumed, mmsa_error *err)
{
	const train_options *o = q->o;
	const head_data *d = q->d;
	float	   *dst = q->oof + (size_t) kind * d->n_train * 3;
	int64_t    *pool = malloc(sizeof(int64_t) * d->n_train),
			   *held = malloc(sizeof(int64_t) * d->n_train),
			   *order = malloc(sizeof(int64_t) * d->n_train);
	int64_t    *at = malloc(sizeof(int64_t) * d->n_train);
	float	   *probs = malloc(sizeof(float) * 3 * d->n_train);
	int64_t		n_pool = 0,
				n_held = 0;
	fusion_model *fm = NULL;
	adamw_optimizer *opt = NULL;
	head_batch	b;
	char		path[4096],
				name[64],
				stamp[128];
	json_t	   *j = NULL;
	mmsa_status status = MMSA_OK;

	memset(&b, 0, sizeof(b));
	*resumed = 0;
	if (!pool || !held || !order || !at || !probs)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (int64_t i = 0; i < d->n_train; i++)
	{
		if (q->fold[i] == f)
		{
			at[n_held] = i;
			held[n_held++] = d->train[i];
		}
		else
			pool[n_pool++] = d->train[i];
	}
	text_stamp(o, stamp, sizeof(stamp));
	snprintf(name, sizeof(name), "oof-%s-%d.json", fusion_kind_name(kind), f);
	if ((status = train_path(path, sizeof(path), o->work_dir, name, err)) != MMSA_OK)
		goto done;

	/* resume */
	if ((j = json_load_file(path, 0, NULL)) != NULL)
	{
		json_t	   *p = json_object_get(j, "probs");
		const char *was = json_string_value(json_object_get(j, "text_model"));

		if (was != NULL && strcmp(was, stamp) == 0 &&
			json_integer_value(json_object_get(j, "epochs")) == q->epochs[kind] &&
			json_is_string(json_object_get(j, "seed")) &&
			strtoull(json_string_value(json_object_get(j, "seed")), NULL, 10) == o->seed &&
			json_is_array(p) && json_array_size(p) == (size_t) (3 * n_held))
		{
			for (int64_t i = 0; i < n_held; i++)
				for (int c = 0; c < 3; c++)
					dst[3 * at[i] + c] = (float) json_number_value(json_array_get(p, 3 * i + c));
			*resumed = 1;
			goto done;
		}
		json_decref(j);
		j = NULL;
	}

	/* train on the other folds as the shipped head was trained */
	{
		long		per_epoch = (long) ((n_pool + o->head_batch - 1) / o->head_batch);
		long		total = per_epoch * o->head_epochs;
		long		step = 0;
		uint64_t	salt = (uint64_t) (f + 1) * FOLD_SALT;

		if ((status = head_create(o, kind, d, salt, &fm, &opt, err)) != MMSA_OK ||
			(status = head_batch_alloc(&b, d, EVAL_BATCH > o->head_batch ? EVAL_BATCH : o->head_batch,
									   err)) != MMSA_OK)
			goto done;
		for (int epoch = 0; epoch < q->epochs[kind]; epoch++)
		{
			double		loss;

			if ((status = run_epoch(o, kind, fm, opt, d, pool, n_pool, order, epoch, salt, &step,
									total, &b, &loss, err)) != MMSA_OK)
				goto done;
		}
		if ((status = predict(fm, d, held, n_held, &b, NULL, probs, err)) != MMSA_OK)
			goto done;
	}
	for (int64_t i = 0; i < n_held; i++)
		for (int c = 0; c < 3; c++)
			dst[3 * at[i] + c] = probs[3 * i + c];
	{
		json_t	   *p = json_array();
		char		seed[32];

		snprintf(seed, sizeof(seed), "%llu", (unsigned long long) o->seed);
		for (int64_t i = 0; p && i < 3 * n_held; i++)
			json_array_append_new(p, json_real(probs[i]));
		j = json_pack("{s:s,s:s,s:i,s:i,s:o}", "text_model", stamp, "seed", seed,
					  "epochs", q->epochs[kind], "fold", f, "probs", p);
		if (j == NULL || json_dump_file(j, path, JSON_COMPACT | JSON_REAL_PRECISION(9)) != 0)
			status = mmsa_set_error(err, MMSA_ERR_IO, "could not write %s", path);
	}

done:
	json_decref(j);
	head_batch_free(&b);
	adamw_free(opt);
	fusion_free(fm);
	free(pool);
	free(held);
	free(order);
	free(at);
	free(probs);
	return status;
}

static void *
oof_worker(void *arg)
{
	oof_queue  *q = arg;
	long		jobs = (long) FUSION_N_KINDS * q->folds;

	for (;;)
	{
		int			job,
					resumed;
		mmsa_error	err;
		fusion_kind kind;

		pthread_mutex_lock(&q->lock);
		job = q->failed || q->next >= jobs ? -1 : q->next++;
		pthread_mutex_unlock(&q->lock);
		if (job < 0)
			return NULL;
		kind = heads_order[job / q->folds];
		if (oof_one(q, kind, job % q->folds, &resumed, &err) != MMSA_OK)
		{
			fprintf(stderr, "mmsa train: decision: %s fold %d: %s: %s\n", fusion_kind_name(kind),
					job % q->folds, mmsa_status_name(err.status), err.message);
			pthread_mutex_lock(&q->lock);
			q->failed = 1;
			pthread_mutex_unlock(&q->lock);
			continue;
		}
		pthread_mutex_lock(&q->lock);
		q->done++;
		q->resumed += resumed;
		if (!resumed)
		{
			char		extra[96];

			snprintf(extra, sizeof(extra), "%s fold %d", fusion_kind_name(kind), job % q->folds);
			train_progress("decision: out-of-fold models", q->done, jobs, q->t0, 0, extra);
		}
		pthread_mutex_unlock(&q->lock);
	}
}

/* The mean of the members' probabilities (n, 3), added in head order as sentiment_classify does. */
static void
ensemble_mean(const float *per_head, int64_t n, unsigned members, float *out)
{
	for (int64_t i = 0; i < n; i++)
	{
		float		sum[3] = {0, 0, 0};
		int			count = 0;

		for (int k = 0; k < FUSION_N_KINDS; k++)
		{
			if (!(members & (1u << k)))
				continue;
			for (int c = 0; c < 3; c++)
				sum[c] += per_head[((size_t) k * n + i) * 3 + c];
			count++;
		}
		for (int c = 0; c < 3; c++)
			out[3 * i + c] = sum[c] / (float) count;
	}
}

/* What the decision stage found, for model.json and the report. */
typedef struct decision_result
{
	float		bias[SENTIMENT_N_MODELS][3];
	unsigned	members;
	class_metrics oof_before[SENTIMENT_N_MODELS],
				oof_after[SENTIMENT_N_MODELS],
				val_before[SENTIMENT_N_MODELS],
				val_after[SENTIMENT_N_MODELS];
} decision_result;

/*
 * The decision stage (above): the out-of-fold probabilities, every
 * model's rule and the ensemble from them, and the eight models' val
 * figures with and without their rules.
 */
static int
decision_stage(const train_options *o, const head_data *d, decision_result *r)
{
	const unsigned candidates[2] = {
		(1u << FUSION_N_KINDS) - 1 - (1u << FUSION_BERT) - (1u << FUSION_RESNET),
		(1u << FUSION_N_KINDS) - 1
	};
	int			folds = d->n_train < DECISION_FOLDS ? (int) d->n_train : DECISION_FOLDS;
	int			epochs[FUSION_N_KINDS];
	int64_t    *shuffled = malloc(sizeof(int64_t) * d->n_train);
	int		   *fold = malloc(sizeof(int) * d->n_train);
	int		   *truth = malloc(sizeof(int) * (d->n_train > d->n_val ? d->n_train : d->n_val));
	int		   *pred = malloc(sizeof(int) * d->n_val);
	float	   *oof = malloc(sizeof(float) * FUSION_N_KINDS * d->n_train * 3);
	float	   *val = malloc(sizeof(float) * FUSION_N_KINDS * d->n_val * 3);
	float	   *mean = malloc(sizeof(float) * 3 * (d->n_train > d->n_val ? d->n_train : d->n_val));
	const float zero[3] = {0, 0, 0};
	mmsa_error	err;
	int			rc = 1;

	memset(r, 0, sizeof(*r));
	if (!shuffled || !fold || !truth || !pred || !oof || !val || !mean)
	{
		mmsa_set_error(&err, MMSA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (folds < 2)
	{
		mmsa_set_error(&err, MMSA_ERR_INVALID, "too few train posts for cross-validation");
		goto fail;
	}
	for (int k = 0; k < FUSION_N_KINDS; k++)
		if ((epochs[k] = head_kept_epoch(o, (fusion_kind) k)) < 1)
		{
			mmsa_set_error(&err, MMSA_ERR_IO, "%s has no kept epoch in %s/head-%s.json",
						   fusion_kind_name((fusion_kind) k), o->work_dir,
						   fusion_kind_name((fusion_kind) k));
			goto fail;
		}

	/* the folds: a seeded shuffle of train, post j of it in fold j % folds */
	for (int64_t i = 0; i < d->n_train; i++)
		shuffled[i] = i;
	seeded_shuffle(shuffled, d->n_train, o->seed * 7ULL + 5);
	for (int64_t j = 0; j < d->n_train; j++)
		fold[shuffled[j]] = (int) (j % folds);

	/* the out-of-fold probabilities, (head, fold) jobs over the workers */
	{
		oof_queue	q;
		pthread_t	workers[16];
		int			n_workers = o->threads < 16 ? o->threads : 16;
		int			started = 0;

		memset(&q, 0, sizeof(q));
		pthread_mutex_init(&q.lock, NULL);
		q.folds = folds;
		q.o = o;
		q.d = d;
		q.fold = fold;
		q.epochs = epochs;
		q.oof = oof;
		q.t0 = cli_now_ms();
		fprintf(stderr, "mmsa train: decision: %d folds of train, %d heads each\n", folds,
				FUSION_N_KINDS);
		for (int i = 0; i < n_workers; i++)
			if (pthread_create(&workers[started], NULL, oof_worker, &q) == 0)
				started++;
		if (started == 0)
			oof_worker(&q);
		for (int i = 0; i < started; i++)
			pthread_join(workers[i], NULL);
		pthread_mutex_destroy(&q.lock);
		if (q.failed)
			goto quiet_fail;
		if (q.resumed > 0)
			fprintf(stderr, "mmsa train: decision: %ld of %ld out-of-fold results read back from %s\n",
					q.resumed, q.done, o->work_dir);
	}

	/* the rules of the heads, then the ensemble's members and rule */
	for (int64_t i = 0; i < d->n_train; i++)
		truth[i] = d->label[d->train[i]];
	for (int k = 0; k < FUSION_N_KINDS; k++)
		if (decision_choose_bias(oof + (size_t) k * d->n_train * 3, truth, d->n_train,
								 DECISION_MAX_ACC_DROP, r->bias[k], &r->oof_before[k],
								 &r->oof_after[k], &err) != MMSA_OK)
			goto fail;
	for (int c = 0; c < 2; c++)
	{
		float		bias[3];
		class_metrics before,
					after;

		ensemble_mean(oof, d->n_train, candidates[c], mean);
		if (decision_choose_bias(mean, truth, d->n_train, DECISION_MAX_ACC_DROP, bias, &before,
								 &after, &err) != MMSA_OK)
			goto fail;
		fprintf(stderr, "mmsa train: decision: ensemble of %s heads: out-of-fold macro F1 %.2f%% "
				"(acc %.2f%%) under its rule\n", c == 0 ? "the five fusion" : "all seven",
				100 * after.macro_f1, 100 * after.accuracy);
		if (c == 0 || after.macro_f1 > r->oof_after[SENTIMENT_ENSEMBLE].macro_f1 + 1e-12)
		{
			r->members = candidates[c];
			memcpy(r->bias[SENTIMENT_ENSEMBLE], bias, sizeof(bias));
			r->oof_before[SENTIMENT_ENSEMBLE] = before;
			r->oof_after[SENTIMENT_ENSEMBLE] = after;
		}
	}

	/* val: the shipped heads' probabilities, then the eight models' figures */
	for (int64_t i = 0; i < d->n_val; i++)
		truth[i] = d->label[d->val[i]];
	{
		head_batch	b;

		if (head_batch_alloc(&b, d, EVAL_BATCH, &err) != MMSA_OK)
			goto fail;
		for (int k = 0; k < FUSION_N_KINDS; k++)
		{
			char		path[4096],
						name[64];
			fusion_model *fm = NULL;
			mmsa_status status;

			snprintf(name, sizeof(name), "heads/%s.safetensors", fusion_kind_name((fusion_kind) k));
			status = train_path(path, sizeof(path), o->out_dir, name, &err);
			if (status == MMSA_OK)
				status = fusion_load(path, &fm, &err);
			if (status == MMSA_OK)
				status = predict(fm, d, d->val, d->n_val, &b, NULL,
								 val + (size_t) k * d->n_val * 3, &err);
			fusion_free(fm);
			if (status != MMSA_OK)
			{
				head_batch_free(&b);
				goto fail;
			}
		}
		head_batch_free(&b);
	}
	for (int k = 0; k < SENTIMENT_N_MODELS; k++)
	{
		const float *p = val + (size_t) k * d->n_val * 3;

		if (k == SENTIMENT_ENSEMBLE)
		{
			ensemble_mean(val, d->n_val, r->members, mean);
			p = mean;
		}
		decision_apply(p, d->n_val, zero, pred);
		if (metrics_compute(truth, pred, d->n_val, &r->val_before[k], &err) != MMSA_OK)
			goto fail;
		decision_apply(p, d->n_val, r->bias[k], pred);
		if (metrics_compute(truth, pred, d->n_val, &r->val_after[k], &err) != MMSA_OK)
			goto fail;
	}
	rc = 0;
	goto done;

fail:
	fprintf(stderr, "mmsa train: decision: %s: %s\n", mmsa_status_name(err.status), err.message);
quiet_fail:
done:
	free(shuffled);
	free(fold);
	free(truth);
	free(pred);
	free(oof);
	free(val);
	free(mean);
	return rc;
}

/* The rules and their effect, out of fold on train and on val. */
static void
decision_report(const decision_result *r)
{
	printf("Decision rules (biases on log p; out-of-fold on train, %d folds; val with the shipped heads):\n",
		   DECISION_FOLDS);
	printf("| Model         | b_neg | b_neu | OOF acc/%%     | OOF macro F1/%% | val acc/%%     | val macro F1/%% | val neutral recall/%% |\n");
	printf("|---------------|------:|------:|--------------:|---------------:|--------------:|---------------:|---------------------:|\n");
	for (int k = 0; k < SENTIMENT_N_MODELS; k++)
		printf("| %-13s | %5.2f | %5.2f | %5.2f -> %5.2f | %5.2f -> %5.2f  | %5.2f -> %5.2f | %5.2f -> %5.2f  | %5.2f -> %5.2f        |\n",
			   sentiment_kind_name(k), r->bias[k][0], r->bias[k][1],
			   100 * r->oof_before[k].accuracy, 100 * r->oof_after[k].accuracy,
			   100 * r->oof_before[k].macro_f1, 100 * r->oof_after[k].macro_f1,
			   100 * r->val_before[k].accuracy, 100 * r->val_after[k].accuracy,
			   100 * r->val_before[k].macro_f1, 100 * r->val_after[k].macro_f1,
			   100 * r->val_before[k].recall[1], 100 * r->val_after[k].recall[1]);
	printf("ensemble members:");
	for (int k = 0; k < FUSION_N_KINDS; k++)
		if (r->members & (1u << k))
			printf(" %s", fusion_kind_name((fusion_kind) k));
	printf(" (mean of probabilities)\n");
}

int
train_heads_stage(const train_options *o, const char *posts_csv, const char *features)
{
	head_data	d;
	class_metrics vm[FUSION_N_KINDS];
	decision_result r;
	const char *names[SENTIMENT_N_MODELS];
	char		dir[4096],
				path[4096];
	mmsa_error	err;
	int			best = 0;
	json_t	   *model = NULL,
			   *acc = NULL,
			   *bias = NULL,
			   *members = NULL;

	if (train_path(dir, sizeof(dir), o->out_dir, "heads", &err) != MMSA_OK ||
		train_mkdir(dir, &err) != MMSA_OK ||
		head_data_load(o, posts_csv, features, &d, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa train: heads: %s: %s\n", mmsa_status_name(err.status), err.message);
		return 1;
	}
	{
		heads_queue q;
		pthread_t	workers[FUSION_N_KINDS];
		int			n_workers = o->threads < FUSION_N_KINDS ? o->threads : FUSION_N_KINDS;
		int			started = 0;
		int			rc;

		memset(&q, 0, sizeof(q));
		pthread_mutex_init(&q.lock, NULL);
		q.o = o;
		q.d = &d;
		q.vm = vm;
		for (int i = 0; i < n_workers; i++)
			if (pthread_create(&workers[started], NULL, heads_worker, &q) == 0)
				started++;
		if (started == 0)
			heads_worker(&q);
		for (int i = 0; i < started; i++)
			pthread_join(workers[i], NULL);
		pthread_mutex_destroy(&q.lock);
		rc = q.failed || q.missing ? 1 : decision_stage(o, &d, &r);
		head_data_free(&d);
		if (rc != 0)
			return 1;
	}
	for (int k = 0; k < SENTIMENT_N_MODELS; k++)
		names[k] = sentiment_kind_name(k);

	/* the default: the best val accuracy under the rules (the first of equals) */
	for (int k = 1; k < SENTIMENT_N_MODELS; k++)
		if (r.val_after[k].accuracy > r.val_after[best].accuracy)
			best = k;
	model = json_object();
	acc = json_object();
	bias = json_object();
	members = json_array();
	for (int k = 0; model && acc && bias && k < SENTIMENT_N_MODELS; k++)
	{
		json_object_set_new(acc, names[k], json_real(round(r.val_after[k].accuracy * 10000) / 10000));
		json_object_set_new(bias, names[k], json_pack("[f,f,f]", (double) r.bias[k][0],
													  (double) r.bias[k][1], (double) r.bias[k][2]));
	}
	for (int k = 0; members && k < FUSION_N_KINDS; k++)
		if (r.members & (1u << k))
			json_array_append_new(members, json_string(names[k]));
	if (model == NULL || acc == NULL || bias == NULL || members == NULL ||
		json_object_set_new(model, "format", json_string(SENTIMENT_FORMAT)) != 0 ||
		json_object_set_new(model, "default_fusion", json_string(names[best])) != 0 ||
		json_object_set_new(model, "val_accuracy", acc) != 0 ||
		json_object_set_new(model, "decision_bias", bias) != 0 ||
		json_object_set_new(model, "ensemble", json_pack("{s:s,s:o}", "combine", "mean",
														 "members", members)) != 0 ||
		json_object_set_new(model, "labels", json_pack("[s,s,s]", "negative", "neutral", "positive")) != 0 ||
		train_path(path, sizeof(path), o->out_dir, "model.json", &err) != MMSA_OK ||
		json_dump_file(model, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4)) != 0)
	{
		json_decref(model);
		fprintf(stderr, "mmsa train: could not write %s/model.json\n", o->out_dir);
		return 1;
	}
	json_decref(model);
	{
		char	   *table = metrics_format_table(names, r.val_after, SENTIMENT_N_MODELS);

		printf("Models on val under their decision rules (features from the cache; `mmsa eval` "
			   "recomputes them from the images):\n%s", table ? table : "");
		free(table);
	}
	decision_report(&r);
	fprintf(stderr, "mmsa train: default model: %s (val acc %.2f%%), written to %s\n",
			names[best], 100 * r.val_after[best].accuracy, path);
	return 0;
}
