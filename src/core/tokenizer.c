/*
 * tokenizer.c
 *	  BERT uncased WordPiece tokenizer (Hugging Face BertTokenizer semantics,
 *	  see tokenizer.h for the steps).
 *
 *	  The text is validated as UTF-8 first, then streamed code point by code
 *	  point: cleaning and CJK spacing decide where whitespace-delimited
 *	  "segments" end, and each segment goes through NFC, lower-casing, NFD,
 *	  accent stripping, punctuation splitting and WordPiece before the next
 *	  one is read.  Tokenization stops as soon as max_len-2 pieces exist, so
 *	  a long text costs no more than its first few hundred words.
 *
 *	  Working memory lives in a per-call scratch structure (grown with
 *	  realloc, freed on every return path); the tokenizer itself is never
 *	  written after loading.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <jansson.h>
#include <utf8proc.h>

#include "tokenizer.h"

/* Refuse vocabulary files beyond this size (bert-base-uncased: 226 kB). */
#define VOCAB_MAX_BYTES (256L * 1024 * 1024)

/* Longest canonical decomposition of one code point (Unicode: 4). */
#define MAX_DECOMPOSITION 8

struct bert_tokenizer
{
	char	   *pool;			/* every token, NUL-terminated, in id order */
	uint32_t   *offsets;		/* offsets[id]: start of token id in pool */
	uint32_t   *lengths;		/* lengths[id]: its length in bytes */
	int32_t		n_tokens;
	uint32_t	max_token_bytes;	/* length of the longest token */
	int32_t    *slots;			/* open-addressing hash table of ids, -1 empty */
	uint32_t   *slot_hashes;	/* hash of the token in each slot */
	uint32_t	slot_mask;		/* number of slots - 1 (a power of two) */
	int32_t		pad_id;
	int32_t		unk_id;
	int32_t		cls_id;
	int32_t		sep_id;
	int			tweet_normalization;	/* see tokenizer.h */
};

/* ---- vocabulary ---------------------------------------------------------- */

/*
 * 32-bit FNV-1a hash of len bytes.
 */
static uint32_t
fnv1a_hash(const char *s, size_t len)
{
	uint32_t	h = 2166136261u;

	for (size_t i = 0; i < len; i++)
	{
		h ^= (unsigned char) s[i];
		h *= 16777619u;
	}
	return h;
}

/*
 * Slot of token s (len bytes): the slot holding it, or the empty slot where
 * it would go.
 */
static uint32_t
vocab_find_slot(const bert_tokenizer *tok, const char *s, size_t len, uint32_t hash)
{
	uint32_t	i = hash & tok->slot_mask;

	for (;;)
	{
		int32_t		id = tok->slots[i];

		if (id < 0)
			return i;
		if (tok->slot_hashes[i] == hash && tok->lengths[id] == len &&
			memcmp(tok->pool + tok->offsets[id], s, len) == 0)
			return i;
		i = (i + 1) & tok->slot_mask;
	}
}

int32_t
bert_tokenizer_lookup(const bert_tokenizer *tok, const char *token, size_t len)
{
	uint32_t	hash = fnv1a_hash(token, len);

	return tok->slots[vocab_find_slot(tok, token, len, hash)];
}

/*
 * Decodes one code point of s[0..len-1], strictly: no overlong forms, no
 * surrogates, nothing above U+10FFFF.  Returns the number of bytes used,
 * or 0 for an invalid or truncated sequence.
 */
