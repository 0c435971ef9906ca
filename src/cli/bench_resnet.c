/*
 * bench_resnet.c
 *	  `mmsa bench resnet`: times ResNet-50 forward passes at 224 x 224.
 *
 *	  mmsa bench resnet --model DIR [--batch B] [--threads N] [--runs R]
 *	                    [--warmup W]
 *
 * The inputs are fixed pseudo-random images; each timed pass computes the
 * 49-token map, the pooled features and the logits, as the image encoder
 * does.  Prints one line: the median and minimum milliseconds per batch
 * over R timed runs after W warm-up runs, the median per image, and the
 * OpenBLAS kernel in use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "bench_resnet.h"
#include "cli.h"
#include "cpu.h"
#include "resnet.h"

static int
resnet_compare_doubles(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static void
bench_resnet_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa bench resnet --model DIR [--batch B] [--threads N] [--runs R] [--warmup W]\n"
			"                         [--sub-batch S] [--precision fp32|int8] [--profile]\n"
			"  Defaults: batch 1, threads 2, runs 20, warmup 3, sub-batch: the model's,\n"
			"  precision fp32.  Prints the median and minimum milliseconds per batch;\n"
			"  --profile adds the time of each convolution over the timed runs, and at\n"
			"  int8 the time of each at fp32 and at int8 in as many more runs, and which\n"
			"  of the two the model runs (resnet_int8_plan).\n");
}

static const char *
conv_method(const resnet_conv *c)
{
	return c->winograd == WINOGRAD_F2 ? "wino2x2" : c->winograd ? "winograd" :
		(c->k == 1 && c->stride == 1) ? "product" : "im2col";
}

/*
 * The per-convolution profile: place, shape, method, milliseconds per
 * image over the timed runs, and share of the convolutions' time.
 */
static void
print_profile(const resnet_profile *prof, long images)
{
	double		total = 0;

	if (images < 1)
		images = 1;
	for (int i = 0; i < RESNET_CONVS; i++)
		total += prof->ms[i];
	printf("profile: %ld chunk passes; per convolution, ms per image and share of the convolutions' time\n",
		   prof->forwards);
	for (int i = 0; i < RESNET_CONVS && prof->conv[i]; i++)
	{
		const resnet_conv *c = prof->conv[i];

		printf("  %2d  %dx%d s%d  %4d -> %4d  %3dx%-3d  %-8s %7.3f ms  %4.1f%%\n",
			   i, c->k, c->k, c->stride, c->cin, c->cout, prof->H[i], prof->H[i],
			   conv_method(c), prof->ms[i] / images, 100 * prof->ms[i] / (total > 0 ? total : 1));
	}
	printf("  all convolutions %.3f ms per image\n", total / images);
}

/*
 * fp32 against int8, convolution by convolution (every one that has an
 * int8 form run at int8 in the second), and the model's choice.
 */
static void
print_precision_profile(const resnet_model *m, const resnet_profile *f, const resnet_profile *q,
						long images)
{
	double		tf = 0,
				tq = 0,
				tplan = 0;

	if (images < 1)
		images = 1;
	printf("profile by precision: ms per image at fp32 and at int8 (%s kernels), and the layer's choice\n",
		   mmsa_int8_kernels_label());
	for (int i = 0; i < RESNET_CONVS && f->conv[i]; i++)
	{
		const resnet_conv *c = f->conv[i];
		int			int8 = c->q.weight && resnet_int8_plan(m, c);
		double		a = f->ms[i] / images,
					b = q->ms[i] / images;

		tf += a;
		tq += b;
		tplan += int8 ? b : a;
		printf("  %2d  %dx%d s%d  %4d -> %4d  %3dx%-3d  fp32 %-8s %7.3f ms  int8 %7.3f ms  %5.2fx  runs %s\n",
			   i, c->k, c->k, c->stride, c->cin, c->cout, f->H[i], f->H[i], conv_method(c), a, b,
			   a > 0 ? b / a : 0.0, int8 ? "int8" : "fp32");
	}
	printf("  all convolutions: fp32 %.3f ms, int8 %.3f ms, as chosen %.3f ms per image\n", tf, tq, tplan);
}

/* runs timed passes into prof */
static int
profile_runs(resnet_model *m, resnet_profile *prof, int runs, const float *images, int batch,
			 float *tokens, float *pooled, float *logits, mmsa_error *err)
{
	memset(prof, 0, sizeof(*prof));
	m->profile = prof;
	for (int i = 0; i < runs; i++)
		if (resnet_forward(m, images, batch, tokens, pooled, logits, err) != MMSA_OK)
		{
			m->profile = NULL;
			return -1;
		}
	m->profile = NULL;
	return 0;
}

