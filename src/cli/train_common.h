/*
 * train_common.h
 *	  Shared pieces of `mmsa train`'s stages (cmd_train.c, train_text.c,
 *	  train_heads.c): the options, progress lines with an ETA, and
 *	  checkpoint files.
 */
#ifndef MMSA_TRAIN_COMMON_H
#define MMSA_TRAIN_COMMON_H

#include <stdint.h>

#include "mmsa_error.h"
#include "optim.h"

typedef struct train_options
{
	const char *data_dir;		/* ../shared/data */
	const char *out_dir;		/* the model directory written */
	const char *work_dir;		/* checkpoints and features */
	const char *image_model;	/* ResNet-50 directory */
	const char *vocab;			/* vocab.txt */
	uint64_t	seed;
	int			threads;
	int			smoke;			/* tiny model and data: a test of the code */
	long		limit;			/* texts per source (0 = all) */

	/* text encoder */
	int			text_layers,
				text_hidden,
				text_heads,
				text_max_len;
	int			text_epochs,
				text_batch,
				mlm_epochs;		/* MLM pre-training epochs first (0: none) */
	float		text_lr,
				text_warmup;	/* share of the steps */
	int			text_normalization; /* tweet normalisation (tokenizer.h): 1
									 * on, 0 off, -1 as the vocabulary's
									 * tokenizer_config.json says */

	/* heads */
	int			head_epochs,
				head_batch;
	float		head_lr;
	long		mvsa_limit;		/* MVSA-Single posts per split (0 = all) */
	int			heads_mask;		/* bit k: (re)train head kind k; 0 = all */
} train_options;

/* One progress line on stderr: what, done/total, rate, elapsed, ETA, extra. */
void		train_progress(const char *what, long done, long total,
						   double t_start_ms, long done_at_start,
						   const char *extra);

/* path = dir/name (fails if too long). */
mmsa_status train_path(char *path, int size, const char *dir, const char *name,
					   mmsa_error *err);

/* mkdir -p dir */
mmsa_status train_mkdir(const char *dir, mmsa_error *err);

/* Copies the file src to dst (nothing to do when they are the same file). */
mmsa_status train_copy_file(const char *src, const char *dst, mmsa_error *err);

/* Whether path exists. */
int			train_exists(const char *path);

/*
 * A training checkpoint: the parameters, the optimizer's moments and its
 * step, and one integer of progress (steps done), in a safetensors file
 * written atomically.  train_checkpoint_load returns MMSA_ERR_IO when the
 * file is missing and MMSA_ERR_FORMAT when it does not fit n_params.
 */
mmsa_status train_checkpoint_save(const char *path, const float *params,
								  const adamw_optimizer *opt, long steps_done,
								  const char *what, mmsa_error *err);
mmsa_status train_checkpoint_load(const char *path, float *params,
								  adamw_optimizer *opt, long *steps_done,
								  const char *what, mmsa_error *err);

#endif