static int
utf8_decode(const unsigned char *s, size_t len, int32_t *cp)
{
	unsigned char c = s[0];

	if (c < 0x80)
	{
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF)
	{
		if (len < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		*cp = ((int32_t) (c & 0x1F) << 6) | (s[1] & 0x3F);
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF)
	{
		if (len < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
			return 0;			/* overlong, or a UTF-16 surrogate */
		*cp = ((int32_t) (c & 0x0F) << 12) | ((int32_t) (s[1] & 0x3F) << 6) | (s[2] & 0x3F);
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4)
	{
		if (len < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
			(s[3] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
			return 0;			/* overlong, or beyond U+10FFFF */
		*cp = ((int32_t) (c & 0x07) << 18) | ((int32_t) (s[1] & 0x3F) << 12) |
			((int32_t) (s[2] & 0x3F) << 6) | (s[3] & 0x3F);
		return 4;
	}
	return 0;
}

/*
 * Byte offset of the first invalid UTF-8 sequence in s[0..len-1], or -1
 * when it is all valid.
 */
static long
utf8_first_invalid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < len)
	{
		int32_t		cp;
		int			n;

		if (p[i] < 0x80)
		{
			i++;
			continue;
		}
		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0)
			return (long) i;
		i += n;
	}
	return -1;
}

/* Encodes cp as UTF-8 into out (room for 4 bytes); returns the byte count. */
static int
utf8_encode(int32_t cp, char *out)
{
	unsigned char *o = (unsigned char *) out;

	if (cp < 0x80)
	{
		o[0] = cp;
		return 1;
	}
	if (cp < 0x800)
	{
		o[0] = 0xC0 | (cp >> 6);
		o[1] = 0x80 | (cp & 0x3F);
		return 2;
	}
	if (cp < 0x10000)
	{
		o[0] = 0xE0 | (cp >> 12);
		o[1] = 0x80 | ((cp >> 6) & 0x3F);
		o[2] = 0x80 | (cp & 0x3F);
		return 3;
	}
	o[0] = 0xF0 | (cp >> 18);
	o[1] = 0x80 | ((cp >> 12) & 0x3F);
	o[2] = 0x80 | ((cp >> 6) & 0x3F);
	o[3] = 0x80 | (cp & 0x3F);
	return 4;
}

/*
 * Reads a whole file into a NUL-terminated malloc'ed buffer.
 */
static mmsa_status
read_file(const char *path, char **data, size_t *size, mmsa_error *err)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	size_t		used = 0,
				cap = 0;

	if (f == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not open vocabulary file \"%s\"", path);
	for (;;)
	{
		size_t		n;

		if (cap - used < 65536)
		{
			char	   *grown;

			if (cap >= (size_t) VOCAB_MAX_BYTES)
			{
				free(buf);
				fclose(f);
				return mmsa_set_error(err, MMSA_ERR_LIMIT,
									  "vocabulary file \"%s\" is larger than %ld bytes",
									  path, VOCAB_MAX_BYTES);
			}
			cap = cap == 0 ? 262144 : cap * 2;
			grown = realloc(buf, cap + 1);
			if (grown == NULL)
			{
				free(buf);
				fclose(f);
				return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory reading \"%s\"", path);
			}
			buf = grown;
		}
		n = fread(buf + used, 1, cap - used, f);
		used += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
	{
		free(buf);
		fclose(f);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not read vocabulary file \"%s\"", path);
	}
	fclose(f);
	buf[used] = '\0';
	*data = buf;
	*size = used;
	return MMSA_OK;
}

/*
 * Looks up a special token that the vocabulary must have.
 */
static mmsa_status
require_special(bert_tokenizer *tok, const char *name, int32_t *id,
				const char *path, mmsa_error *err)
{
	*id = bert_tokenizer_lookup(tok, name, strlen(name));
	if (*id < 0)
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "vocabulary file \"%s\" has no %s token", path, name);
	return MMSA_OK;
}

/*
 * Reads the tokenizer_config.json beside vocab_path, when there is one:
 * "tweet_normalization" (true or false; absent: false).  Other keys are
 * Hugging Face's and describe the tokenizer this one already is.
 */
static mmsa_status
read_config(bert_tokenizer *tok, const char *vocab_path, mmsa_error *err)
{
	char		path[4096];
	const char *slash = strrchr(vocab_path, '/');
	int			dir_len = slash ? (int) (slash - vocab_path) : 1;
	const char *dir = slash ? vocab_path : ".";
	json_error_t jerr;
	json_t	   *root,
			   *v;
	FILE	   *f;

	if (snprintf(path, sizeof(path), "%.*s/%s", dir_len, dir, BERT_TOKENIZER_CONFIG) >=
		(int) sizeof(path))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "path too long: %s", vocab_path);
	f = fopen(path, "rb");
	if (f == NULL)
	{
		if (errno == ENOENT)
			return MMSA_OK;
		return mmsa_set_error(err, MMSA_ERR_IO, "could not open \"%s\"", path);
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (root == NULL || !json_is_object(root))
	{
		json_decref(root);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is not a JSON object%s%s",
							  path, root == NULL ? ": " : "", root == NULL ? jerr.text : "");
	}
	v = json_object_get(root, "tweet_normalization");
	if (v != NULL && !json_is_boolean(v))
	{
		json_decref(root);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "\"tweet_normalization\" in \"%s\" must be true or false", path);
	}
	tok->tweet_normalization = v != NULL && json_is_true(v);
	json_decref(root);
	return MMSA_OK;
}

/*
 * Loads vocab.txt.  Lines end in \n, \r\n or \r (Python's universal
 * newlines, as Hugging Face's load_vocab reads it); line i is token id i;
 * a token that repeats keeps the id of its last line, as in a Python dict.
 */
