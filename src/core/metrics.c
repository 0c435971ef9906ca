/*
 * metrics.c
 *	  Accuracy, precision, recall, F1 and confusion matrices for the three
 *	  sentiment classes; a Table-4-shaped text table; a PNG of confusion
 *	  matrices drawn with a small built-in bitmap font.
 */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const char *const class_names_upper[METRICS_CLASSES] = {"NEGATIVE", "NEUTRAL", "POSITIVE"};

/* x / y, or 0 when y is 0 (sklearn's zero_division=0). */
static double
safe_div(double x, double y)
{
	return y > 0 ? x / y : 0.0;
}

/*
 * Every rate from the confusion matrix:
 *	  precision_k = C[k][k] / sum_i C[i][k], recall_k = C[k][k] / sum_j C[k][j],
 *	  f1_k = 2 p r / (p + r); weighted = sum_k support_k * x_k / n.
 */
void
metrics_from_confusion(class_metrics *m)
{
	int64_t		correct = 0;

	m->n = 0;
	for (int k = 0; k < METRICS_CLASSES; k++)
	{
		m->support[k] = 0;
		m->predicted[k] = 0;
	}
	for (int t = 0; t < METRICS_CLASSES; t++)
		for (int p = 0; p < METRICS_CLASSES; p++)
		{
			m->support[t] += m->confusion[t][p];
			m->predicted[p] += m->confusion[t][p];
			m->n += m->confusion[t][p];
		}
	m->weighted_precision = m->weighted_recall = m->weighted_f1 = 0.0;
	m->macro_precision = m->macro_recall = m->macro_f1 = 0.0;
	for (int k = 0; k < METRICS_CLASSES; k++)
	{
		double		tp = (double) m->confusion[k][k];
		double		p = safe_div(tp, (double) m->predicted[k]);
		double		r = safe_div(tp, (double) m->support[k]);

		correct += m->confusion[k][k];
		m->precision[k] = p;
		m->recall[k] = r;
		m->f1[k] = safe_div(2.0 * p * r, p + r);
		m->weighted_precision += (double) m->support[k] * p;
		m->weighted_recall += (double) m->support[k] * r;
		m->weighted_f1 += (double) m->support[k] * m->f1[k];
		m->macro_precision += p / METRICS_CLASSES;
		m->macro_recall += r / METRICS_CLASSES;
		m->macro_f1 += m->f1[k] / METRICS_CLASSES;
	}
	m->weighted_precision = safe_div(m->weighted_precision, (double) m->n);
	m->weighted_recall = safe_div(m->weighted_recall, (double) m->n);
	m->weighted_f1 = safe_div(m->weighted_f1, (double) m->n);
	m->accuracy = safe_div((double) correct, (double) m->n);
}

mmsa_status
metrics_compute(const int *truth, const int *pred, int64_t n,
				class_metrics *out, mmsa_error *err)
{
	memset(out, 0, sizeof(*out));
	if (n <= 0)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "no examples to evaluate");
	for (int64_t i = 0; i < n; i++)
	{
		if (truth[i] < 0 || truth[i] >= METRICS_CLASSES)
			return mmsa_set_error(err, MMSA_ERR_INVALID, "true label %d of example %lld is not 0, 1 or 2",
								  truth[i], (long long) i);
		if (pred[i] < 0 || pred[i] >= METRICS_CLASSES)
			return mmsa_set_error(err, MMSA_ERR_INVALID, "predicted label %d of example %lld is not 0, 1 or 2",
								  pred[i], (long long) i);
		out->confusion[truth[i]][pred[i]]++;
	}
	metrics_from_confusion(out);
	return MMSA_OK;
}

