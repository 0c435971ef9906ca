/*
 * train_common.c
 *	  Progress lines, paths and checkpoints shared by `mmsa train`'s stages.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "safetensors.h"
#include "train_common.h"

void
train_progress(const char *what, long done, long total, double t_start_ms,
			   long done_at_start, const char *extra)
{
	double		elapsed = (cli_now_ms() - t_start_ms) / 1000.0;
	double		rate = elapsed > 0 ? (done - done_at_start) / elapsed : 0;
	char		el[32],
				eta[32];

	cli_format_duration(el, sizeof(el), elapsed);
	cli_format_duration(eta, sizeof(eta), rate > 0 ? (total - done) / rate : -1);
	fprintf(stderr, "mmsa train: %s %ld/%ld, %.2f/s, %s elapsed, ETA %s%s%s\n",
			what, done, total, rate, el, eta, extra ? ", " : "", extra ? extra : "");
	fflush(stderr);
}

mmsa_status
train_path(char *path, int size, const char *dir, const char *name, mmsa_error *err)
{
	if (snprintf(path, size, "%s/%s", dir, name) >= size)
		return mmsa_set_error(err, MMSA_ERR_INVALID, "path too long: %s/%s", dir, name);
	return MMSA_OK;
}

mmsa_status
train_mkdir(const char *dir, mmsa_error *err)
{
	char		buf[4096];
	size_t		len = strlen(dir);

	if (len >= sizeof(buf))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "path too long: %s", dir);
	memcpy(buf, dir, len + 1);
	for (size_t i = 1; i <= len; i++)
	{
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0777) != 0 && errno != EEXIST)
			return mmsa_set_error(err, MMSA_ERR_IO, "could not create directory \"%s\": %s",
								  buf, strerror(errno));
		buf[i] = i < len ? '/' : '\0';
	}
	return MMSA_OK;
}

int
train_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

mmsa_status
train_copy_file(const char *src, const char *dst, mmsa_error *err)
{
	char		a[4096],
				b[4096];
	uint8_t    *data;
	size_t		len;
	FILE	   *f;
	mmsa_status status;

	if (realpath(src, a) != NULL && realpath(dst, b) != NULL && strcmp(a, b) == 0)
		return MMSA_OK;
	status = cli_read_file(src, (size_t) 1 << 30, &data, &len, err);
	if (status != MMSA_OK)
		return status;
	f = fopen(dst, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		free(data);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write %s", dst);
	}
	free(data);
	return MMSA_OK;
}

mmsa_status
train_checkpoint_save(const char *path, const float *params,
					  const adamw_optimizer *opt, long steps_done,
					  const char *what, mmsa_error *err)
{
	st_write_tensor t[3];
	char		steps[32],
				adam_steps[32];
	const char *keys[] = {"mmsa.checkpoint", "mmsa.steps_done", "mmsa.adam_step"};
	const char *values[] = {what, steps, adam_steps};
	const char *names[] = {"params", "adam.m", "adam.v"};
	const float *data[] = {params, opt->m, opt->v};

	snprintf(steps, sizeof(steps), "%ld", steps_done);
	snprintf(adam_steps, sizeof(adam_steps), "%ld", opt->step);
	for (int i = 0; i < 3; i++)
	{
		memset(&t[i], 0, sizeof(t[i]));
		t[i].name = names[i];
		t[i].dtype = ST_F32;
		t[i].ndim = 1;
		t[i].shape[0] = opt->n_params;
		t[i].data = data[i];
	}
	return safetensors_write(path, t, 3, keys, values, 3, err);
}

mmsa_status
train_checkpoint_load(const char *path, float *params, adamw_optimizer *opt,
					  long *steps_done, const char *what, mmsa_error *err)
{
	safetensors_file f;
	mmsa_status status;
	const char *kind,
			   *steps,
			   *adam_steps;
	int64_t		shape[1] = {opt->n_params};
	float	   *dst[] = {params, opt->m, opt->v};
	const char *names[] = {"params", "adam.m", "adam.v"};

	if (!train_exists(path))
		return mmsa_set_error(err, MMSA_ERR_IO, "no checkpoint at %s", path);
	status = safetensors_open(path, &f, err);
	if (status != MMSA_OK)
		return status;
	kind = safetensors_metadata(&f, "mmsa.checkpoint");
	steps = safetensors_metadata(&f, "mmsa.steps_done");
	adam_steps = safetensors_metadata(&f, "mmsa.adam_step");
	if (kind == NULL || strcmp(kind, what) != 0 || steps == NULL || adam_steps == NULL)
	{
		safetensors_close(&f);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s is not a checkpoint of %s", path, what);
	}
	for (int i = 0; i < 3; i++)
	{
		const float *src = safetensors_get_f32(&f, names[i], 1, shape, err);

		if (src == NULL)
		{
			safetensors_close(&f);
			return MMSA_ERR_FORMAT;
		}
		memcpy(dst[i], src, sizeof(float) * opt->n_params);
	}
	*steps_done = atol(steps);
	opt->step = atol(adam_steps);
	safetensors_close(&f);
	return MMSA_OK;
}