mmsa_status
bert_tokenizer_load(const char *vocab_path, bert_tokenizer **out, mmsa_error *err)
{
	bert_tokenizer *tok;
	char	   *data = NULL;
	size_t		size = 0;
	size_t		n_lines = 0;
	size_t		n_slots;
	long		bad;
	mmsa_status st;

	*out = NULL;
	if (vocab_path == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "no vocabulary file given");
	st = read_file(vocab_path, &data, &size, err);
	if (st != MMSA_OK)
		return st;
	if (size == 0)
	{
		free(data);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "vocabulary file \"%s\" is empty", vocab_path);
	}
	bad = utf8_first_invalid(data, size);
	if (bad >= 0)
	{
		free(data);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "vocabulary file \"%s\" is not valid UTF-8 (byte %ld)",
							  vocab_path, bad);
	}

	/* Count lines: every terminator ends one, plus an unterminated last one. */
	for (size_t i = 0; i < size; i++)
	{
		if (data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n')))
			n_lines++;
	}
	if (data[size - 1] != '\n' && data[size - 1] != '\r')
		n_lines++;
	if (n_lines > (size_t) INT32_MAX / 4)
	{
		free(data);
		return mmsa_set_error(err, MMSA_ERR_LIMIT, "vocabulary file \"%s\" has too many lines", vocab_path);
	}

	n_slots = 16;
	while (n_slots < 2 * n_lines)
		n_slots *= 2;

	tok = calloc(1, sizeof(bert_tokenizer));
	if (tok == NULL)
	{
		free(data);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory loading the vocabulary");
	}
	tok->pool = data;
	tok->offsets = malloc(n_lines * sizeof(uint32_t));
	tok->lengths = malloc(n_lines * sizeof(uint32_t));
	tok->slots = malloc(n_slots * sizeof(int32_t));
	tok->slot_hashes = malloc(n_slots * sizeof(uint32_t));
	tok->slot_mask = (uint32_t) (n_slots - 1);
	if (tok->offsets == NULL || tok->lengths == NULL || tok->slots == NULL ||
		tok->slot_hashes == NULL)
	{
		bert_tokenizer_free(tok);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory loading the vocabulary");
	}
	memset(tok->slots, 0xFF, n_slots * sizeof(int32_t));	/* all -1 */

	/* Split in place: each terminator becomes the token's NUL. */
	{
		size_t		start = 0;
		int32_t		id = 0;

		for (size_t i = 0; i <= size && (size_t) id < n_lines; i++)
		{
			uint32_t	hash;
			uint32_t	slot;

			if (i < size && data[i] != '\n' && data[i] != '\r')
				continue;
			tok->offsets[id] = (uint32_t) start;
			tok->lengths[id] = (uint32_t) (i - start);
			if (tok->lengths[id] > tok->max_token_bytes)
				tok->max_token_bytes = tok->lengths[id];
			hash = fnv1a_hash(data + start, i - start);
			slot = vocab_find_slot(tok, data + start, i - start, hash);
			tok->slots[slot] = id;	/* a repeated token takes the later id */
			tok->slot_hashes[slot] = hash;
			tok->n_tokens = ++id;
			if (i < size && data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
				data[i++] = '\0';
			if (i < size)
				data[i] = '\0';
			start = i + 1;
		}
	}

	if ((st = require_special(tok, "[PAD]", &tok->pad_id, vocab_path, err)) != MMSA_OK ||
		(st = require_special(tok, "[UNK]", &tok->unk_id, vocab_path, err)) != MMSA_OK ||
		(st = require_special(tok, "[CLS]", &tok->cls_id, vocab_path, err)) != MMSA_OK ||
		(st = require_special(tok, "[SEP]", &tok->sep_id, vocab_path, err)) != MMSA_OK)
	{
		bert_tokenizer_free(tok);
		return st;
	}
	if ((st = read_config(tok, vocab_path, err)) != MMSA_OK)
	{
		bert_tokenizer_free(tok);
		return st;
	}
	*out = tok;
	return MMSA_OK;
}

void
bert_tokenizer_set_tweet_normalization(bert_tokenizer *tok, int on)
{
	tok->tweet_normalization = on != 0;
}

int
bert_tokenizer_tweet_normalization(const bert_tokenizer *tok)
{
	return tok->tweet_normalization;
}

mmsa_status
bert_tokenizer_write_config(const char *dir, int tweet_normalization, mmsa_error *err)
{
	char		path[4096];
	json_t	   *o;
	int			rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, BERT_TOKENIZER_CONFIG) >= (int) sizeof(path))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "path too long: %s", dir);
	/* strip_accents null: accents follow lower-casing, as Hugging Face writes it */
	o = json_pack("{s:s, s:b, s:b, s:n, s:b}",
				  "tokenizer_class", "BertTokenizer",
				  "do_lower_case", 1,
				  "tokenize_chinese_chars", 1,
				  "strip_accents",
				  "tweet_normalization", tweet_normalization != 0);
	if (o == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (rc != 0)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\"", path);
	return MMSA_OK;
}