char *
metrics_format_table(const char *const *model_names, const class_metrics *m,
					 int n_models)
{
	char	   *buf = NULL;
	size_t		size = 0;
	FILE	   *fp = open_memstream(&buf, &size);
	int			w = 5;

	if (fp == NULL)
		return NULL;
	for (int i = 0; i < n_models; i++)
		if ((int) strlen(model_names[i]) > w)
			w = (int) strlen(model_names[i]);
	fprintf(fp, "| %-*s | Acc/%% | Pre/%% | Recall/%% | F1 score/%% | Macro F1/%% | Macro recall/%% |    N |\n",
			w, "Model");
	fprintf(fp, "|-");
	for (int i = 0; i < w; i++)
		fputc('-', fp);
	fprintf(fp, "-|------:|------:|---------:|-----------:|-----------:|---------------:|-----:|\n");
	for (int i = 0; i < n_models; i++)
		fprintf(fp, "| %-*s | %5.2f | %5.2f | %8.2f | %10.2f | %10.2f | %14.2f | %4lld |\n",
				w, model_names[i], 100 * m[i].accuracy, 100 * m[i].weighted_precision,
				100 * m[i].weighted_recall, 100 * m[i].weighted_f1, 100 * m[i].macro_f1,
				100 * m[i].macro_recall, (long long) m[i].n);
	if (fclose(fp) != 0)
	{
		free(buf);
		return NULL;
	}
	return buf;
}

