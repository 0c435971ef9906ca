/*
 * cmd_train.c
 *	  `mmsa train`: reproduces the default model from the shared data, with
 *	  fixed seeds, progress lines with an ETA, and checkpoints.
 *
 *	  mmsa train [--data DIR] [--out DIR] [--work DIR] [--image-model DIR]
 *	             [--vocab FILE] [--seed N] [--threads N] [--only text|heads]
 *	             [--smoke] [hyper-parameter options, see usage]
 *
 * Stages (each resumes from its checkpoint when run again):
 *	 0. the ResNet-50 feature cache of MVSA-Single's images (`mmsa
 *	    features`), WORK/mvsa-single-features.safetensors;
 *	 1. the text encoder (train_text.c), OUT/text;
 *	 2. the seven heads (train_heads.c), OUT/heads/<name>.safetensors and
 *	    OUT/model.json.
 * --smoke trains a tiny encoder on a few hundred texts and the heads on 48
 * posts per split: a test that the whole pipeline runs, for CI.
 */
#include <cblas.h>
#include <limits.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "fusion.h"
#include "tokenizer.h"
#include "train_common.h"
#include "train_stages.h"

static void
train_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa train [--data DIR] [--out DIR] [--work DIR] [--image-model DIR] [--vocab FILE]\n"
			"                  [--seed N] [--threads N] [--only text|heads] [--smoke]\n"
			"                  [--text-layers N] [--text-hidden N] [--text-heads N] [--text-max-len N]\n"
			"                  [--text-epochs N] [--text-batch N] [--text-lr X] [--mlm-epochs N] [--limit N]\n"
			"                  [--text-normalization tweet|none]\n"
			"                  [--head-epochs N] [--head-batch N] [--head-lr X] [--heads LIST] [--mvsa-limit N]\n"
			"Defaults: --data ../shared/data --out weights --work OUT/cache --image-model OUT/image\n"
			"--vocab OUT/text/vocab.txt --seed 20261129; text encoder L=4 C=256 heads=4 max-len 128,\n"
			"3 epochs of batch 64 at lr 4e-4 (no MLM pre-training: --mlm-epochs 0); heads 20 epochs of\n"
			"batch 16 at lr 5e-4.  --heads cmac,ote retrains just those heads (the others must exist).\n"
			"--limit N keeps N texts per source, --mvsa-limit N posts per split.\n"
			"--text-normalization tweet trains the encoder on texts whose user names and links are\n"
			"replaced by @user and http, as TweetEval's are, and marks the model so that inference\n"
			"does the same (text/tokenizer_config.json); default: as the vocabulary's directory says\n"
			"(tweet for the shipped model).\n");
}

/*
 * Writes the first `limit` posts of each split of MVSA-Single (for
 * --mvsa-limit) to path, as CSV.
 */
static int
write_posts_subset(const char *src, const char *path, long limit, mmsa_error *err)
{
	mmsa_posts	p = {0};
	FILE	   *f;
	long		taken[3] = {0};
	const char *splits[3] = {"train", "val", "test"};
	static const char *names[] = {"negative", "neutral", "positive"};

	if (posts_load(src, NULL, &p, err) != MMSA_OK)
		return 1;
	f = fopen(path, "w");
	if (f == NULL)
	{
		posts_free(&p);
		mmsa_set_error(err, MMSA_ERR_IO, "could not write %s", path);
		return 1;
	}
	fprintf(f, "id,split,label,text\n");
	for (int64_t i = 0; i < p.n; i++)
	{
		int			s;

		for (s = 0; s < 3; s++)
			if (strcmp(p.groups[i], splits[s]) == 0)
				break;
		if (s == 3 || taken[s] >= limit)
			continue;
		taken[s]++;
		fprintf(f, "%s,%s,%s,\"", p.ids[i], splits[s], p.labels[i] >= 0 ? names[p.labels[i]] : "");
		for (const char *c = p.texts[i]; *c; c++)
		{
			if (*c == '"')
				fputc('"', f);
			fputc(*c, f);
		}
		fprintf(f, "\"\n");
	}
	posts_free(&p);
	if (fclose(f) != 0)
	{
		mmsa_set_error(err, MMSA_ERR_IO, "could not write %s", path);
		return 1;
	}
	return 0;
}