void
bert_tokenizer_free(bert_tokenizer *tok)
{
	if (tok == NULL)
		return;
	free(tok->pool);
	free(tok->offsets);
	free(tok->lengths);
	free(tok->slots);
	free(tok->slot_hashes);
	free(tok);
}

int32_t
bert_tokenizer_vocab_size(const bert_tokenizer *tok)
{
	return tok->n_tokens;
}

int32_t
bert_tokenizer_pad_id(const bert_tokenizer *tok)
{
	return tok->pad_id;
}

int32_t
bert_tokenizer_unk_id(const bert_tokenizer *tok)
{
	return tok->unk_id;
}

int32_t
bert_tokenizer_cls_id(const bert_tokenizer *tok)
{
	return tok->cls_id;
}

int32_t
bert_tokenizer_sep_id(const bert_tokenizer *tok)
{
	return tok->sep_id;
}

const char *
bert_tokenizer_token(const bert_tokenizer *tok, int32_t id)
{
	if (id < 0 || id >= tok->n_tokens)
		return NULL;
	return tok->pool + tok->offsets[id];
}

/* ---- character classes (Hugging Face's, on utf8proc's Unicode data) ------ */

/*
 * HF _is_whitespace: \t \n \r and category Zs.  (Other control characters
 * that Python calls whitespace are dropped as controls before this.)
 */
static int
is_bert_whitespace(int32_t c)
{
	if (c < 0x80)
		return c == ' ' || c == '\t' || c == '\n' || c == '\r';
	return utf8proc_category(c) == UTF8PROC_CATEGORY_ZS;
}

/*
 * HF _is_control: category C* (Cc, Cf, Cs, Co, Cn), except \t \n \r.
 */
static int
is_bert_control(int32_t c)
{
	if (c < 0x80)
		return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
	switch (utf8proc_category(c))
	{
		case UTF8PROC_CATEGORY_CC:
		case UTF8PROC_CATEGORY_CF:
		case UTF8PROC_CATEGORY_CS:
		case UTF8PROC_CATEGORY_CO:
		case UTF8PROC_CATEGORY_CN:
			return 1;
		default:
			return 0;
	}
}

/*
 * HF _is_punctuation: the ASCII non-alphanumeric printable characters,
 * whatever their category ($, +, <, ^, ` ... are symbols), and category P*.
 */
static int
is_bert_punctuation(int32_t c)
{
	if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) ||
		(c >= 91 && c <= 96) || (c >= 123 && c <= 126))
		return 1;
	if (c < 0x80)
		return 0;
	switch (utf8proc_category(c))
	{
		case UTF8PROC_CATEGORY_PC:
		case UTF8PROC_CATEGORY_PD:
		case UTF8PROC_CATEGORY_PS:
		case UTF8PROC_CATEGORY_PE:
		case UTF8PROC_CATEGORY_PI:
		case UTF8PROC_CATEGORY_PF:
		case UTF8PROC_CATEGORY_PO:
			return 1;
		default:
			return 0;
	}
}

/*
 * HF _is_chinese_char: the CJK Unified Ideographs blocks (not Japanese
 * kana or Korean hangul, which are tokenized like other letters).
 */
static int
is_cjk_ideograph(int32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) ||
		(c >= 0x3400 && c <= 0x4DBF) ||
		(c >= 0x20000 && c <= 0x2A6DF) ||
		(c >= 0x2A700 && c <= 0x2B73F) ||
		(c >= 0x2B740 && c <= 0x2B81F) ||
		(c >= 0x2B820 && c <= 0x2CEAF) ||
		(c >= 0xF900 && c <= 0xFAFF) ||
		(c >= 0x2F800 && c <= 0x2FA1F);
}

/*
 * Separators of Python's str.split() that survive cleaning: the line and
 * paragraph separators (Zl, Zp).  Every other Python whitespace character
 * is either mapped to ' ' (Zs, \t \n \r) or dropped (\v \f \x1c-\x1f
 * \x85 are Cc) by the cleaning step.
 */
static int
is_python_only_whitespace(int32_t c)
{
	return c == 0x2028 || c == 0x2029;
}

/*
 * Python's Case_Ignorable property (used by the final-sigma rule of
 * str.lower()): categories Mn, Me, Cf, Lm, Sk, plus Word_Break MidLetter,
 * MidNumLet and Single_Quote.
 */
