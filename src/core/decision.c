/*
 * decision.c
 *	  The search for a model's decision biases (see decision.h).
 */
#include <math.h>
#include <stdlib.h>

#include "decision.h"
#include "sentiment.h"

void
decision_apply(const float *probs, int64_t n, const float bias[3], int *pred)
{
	for (int64_t i = 0; i < n; i++)
		pred[i] = sentiment_decide_biased(bias, probs + 3 * i);
}

mmsa_status
decision_choose_bias(const float *probs, const int *labels, int64_t n,
					 double max_accuracy_drop, float bias[3],
					 class_metrics *before, class_metrics *after, mmsa_error *err)
{
	const float zero[3] = {0, 0, 0};
	int		   *pred = malloc(sizeof(int) * (n > 0 ? n : 1));
	double		best_f1 = -1,
				best_norm = 0;
	mmsa_status status;

	bias[0] = bias[1] = bias[2] = 0;
	if (pred == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	decision_apply(probs, n, zero, pred);
	if ((status = metrics_compute(labels, pred, n, before, err)) != MMSA_OK)
		goto done;
	*after = *before;
	for (int i = DECISION_GRID_MIN; i <= DECISION_GRID_MAX; i++)
		for (int j = DECISION_GRID_MIN; j <= DECISION_GRID_MAX; j++)
		{
			float		b[3] = {(float) (i / DECISION_GRID_SCALE), (float) (j / DECISION_GRID_SCALE), 0};
			double		norm = fabs((double) b[0]) + fabs((double) b[1]);
			class_metrics m;

			decision_apply(probs, n, b, pred);
			if ((status = metrics_compute(labels, pred, n, &m, err)) != MMSA_OK)
				goto done;
			if (m.accuracy < before->accuracy - max_accuracy_drop - 1e-12)
				continue;
			if (m.macro_f1 > best_f1 + 1e-12 ||
				(fabs(m.macro_f1 - best_f1) <= 1e-12 && norm < best_norm - 1e-12))
			{
				best_f1 = m.macro_f1;
				best_norm = norm;
				bias[0] = b[0];
				bias[1] = b[1];
				bias[2] = 0;
				*after = m;
			}
		}
done:
	free(pred);
	return status;
}
