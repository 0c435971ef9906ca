/*
 * train_text.c
 *	  `mmsa train`, stage 1: the text encoder, a BERT trained from scratch
 *	  as a three-way sentiment classifier on labelled tweets.
 *
 * Data: tweets-labelled (92,544) and mvsa-multiple-text (17,023, every
 * split: they are extra data here).  MVSA-Single's own texts are left out
 * on purpose: the heads of stage 2 are trained on MVSA-Single train with
 * the encoder frozen, and an encoder that had seen those posts' labels
 * would give the heads text features that are better on train than on val
 * (they would learn to over-trust the text).  tweeteval-sentiment is never
 * trained on: its val split is watched here and its test split scores the
 * encoder at the end (macro-averaged recall, as TweetEval).
 *
 * Checkpoints: every 200 steps and at each epoch's end, to
 * WORK/text.checkpoint.safetensors; a new run with the same options
 * continues from it with the same batches (the batch plan of an epoch
 * depends on the seed and the epoch only, dropout on the seed and step).
 * A checkpoint made with tweet normalisation is of kind "text+tweet" (or
 * "mlm+tweet"), so that a run with the other setting refuses it instead of
 * mixing the two.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bert_train.h"
#include "cli.h"
#include "csv.h"
#include "metrics.h"
#include "sentiment.h"
#include "text_dataset.h"
#include "train_common.h"
#include "train_stages.h"

#define CHECKPOINT_EVERY 200
#define PROGRESS_EVERY 25
#define CLIP_NORM 1.0f

/* Adds the labelled rows of a posts file (group = NULL: all rows). */
static mmsa_status
add_posts(text_dataset *d, const bert_tokenizer *tok, const char *path,
		  const char *column, const char *group, long limit, int max_len,
		  mmsa_error *err)
{
	mmsa_posts	p = {0};
	mmsa_status status;
	int64_t		n;

	status = posts_load_where(path, column, group, &p, err);
	if (status != MMSA_OK)
		return status;
	n = p.n;
	if (limit > 0 && limit < n)
		n = limit;
	for (int64_t i = 0; i < n && status == MMSA_OK; i++)
	{
		if (p.labels[i] < 0)
			continue;
		status = text_dataset_add(d, tok, &p.texts[i], &p.labels[i], 1, max_len, err);
	}
	posts_free(&p);
	return status;
}

/*
 * Predicted labels (eval mode, no dropout) of the classification head for
 * every text of d, in batches of B sorted by length.
 */