static int
is_case_ignorable(int32_t c)
{
	switch (c)
	{
		case 0x0027: case 0x002E: case 0x003A: case 0x00B7: case 0x0387:
		case 0x055F: case 0x05F4: case 0x2018: case 0x2019: case 0x2024:
		case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07:
		case 0xFF0E: case 0xFF1A:
			return 1;
		default:
			break;
	}
	switch (utf8proc_category(c))
	{
		case UTF8PROC_CATEGORY_MN:
		case UTF8PROC_CATEGORY_ME:
		case UTF8PROC_CATEGORY_CF:
		case UTF8PROC_CATEGORY_LM:
		case UTF8PROC_CATEGORY_SK:
			return 1;
		default:
			return 0;
	}
}

/*
 * Python's Cased property: categories Lu, Ll, Lt plus Other_Lowercase and
 * Other_Uppercase.  Only the members of those two lists that are not
 * case-ignorable anyway (and so would be skipped first) are listed; the
 * list was checked against Python 3.11's str.lower() for every code point.
 */
static int
is_cased(int32_t c)
{
	switch (utf8proc_category(c))
	{
		case UTF8PROC_CATEGORY_LU:
		case UTF8PROC_CATEGORY_LL:
		case UTF8PROC_CATEGORY_LT:
			return 1;
		default:
			break;
	}
	return c == 0x00AA || c == 0x00BA ||
		(c >= 0x2160 && c <= 0x217F) ||	/* Roman numerals */
		(c >= 0x24B6 && c <= 0x24E9) ||	/* circled letters */
		(c >= 0x1F130 && c <= 0x1F149) ||	/* squared letters */
		(c >= 0x1F150 && c <= 0x1F169) ||	/* negative circled letters */
		(c >= 0x1F170 && c <= 0x1F189);	/* negative squared letters */
}

/*
 * Python's lower-case of the capital sigma at s[i] in s[0..n-1]: final
 * sigma (U+03C2) when a cased letter precedes it and none follows, case-
 * ignorable characters skipped on both sides; otherwise U+03C3.
 */
static int32_t
lower_sigma(const int32_t *s, size_t n, size_t i)
{
	size_t		j;
	int			final = 0;

	for (j = i; j > 0; j--)
		if (!is_case_ignorable(s[j - 1]))
			break;
	final = j > 0 && is_cased(s[j - 1]);
	if (final)
	{
		for (j = i + 1; j < n; j++)
			if (!is_case_ignorable(s[j]))
				break;
		final = j == n || !is_cased(s[j]);
	}
	return final ? 0x03C2 : 0x03C3;
}

/* ---- per-call working memory --------------------------------------------- */

typedef struct tokenize_scratch
{
	int32_t    *segment;		/* code points of the current segment */
	size_t		segment_len;
	size_t		segment_cap;
	int32_t    *buf_a;			/* normalization buffers */
	size_t		buf_a_cap;
	int32_t    *buf_b;
	size_t		buf_b_cap;
	uint32_t	byte_offsets[BERT_MAX_WORD_CHARS + 1];
	int32_t		word_pieces[BERT_MAX_WORD_CHARS];
	char		key_storage[2 + 4 * BERT_MAX_WORD_CHARS];	/* "##" + UTF-8 of a word */

	/* output */
	int32_t    *pieces;			/* where the next piece goes */
	int			n_pieces;
	int			max_pieces;
} tokenize_scratch;

static void
scratch_free(tokenize_scratch *s)
{
	free(s->segment);
	free(s->buf_a);
	free(s->buf_b);
}

/*
 * Makes *buf hold at least need code points.
 */
static mmsa_status
grow_buffer(int32_t **buf, size_t *cap, size_t need, mmsa_error *err)
{
	int32_t    *grown;
	size_t		new_cap;

	if (need <= *cap)
		return MMSA_OK;
	new_cap = *cap < 256 ? 256 : *cap;
	while (new_cap < need)
		new_cap *= 2;
	if (new_cap > SIZE_MAX / sizeof(int32_t))
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "text too long to tokenize");
	grown = realloc(*buf, new_cap * sizeof(int32_t));
	if (grown == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory tokenizing a text");
	*buf = grown;
	*cap = new_cap;
	return MMSA_OK;
}

/* ---- normalization steps ------------------------------------------------- */

/*
 * Canonical decomposition (NFD, without the reordering) of in[0..n-1] into
 * *out; returns the length in *out_len.
 */
