/*
 * csv.c
 *	  A strict RFC 4180 CSV reader and the labelled-posts loader.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

const char *const mmsa_class_names[MMSA_CLASSES] = {"negative", "neutral", "positive"};

/*
 * Checks that data is valid UTF-8 (no overlong forms, no surrogates, at most
 * U+10FFFF) without NUL bytes (which would cut a cell short).  Returns the
 * offset of the first bad byte, or len.
 */
static size_t
utf8_first_invalid(const unsigned char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		int			n;
		unsigned int cp;

		if (c == 0)
			return i;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		else if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07;
		else
			return i;
		if (i + n >= len)
			return i;
		for (int k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += n + 1;
	}
	return len;
}

/* Line number (1-based) of byte offset pos. */
static int64_t
line_of(const char *data, size_t pos)
{
	int64_t		line = 1;

	for (size_t i = 0; i < pos; i++)
		if (data[i] == '\n')
			line++;
	return line;
}

void
csv_free(csv_table *t)
{
	free(t->columns);
	free(t->cells);
	free(t->row_line);
	free(t->arena);
	memset(t, 0, sizeof(*t));
}

/*
 * Parses CSV text into a table.  Every field is copied (unescaped) into one
 * arena of at most 2 * len + 2 bytes: each field takes at most its source
 * bytes plus a NUL, and there are at most len + 1 fields.  Cell pointers are
 * kept as arena offsets while the cell array grows, then turned into
 * pointers.
 */
mmsa_status
csv_parse(const char *data, size_t len, const char *name, csv_table *out,
		  mmsa_error *err)
{
	const char *who = name ? name : "CSV";
	size_t		pos = 0,
				bad;
	size_t		arena_used = 0;
	size_t	   *offsets = NULL;
	size_t		n_fields = 0,
				cap_fields = 0;
	int64_t    *lines = NULL;
	size_t		n_records = 0,
				cap_records = 0;
	int			header_fields = -1;
	int			fields_in_record = 0;
	int64_t		line = 1,
				record_line = 1;
	mmsa_status status = MMSA_OK;

	memset(out, 0, sizeof(*out));
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	bad = utf8_first_invalid((const unsigned char *) data, len);
	if (bad < len)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: %s (byte 0x%02X at offset %zu)",
							  who, (long long) line_of(data, bad),
							  data[bad] == '\0' ? "NUL byte" : "invalid UTF-8", (unsigned char) data[bad], bad);
	if (pos >= len)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s: empty file (no header)", who);
	out->arena = malloc(2 * len + 2);
	if (out->arena == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "%s: out of memory", who);

	for (;;)
	{
		char	   *dst = out->arena + arena_used;
		size_t		start = arena_used;
		int			end_of_record = 0;

		/* one field */
		if (pos < len && data[pos] == '"')
		{
			int64_t		open_line = line;

			pos++;
			for (;;)
			{
				if (pos >= len)
				{
					status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: quoted field never closed (end of file)",
											who, (long long) open_line);
					goto fail;
				}
				if (data[pos] == '"')
				{
					if (pos + 1 < len && data[pos + 1] == '"')
					{
						*dst++ = '"';
						pos += 2;
						continue;
					}
					pos++;
					break;
				}
				if (data[pos] == '\n')
					line++;
				*dst++ = data[pos++];
			}
			if (pos < len && data[pos] != ',' && data[pos] != '\n' &&
				!(data[pos] == '\r' && pos + 1 < len && data[pos + 1] == '\n'))
			{
				status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: unexpected character '%c' after a closing quote",
										who, (long long) line, data[pos]);
				goto fail;
			}
		}
		else
		{
			while (pos < len && data[pos] != ',' && data[pos] != '\n' && data[pos] != '\r')
			{
				if (data[pos] == '"')
				{
					status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: quote inside an unquoted field",
											who, (long long) line);
					goto fail;
				}
				*dst++ = data[pos++];
			}
			if (pos < len && data[pos] == '\r' && !(pos + 1 < len && data[pos + 1] == '\n'))
			{
				status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: carriage return not followed by a line feed",
										who, (long long) line);
				goto fail;
			}
		}
		*dst++ = '\0';
		arena_used = dst - out->arena;

		if (n_fields == cap_fields)
		{
			size_t		ncap = cap_fields ? 2 * cap_fields : 1024;
			size_t	   *p = realloc(offsets, ncap * sizeof(size_t));

			if (p == NULL)
			{
				status = mmsa_set_error(err, MMSA_ERR_NOMEM, "%s: out of memory", who);
				goto fail;
			}
			offsets = p;
			cap_fields = ncap;
		}
		offsets[n_fields++] = start;
		fields_in_record++;

		/* what ends the field */
		if (pos < len && data[pos] == ',')
			pos++;
		else
		{
			if (pos < len && data[pos] == '\r')
				pos++;
			if (pos < len && data[pos] == '\n')
			{
				pos++;
				line++;
			}
			end_of_record = 1;
		}
		if (!end_of_record)
			continue;

		if (header_fields < 0)
			header_fields = fields_in_record;
		else if (fields_in_record != header_fields)
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: %d field%s, but the header has %d",
									who, (long long) record_line, fields_in_record,
									fields_in_record == 1 ? "" : "s", header_fields);
			goto fail;
		}
		else
		{
			if (n_records == cap_records)
			{
				size_t		ncap = cap_records ? 2 * cap_records : 256;
				int64_t    *p = realloc(lines, ncap * sizeof(int64_t));

				if (p == NULL)
				{
					status = mmsa_set_error(err, MMSA_ERR_NOMEM, "%s: out of memory", who);
					goto fail;
				}
				lines = p;
				cap_records = ncap;
			}
			lines[n_records++] = record_line;
		}
		fields_in_record = 0;
		record_line = line;
		if (pos >= len)
			break;
	}

	/* header names must be unique */
	out->n_columns = header_fields;
	out->n_rows = (int64_t) n_records;
	out->columns = malloc(sizeof(char *) * header_fields);
	out->cells = malloc(sizeof(char *) * (n_fields - header_fields + 1));
	if (out->columns == NULL || out->cells == NULL)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "%s: out of memory", who);
		goto fail;
	}
	for (int c = 0; c < header_fields; c++)
	{
		out->columns[c] = out->arena + offsets[c];
		for (int d = 0; d < c; d++)
			if (strcmp(out->columns[c], out->columns[d]) == 0)
			{
				status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:1: column \"%s\" appears twice in the header",
										who, out->columns[c]);
				goto fail;
			}
	}
	for (size_t i = header_fields; i < n_fields; i++)
		out->cells[i - header_fields] = out->arena + offsets[i];
	out->row_line = lines;
	free(offsets);
	return MMSA_OK;

