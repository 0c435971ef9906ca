/*
 * metrics.h
 *	  Evaluation of 3-class sentiment predictions: accuracy, per-class and
 *	  averaged precision / recall / F1, the confusion matrix, a table in the
 *	  shape of the paper's Table 4, and a PNG picture of confusion matrices.
 *
 * Conventions (those of scikit-learn with labels=[0, 1, 2] and
 * zero_division=0):
 *	  - the confusion matrix has rows = true class, columns = predicted;
 *	  - precision_k = tp / (tp + fp), 0 when class k is never predicted;
 *		recall_k = tp / (tp + fn), 0 when class k never occurs;
 *		f1_k = 2 p r / (p + r), 0 when p + r = 0;
 *	  - "weighted" averages weight each class by its support (true count),
 *		as sklearn's average='weighted'; "macro" averages are plain means
 *		over all three classes (a class absent from both the truth and the
 *		predictions still counts, as 0, because the labels are fixed);
 *	  - macro recall is TweetEval's sentiment metric.
 * Classes are 0 negative, 1 neutral, 2 positive (csv.h's MMSA_*).
 */
#ifndef MMSA_METRICS_H
#define MMSA_METRICS_H

#include <stdint.h>

#include "mmsa_error.h"

#define METRICS_CLASSES 3

typedef struct class_metrics
{
	int64_t		n;				/* examples */
	int64_t		confusion[METRICS_CLASSES][METRICS_CLASSES];	/* [true][pred] */
	int64_t		support[METRICS_CLASSES];	/* true counts */
	int64_t		predicted[METRICS_CLASSES]; /* predicted counts */
	double		accuracy;
	double		precision[METRICS_CLASSES];
	double		recall[METRICS_CLASSES];
	double		f1[METRICS_CLASSES];
	double		weighted_precision;
	double		weighted_recall;
	double		weighted_f1;
	double		macro_precision;
	double		macro_recall;	/* TweetEval */
	double		macro_f1;
} class_metrics;

/*
 * Fills *out from truth and pred, n labels each in 0..2.  A label outside
 * 0..2 (for example an unlabelled -1) is MMSA_ERR_INVALID naming its
 * index; n = 0 is MMSA_ERR_INVALID.
 */
mmsa_status metrics_compute(const int *truth, const int *pred, int64_t n,
							class_metrics *out, mmsa_error *err);

/* Recomputes every rate of *m from m->confusion (metrics_compute's last step). */
void		metrics_from_confusion(class_metrics *m);

/*
 * A table in the shape of the paper's Table 4, as a malloc'ed string (NULL
 * when out of memory):
 *
 *   | Model | Acc/% | Pre/% | Recall/% | F1 score/% | Macro F1/% | N |
 *
 * with weighted precision, recall and F1, as percentages with two decimals,
 * one row per model, in Markdown table syntax.
 */
char	   *metrics_format_table(const char *const *model_names,
								 const class_metrics *m, int n_models);

/*
 * The per-class breakdown and confusion matrix of one model, as a
 * malloc'ed string (NULL when out of memory).
 */
char	   *metrics_format_report(const char *model_name, const class_metrics *m);

/*
 * Writes a PNG with one 3x3 heat-map per model, side by side: each cell
 * shows the count and its share of the true class's row; the shade is that
 * share.  Model names longer than the panel are cut.
 */
mmsa_status metrics_write_confusion_png(const char *path,
										const char *const *model_names,
										const class_metrics *m, int n_models,
										mmsa_error *err);

#endif
