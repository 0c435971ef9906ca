/*
 * test_tokenizer.c
 *	  The BERT uncased WordPiece tokenizer on the bert-base-uncased
 *	  vocabulary: cases from Hugging Face's and Google's documentation and
 *	  test suites, the Unicode corner cases of basic tokenization,
 *	  truncation, invalid UTF-8, bad vocabulary files, and concurrent use.
 *
 *	  The vocabulary is $MMSA_VOCAB, else $MMSA_ROOT/weights/text/vocab.txt,
 *	  else ./weights/text/vocab.txt (src/tools/fetch-vocab.sh writes it); the
 *	  test fails when none exists.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "tokenizer.h"

static char tmpdir[] = "/tmp/mmsa-test-tokenizer-XXXXXX";

/*
 * The wordpieces of text (between [CLS] and [SEP]) joined by spaces into
 * out, or "ERROR <status>" when tokenization fails.
 */
static const char *
pieces_len(const bert_tokenizer *tok, const char *text, size_t len, int max_len)
{
	static char out[8192];
	int32_t		ids[1024];
	int			n = -1;
	mmsa_error	err;
	size_t		used = 0;

	if (bert_tokenize(tok, text, len, max_len, ids, &n, &err) != MMSA_OK)
	{
		snprintf(out, sizeof(out), "ERROR %s", mmsa_status_name(err.status));
		return out;
	}
	out[0] = '\0';
	if (n < 2 || ids[0] != bert_tokenizer_cls_id(tok) ||
		ids[n - 1] != bert_tokenizer_sep_id(tok))
		return "MISSING [CLS]/[SEP]";
	for (int i = 1; i < n - 1; i++)
		used += snprintf(out + used, sizeof(out) - used, "%s%s", i > 1 ? " " : "",
						 bert_tokenizer_token(tok, ids[i]));
	return out;
}

static const char *
pieces(const bert_tokenizer *tok, const char *text)
{
	return pieces_len(tok, text, strlen(text), 512);
}

/* ok() that shows what came out when it differs. */
static void
expect_pieces(const bert_tokenizer *tok, const char *text, const char *expected,
			  const char *name)
{
	const char *got = pieces(tok, text);

	if (!ok(strcmp(got, expected) == 0, "%s", name))
		diag("expected \"%s\", got \"%s\"", expected, got);
}

/* Status of tokenizing len bytes of text. */
static mmsa_status
tokenize_status(const bert_tokenizer *tok, const char *text, size_t len)
{
	int32_t		ids[64];
	int			n;
	mmsa_error	err;

	return bert_tokenize(tok, text, len, 64, ids, &n, &err);
}

