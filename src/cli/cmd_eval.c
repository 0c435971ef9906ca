/*
 * cmd_eval.c
 *	  `mmsa eval`: the seven models of a sentiment model directory on a
 *	  labelled split, as a table in the shape of the paper's Table 4.
 *
 *	  mmsa eval [--model DIR] --posts CSV --images DIR [--split NAME]
 *	            [--png FILE] [--threads N] [--precision fp32|int8]
 *
 * Every post of --split (default val) that has a label is encoded once
 * (text, and image IMAGES/<id>.jpg) exactly as `mmsa predict` does, and
 * classified by each of the seven heads.  Printed: the table (accuracy,
 * weighted precision, recall and F1, macro F1, macro recall), then each
 * model's per-class figures and confusion matrix.  --png writes the seven
 * confusion matrices as one picture.
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
			"                 [--threads N] [--precision fp32|int8]\n"
			"Table-4 metrics of the seven models on the labelled posts of --split (default val).\n");
}

int
cmd_eval(int argc, char **argv)
{
	post_options po = {0};
	const char *png = NULL;
	sentiment_model *m = NULL;
	mmsa_posts	posts = {0};
	post_features pf;
	mmsa_error	err;
	int		   *truth = NULL,
			   *pred = NULL;
	int64_t		n = 0,
				no_image = 0;
	class_metrics metrics[FUSION_N_KINDS];
	const char *names[FUSION_N_KINDS];
	char		default_name[FUSION_N_KINDS][64];
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
	truth = malloc(sizeof(int) * (posts.n + 1));
	pred = malloc(sizeof(int) * (posts.n + 1) * FUSION_N_KINDS);
	if (truth == NULL || pred == NULL)
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
		for (int k = 0; k < FUSION_N_KINDS; k++)
		{
			float		p[3];
			fusion_kind kind = pf.has_image ? (fusion_kind) k : FUSION_BERT;

			if (sentiment_classify(m, kind, &pf.text, pf.has_image ? &pf.image : NULL, p, &err) != MMSA_OK)
				goto fail;
			pred[k * posts.n + n] = sentiment_argmax(p);
		}
		truth[n++] = posts.labels[i];
		if (n % 100 == 0)
			fprintf(stderr, "mmsa eval: %lld posts, %.1f s\n", (long long) n, (cli_now_ms() - t0) / 1e3);
	}
	if (n == 0)
	{
		fprintf(stderr, "mmsa eval: no labelled posts in split \"%s\" of %s\n", po.split, po.posts);
		goto done;
	}
	for (int k = 0; k < FUSION_N_KINDS; k++)
	{
		if (metrics_compute(truth, pred + (int64_t) k * posts.n, n, &metrics[k], &err) != MMSA_OK)
			goto fail;
		snprintf(default_name[k], sizeof(default_name[k]), "%s%s", fusion_kind_name((fusion_kind) k),
				 (fusion_kind) k == m->default_kind ? " (default)" : "");
		names[k] = default_name[k];
	}
	{
		char	   *table = metrics_format_table(names, metrics, FUSION_N_KINDS);

		printf("%s: split %s, %lld labelled posts%s\n\n%s\n", po.posts, po.split, (long long) n,
			   no_image ? " (some without an image: text model used for them)" : "", table ? table : "");
		free(table);
	}
	for (int k = 0; k < FUSION_N_KINDS; k++)
	{
		char	   *report = metrics_format_report(names[k], &metrics[k]);

		printf("%s\n", report ? report : "");
		free(report);
	}
	if (png != NULL &&
		metrics_write_confusion_png(png, names, metrics, FUSION_N_KINDS, &err) != MMSA_OK)
		goto fail;
	rc = 0;
	goto done;

fail:
	fprintf(stderr, "mmsa eval: %s: %s\n", mmsa_status_name(err.status), err.message);
done:
	free(truth);
	free(pred);
	post_features_free(&pf);
	sentiment_model_free(m);
	posts_free(&posts);
	return rc;
}
