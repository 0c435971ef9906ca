/*
 * cmd_tokenize.c
 *	  `mmsa tokenize`: BERT WordPiece token ids of texts.
 *
 *	  mmsa tokenize [--vocab PATH] [--max-length N] [--tokens] [--null] [TEXT ...]
 *
 * Each TEXT gives one output line: its ids ([CLS] ... [SEP]) separated by
 * spaces, or with --tokens the wordpieces themselves.  Without TEXT
 * arguments the texts come from standard input, one per line (a trailing
 * "\n" or "\r\n" is not part of the text), or with --null separated by NUL
 * bytes, so that texts may contain newlines.  A text that cannot be
 * tokenized (invalid UTF-8) prints an empty line and a message on stderr,
 * and the exit status is 1.
 *
 * The vocabulary defaults to $MMSA_ROOT/weights/text/vocab.txt, else to
 * weights/text/vocab.txt next to the directory holding the binary (build/..).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tokenizer.h"

#define TOKENIZE_DEFAULT_MAX_LENGTH 512

typedef struct tokenize_options
{
	int			max_length;
	int			print_tokens;
	int32_t    *ids;			/* max_length entries */
} tokenize_options;

static void
tokenize_usage(FILE *out)
{
	fprintf(out,
			"usage: mmsa tokenize [--vocab PATH] [--max-length N] [--tokens] [--null] [TEXT ...]\n"
			"  Prints, per text, its BERT uncased WordPiece ids [CLS] ... [SEP]\n"
			"  (at most N, default %d), or the wordpieces with --tokens.\n"
			"  Without TEXT, reads texts from stdin: one per line, or NUL-separated\n"
			"  with --null.  PATH defaults to $MMSA_ROOT/weights/text/vocab.txt.\n",
			TOKENIZE_DEFAULT_MAX_LENGTH);
}

/*
 * The default vocabulary path: $MMSA_ROOT/weights/text/vocab.txt, else
 * <directory of the binary>/../weights/text/vocab.txt.
 */
static void
default_vocab_path(char *path, size_t size)
{
	const char *root = getenv("MMSA_ROOT");
	char		exe[PATH_MAX];
	ssize_t		n;
	char	   *slash;

	if (root != NULL && root[0] != '\0')
	{
		snprintf(path, size, "%s/weights/text/vocab.txt", root);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0)
	{
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL)
		{
			*slash = '\0';
			snprintf(path, size, "%s/../weights/text/vocab.txt", exe);
			return;
		}
	}
	snprintf(path, size, "weights/text/vocab.txt");
}

/*
 * Tokenizes one text and prints its line.  Returns 0, or 1 after printing
 * an empty line and the error when the text is rejected.
 */
static int
tokenize_one(const bert_tokenizer *tok, const tokenize_options *opt,
			 const char *text, size_t len, long record)
{
	mmsa_error	err;
	int			n = 0;

	if (bert_tokenize(tok, text, len, opt->max_length, opt->ids, &n, &err) != MMSA_OK)
	{
		putchar('\n');
		fprintf(stderr, "mmsa tokenize: text %ld: %s\n", record, err.message);
		return 1;
	}
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			putchar(' ');
		if (opt->print_tokens)
			fputs(bert_tokenizer_token(tok, opt->ids[i]), stdout);
		else
		{
			/* ids are >= 0: print digits without printf's overhead */
			char		digits[16];
			int			k = sizeof(digits);
			uint32_t	v = (uint32_t) opt->ids[i];

			do
			{
				digits[--k] = '0' + v % 10;
				v /= 10;
			} while (v > 0);
			fwrite(digits + k, 1, sizeof(digits) - k, stdout);
		}
	}
	putchar('\n');
	return 0;
}

/*
 * Reads records separated by sep from stdin and tokenizes each.  A final
 * record without a separator counts; with sep '\n' a "\r" before it is
 * dropped.
 */
static int
tokenize_stream(const bert_tokenizer *tok, const tokenize_options *opt, int sep)
{
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		n;
	long		record = 0;
	int			failed = 0;

	while ((n = getdelim(&line, &cap, sep, stdin)) > 0)
	{
		size_t		len = (size_t) n;

		record++;
		if (line[len - 1] == sep)
			len--;
		if (sep == '\n' && len > 0 && line[len - 1] == '\r')
			len--;
		failed |= tokenize_one(tok, opt, line, len, record);
	}
	if (ferror(stdin))
	{
		fprintf(stderr, "mmsa tokenize: error reading standard input\n");
		failed = 1;
	}
	free(line);
	return failed;
}

int
cmd_tokenize(int argc, char **argv)
{
	tokenize_options opt = {TOKENIZE_DEFAULT_MAX_LENGTH, 0, NULL};
	const char *vocab_path = NULL;
	char		default_path[PATH_MAX + 64];
	int			separator = '\n';
	int			first_text = argc;
	bert_tokenizer *tok = NULL;
	mmsa_error	err;
	int			failed = 0;

	for (int i = 1; i < argc; i++)
	{
		const char *arg = argv[i];

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
		{
			tokenize_usage(stdout);
			return 0;
		}
		else if (strcmp(arg, "--vocab") == 0 && i + 1 < argc)
			vocab_path = argv[++i];
		else if (strcmp(arg, "--max-length") == 0 && i + 1 < argc)
		{
			char	   *end;
			long		v = strtol(argv[++i], &end, 10);

			if (*end != '\0' || end == argv[i] || v < 2 || v > 1000000)
			{
				fprintf(stderr, "mmsa tokenize: --max-length must be an integer from 2 to 1000000\n");
				return 2;
			}
			opt.max_length = (int) v;
		}
		else if (strcmp(arg, "--tokens") == 0)
			opt.print_tokens = 1;
		else if (strcmp(arg, "--null") == 0 || strcmp(arg, "-0") == 0)
			separator = '\0';
		else if (strcmp(arg, "--") == 0)
		{
			first_text = i + 1;
			break;
		}
		else if (arg[0] == '-' && arg[1] == '-')
		{
			fprintf(stderr, "mmsa tokenize: unknown or incomplete option \"%s\"\n", arg);
			tokenize_usage(stderr);
			return 2;
		}
		else
		{
			first_text = i;
			break;
		}
	}

	if (vocab_path == NULL)
	{
		default_vocab_path(default_path, sizeof(default_path));
		vocab_path = default_path;
	}
	if (bert_tokenizer_load(vocab_path, &tok, &err) != MMSA_OK)
	{
		fprintf(stderr, "mmsa tokenize: %s\n", err.message);
		if (err.status == MMSA_ERR_IO)
			fprintf(stderr, "mmsa tokenize: src/tools/fetch-vocab.sh fetches the vocabulary\n");
		return 1;
	}
	opt.ids = malloc((size_t) opt.max_length * sizeof(int32_t));
	if (opt.ids == NULL)
	{
		fprintf(stderr, "mmsa tokenize: out of memory\n");
		bert_tokenizer_free(tok);
		return 1;
	}

	if (first_text < argc)
	{
		for (int i = first_text; i < argc; i++)
			failed |= tokenize_one(tok, &opt, argv[i], strlen(argv[i]), i - first_text + 1);
	}
	else
		failed = tokenize_stream(tok, &opt, separator);

	if (fflush(stdout) != 0)
	{
		fprintf(stderr, "mmsa tokenize: error writing standard output\n");
		failed = 1;
	}
	free(opt.ids);
	bert_tokenizer_free(tok);
	return failed;
}
