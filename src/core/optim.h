/*
 * optim.h
 *	  AdamW with decoupled weight decay, the learning-rate schedule of BERT
 *	  fine-tuning (linear warm-up, then linear decay to zero) and gradient
 *	  clipping by global norm, on plain float arrays.
 *
 * The update is torch.optim.AdamW's (bias-corrected first and second
 * moments, eps added to the corrected square root, weight decay applied as
 * p -= lr * wd * p before the Adam step); the schedule is Hugging Face
 * get_linear_schedule_with_warmup's; the clipping is
 * torch.nn.utils.clip_grad_norm_'s.  Parameters are segments (tensors) of
 * one buffer; the caller says which segments decay (by convention not the
 * LayerNorm weights and biases, nor any bias).
 */
#ifndef MMSA_OPTIM_H
#define MMSA_OPTIM_H

#include "mmsa_error.h"
#include "threadpool.h"

/* One segment of the parameter buffer: [offset, offset + n). */
typedef struct adamw_segment
{
	long		offset;
	long		n;
	int			decay;			/* apply weight decay to it */
} adamw_segment;

typedef struct adamw_optimizer
{
	long		n_params;
	float	   *m;				/* (n_params) first moment */
	float	   *v;				/* (n_params) second moment */
	long		step;			/* updates done so far */
	float		beta1,
				beta2,
				eps,
				weight_decay;
	int			n_segments;
	adamw_segment *segments;
} adamw_optimizer;

/*
 * Makes an optimizer for n_params parameters split into segments (copied;
 * they must cover each parameter at most once; parameters in no segment
 * are not updated), with moments at zero.  Typical BERT values: beta1 0.9,
 * beta2 0.999, eps 1e-6 (BERT) or 1e-8 (torch default), weight_decay 0.01.
 */
mmsa_status adamw_create(long n_params, const adamw_segment *segments,
						 int n_segments, float beta1, float beta2, float eps,
						 float weight_decay, adamw_optimizer **out,
						 mmsa_error *err);

void		adamw_free(adamw_optimizer *opt);

/*
 * One AdamW update of params (n_params) from grads with learning rate lr
 * (increments opt->step first, so bias correction uses step 1 on the first
 * call).
 */
void		adamw_step(adamw_optimizer *opt, float *params, const float *grads,
					   float lr);

/*
 * adamw_step with every segment split between the threads of pool (NULL:
 * adamw_step); each parameter is updated as adamw_step updates it, so the
 * result is the same, bit for bit, whatever the number of threads.
 */
void		adamw_step_parallel(adamw_optimizer *opt, float *params,
								const float *grads, float lr, mmsa_pool *pool);

/*
 * The update of one segment at step t (>= 1), for callers that keep their
 * own moments: the llm.c-style kernel of adamw_step.
 * params, grads, m, v: (n)
 */
void		adamw_update(float *params, const float *grads, float *m, float *v,
						 long n, long t, float lr, float beta1, float beta2,
						 float eps, float weight_decay);

/*
 * The learning rate for update number step (0-based: the step-th call of
 * adamw_step) of total_steps: peak_lr * step / warmup_steps during warm-up,
 * then peak_lr * (total_steps - step) / (total_steps - warmup_steps),
 * never below 0.  This is get_linear_schedule_with_warmup, so the very
 * first update has learning rate 0 when warmup_steps > 0.
 */
float		lr_linear_warmup_decay(long step, long warmup_steps,
								   long total_steps, float peak_lr);

/*
 * Scales grads (n) so that their L2 norm is at most max_norm, as
 * clip_grad_norm_: grads *= max_norm / (norm + 1e-6) when that factor is
 * below 1.  Returns the norm before clipping (summed in double).
 */
float		clip_grad_norm(float *grads, long n, float max_norm);

#endif