fail:
	free(offsets);
	free(lines);
	csv_free(out);
	return status;
}

mmsa_status
csv_load(const char *path, csv_table *out, mmsa_error *err)
{
	FILE	   *fp;
	char	   *data;
	long		size;
	mmsa_status status;

	memset(out, 0, sizeof(*out));
	fp = fopen(path, "rb");
	if (fp == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not open \"%s\": %s", path, strerror(errno));
	if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
	{
		fclose(fp);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not read \"%s\": %s", path, strerror(errno));
	}
	if ((size_t) size > CSV_MAX_FILE_BYTES)
	{
		fclose(fp);
		return mmsa_set_error(err, MMSA_ERR_LIMIT, "\"%s\" has %ld bytes; the limit is %zu", path, size,
							  CSV_MAX_FILE_BYTES);
	}
	data = malloc(size + 1);
	if (data == NULL)
	{
		fclose(fp);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory reading \"%s\"", path);
	}
	if (fread(data, 1, size, fp) != (size_t) size)
	{
		free(data);
		fclose(fp);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not read \"%s\"", path);
	}
	fclose(fp);
	status = csv_parse(data, size, path, out, err);
	free(data);
	return status;
}

int
csv_column(const csv_table *t, const char *name)
{
	for (int c = 0; c < t->n_columns; c++)
		if (strcmp(t->columns[c], name) == 0)
			return c;
	return -1;
}

int
mmsa_label_from_name(const char *s)
{
	if (s[0] == '\0')
		return MMSA_UNLABELLED;
	for (int k = 0; k < MMSA_CLASSES; k++)
		if (strcmp(s, mmsa_class_names[k]) == 0)
			return k;
	return -2;
}

void
posts_free(mmsa_posts *p)
{
	free(p->ids);
	free(p->numeric_ids);
	free(p->labels);
	free(p->texts);
	free(p->groups);
	free(p->lines);
	csv_free(&p->table);
	memset(p, 0, sizeof(*p));
}

