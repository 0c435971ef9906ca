/*
 * test_metrics.c
 *	  metrics_compute against test/reference/metrics_reference.py (numpy,
 *	  sklearn's definitions with zero_division=0) on random label vectors,
 *	  including a class that is never predicted and one that never occurs;
 *	  hand-checked small cases; the table and report text; the confusion
 *	  PNG (written to MMSA_TMP, read back with libpng).
 */
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

#define N_CASES 8

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t
rng_next(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t) (rng_state >> 33);
}

/* Prints multi-line text as TAP comments. */
static void
diag_lines(const char *text)
{
	const char *line = text;

	while (*line)
	{
		const char *end = strchr(line, '\n');
		int			len = end ? (int) (end - line) : (int) strlen(line);

		printf("# %.*s\n", len, line);
		line += len + (end ? 1 : 0);
	}
}

int
main(void)
{
	const char *root = getenv("MMSA_ROOT") ? getenv("MMSA_ROOT") : ".";
	const char *tmp = getenv("MMSA_TMP") ? getenv("MMSA_TMP") : "/tmp";
	static int	truth[N_CASES][1000],
				pred[N_CASES][1000];
	int			n[N_CASES];
	char		path[4096],
				cmd[8192];
	FILE	   *fp;
	class_metrics m;
	mmsa_error	err = {0};

	/* random cases; case 2 never predicts neutral, case 3 has no true neutral */
	for (int c = 0; c < N_CASES; c++)
	{
		n[c] = 5 + (int) (rng_next() % 995);
		for (int i = 0; i < n[c]; i++)
		{
			truth[c][i] = (int) (rng_next() % 3);
			/* right about 60% of the time */
			pred[c][i] = rng_next() % 10 < 6 ? truth[c][i] : (int) (rng_next() % 3);
			if (c == 2 && pred[c][i] == 1)
				pred[c][i] = 2;
			if (c == 3 && truth[c][i] == 1)
				truth[c][i] = 0;
		}
	}
	snprintf(path, sizeof(path), "%s/test_metrics_labels.txt", tmp);
	fp = fopen(path, "w");
	for (int c = 0; c < N_CASES; c++)
	{
		for (int i = 0; i < n[c]; i++)
			fprintf(fp, "%d ", truth[c][i]);
		fprintf(fp, "\n");
		for (int i = 0; i < n[c]; i++)
			fprintf(fp, "%d ", pred[c][i]);
		fprintf(fp, "\n");
	}
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/test/reference/metrics_reference.py %s", root, path);
	fp = popen(cmd, "r");
	ok(fp != NULL, "run %s", cmd);
	for (int c = 0; c < N_CASES && fp; c++)
	{
		long long	cm[9];
		double		ref[16];
		int			got = 0;
		double		mine[16];
		int			cm_ok = 1;
		double		maxd = 0;

		for (int k = 0; k < 9; k++)
			got += fscanf(fp, "%lld", &cm[k]);
		for (int k = 0; k < 16; k++)
			got += fscanf(fp, "%lf", &ref[k]);
		if (!ok(got == 25, "case %d: reference line read", c))
			break;
		ok(metrics_compute(truth[c], pred[c], n[c], &m, &err) == MMSA_OK, "case %d: metrics_compute", c);
		for (int k = 0; k < 9; k++)
			if (m.confusion[k / 3][k % 3] != cm[k])
				cm_ok = 0;
		ok(cm_ok, "case %d (n=%d): confusion matrix equals numpy's", c, n[c]);
		mine[0] = m.accuracy;
		for (int k = 0; k < 3; k++)
		{
			mine[1 + k] = m.precision[k];
			mine[4 + k] = m.recall[k];
			mine[7 + k] = m.f1[k];
		}
		mine[10] = m.weighted_precision;
		mine[11] = m.weighted_recall;
		mine[12] = m.weighted_f1;
		mine[13] = m.macro_precision;
		mine[14] = m.macro_recall;
		mine[15] = m.macro_f1;
		for (int k = 0; k < 16; k++)
			if (fabs(mine[k] - ref[k]) > maxd)
				maxd = fabs(mine[k] - ref[k]);
		ok(maxd <= 1e-12, "case %d: accuracy, P/R/F1 per class, weighted, macro within 1e-12 of numpy (max diff %.2g)",
		   c, maxd);
		if (c == 2)
			ok(m.predicted[1] == 0 && m.precision[1] == 0.0 && m.f1[1] == 0.0 && m.recall[1] == 0.0,
			   "case 2: neutral never predicted: precision, recall, F1 0 (zero_division=0)");
		if (c == 3)
			ok(m.support[1] == 0 && m.recall[1] == 0.0 && m.precision[1] == 0.0,
			   "case 3: neutral never true: recall 0, precision 0 (all its predictions wrong)");
	}
	if (fp)
		pclose(fp);
	remove(path);

	/* by hand: truth 0 0 1 2 2 2, pred 0 1 1 2 2 0 */
	{
		int			t[] = {0, 0, 1, 2, 2, 2},
					p[] = {0, 1, 1, 2, 2, 0};

		metrics_compute(t, p, 6, &m, &err);
		/* P = 1/2, 1/2, 1; R = 1/2, 1, 2/3; F1 = 1/2, 2/3, 4/5; support 2,1,3 */
		ok(fabs(m.accuracy - 4.0 / 6) < 1e-15 && fabs(m.precision[0] - 0.5) < 1e-15 &&
		   fabs(m.recall[2] - 2.0 / 3) < 1e-15 && fabs(m.f1[1] - 2.0 / 3) < 1e-15 &&
		   fabs(m.weighted_f1 - (2 * 0.5 + 1 * 2.0 / 3 + 3 * 0.8) / 6) < 1e-15 &&
		   fabs(m.macro_recall - (0.5 + 1 + 2.0 / 3) / 3) < 1e-15,
		   "hand-computed 6-example case");
		{
			const char *names[2] = {"Text (BERT)", "Ours"};
			class_metrics two[2];
			char	   *table,
					   *report;

			two[0] = m;
			two[1] = m;
			table = metrics_format_table(names, two, 2);
			report = metrics_format_report("Ours", &m);
			ok(table && strstr(table, "| Model       | Acc/% | Pre/% | Recall/% | F1 score/% |") &&
			   strstr(table, "| Ours        | 66.67 | 75.00 |    66.67 |      67.78 |      65.56 |          72.22 |    6 |"),
			   "Table 4 layout and numbers");
			if (table)
				diag_lines(table);
			ok(report && strstr(report, "negative      50.00   50.00  50.00        2"),
			   "per-class report");
			if (report)
				diag_lines(report);
			free(table);
			free(report);
		}
	}
	{
		int			t[] = {0, 1, 3},
					p[] = {0, 1, 1};

		ok(metrics_compute(t, p, 3, &m, &err) == MMSA_ERR_INVALID && strstr(err.message, "example 2"),
		   "label 3 refused (%s)", err.message);
		t[2] = -1;
		ok(metrics_compute(t, p, 3, &m, &err) == MMSA_ERR_INVALID, "unlabelled -1 refused");
		ok(metrics_compute(t, p, 0, &m, &err) == MMSA_ERR_INVALID, "no examples refused");
	}

	/* the picture: three panels, read back */
	{
		const char *names[3] = {"ResNet-50", "BERT", "Multimodal BERT (ours)"};
		class_metrics three[3];
		png_image	img;

		for (int c = 0; c < 3; c++)
			metrics_compute(truth[c], pred[c], n[c], &three[c], &err);
		snprintf(path, sizeof(path), "%s/test_metrics_confusion.png", tmp);
		ok(metrics_write_confusion_png(path, names, three, 3, &err) == MMSA_OK, "confusion PNG written to %s", path);
		memset(&img, 0, sizeof(img));
		img.version = PNG_IMAGE_VERSION;
		{
			int			read_ok = png_image_begin_read_from_file(&img, path);

			ok(read_ok && img.width % 3 == 0 && img.width >= 900 && img.height >= 300,
			   "PNG reads back, %ux%u", img.width, img.height);
		}
		png_image_free(&img);
		ok(metrics_write_confusion_png("/nonexistent/dir/x.png", names, three, 3, &err) == MMSA_ERR_IO,
		   "unwritable path: I/O error");
	}
	return tap_done();
}
