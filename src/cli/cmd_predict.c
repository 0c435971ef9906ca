/*
 * cmd_predict.c
 *	  `mmsa predict`: the sentiment of each post of a posts.csv, as CSV.
 *
 *	  mmsa predict [--model DIR] --posts CSV --images DIR [--split NAME]
 *	               [--fusion NAME] [--threads N] [--precision fp32|int8]
 *
 * Reads posts.csv (columns id,split,label,text as in MVSA-Single; label may
 * be empty), keeps the rows of --split (all rows without it), and prints
 * to stdout, header first:
 *
 *	  id,label,p_negative,p_neutral,p_positive
 *
 * with the model's default fusion, or --fusion (bert, resnet, nativecat,
 * nativecombine, cmac, hstec, ote, ensemble); the label follows the model's
 * decision rule (sentiment.h).  The image of post <id> is
 * IMAGES/<id>.jpg; a post without an image file is classified by the text
 * model (bert), as mmsa_sentiment does for a NULL image.  Without --model
 * the installed default model is used.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "post_features.h"

static const char *const label_names[] = {"negative", "neutral", "positive"};

/* An id as one CSV field, quoted when it needs to be (RFC 4180). */
static void
print_csv_field(const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL)
	{
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++)
	{
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static void
predict_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa predict [--model DIR] --posts CSV --images DIR [--split NAME] [--fusion NAME]\n"
			"                    [--threads N] [--precision fp32|int8]\n"
			"Prints id,label,p_negative,p_neutral,p_positive for each post (IMAGES/<id>.jpg).\n"
			"--fusion: bert, resnet, nativecat, nativecombine, cmac, hstec, ote or ensemble (default: the\n"
			"model's default fusion).  Without --model: %s\n", MMSA_INSTALLED_MODEL_DIR);
}

int
cmd_predict(int argc, char **argv)
{
	post_options po = {0};
	const char *fusion = NULL;
	sentiment_model *m = NULL;
	mmsa_posts	posts = {0};
	post_features pf;
	mmsa_error	err;
	int			kind;
	int			rc = 1;

	memset(&pf, 0, sizeof(pf));
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			predict_usage(stdout);
			return 0;
		}
		else if (post_options_parse(&po, argc, argv, &i))
			continue;
		else if (strcmp(a, "--fusion") == 0 && i + 1 < argc)
			fusion = argv[++i];
		else
		{
			fprintf(stderr, "mmsa predict: unknown or incomplete option \"%s\"\n", a);
			predict_usage(stderr);
			return 2;
		}
	}
	if (fusion != NULL && sentiment_kind_from_name(fusion) < 0)
	{
		fprintf(stderr, "mmsa predict: unknown model \"%s\" (bert, resnet, nativecat, nativecombine, "
				"cmac, hstec, ote, ensemble)\n", fusion);
		return 2;
	}
	if ((rc = post_options_open(&po, "predict", &posts, &m, &pf)) != 0)
		goto done;
	rc = 1;
	kind = fusion != NULL ? sentiment_kind_from_name(fusion) : m->default_kind;
	if (kind == SENTIMENT_ENSEMBLE && m->ensemble_members == 0)
	{
		fprintf(stderr, "mmsa predict: the model has no ensemble (its model.json describes none)\n");
		goto done;
	}

	printf("id,label,p_negative,p_neutral,p_positive\n");
	for (int64_t i = 0; i < posts.n; i++)
	{
		float		p[3];
		int			k = kind;

		if (post_features_encode(m, po.images, posts.ids[i], posts.texts[i], &pf, &err) != MMSA_OK)
			goto fail;
		if (!pf.has_image && k != FUSION_BERT)
		{
			fprintf(stderr, "mmsa predict: post %s has no image %s/%s.jpg: text model used\n",
					posts.ids[i], po.images, posts.ids[i]);
			k = FUSION_BERT;
		}
		if (sentiment_classify(m, k, &pf.text, pf.has_image ? &pf.image : NULL, p, &err) != MMSA_OK)
			goto fail;
		print_csv_field(posts.ids[i]);
		printf(",%s,%.6f,%.6f,%.6f\n", label_names[sentiment_decide(m, k, p)],
			   p[0], p[1], p[2]);
	}
	if (fflush(stdout) != 0)
	{
		fprintf(stderr, "mmsa predict: could not write the output\n");
		goto done;
	}
	rc = 0;
	goto done;

fail:
	fprintf(stderr, "mmsa predict: %s: %s\n", mmsa_status_name(err.status), err.message);
done:
	post_features_free(&pf);
	sentiment_model_free(m);
	posts_free(&posts);
	return rc;
}
