/*
 * packfile.c
 *	  Prepacked weight sidecars: identity of the source, mapping with every
 *	  size checked, atomic writing (see packfile.h).
 */
#include "packfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDENTITY_BLOCKS 16
#define IDENTITY_BLOCK 4096
#define IDENTITY_HEADER_MAX ((size_t) 16 << 20)

_Static_assert(sizeof(mmsa_pack_header) == MMSA_PACK_HEADER_BYTES,
			   "sidecar header size");

uint64_t
mmsa_fnv1a(uint64_t h, const void *data, size_t n)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < n; i++)
	{
		h ^= p[i];
		h *= MMSA_FNV1A_PRIME;
	}
	return h;
}

uint64_t
mmsa_pack_checksum(const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t	h = MMSA_FNV1A_OFFSET;

	for (size_t i = 0; i + 1 < n; i += 2)
	{
		uint64_t	w;

		memcpy(&w, p + i * 4, 8);
		h = (h ^ w) * MMSA_FNV1A_PRIME;
		h ^= h >> 29;
	}
	return h;
}

/* Reads up to n bytes at off; returns the count read or -1. */
static ssize_t
read_at(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	size_t		got = 0;

	while (got < n)
	{
		ssize_t		r = pread(fd, buf + got, n - got, (off_t) (off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t) r;
	}
	return (ssize_t) got;
}

mmsa_status
mmsa_pack_identity_of(const char *path, mmsa_pack_identity *id, mmsa_error *err)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t    *buf = NULL;
	uint64_t	h = MMSA_FNV1A_OFFSET;
	uint64_t	size,
				hlen = 0;
	ssize_t		r;

	memset(id, 0, sizeof(*id));
	if (fd < 0 || fstat(fd, &st) != 0)
	{
		mmsa_status s = mmsa_set_error(err, MMSA_ERR_IO, "could not read \"%s\": %s",
									   path, strerror(errno));

		if (fd >= 0)
			close(fd);
		return s;
	}
	size = (uint64_t) st.st_size;
	h = mmsa_fnv1a(h, &size, sizeof(size));

	/* the safetensors header: 8-byte length, then that much JSON */
	if (size >= 8)
	{
		uint8_t		len[8];

		if (read_at(fd, len, 8, 0) == 8)
			for (int i = 0; i < 8; i++)
				hlen |= (uint64_t) len[i] << (8 * i);
		if (hlen > size - 8)
			hlen = size - 8;
		if (hlen > IDENTITY_HEADER_MAX)
			hlen = IDENTITY_HEADER_MAX;
	}
	buf = malloc(8 + hlen > IDENTITY_BLOCK ? 8 + hlen : IDENTITY_BLOCK);
	if (buf == NULL)
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_NOMEM, "out of memory");
	}
	r = read_at(fd, buf, 8 + hlen, 0);
	if (r < 0)
		goto ioerr;
	h = mmsa_fnv1a(h, buf, (size_t) r);

	/* a sample of the data: 16 blocks at evenly spaced offsets */
	for (int i = 0; i < IDENTITY_BLOCKS && size > 0; i++)
	{
		uint64_t	span = size > IDENTITY_BLOCK ? size - IDENTITY_BLOCK : 0;
		uint64_t	off = span / (IDENTITY_BLOCKS - 1) * i;

		if ((r = read_at(fd, buf, IDENTITY_BLOCK, off)) < 0)
			goto ioerr;
		h = mmsa_fnv1a(h, buf, (size_t) r);
	}
	free(buf);
	close(fd);
	id->size = size;
	id->hash = h;
	return MMSA_OK;

ioerr:
	free(buf);
	close(fd);
	return mmsa_set_error(err, MMSA_ERR_IO, "could not read \"%s\": %s", path, strerror(errno));
}

mmsa_status
mmsa_pack_open(const char *path, uint32_t kind, const mmsa_pack_identity *id,
			   mmsa_pack_map *pm, mmsa_error *err)
{
	int			fd;
	struct stat st;
	mmsa_pack_header h;
	void	   *map;

	memset(pm, 0, sizeof(*pm));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not open \"%s\": %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		(uint64_t) st.st_size < sizeof(h) ||
		read_at(fd, (uint8_t *) &h, sizeof(h), 0) != (ssize_t) sizeof(h))
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is not a prepacked weights file", path);
	}
	if (memcmp(h.magic, MMSA_PACK_MAGIC, 8) != 0 || h.endian != 0x01020304 ||
		h.header_bytes != MMSA_PACK_HEADER_BYTES)
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is not a prepacked weights file", path);
	}
	if (h.version != MMSA_PACK_VERSION || h.kind != kind)
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" has version %u kind %u, expected %u, %u",
							  path, h.version, h.kind, MMSA_PACK_VERSION, kind);
	}
	if (h.src_size != id->size || h.src_hash != id->hash)
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "\"%s\" is stale: it was made from another model.safetensors",
							  path);
	}
	if (h.data_floats == 0 || h.data_floats > ((uint64_t) 1 << 40) ||
		(uint64_t) st.st_size != MMSA_PACK_HEADER_BYTES + h.data_floats * sizeof(float))
	{
		close(fd);
		return mmsa_set_error(err, MMSA_ERR_FORMAT,
							  "\"%s\" is truncated or corrupt: %lld bytes for %llu floats",
							  path, (long long) st.st_size, (unsigned long long) h.data_floats);
	}
	map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not map \"%s\": %s", path, strerror(errno));
	pm->map = map;
	pm->map_size = (size_t) st.st_size;
	pm->data = (const float *) ((const char *) map + MMSA_PACK_HEADER_BYTES);
	pm->data_floats = (size_t) h.data_floats;
	memcpy(pm->config, h.config, sizeof(pm->config));
	return MMSA_OK;
}