/* Writes content (a string) to tmpdir/name; returns the path. */
static const char *
write_file(const char *name, const char *content)
{
	static char path[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		return path;
	fwrite(content, 1, strlen(content), f);
	fclose(f);
	return path;
}

static const char *
find_vocab(void)
{
	static char path[4096];
	const char *env = getenv("MMSA_VOCAB");
	const char *root = getenv("MMSA_ROOT");

	if (env != NULL && env[0] != '\0')
		return env;
	if (root != NULL && root[0] != '\0')
	{
		snprintf(path, sizeof(path), "%s/weights/text/vocab.txt", root);
		return path;
	}
	return "weights/text/vocab.txt";
}

/* ---- concurrent use -------------------------------------------------- */

typedef struct thread_job
{
	const bert_tokenizer *tok;
	int			mismatches;
} thread_job;

static const char *const thread_texts[] = {
	"Hello, my dog is cute",
	"Ça va? Très bien, merci!!! #happy @user http://t.co/xyz",
	"\xe5\x8d\x9a\xe6\x8e\xa8 \xce\x9f\xce\x94\xce\x9f\xce\xa3 \xc4\xb0stanbul",
	"",
};

static void *
tokenize_repeatedly(void *arg)
{
	thread_job *job = arg;
	int32_t		first[4][64];
	int			first_n[4];

	for (int round = 0; round < 2000; round++)
		for (int t = 0; t < 4; t++)
		{
			int32_t		ids[64];
			int			n;
			mmsa_error	err;

			if (bert_tokenize(job->tok, thread_texts[t], strlen(thread_texts[t]), 64,
							  ids, &n, &err) != MMSA_OK)
			{
				job->mismatches++;
				continue;
			}
			if (round == 0)
			{
				memcpy(first[t], ids, sizeof(ids));
				first_n[t] = n;
			}
			else if (n != first_n[t] || memcmp(ids, first[t], n * sizeof(int32_t)) != 0)
				job->mismatches++;
		}
	return NULL;
}

int
main(void)
{
	const char *vocab_path = find_vocab();
	bert_tokenizer *tok = NULL;
	bert_tokenizer *small = NULL;
	mmsa_error	err;
	char		text[512];

	if (mkdtemp(tmpdir) == NULL)
	{
		ok(0, "could not create a temporary directory");
		return tap_done();
	}

	if (!ok(bert_tokenizer_load(vocab_path, &tok, &err) == MMSA_OK,
			"loads the vocabulary %s", vocab_path))
	{
		diag("%s (run src/tools/fetch-vocab.sh, or set MMSA_VOCAB)", err.message);
		rmdir(tmpdir);
		return tap_done();
	}

	/* the vocabulary */
	ok(bert_tokenizer_vocab_size(tok) == 30522, "30522 tokens");
	ok(bert_tokenizer_pad_id(tok) == 0 && bert_tokenizer_unk_id(tok) == 100 &&
	   bert_tokenizer_cls_id(tok) == 101 && bert_tokenizer_sep_id(tok) == 102,
	   "[PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, looked up in the vocabulary");
	ok(strcmp(bert_tokenizer_token(tok, 1), "[unused0]") == 0 &&
	   strcmp(bert_tokenizer_token(tok, 30521), "##\xef\xbd\x9e") == 0,
	   "id -> token: 1 is [unused0], the last is ##\xef\xbd\x9e");
	ok(bert_tokenizer_token(tok, -1) == NULL && bert_tokenizer_token(tok, 30522) == NULL,
	   "id -> token: out of range gives NULL");
	ok(bert_tokenizer_lookup(tok, "hello", 5) == 7592 &&
	   bert_tokenizer_lookup(tok, "##son", 5) >= 0 &&
	   bert_tokenizer_lookup(tok, "no-such-token", 13) == -1,
	   "token -> id lookups");

	/* Hugging Face's documentation: BertModel's example input */
	{
		int32_t		ids[16];
		int			n = 0;
		static const int32_t expected[] = {101, 7592, 1010, 2026, 3899, 2003, 10140, 102};

		ok(bert_tokenize(tok, "Hello, my dog is cute", 21, 16, ids, &n, &err) == MMSA_OK &&
		   n == 8 && memcmp(ids, expected, sizeof(expected)) == 0,
		   "\"Hello, my dog is cute\" -> 101 7592 1010 2026 3899 2003 10140 102");
	}
	/* Google's BERT README */
	expect_pieces(tok, "John Johanson's house", "john johan ##son ' s house",
				  "README example: ## continuation pieces, apostrophe split off");

	/* Hugging Face's BasicTokenizer tests */
	expect_pieces(tok, " \tHeLLo!how  \n Are yoU?  ", "hello ! how are you ?",
				  "lower-casing, whitespace, punctuation");
	expect_pieces(tok, "H\xc3\xa9llo", "hello", "accents: H\xc3\xa9llo -> hello");
	expect_pieces(tok, " \tH\xc3\xa4LLo!how  \n Are yoU?  ", "hall ##o ! how are you ?",
				  "accents stripped by default when lower-casing (hallo)");
	expect_pieces(tok, "He\xcc\x81llo", "hello", "decomposed accent (e + U+0301) stripped");
	expect_pieces(tok, "ah\xe5\x8d\x9a\xe6\x8e\xa8zz", "ah \xe5\x8d\x9a [UNK] z ##z",
				  "CJK ideographs are words of their own");
	expect_pieces(tok, "\xc2\xad", "", "soft hyphen (Cf) is dropped");

	/* punctuation */
	expect_pieces(tok, "a-b.c$d`e", "a - b . c $ d ` e",
				  "ASCII symbols count as punctuation ($ `)");
	expect_pieces(tok, "\xc2\xabhi\xc2\xbb", "\xc2\xab hi \xc2\xbb",
				  "Unicode punctuation (P*) splits");
	expect_pieces(tok, "wow!!!", "wow ! ! !", "every punctuation character is one word");

	/* whitespace and control characters */
	expect_pieces(tok, "a\xc2\xa0" "b", "a b", "NO-BREAK SPACE (Zs) separates");
	expect_pieces(tok, "a\xe2\x80\xa8" "b", "a b", "LINE SEPARATOR separates (Python's str.split)");
	expect_pieces(tok, "a\xe2\x80\x8b" "b", "ab", "ZERO WIDTH SPACE (Cf) is dropped, not a separator");
	expect_pieces(tok, "a\x05" "b\xef\xbf\xbd" "c", "abc", "controls and U+FFFD are dropped");
	ok(strcmp(pieces_len(tok, "a\0b", 3, 512), "ab") == 0, "an embedded NUL is dropped");

	/* Python's str.lower() */
	expect_pieces(tok, "\xc4\xb0stanbul", "istanbul", "U+0130 -> i + U+0307 -> i");
	expect_pieces(tok, "\xce\xa3", "\xcf\x83", "a lone capital sigma -> \xcf\x83");
	expect_pieces(tok, "\xce\x91\xce\xa3.", "\xce\xb1 ##\xcf\x82 .",
				  "final sigma before case-ignorable '.' and the end -> \xcf\x82");
	expect_pieces(tok, "\xce\x91\xce\xa3'\xce\x91", "\xce\xb1 ##\xcf\x83 ' \xce\xb1",
				  "sigma followed by ' and a letter is not final");

	/* [UNK] */
	memset(text, 'a', 101);
	text[101] = '\0';
	expect_pieces(tok, text, "[UNK]", "a 101-character word is [UNK]");
	text[100] = '\0';
	ok(strstr(pieces(tok, text), "[UNK]") == NULL && strstr(pieces(tok, text), "##a") != NULL,
	   "a 100-character word is split into pieces");
	memset(text, 'a', 150);
	memcpy(text + 150, "!b", 3);
	expect_pieces(tok, text, "[UNK] ! b", "the 100-character limit applies after punctuation splitting");
	expect_pieces(tok, "hello\xe2\x98\x83world", "[UNK]",
				  "a word with a character outside the vocabulary is one [UNK]");

	/* empty input and truncation */
	{
		int32_t		ids[8];
		int32_t		mask[8];
		int			n = -1;

		ok(bert_tokenize(tok, "", 0, 8, ids, &n, &err) == MMSA_OK && n == 2 &&
		   ids[0] == 101 && ids[1] == 102, "empty text -> [CLS] [SEP]");
		ok(bert_tokenize(tok, NULL, 0, 8, ids, &n, &err) == MMSA_OK && n == 2,
		   "NULL text of length 0 -> [CLS] [SEP]");
		ok(bert_tokenize(tok, "   \t ", 5, 8, ids, &n, &err) == MMSA_OK && n == 2,
		   "whitespace only -> [CLS] [SEP]");
		ok(strcmp(pieces_len(tok, "a b c d e f g", 13, 5), "a b c") == 0,
		   "max_len 5 keeps the first 3 pieces");
		ok(bert_tokenize(tok, "a b c d e f g", 13, 5, ids, &n, &err) == MMSA_OK && n == 5 &&
		   ids[4] == 102, "truncated output still ends with [SEP]");
		ok(strcmp(pieces_len(tok, "john johanson", 13, 4), "john johan") == 0,
		   "truncation can cut a word between its pieces");
		ok(bert_tokenize(tok, "hello world", 11, 2, ids, &n, &err) == MMSA_OK && n == 2,
		   "max_len 2 -> [CLS] [SEP]");
		ok(bert_tokenize(tok, "hello", 5, 1, ids, &n, &err) == MMSA_ERR_INVALID,
		   "max_len 1 is an error");
		ok(bert_tokenize_padded(tok, "hello world", 11, 6, ids, mask, &n, &err) == MMSA_OK &&
		   n == 4 && ids[0] == 101 && ids[1] == 7592 && ids[3] == 102 &&
		   ids[4] == 0 && ids[5] == 0 &&
		   mask[0] == 1 && mask[3] == 1 && mask[4] == 0 && mask[5] == 0,
		   "padded: [CLS] hello world [SEP] [PAD] [PAD], mask 1 1 1 1 0 0");
	}
	{
		/* a long text stops early but gives exactly max_len ids */
		size_t		len = 1 << 20;
		char	   *big = malloc(len);
		int32_t		ids[512];
		int			n = 0;

		if (big == NULL)
		{
			ok(0, "out of memory");
			return tap_done();
		}
		for (size_t i = 0; i < len; i += 2)
		{
			big[i] = 'x';
			big[i + 1] = ' ';
		}
		ok(bert_tokenize(tok, big, len, 512, ids, &n, &err) == MMSA_OK &&
		   n == 512 && ids[1] == ids[510] && ids[511] == 102,
		   "a 1 MiB text truncates to 512 ids");
		big[len - 1] = (char) 0xff;
		ok(bert_tokenize(tok, big, len, 512, ids, &n, &err) == MMSA_ERR_INVALID,
		   "invalid UTF-8 beyond the truncation point is still an error");
		free(big);
	}

	/* invalid UTF-8 */
	ok(tokenize_status(tok, "\xff", 1) == MMSA_ERR_INVALID, "invalid byte 0xFF -> MMSA_ERR_INVALID");
	ok(tokenize_status(tok, "ok \xc0\x80", 5) == MMSA_ERR_INVALID, "overlong NUL -> MMSA_ERR_INVALID");
	ok(tokenize_status(tok, "\xe0\x80\xaf", 3) == MMSA_ERR_INVALID, "overlong '/' -> MMSA_ERR_INVALID");
	ok(tokenize_status(tok, "\xed\xa0\x80", 3) == MMSA_ERR_INVALID, "UTF-16 surrogate -> MMSA_ERR_INVALID");
	ok(tokenize_status(tok, "\xf4\x90\x80\x80", 4) == MMSA_ERR_INVALID, "beyond U+10FFFF -> MMSA_ERR_INVALID");
	ok(tokenize_status(tok, "caf\xc3", 4) == MMSA_ERR_INVALID, "truncated sequence -> MMSA_ERR_INVALID");
	ok(tokenize_status(tok, "\x80", 1) == MMSA_ERR_INVALID, "lone continuation byte -> MMSA_ERR_INVALID");
	ok(tokenize_status(tok, "\xf0\x9f\x98\x80", 4) == MMSA_OK, "a 4-byte emoji is valid");

	/* concurrent use of one tokenizer */
	{
		pthread_t	threads[4];
		thread_job	jobs[4];
		int			mismatches = 0;

		for (int t = 0; t < 4; t++)
		{
			jobs[t].tok = tok;
			jobs[t].mismatches = 0;
			pthread_create(&threads[t], NULL, tokenize_repeatedly, &jobs[t]);
		}
		for (int t = 0; t < 4; t++)
		{
			pthread_join(threads[t], NULL);
			mismatches += jobs[t].mismatches;
		}
		ok(mismatches == 0, "4 threads on one tokenizer agree with themselves (%d mismatches)",
		   mismatches);
	}

	/* bad vocabulary files */
	ok(bert_tokenizer_load(write_file("none", ""), &small, &err) == MMSA_ERR_FORMAT &&
	   small == NULL, "empty vocabulary file -> MMSA_ERR_FORMAT");
	ok(bert_tokenizer_load("/nonexistent/vocab.txt", &small, &err) == MMSA_ERR_IO,
	   "missing vocabulary file -> MMSA_ERR_IO");
	ok(bert_tokenizer_load(write_file("nocls", "[PAD]\n[UNK]\n[SEP]\nhello\n"), &small, &err)
	   == MMSA_ERR_FORMAT && strstr(err.message, "[CLS]") != NULL,
	   "vocabulary without [CLS] -> MMSA_ERR_FORMAT naming it");
	ok(bert_tokenizer_load(write_file("latin1", "[PAD]\n[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n"),
						   &small, &err) == MMSA_ERR_FORMAT,
	   "vocabulary that is not UTF-8 -> MMSA_ERR_FORMAT");
	{
		static const char crlf[] = "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhel\r\n##lo\r\nhel\r\n!";

		if (ok(bert_tokenizer_load(write_file("crlf", crlf), &small, &err)
			   == MMSA_OK, "CRLF vocabulary without a final newline loads"))
		{
			ok(bert_tokenizer_vocab_size(small) == 8 && bert_tokenizer_cls_id(small) == 2,
			   "  with 8 tokens and [CLS] 2");
			ok(bert_tokenizer_lookup(small, "hel", 3) == 6,
			   "  a repeated token takes its last id, as in Hugging Face's dict");
			ok(strcmp(pieces(small, "Hello!"), "hel ##lo !") == 0 &&
			   strcmp(pieces(small, "help"), "[UNK]") == 0,
			   "  and tokenizes with it");
			bert_tokenizer_free(small);
		}
	}

	/* tweet normalisation: tokenizer_config.json beside vocab.txt, or set */
	{
		static const char voc[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n@\nuser\nhttp\nbob\n##s\n:\n中\nx\n";
		char		vpath[512];
		bert_tokenizer *t = NULL;

		snprintf(vpath, sizeof(vpath), "%s", write_file("vocab.txt", voc));

		if (ok(bert_tokenizer_load(vpath, &t, &err) == MMSA_OK &&
			   !bert_tokenizer_tweet_normalization(t),
			   "no tokenizer_config.json: tweet normalisation off"))
		{
			expect_pieces(t, "@bob http://x", "@ bob http : [UNK] [UNK] x",
						  "  names and links tokenized as written");
			bert_tokenizer_set_tweet_normalization(t, 1);
			expect_pieces(t, "@bob: http://x/y https bobs", "@ user http http bob ##s",
						  "  set on: \"@bob:\" -> @user, \"http...\" -> http");
			expect_pieces(t, "@ x @\t\x01@x\xe4\xb8\xadhttp htt HTTP:x",
						  "@ x @ @ user 中 http [UNK] http : x",
						  "  a lone @ stays, a control is dropped first, a CJK ideograph ends the word, case counts");
			expect_pieces(t, "bob@bob (@bob)", "bob @ bob [UNK] @ bob [UNK]",
						  "  only at the start of a word");
			bert_tokenizer_free(t);
		}
		ok(bert_tokenizer_write_config(tmpdir, 1, &err) == MMSA_OK &&
		   bert_tokenizer_load(vpath, &t, &err) == MMSA_OK &&
		   bert_tokenizer_tweet_normalization(t),
		   "bert_tokenizer_write_config(on) and a load beside it: on");
		bert_tokenizer_free(t);
		t = NULL;
		ok(bert_tokenizer_write_config(tmpdir, 0, &err) == MMSA_OK &&
		   bert_tokenizer_load(vpath, &t, &err) == MMSA_OK &&
		   !bert_tokenizer_tweet_normalization(t),
		   "bert_tokenizer_write_config(off): off");
		bert_tokenizer_free(t);
		t = NULL;
		write_file("tokenizer_config.json", "{\"do_lower_case\": true}");
		ok(bert_tokenizer_load(vpath, &t, &err) == MMSA_OK && !bert_tokenizer_tweet_normalization(t),
		   "a Hugging Face tokenizer_config.json without the key: off");
		bert_tokenizer_free(t);
		t = NULL;
		write_file("tokenizer_config.json", "{\"tweet_normalization\": 1}");
		ok(bert_tokenizer_load(vpath, &t, &err) == MMSA_ERR_FORMAT && t == NULL &&
		   strstr(err.message, "true or false") != NULL,
		   "\"tweet_normalization\": 1 -> MMSA_ERR_FORMAT");
		write_file("tokenizer_config.json", "{\"tweet_normalization\": true, \"tweet_normalization\": false}");
		ok(bert_tokenizer_load(vpath, &t, &err) == MMSA_ERR_FORMAT && t == NULL,
		   "a key given twice -> MMSA_ERR_FORMAT");
		write_file("tokenizer_config.json", "");
		ok(bert_tokenizer_load(vpath, &t, &err) == MMSA_ERR_FORMAT && t == NULL &&
		   strstr(err.message, "tokenizer_config.json") != NULL,
		   "an empty tokenizer_config.json -> MMSA_ERR_FORMAT naming it");
	}
	{
		static const char *const names[] = {"none", "nocls", "latin1", "crlf", "vocab.txt",
		"tokenizer_config.json"};
		char		path[512];

		for (int i = 0; i < 6; i++)
		{
			snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
			unlink(path);
		}
	}
	rmdir(tmpdir);

	bert_tokenizer_free(tok);
	bert_tokenizer_free(NULL);
	return tap_done();
}