static mmsa_status
decompose_canonical(const int32_t *in, size_t n, int32_t **out, size_t *out_cap,
					size_t *out_len, mmsa_error *err)
{
	size_t		len = 0;
	mmsa_status st;

	st = grow_buffer(out, out_cap, n * 2 + MAX_DECOMPOSITION, err);
	if (st != MMSA_OK)
		return st;
	for (size_t i = 0; i < n; i++)
	{
		int32_t		c = in[i];
		int			boundclass = 0;
		utf8proc_ssize_t k;

		if (len + MAX_DECOMPOSITION > *out_cap)
		{
			st = grow_buffer(out, out_cap, len + MAX_DECOMPOSITION + (n - i) * 2, err);
			if (st != MMSA_OK)
				return st;
		}
		if (c < 0xC0)
		{
			(*out)[len++] = c;	/* nothing below U+00C0 decomposes */
			continue;
		}
		k = utf8proc_decompose_char(c, *out + len, MAX_DECOMPOSITION,
									UTF8PROC_DECOMPOSE, &boundclass);
		if (k < 0 || k > MAX_DECOMPOSITION)
			return mmsa_set_error(err, MMSA_ERR_INVALID,
								  "could not decompose U+%04X", (unsigned) c);
		len += k;
	}
	*out_len = len;
	return MMSA_OK;
}

/*
 * Canonical ordering: combining marks (combining class > 0) between two
 * starters sorted stably by combining class, as utf8proc and Python do.
 */
static void
canonical_reorder(int32_t *s, size_t n)
{
	for (size_t i = 1; i < n; i++)
	{
		int32_t		c = s[i];
		size_t		j = i;
		int			cc;

		if (c < 0x300)
			continue;			/* no combining marks below U+0300 */
		cc = utf8proc_get_property(c)->combining_class;
		if (cc == 0)
			continue;
		while (j > 0)
		{
			int			prev_cc = utf8proc_get_property(s[j - 1])->combining_class;

			if (prev_cc <= cc)
				break;
			s[j] = s[j - 1];
			j--;
		}
		s[j] = c;
	}
}

/*
 * NFC of in[0..n-1] into *out (length *out_len).
 */
static mmsa_status
normalize_nfc(const int32_t *in, size_t n, int32_t **out, size_t *out_cap,
			  size_t *out_len, mmsa_error *err)
{
	size_t		len;
	utf8proc_ssize_t composed;
	mmsa_status st;
	int			simple = 1;

	/* Text below U+0300 is already NFC: no decompositions, no combining. */
	for (size_t i = 0; i < n; i++)
		if (in[i] >= 0x300)
		{
			simple = 0;
			break;
		}
	if (simple)
	{
		st = grow_buffer(out, out_cap, n, err);
		if (st != MMSA_OK)
			return st;
		memcpy(*out, in, n * sizeof(int32_t));
		*out_len = n;
		return MMSA_OK;
	}

	st = decompose_canonical(in, n, out, out_cap, &len, err);
	if (st != MMSA_OK)
		return st;
	canonical_reorder(*out, len);
	composed = utf8proc_normalize_utf32(*out, (utf8proc_ssize_t) len,
										UTF8PROC_COMPOSE | UTF8PROC_STABLE);
	if (composed < 0)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "NFC normalization failed: %s",
							  utf8proc_errmsg(composed));
	*out_len = (size_t) composed;
	return MMSA_OK;
}

/*
 * Python's str.lower() of in[0..n-1] into *out: simple lower-case mapping,
 * except U+0130 (-> "i" U+0307) and the final sigma.
 */
static mmsa_status
lower_python(const int32_t *in, size_t n, int32_t **out, size_t *out_cap,
			 size_t *out_len, mmsa_error *err)
{
	size_t		len = 0;
	mmsa_status st;

	st = grow_buffer(out, out_cap, 2 * n, err);
	if (st != MMSA_OK)
		return st;
	for (size_t i = 0; i < n; i++)
	{
		int32_t		c = in[i];

		if (c < 0x80)
			(*out)[len++] = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
		else if (c == 0x0130)
		{
			(*out)[len++] = 0x0069;
			(*out)[len++] = 0x0307;
		}
		else if (c == 0x03A3)
			(*out)[len++] = lower_sigma(in, n, i);
		else
			(*out)[len++] = utf8proc_tolower(c);
	}
	*out_len = len;
	return MMSA_OK;
}

/*
 * HF _run_strip_accents: NFD, then drop nonspacing marks (category Mn).
 */
