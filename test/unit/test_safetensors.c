/*
 * test_safetensors.c
 *	  The safetensors reader and writer: round trips, half-precision
 *	  conversion, and hostile or truncated files, which must give
 *	  MMSA_ERR_FORMAT (never a crash or an out-of-bounds read).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "tap.h"

static char tmpdir[] = "/tmp/mmsa-test-safetensors-XXXXXX";

static const char *
tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* Writes a raw safetensors file: header JSON then data bytes. */
static const char *
write_raw(const char *name, const char *header, const void *data, size_t data_len)
{
	const char *path = tmp_path(name);
	FILE	   *f = fopen(path, "wb");
	uint64_t	n = strlen(header);
	uint8_t		len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t) (n >> (8 * i));
	fwrite(len, 1, 8, f);
	fwrite(header, 1, n, f);
	if (data_len)
		fwrite(data, 1, data_len, f);
	fclose(f);
	return path;
}

/* Opens path and expects the given status; returns 1 when it matched. */
static int
expect_open(const char *path, mmsa_status expected, const char *what)
{
	safetensors_file f;
	mmsa_error	err;
	mmsa_status st = safetensors_open(path, &f, &err);

	if (st == MMSA_OK)
		safetensors_close(&f);
	ok(st == expected, "%s: %s%s%s", what, mmsa_status_name(st),
	   st ? ": " : "", st ? err.message : "");
	return st == expected;
}

static void
test_round_trip(void)
{
	float		a[6] = {1.0f, -2.5f, 3.25f, 0.0f, 65504.0f, 1e-6f};
	float		b[4] = {0.1f, 0.2f, 0.3f, -0.4f};
	st_write_tensor t[2] = {
		{"layer.a", ST_F32, 2, {2, 3}, a},
		{"layer.b", ST_F16, 1, {4}, b},
	};
	const char *keys[] = {"format"};
	const char *values[] = {"pt"};
	safetensors_file f;
	mmsa_error	err;
	const float *ra,
			   *rb;
	int64_t		shape_a[2] = {2, 3};
	int64_t		wrong[2] = {3, 2};
	float		rb_expected[4];

	ok(safetensors_write(tmp_path("rt.safetensors"), t, 2, keys, values, 1, &err) == MMSA_OK,
	   "write F32 and F16 tensors");
	ok(safetensors_open(tmp_path("rt.safetensors"), &f, &err) == MMSA_OK, "reopen written file");
	ok(f.n_tensors == 2, "two tensors read back");
	ok(safetensors_metadata(&f, "format") && strcmp(safetensors_metadata(&f, "format"), "pt") == 0,
	   "metadata read back");
	ra = safetensors_get_f32(&f, "layer.a", 2, shape_a, &err);
	ok(ra != NULL && memcmp(ra, a, sizeof(a)) == 0, "F32 values identical");
	ok(ra == (const float *) safetensors_find(&f, "layer.a")->data, "F32 tensor is used in place (zero-copy)");
	rb = safetensors_get_f32(&f, "layer.b", 1, NULL, &err);
	for (int i = 0; i < 4; i++)
		rb_expected[i] = st_f16_to_f32(st_f32_to_f16(b[i]));
	ok(rb != NULL && memcmp(rb, rb_expected, sizeof(rb_expected)) == 0, "F16 values converted");
	ok(rb != NULL && fabsf(rb[3] - b[3]) < 1e-3f, "F16 value close to the original");
	ok(safetensors_get_f32(&f, "layer.a", 2, wrong, &err) == NULL && err.status == MMSA_ERR_FORMAT &&
	   strstr(err.message, "(2, 3)") && strstr(err.message, "(3, 2)"),
	   "wrong shape is refused, naming both shapes: %s", err.message);
	ok(safetensors_get_f32(&f, "layer.c", 0, NULL, &err) == NULL && err.status == MMSA_ERR_FORMAT &&
	   strstr(err.message, "layer.c"),
	   "missing tensor is refused by name: %s", err.message);
	safetensors_close(&f);
}

static void
test_f16_exhaustive(void)
{
	int			bad = 0;

	for (uint32_t h = 0; h < 65536; h++)
	{
		float		f = st_f16_to_f32((uint16_t) h);

		if (f != f)
			continue;			/* NaN payloads need not survive */
		if (st_f32_to_f16(f) != h)
			bad++;
	}
	ok(bad == 0, "every finite half survives f16 -> f32 -> f16 (%d differ)", bad);
	ok(st_f32_to_f16(1.0f + 1.0f / 2048.0f) == 0x3c00, "ties round to even (down)");
	ok(st_f32_to_f16(1.0f + 3.0f / 2048.0f) == 0x3c02, "ties round to even (up)");
	ok(st_f32_to_f16(1e6f) == 0x7c00, "overflow gives infinity");
}

