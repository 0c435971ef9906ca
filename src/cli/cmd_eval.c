/*
 * cmd_eval.c
 *	  `mmsa eval`: the models of a sentiment model directory on a labelled
 *	  split, as a table in the shape of the paper's Table 4.
 *
 *	  mmsa eval [--model DIR] --posts CSV --images DIR [--split NAME]
 *	            [--png FILE] [--predictions FILE] [--threads N]
 *	            [--precision fp32|int8]
 *
 * Every post of --split (default val) that has a label is encoded once
 * (text, and image IMAGES/<id>.jpg) exactly as `mmsa predict` does, and
 * classified by each of the seven heads and, when model.json describes
 * one, the ensemble, each under its decision rule.  Printed: the table
 * (accuracy, weighted precision, recall and F1, macro F1, macro recall),
 * then each model's per-class figures and confusion matrix.  --png writes
 * the confusion matrices as one picture; --predictions writes every post's
 * gold label and each model's label as CSV (id,gold,<model>,...), which is
 * what the SQL aggregate mmsa_evaluate is checked against.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "metrics.h"
#include "post_features.h"

static void
eval_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa eval [--model DIR] --posts CSV --images DIR [--split NAME] [--png FILE]\n"
			"                 [--predictions FILE] [--threads N] [--precision fp32|int8]\n"
			"Table-4 metrics of the models (the seven heads, and the ensemble where the model has one)\n"
			"on the labelled posts of --split (default val).\n");
}

int
cmd_eval(int argc, char **argv)
{
	post_options po = {0};
	const char *png = NULL,
			   *predictions = NULL;
	static const char *const label_names[3] = {"negative", "neutral", "positive"};
	int64_t    *rows = NULL;
	int			n_models;
	sentiment_model *m = NULL;
	mmsa_posts	posts = {0};
	post_features pf;
	mmsa_error	err;
	int		   *truth = NULL,
			   *pred = NULL;
	int64_t		n = 0,
				no_image = 0;
	class_metrics metrics[SENTIMENT_N_MODELS];
	const char *names[SENTIMENT_N_MODELS];
	char		default_name[SENTIMENT_N_MODELS][64];
	double		t0 = cli_now_ms();
	int			rc = 1;

	memset(&pf, 0, sizeof(pf));
	po.split = "val";
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			eval_usage(stdout);
			return 0;
		}
		else if (post_options_parse(&po, argc, argv, &i))
			continue;
		else if (strcmp(a, "--png") == 0 && i + 1 < argc)
			png = argv[++i];
		else if (strcmp(a, "--predictions") == 0 && i + 1 < argc)
			predictions = argv[++i];
		else
		{
			fprintf(stderr, "mmsa eval: unknown or incomplete option \"%s\"\n", a);
			eval_usage(stderr);
			return 2;
		}
	}
	if ((rc = post_options_open(&po, "eval", &posts, &m, &pf)) != 0)
		goto done;
	rc = 1;
	n_models = m->ensemble_members != 0 ? SENTIMENT_N_MODELS : FUSION_N_KINDS;
	truth = malloc(sizeof(int) * (posts.n + 1));
	pred = malloc(sizeof(int) * (posts.n + 1) * SENTIMENT_N_MODELS);
	rows = malloc(sizeof(int64_t) * (posts.n + 1));
	if (truth == NULL || pred == NULL || rows == NULL)
	{
		mmsa_set_error(&err, MMSA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int64_t i = 0; i < posts.n; i++)
	{
		if (posts.labels[i] < 0)
			continue;
		if (post_features_encode(m, po.images, posts.ids[i], posts.texts[i], &pf, &err) != MMSA_OK)
			goto fail;
		no_image += !pf.has_image;
		for (int k = 0; k < n_models; k++)
		{
			float		p[3];
			int			kind = pf.has_image ? k : FUSION_BERT;

			if (sentiment_classify(m, kind, &pf.text, pf.has_image ? &pf.image : NULL, p, &err) != MMSA_OK)
				goto fail;
			pred[k * posts.n + n] = sentiment_decide(m, kind, p);
		}
		rows[n] = i;
		truth[n++] = posts.labels[i];
		if (n % 100 == 0)
			fprintf(stderr, "mmsa eval: %lld posts, %.1f s\n", (long long) n, (cli_now_ms() - t0) / 1e3);
	}
	if (n == 0)
	{
		fprintf(stderr, "mmsa eval: no labelled posts in split \"%s\" of %s\n", po.split, po.posts);
		goto done;
	}
	for (int k = 0; k < n_models; k++)
	{
		if (metrics_compute(truth, pred + (int64_t) k * posts.n, n, &metrics[k], &err) != MMSA_OK)
			goto fail;
		snprintf(default_name[k], sizeof(default_name[k]), "%s%s", sentiment_kind_name(k),
				 k == m->default_kind ? " (default)" : "");
		names[k] = default_name[k];
	}
	{
		char	   *table = metrics_format_table(names, metrics, n_models);

		printf("%s: split %s, %lld labelled posts%s\n\n%s\n", po.posts, po.split, (long long) n,
			   no_image ? " (some without an image: text model used for them)" : "", table ? table : "");
		free(table);
	}
	for (int k = 0; k < n_models; k++)
	{
		char	   *report = metrics_format_report(names[k], &metrics[k]);

		printf("%s\n", report ? report : "");
		free(report);
	}
	if (png != NULL &&
		metrics_write_confusion_png(png, names, metrics, n_models, &err) != MMSA_OK)
		goto fail;
	if (predictions != NULL)
	{
		FILE	   *f = fopen(predictions, "w");
		int			bad;

		if (f == NULL)
		{
			mmsa_set_error(&err, MMSA_ERR_IO, "could not write %s", predictions);
			goto fail;
		}
		fprintf(f, "id,gold");
		for (int k = 0; k < n_models; k++)
			fprintf(f, ",%s", sentiment_kind_name(k));
		fprintf(f, "\n");
		for (int64_t j = 0; j < n; j++)
		{
			fprintf(f, "%s,%s", posts.ids[rows[j]], label_names[truth[j]]);
			for (int k = 0; k < n_models; k++)
				fprintf(f, ",%s", label_names[pred[k * posts.n + j]]);
			fprintf(f, "\n");
		}
		bad = ferror(f);
		if (fclose(f) != 0 || bad)
		{
			mmsa_set_error(&err, MMSA_ERR_IO, "could not write %s", predictions);
			goto fail;
		}
	}
	rc = 0;
	goto done;

fail:
	fprintf(stderr, "mmsa eval: %s: %s\n", mmsa_status_name(err.status), err.message);
done:
	free(truth);
	free(pred);
	free(rows);
	post_features_free(&pf);
	sentiment_model_free(m);
	posts_free(&posts);
	return rc;
}