static mmsa_status
predict_labels(bert_train_model *m, const text_dataset *d, int B, int32_t pad_id,
			   int *pred, mmsa_error *err)
{
	text_plan	plan;
	int32_t    *ids = malloc(sizeof(int32_t) * B * m->config.max_position_embeddings);
	int32_t    *mask = malloc(sizeof(int32_t) * B * m->config.max_position_embeddings);
	mmsa_status status;

	if (ids == NULL || mask == NULL)
	{
		free(ids);
		free(mask);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	status = text_dataset_plan(d, B, 1, &plan, err);
	for (int64_t b = 0; status == MMSA_OK && b < plan.n_batches; b++)
	{
		const int64_t *idx = plan.order + plan.batch_start[b];
		int			nb = (int) (plan.batch_start[b + 1] - plan.batch_start[b]);
		int			T = text_dataset_batch(d, idx, nb, pad_id, ids, mask, NULL);
		float		loss;

		status = bert_train_forward(m, ids, NULL, mask, nb, T, 0, 0, err);
		if (status == MMSA_OK)
			status = bert_train_cls_forward(m, NULL, NULL, &loss, err);
		for (int i = 0; status == MMSA_OK && i < nb; i++)
			pred[idx[i]] = sentiment_argmax(m->cls_logits + i * 3);
	}
	text_plan_free(&plan);
	free(ids);
	free(mask);
	return status;
}

/* Metrics of the classification head on d. */
static mmsa_status
score(bert_train_model *m, const text_dataset *d, int32_t pad_id,
	  class_metrics *out, mmsa_error *err)
{
	int		   *pred = malloc(sizeof(int) * d->n);
	int		   *truth = malloc(sizeof(int) * d->n);
	mmsa_status status;

	if (pred == NULL || truth == NULL)
	{
		free(pred);
		free(truth);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	for (int64_t i = 0; i < d->n; i++)
		truth[i] = d->labels[i];
	status = predict_labels(m, d, 64, pad_id, pred, err);
	if (status == MMSA_OK)
		status = metrics_compute(truth, pred, d->n, out, err);
	free(pred);
	free(truth);
	return status;
}

/* The monitors: tweeteval val (macro recall) and MVSA-Single val (acc). */
static mmsa_status
report(bert_train_model *m, const text_dataset *tweeteval,
	   const text_dataset *mvsa_val, int32_t pad_id, const char *when,
	   mmsa_error *err)
{
	class_metrics a,
				b;
	mmsa_status status;

	status = score(m, tweeteval, pad_id, &a, err);
	if (status == MMSA_OK)
		status = score(m, mvsa_val, pad_id, &b, err);
	if (status == MMSA_OK)
	{
		fprintf(stderr, "mmsa train: text encoder %s: tweeteval-sentiment %s macro recall %.2f%% "
				"(acc %.2f%%), mvsa-single val acc %.2f%% (text only, before the heads)\n",
				when, "val", 100 * a.macro_recall,
				100 * a.accuracy, 100 * b.accuracy);
		fflush(stderr);
	}
	return status;
}

/* What one phase of training the encoder does. */
typedef struct text_phase
{
	const char *name;			/* "mlm" or "text" (checkpoint kind) */
	int			mlm;			/* masked-language modelling, else classes */
	const text_dataset *data;
	int			epochs;
	float		lr;
	const char *checkpoint;
	/* monitors, for the classification phase */
	const text_dataset *tweeteval_val;
	const text_dataset *mvsa_val;
} text_phase;

/* The first id that masking may draw as a random replacement: the first
 * vocabulary entry after [MASK] that is not a bracketed special token. */
static int32_t
first_random_id(const bert_tokenizer *tok)
{
	int32_t		id = bert_tokenizer_lookup(tok, "[MASK]", 6);

	for (id = id < 0 ? 0 : id + 1; id < bert_tokenizer_vocab_size(tok); id++)
	{
		const char *t = bert_tokenizer_token(tok, id);

		if (t != NULL && t[0] != '[')
			return id;
	}
	return 0;
}

/*
 * Runs one phase: epochs over ph->data with AdamW (its own optimizer and
 * schedule: warm-up over text_warmup of the steps, then linear decay),
 * gradient clipping, progress lines, checkpoints every CHECKPOINT_EVERY
 * steps and at each epoch's end, resuming from ph->checkpoint.  *trained
 * says whether any step was left to run.
 */
static mmsa_status
run_phase(const train_options *o, const bert_tokenizer *tok, bert_train_model *m,
		  const text_phase *ph, int *trained, mmsa_error *err)
{
	adamw_optimizer *opt = NULL;
	text_plan	plan = {0};
	int			plan_epoch = -1;
	int32_t    *ids = NULL,
			   *mask = NULL,
			   *labels = NULL;
	int32_t		pad_id = bert_tokenizer_pad_id(tok);
	int32_t		mask_id = bert_tokenizer_lookup(tok, "[MASK]", 6);
	int32_t		first_random = first_random_id(tok);
	long		step = 0,
				total,
				per_epoch,
				start_step;
	double		t0;
	double		loss_sum = 0;
	long		loss_n = 0,
				correct = 0,
				seen = 0;
	mmsa_status status = MMSA_OK;
	char		what[64];

	snprintf(what, sizeof(what), "%s step", ph->mlm ? "MLM pre-training" : "text encoder");
	if (ph->mlm && mask_id < 0)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "the vocabulary has no [MASK] token");
	if ((status = bert_train_adamw_create(m, 0.9f, 0.999f, 1e-6f, 0.01f, &opt, err)) != MMSA_OK)
		return status;
	ids = malloc(sizeof(int32_t) * o->text_batch * o->text_max_len);
	mask = malloc(sizeof(int32_t) * o->text_batch * o->text_max_len);
	labels = malloc(sizeof(int32_t) * o->text_batch * o->text_max_len);
	if (ids == NULL || mask == NULL || labels == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
		goto done;
	}
	per_epoch = (ph->data->n + o->text_batch - 1) / o->text_batch;
	total = per_epoch * ph->epochs;
	if (train_exists(ph->checkpoint))
	{
		if ((status = train_checkpoint_load(ph->checkpoint, m->params, opt, &step, ph->name, err)) != MMSA_OK)
			goto done;
		fprintf(stderr, "mmsa train: %s: resuming at step %ld of %ld\n", ph->name, step, total);
	}
	fprintf(stderr, "mmsa train: %s: %d epochs of %ld steps (batch %d), lr %g\n",
			ph->mlm ? "MLM pre-training" : "text encoder", ph->epochs, per_epoch, o->text_batch, ph->lr);
	start_step = step;
	*trained = step < total;
	t0 = cli_now_ms();

	for (; step < total; step++)
	{
		int			epoch = (int) (step / per_epoch);
		long		b = step % per_epoch;
		int64_t		nb;
		int			T;
		float		loss,
					lr;
		uint64_t	step_seed = o->seed * 7919ULL + (uint64_t) step + (ph->mlm ? 0x9E3779B9ULL : 0);

		if (epoch != plan_epoch)
		{
			text_plan_free(&plan);
			if ((status = text_dataset_plan(ph->data, o->text_batch,
											o->seed * 1000003ULL + epoch + (ph->mlm ? 77 : 0),
											&plan, err)) != MMSA_OK)
				goto done;
			plan_epoch = epoch;
		}
		nb = plan.batch_start[b + 1] - plan.batch_start[b];
		T = text_dataset_batch(ph->data, plan.order + plan.batch_start[b], (int) nb, pad_id,
							   ids, mask, ph->mlm ? NULL : labels);
		bert_train_zero_grad(m);
		if (ph->mlm)
			mlm_mask(ids, mask, labels, (int) nb, T, 0.15f, mask_id, bert_tokenizer_cls_id(tok),
					 bert_tokenizer_sep_id(tok), first_random, bert_tokenizer_vocab_size(tok),
					 step_seed);
		if ((status = bert_train_forward(m, ids, NULL, mask, (int) nb, T, 1, step_seed, err)) != MMSA_OK)
			goto done;
		if (ph->mlm)
		{
			if ((status = bert_train_mlm_forward(m, labels, &loss, err)) != MMSA_OK)
				goto done;
			bert_train_mlm_backward(m, 1.0f);
		}
		else
		{
			if ((status = bert_train_cls_forward(m, labels, NULL, &loss, err)) != MMSA_OK)
				goto done;
			bert_train_cls_backward(m, 1.0f);
			for (int i = 0; i < nb; i++)
				correct += sentiment_argmax(m->cls_logits + i * 3) == labels[i];
			seen += nb;
		}
		if ((status = bert_train_backward(m, err)) != MMSA_OK)
			goto done;
		clip_grad_norm(m->grads, m->n_params, CLIP_NORM);
		lr = lr_linear_warmup_decay(step, (long) (o->text_warmup * total), total, ph->lr);
		adamw_step_parallel(opt, m->params, m->grads, lr, m->pool);

		if (!isfinite(loss))
		{
			status = mmsa_set_error(err, MMSA_ERR_INVALID, "%s: loss is not finite at step %ld",
									ph->name, step);
			goto done;
		}
		loss_sum += loss;
		loss_n++;
		if ((step + 1) % PROGRESS_EVERY == 0 || step + 1 == total)
		{
			char		extra[160];

			if (ph->mlm)
				snprintf(extra, sizeof(extra), "epoch %d, MLM loss %.4f, lr %.2e",
						 epoch + 1, loss_sum / loss_n, lr);
			else
				snprintf(extra, sizeof(extra), "epoch %d, loss %.4f, train acc %.2f%%, lr %.2e",
						 epoch + 1, loss_sum / loss_n, 100.0 * correct / (seen ? seen : 1), lr);
			train_progress(what, step + 1, total, t0, start_step, extra);
			loss_sum = 0;
			loss_n = 0;
			correct = 0;
			seen = 0;
		}
		if ((step + 1) % per_epoch == 0 || (step + 1) % CHECKPOINT_EVERY == 0)
		{
			if ((status = train_checkpoint_save(ph->checkpoint, m->params, opt, step + 1, ph->name,
												err)) != MMSA_OK)
				goto done;
		}
		if (!ph->mlm && (step + 1) % per_epoch == 0)
		{
			char		when[64];

			snprintf(when, sizeof(when), "after epoch %d", epoch + 1);
			if ((status = report(m, ph->tweeteval_val, ph->mvsa_val, pad_id, when, err)) != MMSA_OK)
				goto done;
		}
	}

done:
	text_plan_free(&plan);
	free(ids);
	free(mask);
	free(labels);
	adamw_free(opt);
	return status;
}

/* Reads one text per line (tweets-unlabelled/texts.txt) into d, unlabelled. */
static mmsa_status
add_lines(text_dataset *d, const bert_tokenizer *tok, const char *path, long limit,
		  int max_len, mmsa_error *err)
{
	uint8_t    *data;
	size_t		len;
	mmsa_status status;
	char	   *p,
			   *end;
	long		n = 0;

	if ((status = cli_read_file(path, (size_t) 1 << 31, &data, &len, err)) != MMSA_OK)
		return status;
	p = (char *) data;
	end = p + len;
	while (status == MMSA_OK && p < end && (limit <= 0 || n < limit))
	{
		char	   *nl = memchr(p, '\n', end - p);
		const char *text;

		if (nl == NULL)
			nl = end;
		*nl = '\0';				/* cli_read_file leaves a NUL after the end */
		text = p;
		if (nl > p)
		{
			status = text_dataset_add(d, tok, &text, NULL, 1, max_len, err);
			n++;
		}
		p = nl + 1;
	}
	free(data);
	return status;
}

/*
 * The encoder's text/tokenizer_config.json: written when it was trained
 * with tweet normalisation, so that inference normalises as training did;
 * removed otherwise (a model without it tokenizes as BertTokenizer).
 */
static mmsa_status
write_tokenizer_config(const char *text_dir, int tweet_normalization, mmsa_error *err)
{
	char		path[4096];
	mmsa_status st;

	if (tweet_normalization)
		return bert_tokenizer_write_config(text_dir, 1, err);
	if ((st = train_path(path, sizeof(path), text_dir, BERT_TOKENIZER_CONFIG, err)) != MMSA_OK)
		return st;
	if (unlink(path) != 0 && errno != ENOENT)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not remove %s", path);
	return MMSA_OK;
}

int
train_text_stage(const train_options *o, const bert_tokenizer *tok)
{
	text_dataset train = {0},
				unlabelled = {0},
				tweeteval_val = {0},
				tweeteval_test = {0},
				mvsa_val = {0};
	bert_train_model *m = NULL;
	mmsa_pool  *pool = NULL;
	bert_train_options bo = bert_train_options_default();
	bert_config cfg;
	mmsa_error	err;
	char		path[4096],
				ckpt[4096],
				mlm_ckpt[4096],
				text_dir[4096];
	int32_t		pad_id = bert_tokenizer_pad_id(tok);
	text_phase	ph;
	int			trained = 0;
	int			rc = 1;

	if (train_path(text_dir, sizeof(text_dir), o->out_dir, "text", &err) != MMSA_OK ||
		train_path(ckpt, sizeof(ckpt), o->work_dir, "text.checkpoint.safetensors", &err) != MMSA_OK ||
		train_path(mlm_ckpt, sizeof(mlm_ckpt), o->work_dir, "mlm.checkpoint.safetensors", &err) != MMSA_OK)
		goto fail;

	/* data */
	fprintf(stderr, "mmsa train: text encoder: tokenizing the labelled tweets\n");
	if (train_path(path, sizeof(path), o->data_dir, "tweets-labelled/posts.csv", &err) != MMSA_OK ||
		add_posts(&train, tok, path, "source", NULL, o->limit, o->text_max_len, &err) != MMSA_OK ||
		train_path(path, sizeof(path), o->data_dir, "mvsa-multiple-text/posts.csv", &err) != MMSA_OK ||
		add_posts(&train, tok, path, "split", NULL, o->limit, o->text_max_len, &err) != MMSA_OK ||
		train_path(path, sizeof(path), o->data_dir, "tweeteval-sentiment/posts.csv", &err) != MMSA_OK ||
		add_posts(&tweeteval_val, tok, path, "split", "val", o->limit, o->text_max_len, &err) != MMSA_OK ||
		add_posts(&tweeteval_test, tok, path, "split", "test", o->limit, o->text_max_len, &err) != MMSA_OK ||
		train_path(path, sizeof(path), o->data_dir, "mvsa-single/posts.csv", &err) != MMSA_OK ||
		add_posts(&mvsa_val, tok, path, "split", "val", o->mvsa_limit, o->text_max_len, &err) != MMSA_OK)
		goto fail;
	fprintf(stderr, "mmsa train: text encoder: %lld training texts (%lld tokens), "
			"%lld tweeteval val, %lld tweeteval test, %lld mvsa-single val\n",
			(long long) train.n, (long long) train.n_ids, (long long) tweeteval_val.n,
			(long long) tweeteval_test.n, (long long) mvsa_val.n);

	/* the model */
	cfg.vocab_size = bert_tokenizer_vocab_size(tok);
	cfg.hidden_size = o->text_hidden;
	cfg.num_hidden_layers = o->text_layers;
	cfg.num_attention_heads = o->text_heads;
	cfg.intermediate_size = 4 * o->text_hidden;
	cfg.max_position_embeddings = o->text_max_len;
	cfg.type_vocab_size = 2;
	cfg.layer_norm_eps = 1e-12f;
	bo.num_labels = 3;
	bo.pad_token_id = pad_id;
	if (bert_train_create(&cfg, &bo, o->seed, &m, &err) != MMSA_OK)
		goto fail;
	/* the products, attention, elementwise layers and AdamW on --threads threads */
	if (o->threads > 1)
	{
		if (mmsa_pool_create(o->threads, &pool, &err) != MMSA_OK)
			goto fail;
		bert_train_set_pool(m, pool);
	}
	fprintf(stderr, "mmsa train: text encoder: BERT L=%d C=%d heads=%d FFN=%d max_len=%d, "
			"%ld parameters\n", cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
			cfg.intermediate_size, cfg.max_position_embeddings, m->n_params);

	/*
	 * Optional phase 1: masked-language-model pre-training on the
	 * unlabelled tweets and the labelled ones' texts (skipped once the
	 * classification phase has a checkpoint).
	 */
	if (o->mlm_epochs > 0 && !train_exists(ckpt))
	{
		if (train_path(path, sizeof(path), o->data_dir, "tweets-unlabelled/texts.txt", &err) != MMSA_OK ||
			add_lines(&unlabelled, tok, path, o->limit, o->text_max_len, &err) != MMSA_OK)
			goto fail;
		for (int64_t i = 0; i < train.n; i++)
		{
			/* the labelled texts too, without their labels */
			if (text_dataset_add_ids(&unlabelled, train.ids + train.offsets[i],
									 text_dataset_length(&train, i), -1, &err) != MMSA_OK)
				goto fail;
		}
		fprintf(stderr, "mmsa train: MLM pre-training on %lld texts (%lld tokens)\n",
				(long long) unlabelled.n, (long long) unlabelled.n_ids);
		memset(&ph, 0, sizeof(ph));
		ph.name = bert_tokenizer_tweet_normalization(tok) ? "mlm+tweet" : "mlm";
		ph.mlm = 1;
		ph.data = &unlabelled;
		ph.epochs = o->mlm_epochs;
		ph.lr = o->text_lr;
		ph.checkpoint = mlm_ckpt;
		if (run_phase(o, tok, m, &ph, &trained, &err) != MMSA_OK)
			goto fail;
		text_dataset_free(&unlabelled);
	}

	/* phase 2: three-way sentiment classification */
	memset(&ph, 0, sizeof(ph));
	ph.name = bert_tokenizer_tweet_normalization(tok) ? "text+tweet" : "text";
	ph.data = &train;
	ph.epochs = o->text_epochs;
	ph.lr = o->text_lr;
	ph.checkpoint = ckpt;
	ph.tweeteval_val = &tweeteval_val;
	ph.mvsa_val = &mvsa_val;
	if (run_phase(o, tok, m, &ph, &trained, &err) != MMSA_OK)
		goto fail;

	/*
	 * A finished run leaves OUT/text as it is: rewriting it would change its
	 * time stamp, which tells the heads stage that the encoder changed.
	 */
	if (!trained && train_path(path, sizeof(path), text_dir, "model.safetensors", &err) == MMSA_OK &&
		train_exists(path))
	{
		fprintf(stderr, "mmsa train: text encoder: up to date (%s)\n", text_dir);
		rc = 0;
		goto done;
	}

	/* the external check: TweetEval's test split, scored as TweetEval does */
	{
		class_metrics tm;

		if (score(m, &tweeteval_test, pad_id, &tm, &err) != MMSA_OK)
			goto fail;
		fprintf(stderr, "mmsa train: text encoder: tweeteval-sentiment test: macro recall %.2f%% "
				"(TweetEval's score), accuracy %.2f%%, macro F1 %.2f%%, %lld texts\n",
				100 * tm.macro_recall, 100 * tm.accuracy, 100 * tm.macro_f1,
				(long long) tweeteval_test.n);
	}
	if (train_mkdir(text_dir, &err) != MMSA_OK ||
		bert_train_save_as(m, text_dir, ST_F16, &err) != MMSA_OK ||
		train_path(path, sizeof(path), text_dir, "vocab.txt", &err) != MMSA_OK ||
		train_copy_file(o->vocab, path, &err) != MMSA_OK ||
		write_tokenizer_config(text_dir, bert_tokenizer_tweet_normalization(tok), &err) != MMSA_OK)
		goto fail;
	fprintf(stderr, "mmsa train: text encoder written to %s (float16)\n", text_dir);
	rc = 0;
	goto done;

fail:
	fprintf(stderr, "mmsa train: text encoder: %s: %s\n", mmsa_status_name(err.status), err.message);
done:
	text_dataset_free(&train);
	text_dataset_free(&unlabelled);
	text_dataset_free(&tweeteval_val);
	text_dataset_free(&tweeteval_test);
	text_dataset_free(&mvsa_val);
	bert_train_free(m);
	mmsa_pool_free(pool);
	return rc;
}
