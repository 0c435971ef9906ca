/*
 * train_stages.h
 *	  The stages of `mmsa train` (cmd_train.c runs them in order).
 */
#ifndef MMSA_TRAIN_STAGES_H
#define MMSA_TRAIN_STAGES_H

#include "tokenizer.h"
#include "train_common.h"

/* Stage 1 (train_text.c): the text encoder, written to OUT/text. */
int			train_text_stage(const train_options *o, const bert_tokenizer *tok);

/*
 * Stage 2 (train_heads.c): the seven heads on MVSA-Single train with the
 * encoders frozen, each kept at its best val epoch, written to OUT/heads,
 * and OUT/model.json naming the best on val as the default.
 * features: the image-feature cache of the posts file posts_csv.
 */
int			train_heads_stage(const train_options *o, const char *posts_csv,
							  const char *features);

#endif
