/*
 * mmsa.c
 *	  Module initialisation: settings, cancellation and error reporting.
 *
 * Settings live under the reserved "mmsa." prefix:
 *	 mmsa.model_dir  where the installed model lives (superuser only, so that
 *					 no SQL function becomes a way to read arbitrary files)
 *	 mmsa.threads	 OpenBLAS threads used by one backend's inference
 *	 mmsa.max_image_pixels  larger images are refused before decoding
 *					 (superuser only: it bounds a backend's memory)
 *	 mmsa.isa		 the instruction-set path of the kernels: auto, avx2,
 *					 avx-vnni or avx512 (src/core/cpu.h)
 *	 mmsa.precision	 the encoders' arithmetic: fp32 or int8
 *					 (src/core/precision.h; applied in model_cache.c)
 */
#include "postgres.h"

#include <cblas.h>
#include <limits.h>
#include <malloc.h>

#include "fmgr.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "cpu.h"
#include "mmsa_pg.h"

PG_MODULE_MAGIC;

char	   *mmsa_model_dir = NULL;
int			mmsa_threads = 1;
int			mmsa_max_image_pixels = 50 * 1000 * 1000;
char	   *mmsa_isa_setting = NULL;
int			mmsa_precision_setting = MMSA_PRECISION_DEFAULT;

