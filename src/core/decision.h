/*
 * decision.h
 *	  Choosing a model's decision rule from out-of-fold probabilities: the
 *	  biases b (log space) of sentiment_decide_biased, label = the k with
 *	  the largest log p_k + b_k.
 *
 * The search (decision_choose_bias): b_positive stays 0; b_negative and
 * b_neutral each run over -2.00 .. +3.00 in steps of 0.05 (101 x 101
 * rules, the plain argmax among them).  A rule is admissible when its
 * accuracy is at most max_accuracy_drop below the plain argmax's; of the
 * admissible rules the one with the largest macro F1 wins, then the one
 * with the smallest |b_negative| + |b_neutral|, then the first in the
 * grid.  `mmsa train` runs it on the heads' out-of-fold probabilities on
 * MVSA-Single train (train_heads.c), never on val.
 */
#ifndef MMSA_DECISION_H
#define MMSA_DECISION_H

#include <stdint.h>

#include "metrics.h"
#include "mmsa_error.h"

#define DECISION_GRID_MIN (-40)	/* bias = i / DECISION_GRID_SCALE */
#define DECISION_GRID_MAX 60
#define DECISION_GRID_SCALE 20.0

/*
 * probs (n, 3) and labels (n, each 0..2): the rule into bias[3], with the
 * metrics of the plain argmax (*before) and of the rule (*after).  n = 0
 * or a label out of range is MMSA_ERR_INVALID.
 */
mmsa_status decision_choose_bias(const float *probs, const int *labels, int64_t n,
								 double max_accuracy_drop, float bias[3],
								 class_metrics *before, class_metrics *after,
								 mmsa_error *err);

/* The labels of probs (n, 3) under bias, into pred (n). */
void		decision_apply(const float *probs, int64_t n, const float bias[3], int *pred);

#endif