static mmsa_status
strip_accents(const int32_t *in, size_t n, int32_t **out, size_t *out_cap,
			  size_t *out_len, mmsa_error *err)
{
	size_t		len,
				kept = 0;
	mmsa_status st;

	st = decompose_canonical(in, n, out, out_cap, &len, err);
	if (st != MMSA_OK)
		return st;
	canonical_reorder(*out, len);
	for (size_t i = 0; i < len; i++)
	{
		int32_t		c = (*out)[i];

		if (c >= 0x300 && utf8proc_category(c) == UTF8PROC_CATEGORY_MN)
			continue;
		(*out)[kept++] = c;
	}
	*out_len = kept;
	return MMSA_OK;
}

/* ---- WordPiece ----------------------------------------------------------- */

/* Appends one piece; returns 1 when the output is now full. */
static int
emit_piece(tokenize_scratch *s, int32_t id)
{
	if (s->n_pieces < s->max_pieces)
		s->pieces[s->n_pieces++] = id;
	return s->n_pieces >= s->max_pieces;
}

/*
 * Greedy longest-match-first WordPiece of one word (code points
 * word[0..n-1], no whitespace, no punctuation unless it is a single
 * punctuation character).  Pieces after the first are looked up with "##".
 * A word longer than BERT_MAX_WORD_CHARS, or with a position where no
 * piece matches, becomes a single [UNK].
 */
static void
wordpiece_word(const bert_tokenizer *tok, tokenize_scratch *s, const int32_t *word, size_t n)
{
	char	   *bytes = s->key_storage + 2;	/* UTF-8 of the word */
	size_t		n_pieces = 0;
	size_t		start = 0;

	if (n == 0)
		return;
	if (n > BERT_MAX_WORD_CHARS)
	{
		emit_piece(s, tok->unk_id);
		return;
	}
	s->byte_offsets[0] = 0;
	for (size_t i = 0; i < n; i++)
		s->byte_offsets[i + 1] = s->byte_offsets[i] + utf8_encode(word[i], bytes + s->byte_offsets[i]);

	while (start < n)
	{
		int32_t		found = -1;
		size_t		end;
		const char *key;
		size_t		prefix;

		if (start == 0)
		{
			key = bytes;
			prefix = 0;
		}
		else
		{
			/* "##" + the rest of the word, contiguous in key_storage */
			size_t		rest = s->byte_offsets[n] - s->byte_offsets[start];

			memmove(s->key_storage + 2, bytes + s->byte_offsets[start], rest);
			memcpy(s->key_storage, "##", 2);
			/* the word's bytes moved: rebase the offsets */
			for (size_t i = n; i + 1 > start; i--)
				s->byte_offsets[i] -= s->byte_offsets[start];
			key = s->key_storage;
			prefix = 2;
		}
		/* longest candidate first; keys longer than any token cannot match */
		end = n;
		while (end > start &&
			   prefix + s->byte_offsets[end] - s->byte_offsets[start] > tok->max_token_bytes)
			end--;
		for (; end > start; end--)
		{
			size_t		key_len = prefix + s->byte_offsets[end] - s->byte_offsets[start];

			found = bert_tokenizer_lookup(tok, key, key_len);
			if (found >= 0)
				break;
		}
		if (found < 0)
		{
			emit_piece(s, tok->unk_id);
			return;
		}
		s->word_pieces[n_pieces++] = found;
		start = end;
	}
	for (size_t i = 0; i < n_pieces; i++)
		if (emit_piece(s, s->word_pieces[i]))
			return;
}

/*
 * Tweet normalisation of a segment (tokenizer.h): "@" and more becomes
 * "@user", "http" and anything becomes "http".
 */
static mmsa_status
tweet_normalize_segment(tokenize_scratch *s, mmsa_error *err)
{
	const char *to = NULL;
	size_t		n = s->segment_len;
	mmsa_status st;

	if (n > 1 && s->segment[0] == '@')
		to = "@user";
	else if (n >= 4 && s->segment[0] == 'h' && s->segment[1] == 't' &&
			 s->segment[2] == 't' && s->segment[3] == 'p')
		to = "http";
	if (to == NULL)
		return MMSA_OK;
	n = strlen(to);
	if ((st = grow_buffer(&s->segment, &s->segment_cap, n, err)) != MMSA_OK)
		return st;
	for (size_t i = 0; i < n; i++)
		s->segment[i] = (unsigned char) to[i];
	s->segment_len = n;
	return MMSA_OK;
}

/*
 * Tokenizes one whitespace-delimited segment (cleaned code points, no
 * whitespace): NFC, lower, strip accents, split on punctuation, WordPiece.
 */