static const struct config_enum_entry precision_options[] = {
	{"fp32", MMSA_PRECISION_FP32, false},
	{"int8", MMSA_PRECISION_INT8, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/*
 * The core's cancellation hook: a query cancel, statement timeout or
 * termination is pending and may be processed now.  The core unwinds and
 * returns MMSA_ERR_CANCELED; mmsa_report_error then lets
 * CHECK_FOR_INTERRUPTS() raise the proper error.  Other interrupts (such
 * as messages from parallel workers, which also set InterruptPending) do
 * not stop inference.
 */
static int
mmsa_interrupt_pending(void)
{
	return InterruptPending && (QueryCancelPending || ProcDiePending) &&
		INTERRUPTS_CAN_BE_PROCESSED();
}

/*
 * mmsa.isa's check hook: the value must name a path (auto, avx2, avx-vnni, avx512)
 * that this CPU can run; auto always passes, even on a CPU without AVX2,
 * whose first model load then reports the error.  Other names the core
 * parses (test builds' emulated paths) are unknown here.  The parsed path
 * goes to the assign hook as extra.
 */
static bool
check_mmsa_isa(char **newval, void **extra, GucSource source)
{
	mmsa_isa	isa;
	mmsa_error	err;
	char		flags[256];
	mmsa_isa   *parsed;

	if (mmsa_isa_parse(*newval, &isa, &err) != MMSA_OK ||
		(isa != MMSA_ISA_AUTO && isa != MMSA_ISA_AVX2 && isa != MMSA_ISA_AVXVNNI &&
		 isa != MMSA_ISA_AVX512))
	{
		GUC_check_errdetail("The instruction-set paths are auto, avx2, avx-vnni and avx512.");
		return false;
	}
	if (!mmsa_cpu_supports(isa))
	{
		mmsa_cpu_flags(flags, sizeof(flags));
		GUC_check_errdetail("This CPU cannot run the %s path (its flags: %s).",
							mmsa_isa_name(isa), flags[0] ? flags : "none of avx, avx2, fma, avx512f");
		GUC_check_errhint("auto uses the best path the CPU has; mmsa_cpu_flags() lists its flags.");
		return false;
	}

	/* extra is freed by guc.c: guc_malloc'd from PG16, malloc'd before */
#if PG_VERSION_NUM >= 160000
	parsed = guc_malloc(LOG, sizeof(mmsa_isa));
#else
	parsed = malloc(sizeof(mmsa_isa));
#endif
	if (parsed == NULL)
		return false;
	*parsed = isa;
	*extra = parsed;
	return true;
}

/*
 * mmsa.isa's assign hook: the kernels of this backend take the path from
 * the next product on.  It runs when the module loads (auto, or a value
 * set before), on SET and RESET, and when a transaction or function
 * restores the previous value; never while a kernel runs, since the
 * kernels run inside a single function call.  auto on a CPU without AVX2
 * leaves the path unchosen, and the first model load (mmsa_isa_init) or
 * mmsa_isa() raises the error: an assign hook must not fail.
 */
static void
assign_mmsa_isa(const char *newval, void *extra)
{
	if (extra != NULL)
		(void) mmsa_isa_set(*(mmsa_isa *) extra, NULL);
}

/*
 * Module load: define the settings and install the cancellation hook.
 * The model itself is loaded lazily, by the first function that needs it,
 * inside the backend (never in the postmaster).
 */
void
_PG_init(void)
{
	static char default_model_dir[MAXPGPATH];
	char		share_path[MAXPGPATH];

	/*
	 * OpenBLAS starts its thread pool when the library is loaded.  Loaded
	 * into the postmaster, those threads would not survive fork() and the
	 * backends' BLAS would hang or crash: refuse to be preloaded.
	 */
	if (process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("mmsa must not be listed in shared_preload_libraries"),
				 errdetail("OpenBLAS would start its threads in the postmaster, before fork()."),
				 errhint("Remove mmsa from shared_preload_libraries: each backend loads it, "
						 "and the model's weights are shared through read-only mappings anyway.")));

	get_share_path(my_exec_path, share_path);
	snprintf(default_model_dir, sizeof(default_model_dir), "%s/mmsa", share_path);

	/*
	 * Keep glibc's mmap threshold at its initial 128 KiB.  Left dynamic, the
	 * first large buffer freed (a decoded image, libjpeg's arrays) raises it
	 * to that buffer's size and the heap's trim threshold to twice that, and
	 * from then on such per-call buffers come from the heap and megabytes
	 * of them stay private to the backend after each call.  Pinned, they
	 * are mapped and returned whole; the model's own work buffers are
	 * allocated once and reused, so they are not affected.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);

	DefineCustomStringVariable("mmsa.model_dir",
							   "Directory of the installed mmsa model.",
							   "The text encoder is read from its text/ subdirectory "
							   "(Hugging Face layout: config.json, model.safetensors, vocab.txt), "
							   "the image encoder from image/, the sentiment model from "
							   "model.json and heads/. "
							   "Changing it changes the results of IMMUTABLE functions: "
							   "rebuild generated columns and indexes that use them.",
							   &mmsa_model_dir,
							   default_model_dir,
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("mmsa.threads",
							"Number of OpenBLAS threads one backend uses for inference.",
							NULL,
							&mmsa_threads,
							1, 1, 64,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("mmsa.max_image_pixels",
							"Largest image (width x height) that mmsa decodes.",
							"Larger images are refused from their header, before any "
							"large allocation. JPEGs are checked at the reduced size "
							"that DCT scaling decodes them at.",
							&mmsa_max_image_pixels,
							50 * 1000 * 1000, 1, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/*
	 * Defining it runs the assign hook, so the path is chosen here, before
	 * any model load; mmsa_isa_init, which the loaders call, then keeps it.
	 */
	DefineCustomStringVariable("mmsa.isa",
							   "Instruction-set path of the matrix and convolution kernels.",
							   "auto (the best the CPU has), avx2 (AVX2 and FMA), avx-vnni (AVX2, "
							   "and AVX-VNNI for int8) or avx512 (AVX-512 F, BW and VL; AVX512_VNNI "
							   "for int8 where the CPU has it). A path the CPU lacks is refused.",
							   &mmsa_isa_setting,
							   "auto",
							   PGC_USERSET,
							   0,
							   check_mmsa_isa, assign_mmsa_isa, NULL);

	DefineCustomEnumVariable("mmsa.precision",
							 "Arithmetic of the encoders: fp32 or int8.",
							 "int8 runs BERT's linear layers (text/model.int8.packed, activations "
							 "quantized per token) and ResNet-50's 1x1 convolutions "
							 "(image/model.int8.packed, from image/calibration.json) on int8 "
							 "weights and activations, both written by `mmsa pack`; its labels "
							 "differ from fp32's on 1.4% of the MVSA-Single posts (README: Precision). "
							 "IMMUTABLE functions give the results of the session's precision: "
							 "index and query with one.",
							 &mmsa_precision_setting,
							 MMSA_PRECISION_DEFAULT,
							 precision_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("mmsa");
#else
	EmitWarningsOnPlaceholders("mmsa");
#endif

	mmsa_set_interrupt_hook(mmsa_interrupt_pending);
}

/*
 * Applies mmsa.threads before a forward pass.  OpenBLAS starts its threads
 * lazily here, inside the backend.
 */
void
mmsa_prepare_threads(void)
{
	static int	current = -1;

	if (current != mmsa_threads)
	{
		openblas_set_num_threads(mmsa_threads);
		current = mmsa_threads;
	}
}

/*
 * Builds a real[] from n floats (an embedding, for the SQL functions that
 * return one).
 */
ArrayType *
mmsa_float4_array(const float *v, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		elems[i] = Float4GetDatum(v[i]);
	return construct_array(elems, n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
}

/*
 * Raises a core error as a PostgreSQL ERROR.  Model files that are missing
 * or damaged are the installation's problem (58P01, XX001); bad arguments
 * are the caller's (22P03, 22023).
 */
void
mmsa_report_error(const mmsa_error *err, mmsa_error_origin origin)
{
	int			sqlstate;
	const char *hint = NULL;

	switch (err->status)
	{
		case MMSA_ERR_CANCELED:
			CHECK_FOR_INTERRUPTS();
			sqlstate = ERRCODE_QUERY_CANCELED;
			break;
		case MMSA_ERR_IO:
			sqlstate = ERRCODE_UNDEFINED_FILE;
			hint = "Install a model or point mmsa.model_dir (superuser) at one; see the mmsa README.";
			break;
		case MMSA_ERR_FORMAT:
			if (origin == MMSA_ORIGIN_MODEL)
			{
				sqlstate = ERRCODE_DATA_CORRUPTED;
				hint = "The model files under mmsa.model_dir are damaged or not what mmsa expects; reinstall the model.";
			}
			else
				sqlstate = ERRCODE_INVALID_BINARY_REPRESENTATION;
			break;
		case MMSA_ERR_INVALID:
			sqlstate = origin == MMSA_ORIGIN_MODEL ? ERRCODE_DATA_CORRUPTED
				: ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		case MMSA_ERR_NOMEM:
			sqlstate = ERRCODE_OUT_OF_MEMORY;
			break;
		case MMSA_ERR_UNSUPPORTED:
			sqlstate = ERRCODE_FEATURE_NOT_SUPPORTED;
			break;
		case MMSA_ERR_LIMIT:
			sqlstate = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		default:
			sqlstate = ERRCODE_INTERNAL_ERROR;
			break;
	}
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("mmsa: %s", err->message),
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}