int
cmd_train(int argc, char **argv)
{
	train_options o;
	const char *only = NULL;
	char		out_default_work[4096],
				image_default[4096],
				vocab_default[4096],
				posts[4096],
				images[4096],
				features[4096],
				threads_arg[16];
	bert_tokenizer *tok = NULL;
	mmsa_error	err;
	int			rc;

	memset(&o, 0, sizeof(o));
	o.data_dir = "../shared/data";
	o.out_dir = "weights";
	o.seed = 20261129;
	o.threads = 2;
	o.text_layers = 4;
	o.text_hidden = 256;
	o.text_heads = 4;
	o.text_max_len = 128;
	o.text_epochs = 3;
	o.text_batch = 64;
	o.text_lr = 4e-4f;
	o.text_warmup = 0.1f;
	o.text_normalization = -1;
	o.head_epochs = 20;
	o.head_batch = 16;
	o.head_lr = 5e-4f;

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		int			v = i + 1 < argc;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			train_usage(stdout);
			return 0;
		}
		else if (strcmp(a, "--smoke") == 0)
		{
			o.smoke = 1;
			o.text_layers = 1;
			o.text_hidden = 32;
			o.text_heads = 2;
			o.text_max_len = 32;
			o.text_epochs = 1;
			o.text_batch = 16;
			o.text_lr = 1e-3f;
			o.limit = 200;
			o.head_epochs = 2;
			o.mvsa_limit = 48;
		}
		else if (strcmp(a, "--data") == 0 && v)
			o.data_dir = argv[++i];
		else if (strcmp(a, "--out") == 0 && v)
			o.out_dir = argv[++i];
		else if (strcmp(a, "--work") == 0 && v)
			o.work_dir = argv[++i];
		else if (strcmp(a, "--image-model") == 0 && v)
			o.image_model = argv[++i];
		else if (strcmp(a, "--vocab") == 0 && v)
			o.vocab = argv[++i];
		else if (strcmp(a, "--seed") == 0 && v)
			o.seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(a, "--threads") == 0 && v)
			o.threads = atoi(argv[++i]);
		else if (strcmp(a, "--only") == 0 && v)
			only = argv[++i];
		else if (strcmp(a, "--text-layers") == 0 && v)
			o.text_layers = atoi(argv[++i]);
		else if (strcmp(a, "--text-hidden") == 0 && v)
			o.text_hidden = atoi(argv[++i]);
		else if (strcmp(a, "--text-heads") == 0 && v)
			o.text_heads = atoi(argv[++i]);
		else if (strcmp(a, "--text-max-len") == 0 && v)
			o.text_max_len = atoi(argv[++i]);
		else if (strcmp(a, "--text-epochs") == 0 && v)
			o.text_epochs = atoi(argv[++i]);
		else if (strcmp(a, "--mlm-epochs") == 0 && v)
			o.mlm_epochs = atoi(argv[++i]);
		else if (strcmp(a, "--text-batch") == 0 && v)
			o.text_batch = atoi(argv[++i]);
		else if (strcmp(a, "--text-lr") == 0 && v)
			o.text_lr = strtof(argv[++i], NULL);
		else if (strcmp(a, "--limit") == 0 && v)
			o.limit = atol(argv[++i]);
		else if (strcmp(a, "--head-epochs") == 0 && v)
			o.head_epochs = atoi(argv[++i]);
		else if (strcmp(a, "--head-batch") == 0 && v)
			o.head_batch = atoi(argv[++i]);
		else if (strcmp(a, "--head-lr") == 0 && v)
			o.head_lr = strtof(argv[++i], NULL);
		else if (strcmp(a, "--heads") == 0 && v)
		{
			/* a comma-separated list of heads to (re)train */
			char		list[256];

			snprintf(list, sizeof(list), "%s", argv[++i]);
			for (char *t = strtok(list, ","); t != NULL; t = strtok(NULL, ","))
			{
				int			k = fusion_kind_from_name(t);

				if (k < 0)
				{
					fprintf(stderr, "mmsa train: --heads: unknown model \"%s\" (bert, resnet, nativecat, "
							"nativecombine, cmac, hstec, ote)\n", t);
					return 2;
				}
				o.heads_mask |= 1 << k;
			}
		}
		else if (strcmp(a, "--mvsa-limit") == 0 && v)
			o.mvsa_limit = atol(argv[++i]);
		else if (strcmp(a, "--text-normalization") == 0 && v)
		{
			const char *n = argv[++i];

			if (strcmp(n, "tweet") != 0 && strcmp(n, "none") != 0)
			{
				fprintf(stderr, "mmsa train: --text-normalization must be tweet or none\n");
				return 2;
			}
			o.text_normalization = strcmp(n, "tweet") == 0;
		}
		else
		{
			fprintf(stderr, "mmsa train: unknown or incomplete option \"%s\"\n", a);
			train_usage(stderr);
			return 2;
		}
	}
	if (only != NULL && strcmp(only, "text") != 0 && strcmp(only, "heads") != 0)
	{
		fprintf(stderr, "mmsa train: --only must be text or heads\n");
		return 2;
	}
	if (o.text_layers < 1 || o.text_hidden < 8 || o.text_heads < 1 ||
		o.text_hidden % o.text_heads != 0 || o.text_max_len < 8 || o.text_max_len > 512 ||
		o.text_epochs < 1 || o.text_batch < 1 || o.text_batch > 1024 || !(o.text_lr > 0) ||
		o.head_epochs < 1 || o.head_batch < 1 || o.head_batch > 1024 || !(o.head_lr > 0) ||
		o.mlm_epochs < 0 || o.limit < 0 || o.mvsa_limit < 0 || o.threads < 1 || o.threads > 64)
	{
		fprintf(stderr, "mmsa train: a hyper-parameter is out of range (see --help)\n");
		return 2;
	}
	if (o.work_dir == NULL)
	{
		if (train_path(out_default_work, sizeof(out_default_work), o.out_dir, "cache", &err) != MMSA_OK)
			goto fail;
		o.work_dir = out_default_work;
	}
	if (o.image_model == NULL)
	{
		if (train_path(image_default, sizeof(image_default), o.out_dir, "image", &err) != MMSA_OK)
			goto fail;
		o.image_model = image_default;
	}
	if (o.vocab == NULL)
	{
		if (train_path(vocab_default, sizeof(vocab_default), o.out_dir, "text/vocab.txt", &err) != MMSA_OK)
			goto fail;
		o.vocab = vocab_default;
	}
	openblas_set_num_threads(o.threads);
	if (train_mkdir(o.work_dir, &err) != MMSA_OK || train_mkdir(o.out_dir, &err) != MMSA_OK)
		goto fail;

	/* stage 0: the image features of the posts used */
	if (train_path(images, sizeof(images), o.data_dir, "mvsa-single/images", &err) != MMSA_OK ||
		train_path(posts, sizeof(posts), o.data_dir, "mvsa-single/posts.csv", &err) != MMSA_OK ||
		train_path(features, sizeof(features), o.work_dir, "mvsa-single-features.safetensors", &err) != MMSA_OK)
		goto fail;
	if (o.mvsa_limit > 0)
	{
		char		subset[4096];

		if (train_path(subset, sizeof(subset), o.work_dir, "mvsa-single-subset.csv", &err) != MMSA_OK ||
			write_posts_subset(posts, subset, o.mvsa_limit, &err) != 0 ||
			train_path(features, sizeof(features), o.work_dir, "mvsa-single-subset-features.safetensors",
					   &err) != MMSA_OK)
			goto fail;
		strcpy(posts, subset);
	}
	if (only == NULL || strcmp(only, "heads") == 0)
	{
		char	   *fargv[] = {"features", "--image-model", (char *) o.image_model, "--posts", posts,
		"--images", images, "--out", features, "--threads", threads_arg};

		snprintf(threads_arg, sizeof(threads_arg), "%d", o.threads);
		fprintf(stderr, "mmsa train: stage 0: ResNet-50 features of %s\n", posts);
		if (cmd_features(11, fargv) != 0)
			return 1;
	}

	/* stage 1: the text encoder */
	if (bert_tokenizer_load(o.vocab, &tok, &err) != MMSA_OK)
		goto fail;
	if (o.text_normalization >= 0)
		bert_tokenizer_set_tweet_normalization(tok, o.text_normalization);
	if (only == NULL || strcmp(only, "text") == 0)
	{
		fprintf(stderr, "mmsa train: stage 1: the text encoder (tweet normalisation %s)\n",
				bert_tokenizer_tweet_normalization(tok) ? "on" : "off");
		rc = train_text_stage(&o, tok);
		if (rc != 0)
		{
			bert_tokenizer_free(tok);
			return rc;
		}
	}
	bert_tokenizer_free(tok);

	/* stage 2: the heads */
	if (only == NULL || strcmp(only, "heads") == 0)
	{
		char		link_path[4096],
					target[4096];

		/* a model directory is complete with its image encoder: link it */
		if (train_path(link_path, sizeof(link_path), o.out_dir, "image", &err) != MMSA_OK)
			goto fail;
		if (!train_exists(link_path) &&
			(realpath(o.image_model, target) == NULL || symlink(target, link_path) != 0))
		{
			fprintf(stderr, "mmsa train: could not link %s to %s\n", link_path, o.image_model);
			return 1;
		}

		fprintf(stderr, "mmsa train: stage 2: the seven heads\n");
		return train_heads_stage(&o, posts, features);
	}
	return 0;

fail:
	fprintf(stderr, "mmsa train: %s: %s\n", mmsa_status_name(err.status), err.message);
	bert_tokenizer_free(tok);
	return 1;
}
