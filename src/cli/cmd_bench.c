/*
 * cmd_bench.c
 *	  `mmsa bench MODEL ...`: times forward passes (used by
 *	  test/bench/run-bench.sh).  Each model has its own function in the
 *	  table below; they share the option parsing and the timing loop.
 *
 *	  mmsa bench bert --model DIR [--batch B] [--seq T] [--threads N]
 *	                  [--runs R] [--warmup W] [--precision fp32|int8]
 *
 * Prints one line: the median and minimum milliseconds per batch over R
 * timed runs after W warm-up runs, and the OpenBLAS kernel in use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "bert.h"
#include "precision.h"
#include "cli.h"
#include "cpu.h"

typedef struct bench_options
{
	const char *model_dir;
	int			batch;
	int			seq;
	int			threads;
	int			runs;
	int			warmup;
	mmsa_precision precision;
} bench_options;

/* One forward pass of the model under test, set up by its bench function. */
typedef mmsa_status (*bench_step) (void *state, mmsa_error *err);

static int
compare_doubles(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Runs step warmup times, then runs times, and prints the median and the
 * minimum; returns the exit status.
 */
static int
time_steps(const char *what, const bench_options *o, bench_step step,
		   void *state)
{
	mmsa_error	err;
	double	   *ms = malloc(o->runs * sizeof(double));

	if (ms == NULL)
	{
		fprintf(stderr, "mmsa bench: out of memory\n");
		return 1;
	}
	mmsa_clear_error(&err);
	for (int i = 0; i < o->warmup + o->runs; i++)
	{
		double		t0 = cli_now_ms();

		if (step(state, &err) != MMSA_OK)
		{
			fprintf(stderr, "mmsa bench: %s\n", err.message);
			free(ms);
			return 1;
		}
		if (i >= o->warmup)
			ms[i - o->warmup] = cli_now_ms() - t0;
	}
	qsort(ms, o->runs, sizeof(double), compare_doubles);
	printf("%s batch=%d seq=%d threads=%d runs=%d median_ms=%.3f min_ms=%.3f isa=%s precision=%s%s%s corename=%s\n",
		   what, o->batch, o->seq, o->threads, o->runs,
		   o->runs % 2 ? ms[o->runs / 2] : 0.5 * (ms[o->runs / 2 - 1] + ms[o->runs / 2]),
		   ms[0], mmsa_isa_name(mmsa_isa_current()), mmsa_precision_name(o->precision),
		   o->precision == MMSA_PRECISION_INT8 ? " int8_kernels=" : "",
		   o->precision == MMSA_PRECISION_INT8 ? mmsa_int8_kernels_label() : "",
		   openblas_get_corename());
	free(ms);
	return 0;
}

/* ---- bert ------------------------------------------------------------- */

typedef struct bert_bench
{
	bert_model *model;
	int32_t    *ids;
	int32_t    *mask;
	float	   *hidden;
	float	   *pooled;
	int			B,
				T;
} bert_bench;

static mmsa_status
bert_step(void *state, mmsa_error *err)
{
	bert_bench *s = state;

	return bert_forward(s->model, s->ids, s->mask, s->B, s->T, s->hidden,
						s->model->pool_w ? s->pooled : NULL, err);
}

static int
bench_bert(const bench_options *o)
{
	bert_bench s;
	mmsa_error	err;
	int			rc = 1;
	size_t		n = (size_t) o->batch * o->seq;
	unsigned	seed = 12345;

	memset(&s, 0, sizeof(s));
	s.B = o->batch;
	s.T = o->seq;
	if (bert_model_load(o->model_dir, &s.model, &err) != MMSA_OK ||
		bert_model_set_precision(s.model, o->precision, &err) != MMSA_OK)
	{
		bert_model_free(s.model);
		fprintf(stderr, "mmsa bench: %s\n", err.message);
		return 1;
	}
	s.ids = malloc(n * sizeof(int32_t));
	s.mask = malloc(n * sizeof(int32_t));
	s.hidden = malloc(n * s.model->config.hidden_size * sizeof(float));
	s.pooled = malloc((size_t) o->batch * s.model->config.hidden_size * sizeof(float));
	if (s.ids && s.mask && s.hidden && s.pooled)
	{
		/* random ids, [CLS]-like first token, no padding */
		for (size_t i = 0; i < n; i++)
		{
			seed = seed * 1103515245u + 12345u;
			s.ids[i] = (i % o->seq == 0) ? 101 % s.model->config.vocab_size
				: (int32_t) ((seed >> 8) % (unsigned) s.model->config.vocab_size);
			s.mask[i] = 1;
		}
		rc = time_steps("bert", o, bert_step, &s);
	}
	else
		fprintf(stderr, "mmsa bench: out of memory\n");
	free(s.ids);
	free(s.mask);
	free(s.hidden);
	free(s.pooled);
	bert_model_free(s.model);
	return rc;
}

/* ---- dispatch --------------------------------------------------------- */

/*
 * Models with their own option parsing (argv[0] = the model's name), in
 * their own files; weak, so that the tool links while one is missing.
 */
int			bench_resnet(int argc, char **argv) __attribute__((weak));

static const struct
{
	const char *name;
	int			(*run) (const bench_options *o);
}			benches[] = {
	{"bert", bench_bert},
};

static void
bench_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa bench MODEL --model DIR [--batch B] [--seq T] [--threads N]\n"
			"                  [--runs R] [--warmup W] [--precision fp32|int8]\n"
			"  MODEL: bert (or resnet, see mmsa bench resnet --help).  Defaults: batch 1, seq 64, threads 2, runs 20, warmup 3.\n"
			"  Prints the median and minimum milliseconds per batch.  int8 needs DIR/model.int8.packed\n"
			"  (mmsa pack --model DIR writes it).\n");
}

int
cmd_bench(int argc, char **argv)
{
	bench_options o = {NULL, 1, 64, 2, 20, 3, MMSA_PRECISION_FP32};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
	{
		bench_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "resnet") == 0 && bench_resnet != NULL)
		return bench_resnet(argc - 1, argv + 1);
	for (int i = 2; i < argc; i++)
	{
		if (i + 1 < argc && strcmp(argv[i], "--model") == 0)
			o.model_dir = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0)
			o.batch = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--seq") == 0)
			o.seq = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
			o.threads = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0)
			o.runs = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0)
			o.warmup = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--precision") == 0)
		{
			mmsa_error	err;

			if (mmsa_precision_parse(argv[++i], &o.precision, &err) != MMSA_OK)
			{
				fprintf(stderr, "mmsa bench: %s\n", err.message);
				return 2;
			}
		}
		else
		{
			fprintf(stderr, "mmsa bench: unknown or incomplete option \"%s\"\n", argv[i]);
			bench_usage(stderr);
			return 2;
		}
	}
	if (o.model_dir == NULL || o.batch < 1 || o.batch > 4096 || o.seq < 1 ||
		o.threads < 1 || o.threads > 256 || o.runs < 1 || o.runs > 100000 ||
		o.warmup < 0)
	{
		bench_usage(stderr);
		return 2;
	}
	openblas_set_num_threads(o.threads);
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		if (strcmp(argv[1], benches[i].name) == 0)
			return benches[i].run(&o);
	fprintf(stderr, "mmsa bench: unknown model \"%s\"\n", argv[1]);
	bench_usage(stderr);
	return 2;
}
