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