static void
test_hostile(void)
{
	float		four[4] = {1, 2, 3, 4};
	const char *path;
	FILE	   *f;

	expect_open(tmp_path("does-not-exist.safetensors"), MMSA_ERR_IO, "missing file");

	path = tmp_path("empty.safetensors");
	f = fopen(path, "wb");
	fclose(f);
	expect_open(path, MMSA_ERR_FORMAT, "empty file");

	path = tmp_path("short.safetensors");
	f = fopen(path, "wb");
	fwrite("\x10\x00\x00", 1, 3, f);
	fclose(f);
	expect_open(path, MMSA_ERR_FORMAT, "file shorter than the length prefix");

	path = tmp_path("huge-header.safetensors");
	f = fopen(path, "wb");
	fwrite("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 1, 10, f);
	fclose(f);
	expect_open(path, MMSA_ERR_FORMAT, "header length beyond the file");

	expect_open(write_raw("notjson.safetensors", "this is not json", NULL, 0),
				MMSA_ERR_FORMAT, "header is not JSON");
	expect_open(write_raw("array.safetensors", "[1, 2, 3]", NULL, 0),
				MMSA_ERR_FORMAT, "header is not an object");
	expect_open(write_raw("beyond.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", four, 8),
				MMSA_ERR_FORMAT, "data_offsets beyond the end (truncated data)");
	expect_open(write_raw("negative.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}", four, 16),
				MMSA_ERR_FORMAT, "negative data offset");
	expect_open(write_raw("reversed.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", four, 16),
				MMSA_ERR_FORMAT, "end offset before begin offset");
	expect_open(write_raw("mismatch.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", four, 16),
				MMSA_ERR_FORMAT, "shape and byte count disagree");
	expect_open(write_raw("overflow.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,16]}}", four, 16),
				MMSA_ERR_FORMAT, "shape whose element count overflows");
	expect_open(write_raw("dtype.safetensors",
						  "{\"w\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", four, 16),
				MMSA_ERR_FORMAT, "unknown dtype");
	expect_open(write_raw("noshape.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", four, 16),
				MMSA_ERR_FORMAT, "missing shape");
	expect_open(write_raw("dup.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
						  "\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", four, 16),
				MMSA_ERR_FORMAT, "duplicate tensor names");
	expect_open(write_raw("meta.safetensors",
						  "{\"__metadata__\":{\"k\":1}}", NULL, 0),
				MMSA_ERR_FORMAT, "non-string metadata");
	expect_open(write_raw("overlap.safetensors",
						  "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
						  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", four, 16),
				MMSA_ERR_FORMAT, "overlapping tensors");
	expect_open(write_raw("ok.safetensors",
						  "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", four, 16),
				MMSA_OK, "a well-formed hand-written file opens");
	expect_open(write_raw("ints.safetensors",
						  "{\"w\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}}", four, 16),
				MMSA_OK, "integer tensors open");
	{
		safetensors_file sf;
		mmsa_error	err;

		safetensors_open(tmp_path("ints.safetensors"), &sf, &err);
		ok(safetensors_get_f32(&sf, "w", 1, NULL, &err) == NULL && err.status == MMSA_ERR_UNSUPPORTED,
		   "integer tensor is not returned as float: %s", err.message);
		safetensors_close(&sf);
	}

	/* a real file cut short by one byte */
	{
		mmsa_error	err;
		float		big[100];
		st_write_tensor t = {"big", ST_F32, 1, {100}, big};
		struct stat st;

		for (int i = 0; i < 100; i++)
			big[i] = (float) i;
		safetensors_write(tmp_path("cut.safetensors"), &t, 1, NULL, NULL, 0, &err);
		stat(tmp_path("cut.safetensors"), &st);
		ok(truncate(tmp_path("cut.safetensors"), st.st_size - 1) == 0, "cut the file by one byte");
		expect_open(tmp_path("cut.safetensors"), MMSA_ERR_FORMAT, "file truncated inside the data");
	}
}

/*
 * Flips random bytes of a valid file many times: every open must either
 * fail cleanly or give tensors that lie inside the mapping.
 */
static void
test_random_corruption(void)
{
	float		data[64];
	st_write_tensor t[2] = {
		{"a", ST_F32, 2, {4, 8}, data},
		{"b", ST_F16, 1, {32}, data + 32},
	};
	mmsa_error	err;
	FILE	   *f;
	uint8_t		orig[4096];
	size_t		n;
	int			inside = 1;
	int			opened = 0,
				refused = 0;

	for (int i = 0; i < 64; i++)
		data[i] = (float) i / 7.0f;
	safetensors_write(tmp_path("fuzz.safetensors"), t, 2, NULL, NULL, 0, &err);
	f = fopen(tmp_path("fuzz.safetensors"), "rb");
	n = fread(orig, 1, sizeof(orig), f);
	fclose(f);

	srand(12345);
	for (int iter = 0; iter < 3000; iter++)
	{
		uint8_t		buf[4096];
		size_t		len = n;
		safetensors_file sf;

		memcpy(buf, orig, n);
		for (int k = 0; k < 1 + rand() % 4; k++)
		{
			size_t		pos = (size_t) rand() % (iter % 2 ? 120 : n);

			buf[pos] = (uint8_t) rand();
		}
		if (iter % 5 == 0)
			len = (size_t) rand() % n;
		f = fopen(tmp_path("fuzzed.safetensors"), "wb");
		fwrite(buf, 1, len, f);
		fclose(f);
		if (safetensors_open(tmp_path("fuzzed.safetensors"), &sf, &err) == MMSA_OK)
		{
			opened++;
			for (int i = 0; i < sf.n_tensors; i++)
			{
				const uint8_t *p = sf.tensors[i].data;
				const uint8_t *base = sf.map;

				if (p < base || p + sf.tensors[i].nbytes > base + sf.map_size)
					inside = 0;
			}
			safetensors_close(&sf);
		}
		else
			refused++;
	}
	ok(inside, "3000 corrupted files: %d opened, %d refused, every opened tensor inside the file",
	   opened, refused);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL)
	{
		ok(0, "could not create a temporary directory");
		return tap_done();
	}
	test_round_trip();
	test_f16_exhaustive();
	test_hostile();
	test_random_corruption();
	{
		char		cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			diag("could not remove %s", tmpdir);
	}
	return tap_done();
}
