/*
 * csv.h
 *	  A strict RFC 4180 CSV reader, and the labelled-posts files built on it.
 *
 * The first record is the header (column names, unique).  Fields are
 * separated by commas; records end with LF or CRLF (a final line break is
 * optional).  A field is either unquoted (no '"', CR or LF in it) or quoted
 * ("..." with "" standing for one '"'; commas, CR and LF are taken literally
 * inside).  Anything else is refused with MMSA_ERR_FORMAT and the line
 * number: a quote inside an unquoted field, text after a closing quote, an
 * unterminated quoted field, a bare CR, a record with a different number of
 * fields than the header, a NUL byte, or bytes that are not valid UTF-8.
 * A UTF-8 byte order mark at the start is skipped.
 *
 * Why not libcsv (Debian's libcsv-dev 3.0.3): it would be one more
 * dependency for the extension, it reports no line numbers, and it is
 * lenient unless told otherwise; this reader is small and strict.
 */
#ifndef MMSA_CSV_H
#define MMSA_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "mmsa_error.h"

/* Largest CSV file csv_load accepts (the biggest data file is ~10 MB). */
#define CSV_MAX_FILE_BYTES ((size_t) 1 << 30)

/* A parsed CSV file: a header and n_rows records of n_columns cells. */
typedef struct csv_table
{
	int			n_columns;
	char	  **columns;		/* (n_columns) header names */
	int64_t		n_rows;			/* records after the header */
	char	  **cells;			/* (n_rows, n_columns), NUL-terminated */
	int64_t    *row_line;		/* (n_rows) 1-based line each record starts on */
	char	   *arena;			/* every string lives here */
} csv_table;

/*
 * Parses len bytes of CSV text.  name (a file name, or NULL) prefixes error
 * messages: "posts.csv:12: ...".  On error *out is left empty.
 */
mmsa_status csv_parse(const char *data, size_t len, const char *name,
					  csv_table *out, mmsa_error *err);

/* Reads and parses the file at path (MMSA_ERR_IO when it cannot be read). */
mmsa_status csv_load(const char *path, csv_table *out, mmsa_error *err);

/* Frees everything and empties t (safe on an empty table). */
void		csv_free(csv_table *t);

/* Index of the column called name, or -1. */
int			csv_column(const csv_table *t, const char *name);

/* The cell at (row, col); no bounds check beyond an assertion of intent. */
static inline const char *
csv_cell(const csv_table *t, int64_t row, int col)
{
	return t->cells[row * t->n_columns + col];
}

/*
 * Sentiment classes, in the order used everywhere (labels, logits,
 * confusion matrices).
 */
#define MMSA_CLASSES 3
#define MMSA_NEGATIVE 0
#define MMSA_NEUTRAL 1
#define MMSA_POSITIVE 2
#define MMSA_UNLABELLED (-1)

/* "negative", "neutral", "positive" */
extern const char *const mmsa_class_names[MMSA_CLASSES];

/*
 * Labelled posts: the rows of a file with the columns id, label, text and
 * a grouping column (split in mvsa-single / mvsa-multiple-text /
 * tweeteval-sentiment, source in tweets-labelled), in file order.
 * label is 0 negative, 1 neutral, 2 positive, or -1 (MMSA_UNLABELLED) when
 * the cell is empty (the hidden test split).
 */
typedef struct mmsa_posts
{
	int64_t		n;
	const char **ids;			/* (n), into table */
	int64_t    *numeric_ids;	/* (n) the ids as integers, or NULL when
								 * some id in the file is not a
								 * non-negative integer (tweets-labelled's
								 * "semeval-..." ids) */
	int		   *labels;			/* (n) */
	const char **texts;			/* (n), into table */
	const char **groups;		/* (n) split or source, into table */
	int64_t    *lines;			/* (n) line number in the file */
	csv_table	table;
} mmsa_posts;

/*
 * Loads path, keeping the rows whose column group_column equals
 * group_value (every row when group_value is NULL).  A missing column, an
 * empty id or a label other
 * than negative/neutral/positive/empty is an MMSA_ERR_FORMAT error naming
 * the line.
 */
mmsa_status posts_load_where(const char *path, const char *group_column,
							 const char *group_value, mmsa_posts *out,
							 mmsa_error *err);

/* posts_load_where(path, "split", split, ...): split NULL keeps all rows. */
mmsa_status posts_load(const char *path, const char *split, mmsa_posts *out,
					   mmsa_error *err);

/*
 * MMSA_ERR_FORMAT naming the line of the second occurrence when two posts
 * share an id (tweets-labelled has such pairs; MVSA-Single has none).
 * name prefixes the message.
 */
mmsa_status posts_check_unique_ids(const mmsa_posts *p, const char *name,
								   mmsa_error *err);

/* Frees everything and empties p (safe on empty posts). */
void		posts_free(mmsa_posts *p);

/* 0/1/2 for "negative"/"neutral"/"positive", -1 for "", -2 otherwise. */
int			mmsa_label_from_name(const char *s);

#endif
