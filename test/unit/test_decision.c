/*
 * test_decision.c
 *	  The decision rule and its search: sentiment_decide_biased by hand
 *	  (zero biases = argmax, first on ties, a zero probability never wins,
 *	  a bias moving a label); decision_choose_bias on a case whose answer is
 *	  worked by hand (neutral under-predicted: b_neutral is the first grid
 *	  step past log(0.6/0.4)), and on random probabilities against an
 *	  exhaustive scan of the grid written here with metrics_compute (no
 *	  admissible rule has a larger macro F1, the accuracy bound holds, the
 *	  reported figures are the rule's); the bound's effect (a larger allowed
 *	  drop never gives a smaller macro F1); bad input.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decision.h"
#include "metrics.h"
#include "sentiment.h"
#include "tap.h"

#define N_RANDOM 400

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static double
rng_uniform(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (double) (rng_state >> 11) / 9007199254740992.0;
}

/* The metrics of the labels of probs under bias. */
static class_metrics
score(const float *probs, const int *labels, int n, const float bias[3])
{
	int		   *pred = malloc(sizeof(int) * n);
	class_metrics m;
	mmsa_error	err;

	decision_apply(probs, n, bias, pred);
	metrics_compute(labels, pred, n, &m, &err);
	free(pred);
	return m;
}