static mmsa_status
process_segment(const bert_tokenizer *tok, tokenize_scratch *s, mmsa_error *err)
{
	size_t		len = 0,
				word_start;
	mmsa_status st;
	int32_t    *text;

	if (s->segment_len == 0)
		return MMSA_OK;
	if (tok->tweet_normalization &&
		(st = tweet_normalize_segment(s, err)) != MMSA_OK)
		return st;
	st = normalize_nfc(s->segment, s->segment_len, &s->buf_a, &s->buf_a_cap, &len, err);
	if (st == MMSA_OK)
		st = lower_python(s->buf_a, len, &s->buf_b, &s->buf_b_cap, &len, err);
	if (st == MMSA_OK)
		st = strip_accents(s->buf_b, len, &s->buf_a, &s->buf_a_cap, &len, err);
	s->segment_len = 0;
	if (st != MMSA_OK)
		return st;

	text = s->buf_a;
	word_start = 0;
	for (size_t i = 0; i < len && s->n_pieces < s->max_pieces; i++)
	{
		if (!is_bert_punctuation(text[i]))
			continue;
		wordpiece_word(tok, s, text + word_start, i - word_start);
		if (s->n_pieces < s->max_pieces)
			wordpiece_word(tok, s, text + i, 1);
		word_start = i + 1;
	}
	if (s->n_pieces < s->max_pieces)
		wordpiece_word(tok, s, text + word_start, len - word_start);
	return MMSA_OK;
}

/* Appends c to the current segment. */
static mmsa_status
segment_append(tokenize_scratch *s, int32_t c, mmsa_error *err)
{
	if (s->segment_len == s->segment_cap)
	{
		mmsa_status st = grow_buffer(&s->segment, &s->segment_cap, s->segment_len + 1, err);

		if (st != MMSA_OK)
			return st;
	}
	s->segment[s->segment_len++] = c;
	return MMSA_OK;
}

mmsa_status
bert_tokenize(const bert_tokenizer *tok, const char *text, size_t len,
			  int max_len, int32_t *ids, int *n_ids, mmsa_error *err)
{
	tokenize_scratch s;
	const unsigned char *p = (const unsigned char *) text;
	size_t		i = 0;
	long		bad;
	mmsa_status st = MMSA_OK;

	if (n_ids != NULL)
		*n_ids = 0;
	if (tok == NULL || ids == NULL || n_ids == NULL || (text == NULL && len > 0))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "bert_tokenize: NULL argument");
	if (max_len < 2)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "maximum sequence length %d is too small: [CLS] and [SEP] need 2",
							  max_len);
	bad = utf8_first_invalid(text, len);
	if (bad >= 0)
		return mmsa_set_error(err, MMSA_ERR_INVALID,
							  "text is not valid UTF-8 (invalid byte sequence at offset %ld)", bad);

	memset(&s, 0, offsetof(tokenize_scratch, byte_offsets));
	s.pieces = ids + 1;
	s.max_pieces = max_len - 2;
	s.n_pieces = 0;

	while (i < len && s.n_pieces < s.max_pieces)
	{
		int32_t		c = 0;

		i += utf8_decode(p + i, len - i, &c);	/* validated above */
		if (c == 0 || c == 0xFFFD || is_bert_control(c))
			continue;
		if (is_bert_whitespace(c) || is_python_only_whitespace(c))
			st = process_segment(tok, &s, err);
		else if (is_cjk_ideograph(c))
		{
			/* an ideograph is a segment of its own */
			st = process_segment(tok, &s, err);
			if (st == MMSA_OK)
				st = segment_append(&s, c, err);
			if (st == MMSA_OK)
				st = process_segment(tok, &s, err);
		}
		else
			st = segment_append(&s, c, err);
		if (st != MMSA_OK)
			break;
	}
	if (st == MMSA_OK && s.n_pieces < s.max_pieces)
		st = process_segment(tok, &s, err);
	scratch_free(&s);
	if (st != MMSA_OK)
		return st;

	ids[0] = tok->cls_id;
	ids[s.n_pieces + 1] = tok->sep_id;
	*n_ids = s.n_pieces + 2;
	return MMSA_OK;
}

mmsa_status
bert_tokenize_padded(const bert_tokenizer *tok, const char *text, size_t len,
					 int max_len, int32_t *ids, int32_t *attention_mask,
					 int *n_ids, mmsa_error *err)
{
	int			n = 0;
	mmsa_status st;

	if (attention_mask == NULL)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "bert_tokenize_padded: NULL attention mask");
	st = bert_tokenize(tok, text, len, max_len, ids, &n, err);
	if (n_ids != NULL)
		*n_ids = n;
	if (st != MMSA_OK)
		return st;
	for (int i = 0; i < max_len; i++)
	{
		if (i >= n)
			ids[i] = tok->pad_id;
		attention_mask[i] = i < n;
	}
	return MMSA_OK;
}
