/*
 * cli_util.c
 *	  Small helpers shared by the subcommands of the `mmsa` tool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/*
 * Reads a whole file into *data (malloc'ed, caller frees, with a NUL byte
 * after the last one) and its size into *len; files over max_bytes are
 * refused with MMSA_ERR_LIMIT.
 */
mmsa_status
cli_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len, mmsa_error *err)
{
	FILE	   *f = fopen(path, "rb");
	long		size;
	uint8_t    *buf;

	*data = NULL;
	*len = 0;
	if (f == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "cannot open \"%s\": %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fclose(f);
		return mmsa_set_error(err, MMSA_ERR_IO, "cannot seek \"%s\"", path);
	}
	if ((size_t) size > max_bytes)
	{
		fclose(f);
		return mmsa_set_error(err, MMSA_ERR_LIMIT, "\"%s\" is larger than %zu bytes", path, max_bytes);
	}
	buf = malloc((size_t) size + 1);
	if (buf == NULL)
	{
		fclose(f);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory reading \"%s\"", path);
	}
	if (size > 0 && fread(buf, 1, (size_t) size, f) != (size_t) size)
	{
		free(buf);
		fclose(f);
		return mmsa_set_error(err, MMSA_ERR_IO, "cannot read \"%s\"", path);
	}
	fclose(f);
	buf[size] = 0;
	*data = buf;
	*len = (size_t) size;
	return MMSA_OK;
}

/* Milliseconds on the monotonic clock, for timings. */
double
cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A duration for progress lines: "1h02m", "3m05s", "42s", "?" if unknown. */
void
cli_format_duration(char *buf, size_t size, double s)
{
	if (s < 0 || s != s)
		snprintf(buf, size, "?");
	else if (s < 60)
		snprintf(buf, size, "%.0fs", s);
	else if (s < 3600)
		snprintf(buf, size, "%dm%02ds", (int) s / 60, (int) s % 60);
	else
		snprintf(buf, size, "%dh%02dm", (int) s / 3600, ((int) s % 3600) / 60);
}
