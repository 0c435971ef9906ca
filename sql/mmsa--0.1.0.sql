-- mmsa 0.1.0: multimodal (text + image) sentiment analysis with BERT and ResNet-50.
\echo Use "CREATE EXTENSION mmsa" to load this file. \quit

-- The functions below read the model installed under the superuser-only
-- setting mmsa.model_dir.  Like text-search dictionaries, which read
-- installed files and still back IMMUTABLE functions, they are IMMUTABLE:
-- the model is fixed by the installation.  Changing the model is an
-- administrative act: afterwards, rebuild the generated columns and indexes
-- that use these functions (see the README).

CREATE FUNCTION mmsa_tokenize(body text) RETURNS int[]
	AS 'MODULE_PATHNAME', 'mmsa_tokenize'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_tokenize(text) IS
'WordPiece token ids of a text as the installed model''s BERT encoder sees them: [CLS] ... [SEP], uncased, truncated to the model''s maximum length';

CREATE FUNCTION mmsa_text_embedding(body text) RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmsa_text_embedding'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_text_embedding(text) IS
'Pooled vector (F_T) of a text from the installed model''s BERT encoder: hidden_size values (768 for bert-base)';

CREATE FUNCTION mmsa_wordpieces(body text) RETURNS text[]
	AS 'MODULE_PATHNAME', 'mmsa_wordpieces'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_wordpieces(text) IS
'WordPiece tokens behind mmsa_tokenize, as strings (## marks a word continuation): what the text encoder reads';

CREATE FUNCTION mmsa_image_embedding(image bytea) RETURNS real[]
	AS 'MODULE_PATHNAME', 'mmsa_image_embedding'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_image_embedding(bytea) IS
'Pooled vector (F_I, 2048 values) of a JPEG or PNG image from the installed model''s ResNet-50 image encoder';

CREATE FUNCTION mmsa_image_classes(image bytea, k int DEFAULT 5)
	RETURNS TABLE (rank int, label text, probability real)
	AS 'MODULE_PATHNAME', 'mmsa_image_classes'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 5;

COMMENT ON FUNCTION mmsa_image_classes(bytea, int) IS
'The k most probable ImageNet classes of a JPEG or PNG image according to the installed ResNet-50, with their probabilities';

-- ---- sentiment ------------------------------------------------------------
-- A post is a text and an image (JPEG or PNG).  The functions below are not
-- strict: a post without an image is classified by the text-only model
-- (bert), a post without a text by the image-only model (resnet), and a post
-- with neither has no sentiment (NULL).  They read model.json and the seven
-- heads under mmsa.model_dir as well as the encoders.

CREATE TYPE mmsa_label AS ENUM ('negative', 'neutral', 'positive');

COMMENT ON TYPE mmsa_label IS
'Sentiment of a post: negative < neutral < positive (the three classes of MVSA)';

CREATE FUNCTION mmsa_sentiment(body text, image bytea) RETURNS mmsa_label
	AS 'MODULE_PATHNAME', 'mmsa_sentiment'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_sentiment(text, bytea) IS
'Sentiment of a post (text and JPEG/PNG image) by the installed model''s default fusion (model.json). A NULL image uses the text-only model bert, a NULL text the image-only model resnet; both NULL give NULL';

CREATE FUNCTION mmsa_sentiment(body text, image bytea, model text) RETURNS mmsa_label
	AS 'MODULE_PATHNAME', 'mmsa_sentiment'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_sentiment(text, bytea, text) IS
'Sentiment of a post by the named model: bert (text only), resnet (image only), nativecat, nativecombine, cmac, hstec or ote; NULL model = the default fusion. A NULL image still uses bert, a NULL text resnet; both NULL give NULL; an unknown name is an error (22023)';

CREATE FUNCTION mmsa_scores(body text, image bytea, model text DEFAULT NULL,
							OUT label mmsa_label, OUT p_negative real,
							OUT p_neutral real, OUT p_positive real)
	RETURNS record
	AS 'MODULE_PATHNAME', 'mmsa_scores'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_scores(text, bytea, text) IS
'Label of a post with the probabilities of the three classes (they sum to 1; label is the most probable), by the named model or the default fusion, with the NULL rules of mmsa_sentiment; a post with neither text nor image gives a NULL row';