void
mmsa_pack_close(mmsa_pack_map *pm)
{
	if (pm->map != NULL)
		munmap(pm->map, pm->map_size);
	memset(pm, 0, sizeof(*pm));
}

mmsa_status
mmsa_pack_write_begin(mmsa_pack_writer *w, const char *path, uint32_t kind,
					  const int64_t config[MMSA_PACK_CONFIG],
					  const mmsa_pack_identity *id, size_t floats,
					  mmsa_error *err)
{
	mmsa_pack_header h;

	memset(w, 0, sizeof(*w));
	if (snprintf(w->path, sizeof(w->path), "%s", path) >= (int) sizeof(w->path))
		return mmsa_set_error(err, MMSA_ERR_INVALID, "path too long");
	snprintf(w->tmp, sizeof(w->tmp), "%s.tmp", path);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MMSA_PACK_MAGIC, 8);
	h.version = MMSA_PACK_VERSION;
	h.kind = kind;
	h.header_bytes = MMSA_PACK_HEADER_BYTES;
	h.endian = 0x01020304;
	h.src_size = id->size;
	h.src_hash = id->hash;
	h.data_floats = floats;
	memcpy(h.config, config, sizeof(h.config));
	w->floats = floats;
	w->fp = fopen(w->tmp, "wb");
	if (w->fp == NULL)
		return mmsa_set_error(err, MMSA_ERR_IO, "could not create \"%s\": %s", w->tmp, strerror(errno));
	if (fwrite(&h, sizeof(h), 1, w->fp) != 1)
	{
		mmsa_pack_write_abort(w);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\": %s", path, strerror(errno));
	}
	return MMSA_OK;
}

mmsa_status
mmsa_pack_write_floats(mmsa_pack_writer *w, const float *data, size_t n,
					   mmsa_error *err)
{
	static const float zeros[16];
	size_t		pad = MMSA_PACK_ROUND(n) - n;

	if (w->written + n + pad > w->floats ||
		fwrite(data, sizeof(float), n, w->fp) != n ||
		(pad > 0 && fwrite(zeros, sizeof(float), pad, w->fp) != pad))
	{
		mmsa_pack_write_abort(w);
		return mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\" (%s)", w->path,
							  errno ? strerror(errno) : "layout overflow");
	}
	w->written += n + pad;
	return MMSA_OK;
}

mmsa_status
mmsa_pack_write_end(mmsa_pack_writer *w, mmsa_error *err)
{
	int			bad;

	if (w->written != w->floats)
	{
		mmsa_pack_write_abort(w);
		return mmsa_set_error(err, MMSA_ERR_INVALID, "\"%s\": wrote %zu floats of %zu",
							  w->path, w->written, w->floats);
	}
	bad = fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0;
	bad |= fclose(w->fp) != 0;
	w->fp = NULL;
	if (bad || rename(w->tmp, w->path) != 0)
	{
		mmsa_status s = mmsa_set_error(err, MMSA_ERR_IO, "could not write \"%s\": %s",
									   w->path, strerror(errno));

		unlink(w->tmp);
		return s;
	}
	return MMSA_OK;
}

void
mmsa_pack_write_abort(mmsa_pack_writer *w)
{
	if (w->fp != NULL)
	{
		fclose(w->fp);
		w->fp = NULL;
		unlink(w->tmp);
	}
}

mmsa_status
mmsa_pack_open_int8(const char *path, uint32_t kind, const mmsa_pack_identity *id,
					const int64_t want[MMSA_PACK_CONFIG], unsigned check, int sum_at,
					const char *what, const char *dir, const char *from,
					mmsa_pack_map *pm, mmsa_error *err)
{
	mmsa_error	perr;
	mmsa_status status = mmsa_pack_open(path, kind, id, pm, &perr);
	int			layout_ok;

	if (status == MMSA_ERR_IO)
		return mmsa_set_error(err, MMSA_ERR_IO,
							  "the %s has no int8 weights: \"%s\" does not exist "
							  "(`mmsa pack --model %s` writes it%s, as make does)",
							  what, path, dir, from);
	if (status != MMSA_OK)
		return mmsa_set_error(err, MMSA_ERR_FORMAT, "%s; `mmsa pack --model %s` rebuilds it",
							  perr.message, dir);
	layout_ok = pm->data_floats == (size_t) want[0];
	for (int i = 0; i < MMSA_PACK_CONFIG; i++)
		if ((check >> i) & 1)
			layout_ok &= pm->config[i] == want[i];
	if (!layout_ok)
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"\"%s\" has another layout than this version's; `mmsa pack --model %s` "
								"rebuilds it", path, dir);
	else if ((uint64_t) pm->config[sum_at] != mmsa_pack_checksum(pm->data, pm->data_floats))
		status = mmsa_set_error(err, MMSA_ERR_FORMAT,
								"\"%s\" is corrupt (its checksum does not match); `mmsa pack --model %s` "
								"rebuilds it", path, dir);
	if (status != MMSA_OK)
		mmsa_pack_close(pm);
	return status;
}