/* Compares two strings through pointers, for qsort. */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

mmsa_status
posts_load_where(const char *path, const char *group_column,
				 const char *group_value, mmsa_posts *out, mmsa_error *err)
{
	csv_table  *t = &out->table;
	int			c_id,
				c_group,
				c_label,
				c_text;
	int			all_numeric = 1;
	mmsa_status status;

	memset(out, 0, sizeof(*out));
	if ((status = csv_load(path, t, err)) != MMSA_OK)
		return status;
	c_id = csv_column(t, "id");
	c_group = csv_column(t, group_column);
	c_label = csv_column(t, "label");
	c_text = csv_column(t, "text");
	if (c_id < 0 || c_group < 0 || c_label < 0 || c_text < 0)
	{
		status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:1: the header lacks column \"%s\" (need id, %s, label, text)",
								path, c_id < 0 ? "id" : c_group < 0 ? group_column : c_label < 0 ? "label" : "text",
								group_column);
		goto fail;
	}
	out->ids = malloc(sizeof(char *) * (t->n_rows + 1));
	out->numeric_ids = malloc(sizeof(int64_t) * (t->n_rows + 1));
	out->labels = malloc(sizeof(int) * (t->n_rows + 1));
	out->texts = malloc(sizeof(char *) * (t->n_rows + 1));
	out->groups = malloc(sizeof(char *) * (t->n_rows + 1));
	out->lines = malloc(sizeof(int64_t) * (t->n_rows + 1));
	if (!out->ids || !out->numeric_ids || !out->labels || !out->texts || !out->groups ||
		!out->lines)
	{
		status = mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory loading \"%s\"", path);
		goto fail;
	}
	for (int64_t r = 0; r < t->n_rows; r++)
	{
		const char *id = csv_cell(t, r, c_id);
		const char *label = csv_cell(t, r, c_label);
		char	   *end;
		long long	v = 0;
		int			k;

		if (id[0] == '\0')
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: empty id",
									path, (long long) t->row_line[r]);
			goto fail;
		}
		errno = 0;
		if (all_numeric)
		{
			v = strtoll(id, &end, 10);
			if (id[0] < '0' || id[0] > '9' || *end != '\0' || errno != 0)
				all_numeric = 0;
		}
		k = mmsa_label_from_name(label);
		if (k == -2)
		{
			status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: label \"%.40s\" is not negative, neutral, positive or empty",
									path, (long long) t->row_line[r], label);
			goto fail;
		}
		if (group_value != NULL && strcmp(csv_cell(t, r, c_group), group_value) != 0)
			continue;
		out->ids[out->n] = id;
		out->numeric_ids[out->n] = v;
		out->labels[out->n] = k;
		out->texts[out->n] = csv_cell(t, r, c_text);
		out->groups[out->n] = csv_cell(t, r, c_group);
		out->lines[out->n] = t->row_line[r];
		out->n++;
	}
	if (!all_numeric)
	{
		free(out->numeric_ids);
		out->numeric_ids = NULL;
	}
	return MMSA_OK;

fail:
	posts_free(out);
	return status;
}

mmsa_status
posts_load(const char *path, const char *split, mmsa_posts *out, mmsa_error *err)
{
	return posts_load_where(path, "split", split, out, err);
}

mmsa_status
posts_check_unique_ids(const mmsa_posts *p, const char *name, mmsa_error *err)
{
	const char **sorted;

	if (p->n < 2)
		return MMSA_OK;
	sorted = malloc(sizeof(char *) * p->n);
	if (sorted == NULL)
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	memcpy(sorted, p->ids, sizeof(char *) * p->n);
	qsort(sorted, p->n, sizeof(char *), cmp_str);
	for (int64_t r = 1; r < p->n; r++)
		if (strcmp(sorted[r], sorted[r - 1]) == 0)
		{
			int64_t		seen = 0;
			mmsa_status status = MMSA_ERR_FORMAT;

			for (int64_t q = 0; q < p->n; q++)
				if (strcmp(p->ids[q], sorted[r]) == 0 && seen++ == 1)
				{
					status = mmsa_set_error(err, MMSA_ERR_FORMAT, "%s:%lld: id %.40s appears more than once",
											name ? name : "posts", (long long) p->lines[q], sorted[r]);
					break;
				}
			free(sorted);
			return status;
		}
	free(sorted);
	return MMSA_OK;
}
