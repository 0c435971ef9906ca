-- mmsa 0.1.0 -> 0.2.0: mmsa_info(), and planner costs for the inference
-- functions.  CREATE EXTENSION mmsa installs 0.1.0 and then runs this file;
-- ALTER EXTENSION mmsa UPDATE runs it on a database that has 0.1.0.
\echo Use "ALTER EXTENSION mmsa UPDATE TO '0.2.0'" to load this file. \quit

-- ---- what this server runs ------------------------------------------------

CREATE FUNCTION mmsa_info(
	OUT version text,
	OUT library_version text,
	OUT model_dir text,
	OUT text_model text,
	OUT image_model text,
	OUT default_model text,
	OUT default_val_accuracy real,
	OUT val_accuracy jsonb,
	OUT inference_precision text,
	OUT isa text,
	OUT int8_kernels text,
	OUT threads int)
	AS 'MODULE_PATHNAME', 'mmsa_info'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_info() IS
'What this server runs: the installed and the library version, mmsa.model_dir, the identity of the text and image encoders'' weights (size:hash of model.safetensors, as the sidecars record it), the default model and the val accuracy of every head (model.json), mmsa.precision, the instruction-set path and int8 kernels in use, and mmsa.threads; NULL where a model file is missing';

-- ---- functions that early 0.1.0 builds lacked --------------------------------
-- mmsa_isa() and mmsa_cpu_flags() (2026-12-06) and mmsa_int8_kernels()
-- (2026-12-07) joined mmsa--0.1.0.sql after databases were first made with
-- it: made here again, so that every 0.1.0 database has them after the update.

CREATE OR REPLACE FUNCTION mmsa_isa() RETURNS text
	AS 'MODULE_PATHNAME', 'mmsa_isa_sql'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_isa() IS
'Instruction-set path of the kernels in this session: avx512, avx-vnni or avx2, the best the CPU has unless mmsa.isa names one (a CPU without AVX2 and FMA is an error, 0A000)';

CREATE OR REPLACE FUNCTION mmsa_int8_kernels() RETURNS text
	AS 'MODULE_PATHNAME', 'mmsa_int8_kernels_sql'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_int8_kernels() IS
'The int8 kernels that the instruction-set path runs when mmsa.precision is int8: avx512-vnni, avx-vnni or avx2';

CREATE OR REPLACE FUNCTION mmsa_cpu_flags() RETURNS text
	AS 'MODULE_PATHNAME', 'mmsa_cpu_flags_sql'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_cpu_flags() IS
'The CPU''s SIMD flags that decide the paths mmsa.isa accepts, space separated, as /proc/cpuinfo names them (avx avx2 fma avx512f avx512bw avx512vl ...)';

-- ---- planner costs --------------------------------------------------------
-- COST is the time of one call in units of one cpu_operator_cost (the
-- time of int4 + int4), as test/bench/function_costs.sh measured it on 40
-- MVSA-Single train posts, one backend, mmsa.threads = 1 (2026-12-07, AMD
-- EPYC, AVX2 path, fp32: int4 + int4 10 ns; mmsa_tokenize 8 us,
-- mmsa_text_embedding 3.1 ms, mmsa_image_embedding 78 ms,
-- mmsa_image_classes 93 ms, mmsa_sentiment with an image 99 ms, without
-- one 3.6 ms), rounded to one significant figure.  Without them every call
-- cost 1, as cheap as an addition: the planner neither ran these calls in
-- parallel workers nor evaluated a cheap filter before them.  A post's
-- functions are costed with its image: most posts have one.
ALTER FUNCTION mmsa_tokenize(text) COST 500;
ALTER FUNCTION mmsa_wordpieces(text) COST 500;
ALTER FUNCTION mmsa_text_embedding(text) COST 300000;
ALTER FUNCTION mmsa_image_embedding(bytea) COST 8000000;
ALTER FUNCTION mmsa_image_classes(bytea, int) COST 9000000;
ALTER FUNCTION mmsa_sentiment(text, bytea) COST 10000000;
ALTER FUNCTION mmsa_sentiment(text, bytea, text) COST 10000000;
ALTER FUNCTION mmsa_scores(text, bytea, text) COST 10000000;
ALTER FUNCTION mmsa_distribution_post_accum(bigint[], text, bytea) COST 10000000;