int
main(void)
{
	static float probs[N_RANDOM * 3];
	static int	labels[N_RANDOM];
	const float zero[3] = {0, 0, 0};
	float		bias[3];
	class_metrics before,
				after;
	mmsa_error	err;

	/* ---- the rule itself ---- */
	{
		const float p1[3] = {0.2f, 0.5f, 0.3f},
					tie[3] = {0.4f, 0.2f, 0.4f},
					z[3] = {0.0f, 0.5f, 0.5f},
					p2[3] = {0.5f, 0.3f, 0.2f};
		const float big_neg[3] = {50, 0, 0},
					to_neutral[3] = {0, 0.52f, 0},	/* log(0.5/0.3) = 0.511 */
					short_neutral[3] = {0, 0.50f, 0};

		ok(sentiment_decide_biased(zero, p1) == 1 && sentiment_decide_biased(zero, p2) == 0,
		   "zero biases: the argmax");
		ok(sentiment_decide_biased(zero, tie) == 0 && sentiment_argmax(tie) == 0,
		   "zero biases on a tie: the first, as sentiment_argmax");
		ok(sentiment_decide_biased(big_neg, z) == 1,
		   "a zero probability never wins, whatever its bias (b_neg = 50 on p = 0)");
		ok(sentiment_decide_biased(to_neutral, p2) == 1 &&
		   sentiment_decide_biased(short_neutral, p2) == 0,
		   "b_neutral moves (0.5, 0.3, 0.2) to neutral past log(0.5/0.3) = 0.511, not before");
	}

	/* ---- a case worked by hand ---- */
	{
		/*
		 * 30 negatives (0.8, 0.1, 0.1), 40 positives (0.05, 0.1, 0.85) and
		 * 30 neutrals (0.0, 0.4, 0.6): argmax calls every neutral positive.
		 * Any b_neutral in (log 1.5, log 8.5) = (0.405, 2.14) with b_negative
		 * near 0 labels all 100 right; the smallest |b| wins: (0, 0.45, 0).
		 */
		int			n = 0;

		for (int i = 0; i < 30; i++, n++)
		{
			probs[3 * n] = 0.8f, probs[3 * n + 1] = 0.1f, probs[3 * n + 2] = 0.1f;
			labels[n] = 0;
		}
		for (int i = 0; i < 40; i++, n++)
		{
			probs[3 * n] = 0.05f, probs[3 * n + 1] = 0.1f, probs[3 * n + 2] = 0.85f;
			labels[n] = 2;
		}
		for (int i = 0; i < 30; i++, n++)
		{
			probs[3 * n] = 0.0f, probs[3 * n + 1] = 0.4f, probs[3 * n + 2] = 0.6f;
			labels[n] = 1;
		}
		ok(decision_choose_bias(probs, labels, n, 0.01, bias, &before, &after, &err) == MMSA_OK,
		   "decision_choose_bias on the worked case");
		ok(fabsf(bias[0]) < 1e-6f && fabsf(bias[1] - 0.45f) < 1e-6f && bias[2] == 0,
		   "its rule is (0, 0.45, 0) (got %.2f, %.2f, %.2f)", bias[0], bias[1], bias[2]);
		ok(fabs(before.accuracy - 0.70) < 1e-9 && before.recall[1] == 0,
		   "before: accuracy 0.70, neutral recall 0 (%.4f, %.4f)", before.accuracy, before.recall[1]);
		ok(after.accuracy == 1.0 && after.macro_f1 == 1.0,
		   "after: accuracy 1, macro F1 1 (%.4f, %.4f)", after.accuracy, after.macro_f1);
	}

	/* ---- random probabilities against an exhaustive scan ---- */
	for (int i = 0; i < N_RANDOM; i++)
	{
		/* labels 40% positive, 35% negative, 25% neutral; neutral scored low */
		double		u = rng_uniform(),
					s[3],
					sum = 0;

		labels[i] = u < 0.4 ? 2 : u < 0.75 ? 0 : 1;
		for (int k = 0; k < 3; k++)
		{
			s[k] = exp(2.0 * rng_uniform() + (k == labels[i] ? 0.8 : 0) - (k == 1 ? 0.7 : 0));
			sum += s[k];
		}
		for (int k = 0; k < 3; k++)
			probs[3 * i + k] = (float) (s[k] / sum);
	}
	ok(decision_choose_bias(probs, labels, N_RANDOM, 0.01, bias, &before, &after, &err) == MMSA_OK,
	   "decision_choose_bias on %d random posts", N_RANDOM);
	{
		class_metrics plain = score(probs, labels, N_RANDOM, zero),
					mine = score(probs, labels, N_RANDOM, bias);
		double		best_f1 = -1;
		int			better = 0,
					on_grid = 1;

		ok(plain.accuracy == before.accuracy && plain.macro_f1 == before.macro_f1,
		   "*before is the plain argmax's (acc %.4f, macro F1 %.4f)", plain.accuracy, plain.macro_f1);
		ok(mine.accuracy == after.accuracy && mine.macro_f1 == after.macro_f1 &&
		   memcmp(mine.confusion, after.confusion, sizeof(mine.confusion)) == 0,
		   "*after is the chosen rule's (acc %.4f, macro F1 %.4f)", mine.accuracy, mine.macro_f1);
		ok(after.accuracy >= before.accuracy - 0.01 - 1e-12,
		   "the rule gives up at most 0.01 of accuracy (%.4f -> %.4f)", before.accuracy, after.accuracy);
		ok(after.recall[1] > before.recall[1] && after.macro_f1 > before.macro_f1,
		   "it recognises more neutral posts (recall %.3f -> %.3f) and raises macro F1 (%.4f -> %.4f)",
		   before.recall[1], after.recall[1], before.macro_f1, after.macro_f1);
		for (int k = 0; k < 2; k++)
		{
			double		steps = bias[k] * 20.0;

			on_grid &= fabs(steps - round(steps)) < 1e-4 && steps >= -40 && steps <= 60;
		}
		ok(on_grid && bias[2] == 0, "the rule is on the grid (%.2f, %.2f, %.2f)", bias[0], bias[1],
		   bias[2]);
		for (int i = -40; i <= 60; i++)
			for (int j = -40; j <= 60; j++)
			{
				float		b[3] = {i / 20.0f, j / 20.0f, 0};
				class_metrics m = score(probs, labels, N_RANDOM, b);

				if (m.accuracy < before.accuracy - 0.01 - 1e-12)
					continue;
				if (m.macro_f1 > best_f1)
					best_f1 = m.macro_f1;
				if (m.macro_f1 > after.macro_f1 + 1e-12)
					better++;
			}
		ok(better == 0 && fabs(best_f1 - after.macro_f1) < 1e-12,
		   "exhaustive scan of the 101 x 101 grid: no admissible rule has a larger macro F1 "
		   "(best %.4f, %d better)", best_f1, better);
	}
	{
		float		loose[3],
					strict[3];
		class_metrics b0,
					a_loose,
					a_strict;

		decision_choose_bias(probs, labels, N_RANDOM, 0.10, loose, &b0, &a_loose, &err);
		decision_choose_bias(probs, labels, N_RANDOM, 0.0, strict, &b0, &a_strict, &err);
		ok(a_loose.macro_f1 >= after.macro_f1 && after.macro_f1 >= a_strict.macro_f1 &&
		   a_strict.accuracy >= b0.accuracy,
		   "a larger allowed drop never gives a smaller macro F1 (0: %.4f, 0.01: %.4f, 0.10: %.4f); "
		   "drop 0 keeps the accuracy", a_strict.macro_f1, after.macro_f1, a_loose.macro_f1);
	}

	/* ---- bad input ---- */
	ok(decision_choose_bias(probs, labels, 0, 0.01, bias, &before, &after, &err) == MMSA_ERR_INVALID,
	   "n = 0: MMSA_ERR_INVALID");
	labels[7] = 3;
	ok(decision_choose_bias(probs, labels, N_RANDOM, 0.01, bias, &before, &after, &err) ==
	   MMSA_ERR_INVALID, "a label out of 0..2: MMSA_ERR_INVALID (%s)", err.message);
	return tap_done();
}