int
bench_resnet(int argc, char **argv)
{
	const char *model_dir = NULL;
	int			batch = 1,
				threads = 2,
				runs = 20,
				warmup = 3,
				sub_batch = 0,
				profile = 0;
	mmsa_precision precision = MMSA_PRECISION_DEFAULT;
	resnet_profile prof;
	resnet_model *m = NULL;
	mmsa_error	err;
	float	   *images = NULL,
			   *tokens = NULL,
			   *pooled = NULL,
			   *logits = NULL;
	double	   *ms = NULL;
	size_t		n_in;
	unsigned	seed = 12345;
	int			rc = 1;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			bench_resnet_usage(stdout);
			return 0;
		}
		else if (i + 1 < argc && strcmp(argv[i], "--model") == 0)
			model_dir = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0)
			batch = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0)
			runs = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0)
			warmup = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--sub-batch") == 0)
			sub_batch = atoi(argv[++i]);
		else if (strcmp(argv[i], "--profile") == 0)
			profile = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--precision") == 0)
		{
			if (mmsa_precision_parse(argv[++i], &precision, &err) != MMSA_OK)
			{
				fprintf(stderr, "mmsa bench resnet: %s\n", err.message);
				return 2;
			}
		}
		else
		{
			fprintf(stderr, "mmsa bench resnet: unknown or incomplete option \"%s\"\n", argv[i]);
			bench_resnet_usage(stderr);
			return 2;
		}
	}
	if (model_dir == NULL || batch < 1 || batch > 256 || threads < 1 || runs < 1 || warmup < 0)
	{
		bench_resnet_usage(stderr);
		return 2;
	}
	openblas_set_num_threads(threads);
	if (resnet_model_load(model_dir, &m, &err) != MMSA_OK ||
		resnet_model_set_precision(m, precision, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa bench resnet: %s\n", err.message);
		resnet_model_free(m);
		return 1;
	}
	if (sub_batch > 0)
		m->sub_batch = sub_batch;
	n_in = (size_t) batch * 3 * RESNET_IMAGE_SIZE * RESNET_IMAGE_SIZE;
	images = malloc(n_in * sizeof(float));
	tokens = malloc((size_t) batch * RESNET_TOKENS * RESNET_FEATURES * sizeof(float));
	pooled = malloc((size_t) batch * RESNET_FEATURES * sizeof(float));
	logits = malloc((size_t) batch * m->num_classes * sizeof(float));
	ms = malloc(runs * sizeof(double));
	if (!images || !tokens || !pooled || !logits || !ms)
	{
		fprintf(stderr, "mmsa bench resnet: out of memory\n");
		goto done;
	}
	for (size_t i = 0; i < n_in; i++)
	{
		seed = seed * 1103515245u + 12345u;
		images[i] = ((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
	}
	memset(&prof, 0, sizeof(prof));
	for (int i = 0; i < warmup + runs; i++)
	{
		double		t0 = cli_now_ms();

		if (profile && i == warmup)
			m->profile = &prof;	/* the timed runs only */

		if (resnet_forward(m, images, batch, tokens, pooled, logits, &err) != MMSA_OK)
		{
			fprintf(stderr, "mmsa bench resnet: %s\n", err.message);
			goto done;
		}
		if (i >= warmup)
			ms[i - warmup] = cli_now_ms() - t0;
	}
	qsort(ms, runs, sizeof(double), resnet_compare_doubles);
	{
		double		median = runs % 2 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);

		printf("resnet batch=%d sub_batch=%d threads=%d runs=%d median_ms=%.3f min_ms=%.3f ms_per_image=%.3f isa=%s precision=%s int8_kernels=%s corename=%s\n",
			   batch, m->sub_batch, threads, runs, median, ms[0], median / batch,
			   mmsa_isa_name(mmsa_isa_current()), mmsa_precision_name(precision),
			   precision == MMSA_PRECISION_INT8 ? mmsa_int8_kernels_label() : "-",
			   openblas_get_corename());
	}
	if (profile)
		print_profile(&prof, (long) runs * batch);
	if (profile && precision == MMSA_PRECISION_INT8)
	{
		resnet_profile pf,
					pq;

		m->precision = MMSA_PRECISION_FP32;
		if (profile_runs(m, &pf, runs, images, batch, tokens, pooled, logits, &err) != 0)
			goto fail;
		m->precision = MMSA_PRECISION_INT8;
		m->int8_all = 1;
		if (profile_runs(m, &pq, runs, images, batch, tokens, pooled, logits, &err) != 0)
			goto fail;
		m->int8_all = 0;
		print_precision_profile(m, &pf, &pq, (long) runs * batch);
	}
	rc = 0;
	goto done;
fail:
	fprintf(stderr, "mmsa bench resnet: %s\n", err.message);
done:
	free(images);
	free(tokens);
	free(pooled);
	free(logits);
	free(ms);
	resnet_model_free(m);
	return rc;
}
