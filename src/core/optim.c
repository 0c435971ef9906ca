/*
 * optim.c
 *	  AdamW, the linear warm-up/decay schedule and gradient clipping (see
 *	  optim.h).
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

mmsa_status
adamw_create(long n_params, const adamw_segment *segments, int n_segments,
			 float beta1, float beta2, float eps, float weight_decay,
			 adamw_optimizer **out, mmsa_error *err)
{
	adamw_optimizer *opt;

	*out = NULL;
	if (n_params < 1 || n_segments < 1)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "AdamW needs parameters (got %ld in %d segments)",
							  n_params, n_segments);
	for (int i = 0; i < n_segments; i++)
		if (segments[i].offset < 0 || segments[i].n < 0 ||
			segments[i].offset + segments[i].n > n_params)
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "AdamW segment %d [%ld, +%ld) outside the %ld parameters",
								  i, segments[i].offset, segments[i].n, n_params);
	if (!(beta1 >= 0.0f && beta1 < 1.0f && beta2 >= 0.0f && beta2 < 1.0f &&
		  eps > 0.0f && weight_decay >= 0.0f))
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "AdamW hyperparameters out of range (beta1 %g, beta2 %g, eps %g, weight decay %g)",
							  beta1, beta2, eps, weight_decay);
	opt = calloc(1, sizeof(adamw_optimizer));
	if (opt == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	opt->m = calloc(n_params, sizeof(float));
	opt->v = calloc(n_params, sizeof(float));
	opt->segments = malloc(n_segments * sizeof(adamw_segment));
	if (opt->m == NULL || opt->v == NULL || opt->segments == NULL)
	{
		adamw_free(opt);
		return mmsa_set_error(err, MMSA_ERR_NOMEM,
							  "out of memory for AdamW moments (%ld parameters)", n_params);
	}
	memcpy(opt->segments, segments, n_segments * sizeof(adamw_segment));
	opt->n_segments = n_segments;
	opt->n_params = n_params;
	opt->beta1 = beta1;
	opt->beta2 = beta2;
	opt->eps = eps;
	opt->weight_decay = weight_decay;
	*out = opt;
	return MMSA_OK;
}

void
adamw_free(adamw_optimizer *opt)
{
	if (opt == NULL)
		return;
	free(opt->m);
	free(opt->v);
	free(opt->segments);
	free(opt);
}

/*
 * As torch.optim.AdamW (single-tensor path):
 *	 p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *	 p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
void
adamw_update(float *params, const float *grads, float *m, float *v, long n,
			 long t, float lr, float beta1, float beta2, float eps,
			 float weight_decay)
{
	float		bc1 = 1.0f - powf(beta1, (float) t);
	float		bc2_sqrt = sqrtf(1.0f - powf(beta2, (float) t));
	float		step_size = lr / bc1;
	float		shrink = 1.0f - lr * weight_decay;

	for (long i = 0; i < n; i++)
	{
		float		g = grads[i];
		float		mi = m[i] + (g - m[i]) * (1.0f - beta1);
		float		vi = v[i] * beta2 + (1.0f - beta2) * g * g;

		m[i] = mi;
		v[i] = vi;
		params[i] = params[i] * shrink - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
	}
}

void
adamw_step(adamw_optimizer *opt, float *params, const float *grads, float lr)
{
	opt->step++;
	for (int i = 0; i < opt->n_segments; i++)
	{
		const adamw_segment *s = &opt->segments[i];

		adamw_update(params + s->offset, grads + s->offset, opt->m + s->offset,
					 opt->v + s->offset, s->n, opt->step, lr, opt->beta1,
					 opt->beta2, opt->eps, s->decay ? opt->weight_decay : 0.0f);
	}
}

/* One thread's part of adamw_step_parallel: a slice of every segment. */
typedef struct adamw_job
{
	const adamw_optimizer *opt;
	float	   *params;
	const float *grads;
	float		lr;
} adamw_job;

static void
adamw_thread(void *arg, int t, int nthreads)
{
	const adamw_job *j = arg;
	const adamw_optimizer *opt = j->opt;

	for (int i = 0; i < opt->n_segments; i++)
	{
		const adamw_segment *s = &opt->segments[i];
		long		lo,
					hi;

		mmsa_pool_share(s->n, t, nthreads, 1, &lo, &hi);
		adamw_update(j->params + s->offset + lo, j->grads + s->offset + lo,
					 opt->m + s->offset + lo, opt->v + s->offset + lo, hi - lo,
					 opt->step, j->lr, opt->beta1, opt->beta2, opt->eps,
					 s->decay ? opt->weight_decay : 0.0f);
	}
}

void
adamw_step_parallel(adamw_optimizer *opt, float *params, const float *grads,
					float lr, mmsa_pool *pool)
{
	adamw_job	j = {opt, params, grads, lr};

	if (pool == NULL)
	{
		adamw_step(opt, params, grads, lr);
		return;
	}
	opt->step++;
	mmsa_pool_run(pool, adamw_thread, &j);
}

float
lr_linear_warmup_decay(long step, long warmup_steps, long total_steps,
					   float peak_lr)
{
	double		f;

	if (step < warmup_steps)
		f = (double) step / (double) (warmup_steps > 1 ? warmup_steps : 1);
	else
	{
		long		span = total_steps - warmup_steps;

		f = (double) (total_steps - step) / (double) (span > 1 ? span : 1);
		if (f < 0.0)
			f = 0.0;
	}
	return (float) (peak_lr * f);
}

float
clip_grad_norm(float *grads, long n, float max_norm)
{
	double		sumsq = 0.0;
	float		norm;
	float		coef;

	for (long i = 0; i < n; i++)
		sumsq += (double) grads[i] * grads[i];
	norm = (float) sqrt(sumsq);
	coef = max_norm / (norm + 1e-6f);
	if (coef < 1.0f)
		for (long i = 0; i < n; i++)
			grads[i] *= coef;
	return norm;
}
