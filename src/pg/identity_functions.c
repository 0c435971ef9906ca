/*
 * identity_functions.c
 *	  mmsa_model_identity(): what decides this server's results, as rows
 *	  (item, identity) that two servers can compare: the SHA-256 of every
 *	  model file under mmsa.model_dir, the session's mmsa.precision and the
 *	  version of mmsa.so.  A sharded table needs the same rows on every
 *	  node: the functions are IMMUTABLE, and a label computed on one shard
 *	  must be the label any other node would compute.
 *
 * Covered: every regular file under the model directory (model.json, the
 * heads, each encoder's config.json, model.safetensors, vocab.txt,
 * calibration.json, labels.txt), read in full, so that a change anywhere
 * in the weights shows (mmsa_info()'s size:hash samples the encoders'
 * files only).  Left out: the *.packed sidecars, which are derived from
 * model.safetensors and calibration.json and refused when stale; hidden
 * files; mmsa.isa and mmsa.threads, which give the same labels on every
 * path (test/t/isa_labels.t) and thread count (test/scaleout/scaleout.t;
 * with the cmac head the probabilities of 1 and 2 threads can differ in
 * their last bit, up to 1.2e-7).  The digests equal `sha256sum`'s of the
 * same files.
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "mmsa_pg.h"
#include "precision.h"

/* subdirectories deeper than this are not walked (the model has one level) */
#define IDENTITY_MAX_DEPTH 4
#define IDENTITY_READ_BYTES (1024 * 1024)

static int
compare_paths(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/*
 * Appends to files the paths, relative to root, of the regular files under
 * root/rel (symbolic links followed), but not *.packed nor hidden names.
 */
static List *
collect_model_files(List *files, const char *root, const char *rel, int depth)
{
	char		dir[MAXPGPATH];
	DIR		   *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s%s%s", root, rel[0] ? "/" : "", rel);
	d = AllocateDir(dir);
	if (d == NULL)
		return files;			/* no model directory: no file rows */
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char		path[MAXPGPATH];
		char	   *name;
		struct stat st;
		size_t		len = strlen(de->d_name);

		if (de->d_name[0] == '.' ||
			(len > 7 && strcmp(de->d_name + len - 7, ".packed") == 0))
			continue;
		name = rel[0] ? psprintf("%s/%s", rel, de->d_name) : pstrdup(de->d_name);
		snprintf(path, sizeof(path), "%s/%s", root, name);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode))
			files = lappend(files, name);
		else if (S_ISDIR(st.st_mode) && depth < IDENTITY_MAX_DEPTH)
			files = collect_model_files(files, root, name, depth + 1);
	}
	FreeDir(d);
	return files;
}

/* "sha256:<64 hex digits>" of the whole file at path */
static text *
file_sha256(const char *path)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		hex[2 * PG_SHA256_DIGEST_LENGTH + 1];
	pg_cryptohash_ctx *ctx;
	char	   *buf;
	int			fd;
	ssize_t		r;

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open model file \"%s\": %m", path)));
	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256: %s", pg_cryptohash_error(ctx));
	buf = palloc(IDENTITY_READ_BYTES);
	while ((r = read(fd, buf, IDENTITY_READ_BYTES)) != 0)
	{
		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read model file \"%s\": %m", path)));
		}
		if (pg_cryptohash_update(ctx, (uint8 *) buf, r) < 0)
			elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
		CHECK_FOR_INTERRUPTS();
	}
	if (pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	pfree(buf);
	CloseTransientFile(fd);
	hex_encode((const char *) digest, sizeof(digest), hex);
	hex[sizeof(hex) - 1] = '\0';
	return cstring_to_text(psprintf("sha256:%s", hex));
}

static void
put_row(ReturnSetInfo *rsinfo, const char *item, text *identity)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = PointerGetDatum(cstring_to_text(item));
	values[1] = PointerGetDatum(identity);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * mmsa_model_identity() returns table(item text, identity text): a row
 * "<path relative to mmsa.model_dir>", "sha256:<hex>" per model file, in
 * path order, then "mmsa.precision" (fp32 or int8, this session's) and
 * "mmsa.so" (the library's version).
 */
PG_FUNCTION_INFO_V1(mmsa_model_identity);
Datum
mmsa_model_identity(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *root = mmsa_model_dir ? mmsa_model_dir : "";
	List	   *files;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	files = collect_model_files(NIL, root, "", 0);
	list_sort(files, compare_paths);
	foreach(lc, files)
	{
		const char *name = (const char *) lfirst(lc);

		put_row(rsinfo, name, file_sha256(psprintf("%s/%s", root, name)));
	}
	put_row(rsinfo, "mmsa.precision",
			cstring_to_text(mmsa_precision_name((mmsa_precision) mmsa_precision_setting)));
	put_row(rsinfo, "mmsa.so", cstring_to_text(MMSA_LIBRARY_VERSION));
	return (Datum) 0;
}