-- ---- label distributions --------------------------------------------------

CREATE TYPE mmsa_label_distribution AS (
	total bigint,
	negative bigint,
	neutral bigint,
	positive bigint,
	negative_share double precision,
	neutral_share double precision,
	positive_share double precision
);

COMMENT ON TYPE mmsa_label_distribution IS
'Result of mmsa_distribution: how many posts were counted (NULLs are not), how many of each label, and each label''s share of the total (NULL shares when the total is 0)';

CREATE FUNCTION mmsa_distribution_accum(state bigint[], label mmsa_label) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'mmsa_distribution_accum'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_distribution_accum(bigint[], mmsa_label) IS
'Support function of the aggregate mmsa_distribution(mmsa_label): adds one label to the counts {negative, neutral, positive}';

CREATE FUNCTION mmsa_distribution_post_accum(state bigint[], body text, image bytea) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'mmsa_distribution_post_accum'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_distribution_post_accum(bigint[], text, bytea) IS
'Support function of the aggregate mmsa_distribution(text, bytea): classifies one post with the default fusion and adds its label to the counts {negative, neutral, positive}';

CREATE FUNCTION mmsa_distribution_combine(state bigint[], other bigint[]) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'mmsa_distribution_combine'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_distribution_combine(bigint[], bigint[]) IS
'Support function of the mmsa_distribution aggregates: adds the counts of two partial results (parallel aggregation)';

CREATE FUNCTION mmsa_distribution_final(state bigint[]) RETURNS mmsa_label_distribution
	AS 'MODULE_PATHNAME', 'mmsa_distribution_final'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_distribution_final(bigint[]) IS
'Support function of the mmsa_distribution aggregates: turns the counts {negative, neutral, positive} into an mmsa_label_distribution';

CREATE AGGREGATE mmsa_distribution(mmsa_label) (
	SFUNC = mmsa_distribution_accum,
	STYPE = bigint[],
	INITCOND = '{0,0,0}',
	COMBINEFUNC = mmsa_distribution_combine,
	FINALFUNC = mmsa_distribution_final,
	PARALLEL = SAFE
);

COMMENT ON AGGREGATE mmsa_distribution(mmsa_label) IS
'Distribution of a column of sentiment labels: total, count and share of each label (NULL labels are not counted; shares are NULL when no label was counted)';

CREATE AGGREGATE mmsa_distribution(body text, image bytea) (
	SFUNC = mmsa_distribution_post_accum,
	STYPE = bigint[],
	INITCOND = '{0,0,0}',
	COMBINEFUNC = mmsa_distribution_combine,
	FINALFUNC = mmsa_distribution_final,
	PARALLEL = SAFE
);

COMMENT ON AGGREGATE mmsa_distribution(text, bytea) IS
'Distribution of the sentiment of posts (text, image), each classified as mmsa_sentiment(body, image) does: total, count and share of each label (posts with neither text nor image are not counted)';

-- ---- the kernels' instruction-set path ------------------------------------
-- The matrix products and convolutions run on the best vector instructions
-- the CPU has (AVX-512, or AVX2 with FMA), or on the path that the setting
-- mmsa.isa names (auto, avx2, avx-vnni or avx512).  These functions show which.

CREATE FUNCTION mmsa_isa() RETURNS text
	AS 'MODULE_PATHNAME', 'mmsa_isa_sql'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_isa() IS
'Instruction-set path of the kernels in this session: avx512, avx-vnni or avx2, the best the CPU has unless mmsa.isa names one (a CPU without AVX2 and FMA is an error, 0A000)';

CREATE FUNCTION mmsa_int8_kernels() RETURNS text
	AS 'MODULE_PATHNAME', 'mmsa_int8_kernels_sql'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_int8_kernels() IS
'The int8 kernels that the instruction-set path runs when mmsa.precision is int8: avx512-vnni, avx-vnni or avx2';

CREATE FUNCTION mmsa_cpu_flags() RETURNS text
	AS 'MODULE_PATHNAME', 'mmsa_cpu_flags_sql'
	LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION mmsa_cpu_flags() IS
'The CPU''s SIMD flags that decide the paths mmsa.isa accepts, space separated, as /proc/cpuinfo names them (avx avx2 fma avx512f avx512bw avx512vl ...)';
