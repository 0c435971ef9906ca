/*
 * test_csv.c
 *	  The strict CSV reader and the posts loader: quoting, escapes, embedded
 *	  commas and newlines, CRLF, UTF-8, malformed input with line numbers,
 *	  and the real data files (from MMSA_DATA, default ../shared/data).
 */
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "tap.h"

static int
parses(const char *text, csv_table *t, mmsa_error *err)
{
	return csv_parse(text, strlen(text), "t.csv", t, err) == MMSA_OK;
}

/* The text must be refused with a format error whose message contains want. */
static void
refused(const char *text, const char *want, const char *what)
{
	csv_table	t;
	mmsa_error	err = {0};
	int			r = csv_parse(text, strlen(text), "t.csv", &t, &err);

	ok(r == MMSA_ERR_FORMAT && strstr(err.message, want) != NULL && t.cells == NULL,
	   "refused: %s (\"%s\")", what, err.message);
}

int
main(void)
{
	csv_table	t;
	mmsa_error	err = {0};
	const char *data = getenv("MMSA_DATA") ? getenv("MMSA_DATA") : "../shared/data";
	char		path[4096];

	/* quoting, "" escapes, embedded comma / LF / CRLF, empty fields, UTF-8 */
	ok(parses("id,split,label,text\r\n"
			  "1,train,positive,\"a, b\"\r\n"
			  "2,val,,\"say \"\"hi\"\"\nnext line\r\nthird\"\r\n"
			  "3,test,negative,caf\xC3\xA9 \xF0\x9F\x98\x80\r\n"
			  "4,train,neutral,\"\"\n", &t, &err), "tricky CSV parses (%s)", err.message);
	ok(t.n_columns == 4 && t.n_rows == 4, "4 columns, 4 rows (got %d, %lld)", t.n_columns, (long long) t.n_rows);
	if (t.n_rows == 4)
	{
		ok(strcmp(csv_cell(&t, 0, 3), "a, b") == 0, "embedded comma");
		ok(strcmp(csv_cell(&t, 1, 2), "") == 0, "empty unquoted field");
		ok(strcmp(csv_cell(&t, 1, 3), "say \"hi\"\nnext line\r\nthird") == 0, "escaped quotes, LF and CRLF kept inside quotes");
		ok(strcmp(csv_cell(&t, 2, 3), "caf\xC3\xA9 \xF0\x9F\x98\x80") == 0, "UTF-8 kept byte for byte");
		ok(strcmp(csv_cell(&t, 3, 3), "") == 0, "empty quoted field");
		ok(t.row_line[0] == 2 && t.row_line[1] == 3 && t.row_line[2] == 6 && t.row_line[3] == 7,
		   "record start lines 2,3,6,7 (got %lld,%lld,%lld,%lld)", (long long) t.row_line[0],
		   (long long) t.row_line[1], (long long) t.row_line[2], (long long) t.row_line[3]);
		ok(csv_column(&t, "label") == 2 && csv_column(&t, "nope") == -1, "csv_column");
	}
	csv_free(&t);

	ok(parses("\xEF\xBB\xBF" "a,b\n1,2", &t, &err) && t.n_rows == 1 &&
	   strcmp(t.columns[0], "a") == 0 && strcmp(csv_cell(&t, 0, 1), "2") == 0,
	   "BOM skipped, no final newline");
	csv_free(&t);
	ok(parses("a\n", &t, &err) && t.n_rows == 0 && t.n_columns == 1, "header only");
	csv_free(&t);

	refused("a,b\n1,2\n3\n", "t.csv:3: 1 field, but the header has 2", "missing column");
	refused("a,b\n1,2\n3,4,5\n", "t.csv:3: 3 fields", "extra column");
	refused("a,b\n1,\"x\ny\",\n", "t.csv:2: 3 fields", "field count reported at the record's first line");
	refused("a,b\n1,\"open\n\n", "t.csv:2: quoted field never closed", "unterminated quote");
	refused("a,b\n1,\"x\"y\n", "t.csv:2: unexpected character 'y' after a closing quote", "text after closing quote");
	refused("a,b\n\"multi\nline\",1\n2,x\"y\n", "t.csv:4: quote inside an unquoted field", "stray quote, line counted past embedded newline");
	refused("a,b\r1,2\n", "t.csv:1: carriage return not followed", "bare CR");
	refused("a,b\n1,\xC3\x28\n", "t.csv:2: invalid UTF-8", "invalid UTF-8");
	refused("a,b\n1,\xC0\xAF\n", "invalid UTF-8", "overlong UTF-8");
	refused("a,b\n1,\xED\xA0\x80\n", "invalid UTF-8", "UTF-8 surrogate");
	refused("a,b\n1,\xE2\x82", "invalid UTF-8", "truncated UTF-8 at end of file");
	refused("", "empty file", "empty file");
	{
		csv_table	t2;
		mmsa_error	e2 = {0};

		ok(csv_parse("a,b\n1,x\0y\n", 10, "t.csv", &t2, &e2) == MMSA_ERR_FORMAT &&
		   strstr(e2.message, "t.csv:2: NUL byte") != NULL, "refused: NUL byte (\"%s\")", e2.message);
	}
	refused("a,a\n1,2\n", "column \"a\" appears twice", "duplicate header");

	/* posts loader on a written file */
	{
		const char *tmp = getenv("MMSA_TMP") ? getenv("MMSA_TMP") : "/tmp";
		FILE	   *fp;
		mmsa_posts	p;

		snprintf(path, sizeof(path), "%s/test_csv_posts.csv", tmp);
		fp = fopen(path, "w");
		fputs("text,label,id,split\n\"x, y\",positive,7,train\nz,,9,test\nw,negative,3,train\n", fp);
		fclose(fp);
		ok(posts_load(path, "train", &p, &err) == MMSA_OK && p.n == 2 &&
		   strcmp(p.ids[0], "7") == 0 && p.numeric_ids[0] == 7 &&
		   p.labels[0] == MMSA_POSITIVE && strcmp(p.texts[0], "x, y") == 0 &&
		   p.numeric_ids[1] == 3 && p.labels[1] == MMSA_NEGATIVE && p.lines[1] == 4,
		   "posts_load: columns in any order, split filter (%s)", err.message);
		posts_free(&p);
		ok(posts_load(path, NULL, &p, &err) == MMSA_OK && p.n == 3 && p.labels[1] == MMSA_UNLABELLED,
		   "posts_load: all rows, empty label is -1");
		posts_free(&p);

		fp = fopen(path, "w");
		fputs("id,split,label,text\n1,train,positive,a\n2,train,happy,b\n", fp);
		fclose(fp);
		ok(posts_load(path, NULL, &p, &err) == MMSA_ERR_FORMAT && strstr(err.message, ":3: label \"happy\""),
		   "bad label refused with its line (%s)", err.message);
		fp = fopen(path, "w");
		fputs("id,split,label,text\n1,train,positive,a\nx-1,train,neutral,b\n", fp);
		fclose(fp);
		ok(posts_load(path, NULL, &p, &err) == MMSA_OK && p.numeric_ids == NULL && strcmp(p.ids[1], "x-1") == 0,
		   "non-numeric id: kept as text, numeric_ids NULL");
		posts_free(&p);
		fp = fopen(path, "w");
		fputs("id,split,label,text\n1,train,positive,a\n,train,neutral,b\n", fp);
		fclose(fp);
		ok(posts_load(path, NULL, &p, &err) == MMSA_ERR_FORMAT && strstr(err.message, ":3: empty id"),
		   "empty id refused (%s)", err.message);
		fp = fopen(path, "w");
		fputs("id,split,label,text\n5,train,positive,a\n6,val,neutral,b\n5,val,neutral,b\n", fp);
		fclose(fp);
		ok(posts_load(path, NULL, &p, &err) == MMSA_OK &&
		   posts_check_unique_ids(&p, path, &err) == MMSA_ERR_FORMAT && strstr(err.message, ":4: id 5 appears more than once"),
		   "duplicate id found by posts_check_unique_ids (%s)", err.message);
		posts_free(&p);
		fp = fopen(path, "w");
		fputs("id,label,text\n5,positive,a\n", fp);
		fclose(fp);
		ok(posts_load(path, NULL, &p, &err) == MMSA_ERR_FORMAT && strstr(err.message, "lacks column \"split\""),
		   "missing column refused (%s)", err.message);
		ok(posts_load("/nonexistent/posts.csv", NULL, &p, &err) == MMSA_ERR_IO, "missing file: I/O error");
		remove(path);
	}

	/* the real files */
	{
		mmsa_posts	p;
		int			count[3] = {0};
		mmsa_status r;

		snprintf(path, sizeof(path), "%s/mvsa-single/posts.csv", data);
		r = posts_load(path, NULL, &p, &err);
		ok(r == MMSA_OK && p.n == 4511 && p.numeric_ids != NULL &&
		   posts_check_unique_ids(&p, path, &err) == MMSA_OK,
		   "mvsa-single: 4511 posts with integer ids (got %lld) %s", (long long) p.n, r ? err.message : "");
		posts_free(&p);
		ok(posts_load(path, "val", &p, &err) == MMSA_OK && p.n == 801, "mvsa-single val: 801 rows");
		for (int64_t i = 0; i < p.n; i++)
			if (p.labels[i] >= 0)
				count[p.labels[i]]++;
		ok(count[0] == 239 && count[1] == 84 && count[2] == 478,
		   "mvsa-single val: 239 negative / 84 neutral / 478 positive (got %d/%d/%d)", count[0], count[1], count[2]);
		posts_free(&p);
		ok(posts_load(path, "train", &p, &err) == MMSA_OK && p.n == 3199, "mvsa-single train: 3199 rows");
		posts_free(&p);
		ok(posts_load(path, "test", &p, &err) == MMSA_OK && p.n == 511 && p.labels[0] == MMSA_UNLABELLED,
		   "mvsa-single test: 511 unlabelled rows");
		posts_free(&p);

		snprintf(path, sizeof(path), "%s/tweets-labelled/posts.csv", data);
		r = posts_load_where(path, "source", NULL, &p, &err);
		ok(r == MMSA_OK && p.n == 92544, "tweets-labelled: 92544 rows (got %lld) %s", (long long) p.n, r ? err.message : "");
		posts_free(&p);
		r = posts_load_where(path, "source", "us-airline-2015", &p, &err);
		ok(r == MMSA_OK && p.n == 14187,
		   "tweets-labelled us-airline-2015: 14187 rows (got %lld)", (long long) p.n);
		posts_free(&p);
	}
	return tap_done();
}