char *
metrics_format_report(const char *model_name, const class_metrics *m)
{
	static const char *const names[METRICS_CLASSES] = {"negative", "neutral", "positive"};
	char	   *buf = NULL;
	size_t		size = 0;
	FILE	   *fp = open_memstream(&buf, &size);

	if (fp == NULL)
		return NULL;
	fprintf(fp, "%s: %lld examples, accuracy %.2f%%\n", model_name, (long long) m->n, 100 * m->accuracy);
	fprintf(fp, "  class      precision  recall     f1  support\n");
	for (int k = 0; k < METRICS_CLASSES; k++)
		fprintf(fp, "  %-9s %9.2f %7.2f %6.2f %8lld\n", names[k], 100 * m->precision[k],
				100 * m->recall[k], 100 * m->f1[k], (long long) m->support[k]);
	fprintf(fp, "  %-9s %9.2f %7.2f %6.2f %8lld\n", "macro", 100 * m->macro_precision,
			100 * m->macro_recall, 100 * m->macro_f1, (long long) m->n);
	fprintf(fp, "  %-9s %9.2f %7.2f %6.2f %8lld\n", "weighted", 100 * m->weighted_precision,
			100 * m->weighted_recall, 100 * m->weighted_f1, (long long) m->n);
	fprintf(fp, "  confusion (rows true, columns predicted: negative neutral positive)\n");
	for (int t = 0; t < METRICS_CLASSES; t++)
		fprintf(fp, "  %-9s %8lld %8lld %8lld\n", names[t], (long long) m->confusion[t][0],
				(long long) m->confusion[t][1], (long long) m->confusion[t][2]);
	if (fclose(fp) != 0)
	{
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * A 5x7 bitmap font (drawn for this file; public domain): upper-case
 * letters, digits and some punctuation.  Lower case is drawn as upper
 * case; anything else as '?'.
 */
typedef struct glyph
{
	char		c;
	const char *rows[7];
} glyph;

static const glyph font5x7[] = {
	{' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
	{'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
	{'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
	{'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
	{'3', {"####.", "....#", "....#", ".###.", "....#", "....#", "####."}},
	{'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
	{'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
	{'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
	{'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
	{'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
	{'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
	{'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
	{'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
	{'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
	{'D', {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."}},
	{'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
	{'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
	{'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
	{'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
	{'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
	{'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
	{'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
	{'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
	{'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
	{'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
	{'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
	{'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
	{'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
	{'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
	{'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
	{'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
	{'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
	{'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
	{'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
	{'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
	{'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
	{'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
	{'%', {"##..#", "##..#", "...#.", "..#..", ".#...", "#..##", "#..##"}},
	{'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
	{',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
	{'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
	{'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
	{'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
	{'/', {"....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."}},
	{'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
	{')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
	{':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
	{'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
	{'\'', {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."}},
	{'#', {".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."}},
	{'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
};

#define FONT_W 5
#define FONT_H 7
#define FONT_SCALE 2
#define CHAR_ADVANCE ((FONT_W + 1) * FONT_SCALE)
#define TEXT_HEIGHT (FONT_H * FONT_SCALE)

static const glyph *
find_glyph(char c)
{
	static const glyph *question = NULL;

	if (c >= 'a' && c <= 'z')
		c = (char) (c - 'a' + 'A');
	for (size_t i = 0; i < sizeof(font5x7) / sizeof(font5x7[0]); i++)
	{
		if (font5x7[i].c == c)
			return &font5x7[i];
		if (font5x7[i].c == '?')
			question = &font5x7[i];
	}
	return question;
}

/* An RGB canvas, (height, width, 3). */
typedef struct canvas
{
	int			width;
	int			height;
	uint8_t    *rgb;
} canvas;

static void
fill_rect(canvas *cv, int x0, int y0, int w, int h, const uint8_t color[3])
{
	for (int y = y0 < 0 ? 0 : y0; y < y0 + h && y < cv->height; y++)
		for (int x = x0 < 0 ? 0 : x0; x < x0 + w && x < cv->width; x++)
			memcpy(cv->rgb + ((size_t) y * cv->width + x) * 3, color, 3);
}

/* Draws text with its top-left corner at (x, y); at most max_chars of it. */
static void
draw_text(canvas *cv, int x, int y, const char *text, int max_chars, const uint8_t color[3])
{
	for (int i = 0; text[i] != '\0' && i < max_chars; i++)
	{
		const glyph *g = find_glyph(text[i]);

		for (int r = 0; r < FONT_H; r++)
			for (int c = 0; c < FONT_W; c++)
				if (g->rows[r][c] == '#')
					fill_rect(cv, x + i * CHAR_ADVANCE + c * FONT_SCALE, y + r * FONT_SCALE,
							  FONT_SCALE, FONT_SCALE, color);
	}
}

static int
text_width(const char *text)
{
	int			n = (int) strlen(text);

	return n > 0 ? n * CHAR_ADVANCE - FONT_SCALE : 0;
}

/* Panel geometry, in pixels. */
#define CELL 104
#define LABEL_W 112				/* row labels */
#define TITLE_Y 10
#define HEADER_Y 52				/* column labels */
#define GRID_Y 74
#define PANEL_W (LABEL_W + 3 * CELL + 24)
#define PANEL_H (GRID_Y + 3 * CELL + 56)

/* Draws the confusion matrix of one model with its left edge at x0. */
static void
draw_panel(canvas *cv, int x0, const char *name, const class_metrics *m)
{
	static const uint8_t black[3] = {0, 0, 0};
	static const uint8_t white[3] = {255, 255, 255};
	static const uint8_t grey[3] = {150, 150, 150};
	static const uint8_t dark[3] = {8, 48, 107};
	char		buf[64];
	int			gx = x0 + LABEL_W;

	draw_text(cv, x0 + 8, TITLE_Y, name, (PANEL_W - 16) / CHAR_ADVANCE, black);
	draw_text(cv, x0 + 4, HEADER_Y - 20, "TRUE", 8, grey);
	draw_text(cv, gx, HEADER_Y - 20, "PREDICTED:", 16, grey);
	for (int k = 0; k < METRICS_CLASSES; k++)
	{
		const char *lab = class_names_upper[k];

		draw_text(cv, gx + k * CELL + (CELL - text_width(lab)) / 2, HEADER_Y, lab, 16, black);
		draw_text(cv, x0 + 4, GRID_Y + k * CELL + (CELL - TEXT_HEIGHT) / 2, lab, 16, black);
	}
	for (int t = 0; t < METRICS_CLASSES; t++)
		for (int p = 0; p < METRICS_CLASSES; p++)
		{
			double		share = m->support[t] > 0 ? (double) m->confusion[t][p] / m->support[t] : 0.0;
			uint8_t		shade[3];
			int			cx = gx + p * CELL,
						cy = GRID_Y + t * CELL;
			const uint8_t *ink = share > 0.45 ? white : black;

			for (int c = 0; c < 3; c++)
				shade[c] = (uint8_t) lround(255.0 + share * ((double) dark[c] - 255.0));
			fill_rect(cv, cx, cy, CELL, CELL, grey);
			fill_rect(cv, cx + 1, cy + 1, CELL - 2, CELL - 2, shade);
			snprintf(buf, sizeof(buf), "%lld", (long long) m->confusion[t][p]);
			draw_text(cv, cx + (CELL - text_width(buf)) / 2, cy + CELL / 2 - TEXT_HEIGHT - 2, buf, 7, ink);
			snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * share);
			draw_text(cv, cx + (CELL - text_width(buf)) / 2, cy + CELL / 2 + 4, buf, 7, ink);
		}
	snprintf(buf, sizeof(buf), "N=%lld ACC %.2f%% F1 %.2f%%", (long long) m->n,
			 100 * m->accuracy, 100 * m->weighted_f1);
	draw_text(cv, x0 + 8, GRID_Y + 3 * CELL + 12, buf, (PANEL_W - 16) / CHAR_ADVANCE, black);
	snprintf(buf, sizeof(buf), "MACRO F1 %.2f%% REC %.2f%%", 100 * m->macro_f1, 100 * m->macro_recall);
	draw_text(cv, x0 + 8, GRID_Y + 3 * CELL + 32, buf, (PANEL_W - 16) / CHAR_ADVANCE, black);
}

/* Writes an RGB canvas as an 8-bit PNG with libpng. */
static mmsa_status
write_png(const char *path, const canvas *cv, mmsa_error *err)
{
	FILE	   *fp = fopen(path, "wb");
	png_structp png = NULL;
	png_infop	info = NULL;
	png_bytep  *volatile rows = NULL;

	if (fp == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not create \"%s\"", path);
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	rows = malloc(sizeof(png_bytep) * cv->height);
	if (png == NULL || info == NULL || rows == NULL)
	{
		png_destroy_write_struct(&png, &info);
		free(rows);
		fclose(fp);
		remove(path);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory writing \"%s\"", path);
	}
	if (setjmp(png_jmpbuf(png)))
	{
		png_destroy_write_struct(&png, &info);
		free(rows);
		fclose(fp);
		remove(path);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\"", path);
	}
	for (int y = 0; y < cv->height; y++)
		rows[y] = cv->rgb + (size_t) y * cv->width * 3;
	png_init_io(png, fp);
	png_set_IHDR(png, info, cv->width, cv->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
				 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	png_write_image(png, rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(rows);
	if (fclose(fp) != 0)
	{
		remove(path);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\"", path);
	}
	return MMSA_OK;
}

mmsa_status
metrics_write_confusion_png(const char *path, const char *const *model_names,
							const class_metrics *m, int n_models, mmsa_error *err)
{
	canvas		cv;
	mmsa_status status;

	if (n_models < 1 || n_models > 64)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "%d models: 1 to 64 fit in one picture", n_models);
	cv.width = n_models * PANEL_W;
	cv.height = PANEL_H;
	cv.rgb = malloc((size_t) cv.width * cv.height * 3);
	if (cv.rgb == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory drawing confusion matrices");
	memset(cv.rgb, 255, (size_t) cv.width * cv.height * 3);
	for (int i = 0; i < n_models; i++)
	{
		if (i > 0)
		{
			static const uint8_t line[3] = {210, 210, 210};

			fill_rect(&cv, i * PANEL_W, 0, 1, cv.height, line);
		}
		draw_panel(&cv, i * PANEL_W, model_names[i], &m[i]);
	}
	status = write_png(path, &cv, err);
	free(cv.rgb);
	return status;
}
