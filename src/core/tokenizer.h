/*
 * tokenizer.h
 *	  BERT uncased WordPiece tokenizer: the semantics of Hugging Face's
 *	  BertTokenizer with do_lower_case=True, tokenize_chinese_chars=True,
 *	  strip_accents=None (accents stripped because text is lower-cased).
 *
 *	  text --(basic tokenization)--> words --(WordPiece)--> pieces
 *	       --> [CLS] pieces[0 .. max_len-3] [SEP]
 *
 *	  Basic tokenization, in Hugging Face's order:
 *	    1. drop U+0000, U+FFFD and control characters (category C*, except
 *	       \t \n \r), map whitespace (\t \n \r, category Zs) to a space;
 *	    2. surround CJK ideographs with spaces;
 *	    3. NFC;
 *	    4. split on whitespace (Python's str.split());
 *	    5. per token: Python's str.lower() (final sigma, U+0130 -> i +
 *	       U+0307), then NFD and drop category Mn (accents);
 *	    6. split off every punctuation character (ASCII 33-47, 58-64, 91-96,
 *	       123-126 and category P*) as a word of its own.
 *	  WordPiece: greedy longest-match-first over each word, "##" marking
 *	  continuation pieces; [UNK] for a word longer than 100 code points or
 *	  one that cannot be covered by vocabulary pieces.
 *
 *	  Tweet normalisation (optional, off unless the model asks for it): a
 *	  tokenizer_config.json beside vocab.txt with "tweet_normalization": true
 *	  (or bert_tokenizer_set_tweet_normalization) makes the tokenizer replace,
 *	  after step 2, every whitespace-delimited word that starts with "@" and
 *	  has more characters by "@user", and every one that starts with "http"
 *	  by "http": TweetEval's convention (its texts come with user names so
 *	  replaced), so that a text encoder trained that way sees neither the
 *	  names nor the links, which it cannot learn from, and sees at inference
 *	  what it saw in training.  The test is on the word as written (before
 *	  lower-casing): "HTTP://..." is kept.
 *
 *	  Text that happens to contain "[CLS]", "[SEP]" etc. is tokenized as
 *	  literal text ("[", "cl", "##s", "]"), like Hugging Face with
 *	  split_special_tokens=True: user text cannot inject control tokens.
 *
 *	  Unicode data comes from utf8proc (Unicode 15.0 for utf8proc 2.8, as
 *	  Python 3.12's unicodedata).  Hugging Face under an older Python (3.11:
 *	  Unicode 14.0) differs on characters added since: it drops them as
 *	  unassigned (category Cn) where this tokenizer keeps them (mostly as
 *	  [UNK]).  The Cased and Case_Ignorable properties behind the final-sigma
 *	  rule are derived from general categories plus a small table, checked
 *	  against Python's str.lower() for every code point.
 *	  test/t/tokenizer_agreement.t compares the whole tweet corpus and
 *	  20,000 synthetic Unicode texts with test/reference/bert_tokenizer_ref.py.
 *
 *	  The tokenizer object is immutable after loading: any number of threads
 *	  may call bert_tokenize() on one tokenizer at the same time.
 */
#ifndef MMSA_TOKENIZER_H
#define MMSA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "mmsa_error.h"

/* Longest word (in code points) that WordPiece splits; longer ones are [UNK]. */
#define BERT_MAX_WORD_CHARS 100

typedef struct bert_tokenizer bert_tokenizer;

/* The file beside vocab.txt that can turn tweet normalisation on. */
#define BERT_TOKENIZER_CONFIG "tokenizer_config.json"

/*
 * Loads a vocab.txt (one token per line, line number = id, as written by
 * Hugging Face), and the tokenizer_config.json in the same directory when
 * there is one (Hugging Face's file; of it only "tweet_normalization" is
 * read).  Fails with MMSA_ERR_IO when a file cannot be read,
 * MMSA_ERR_FORMAT when vocab.txt is empty, not UTF-8, or lacks one of
 * [PAD], [UNK], [CLS], [SEP], or when tokenizer_config.json is not a JSON
 * object or its "tweet_normalization" is not true or false.
 */
mmsa_status bert_tokenizer_load(const char *vocab_path, bert_tokenizer **out,
								mmsa_error *err);

/*
 * Tweet normalisation (see above) on or off.  Only between loading and the
 * first bert_tokenize: the tokenizer is shared read-only after that.
 */
void		bert_tokenizer_set_tweet_normalization(bert_tokenizer *tok, int on);
int			bert_tokenizer_tweet_normalization(const bert_tokenizer *tok);

/*
 * Writes dir/tokenizer_config.json saying whether tweet normalisation is
 * on, with the Hugging Face keys of an uncased BERT tokenizer.
 */
mmsa_status bert_tokenizer_write_config(const char *dir, int tweet_normalization,
										mmsa_error *err);

void		bert_tokenizer_free(bert_tokenizer *tok);

/*
 * Tokenizes text (len bytes of UTF-8, need not be NUL-terminated) into
 * ids[0 .. *n_ids-1] = [CLS] pieces... [SEP], keeping the first max_len-2
 * pieces.  ids must hold max_len entries; max_len >= 2.  Invalid UTF-8
 * gives MMSA_ERR_INVALID.
 */
mmsa_status bert_tokenize(const bert_tokenizer *tok, const char *text, size_t len,
						  int max_len, int32_t *ids, int *n_ids, mmsa_error *err);

/*
 * As bert_tokenize, then pads ids to exactly max_len with [PAD] and fills
 * attention_mask (max_len entries): 1 for real tokens, 0 for padding.
 * n_ids (may be NULL) receives the number of real tokens.
 */
mmsa_status bert_tokenize_padded(const bert_tokenizer *tok, const char *text, size_t len,
								 int max_len, int32_t *ids, int32_t *attention_mask,
								 int *n_ids, mmsa_error *err);

int32_t		bert_tokenizer_vocab_size(const bert_tokenizer *tok);
int32_t		bert_tokenizer_pad_id(const bert_tokenizer *tok);
int32_t		bert_tokenizer_unk_id(const bert_tokenizer *tok);
int32_t		bert_tokenizer_cls_id(const bert_tokenizer *tok);
int32_t		bert_tokenizer_sep_id(const bert_tokenizer *tok);

/* The token string (NUL-terminated) of an id, or NULL when out of range. */
const char *bert_tokenizer_token(const bert_tokenizer *tok, int32_t id);

/* The id of a token string (len bytes), or -1 when not in the vocabulary. */
int32_t		bert_tokenizer_lookup(const bert_tokenizer *tok, const char *token, size_t len);

#endif
