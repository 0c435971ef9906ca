-- pgTAP: mmsa.precision, the arithmetic of the encoders (fp32 or int8):
-- the setting, its scope, the int8 kernels shown from SQL, the answers at
-- int8 against `mmsa predict --precision int8`, the text and image
-- embeddings at int8 against fp32, and the int8 weights that are refused
-- (missing: 58P01 with a hint; corrupt or cut short: XX001), of either
-- encoder.
--
-- Needs the fixtures of test/reference/sql_fixtures.py (fixture_posts,
-- mvsa_predict, mvsa_predict_int8, fixture_settings) and a trained model,
-- as test/pgtap/sentiment_functions.sql does.
BEGIN;
SELECT plan(28);

CREATE EXTENSION IF NOT EXISTS mmsa;

SELECT fixture_trained_model_dir() AS model_dir \gset
SET LOCAL mmsa.model_dir = :'model_dir';

-- ---- the setting ----------------------------------------------------------------
SELECT is((SELECT setting FROM pg_settings WHERE name = 'mmsa.precision'), 'fp32',
          'mmsa.precision is fp32 by default');
SELECT is((SELECT enumvals FROM pg_settings WHERE name = 'mmsa.precision'), ARRAY['fp32', 'int8'],
          'mmsa.precision takes fp32 or int8');
SELECT is((SELECT context FROM pg_settings WHERE name = 'mmsa.precision'), 'user',
          'any user may set mmsa.precision');
SELECT throws_ok($$SET mmsa.precision = 'fp16'$$, '22023', NULL, 'an unknown precision is 22023');
SELECT throws_ok($$SET mmsa.precision = ''$$, '22023', NULL, 'an empty precision is 22023');
SELECT ok(mmsa_int8_kernels() IN ('avx2', 'avx-vnni', 'avx512-vnni'),
          'mmsa_int8_kernels() names the int8 kernels of the path: ' || mmsa_int8_kernels());
SELECT is(mmsa_int8_kernels(), CASE mmsa_isa() WHEN 'avx2' THEN 'avx2'
                                            WHEN 'avx-vnni' THEN 'avx-vnni'
                                            ELSE mmsa_int8_kernels() END,
          'the avx2 path runs the AVX2 int8 kernels, avx-vnni the AVX-VNNI ones');

-- ---- the answers at int8 ----------------------------------------------------------
-- mvsa_predict_int8: what `mmsa predict --precision int8` printed for the
-- fixture posts (6 decimals); the SQL functions share its code
SET LOCAL mmsa.precision = int8;
SELECT is(current_setting('mmsa.precision'), 'int8', 'SET LOCAL mmsa.precision = int8 takes');
SELECT is((SELECT count(*)::int FROM mvsa_predict_int8), (SELECT count(*)::int FROM fixture_posts),
          'mmsa predict --precision int8 classified every fixture post');
CREATE TEMP TABLE int8_scores AS
SELECT id, (mmsa_scores(body, CASE WHEN image_path IS NULL THEN NULL
                                   ELSE pg_read_binary_file(image_path) END)).*
FROM fixture_posts;
SELECT is((SELECT count(*)::int FROM int8_scores s JOIN mvsa_predict_int8 r USING (id)
           WHERE s.label::text = r.label),
          (SELECT count(*)::int FROM fixture_posts),
          'at int8, mmsa_scores gives every post the label mmsa predict --precision int8 gives it');
SELECT cmp_ok((SELECT max(greatest(abs(s.p_negative - r.p_negative), abs(s.p_neutral - r.p_neutral),
                                   abs(s.p_positive - r.p_positive)))
               FROM int8_scores s JOIN mvsa_predict_int8 r USING (id))::float8, '<=', 1e-6::float8,
              'at int8, the probabilities equal mmsa predict --precision int8''s within 1e-6');
-- int8 is a different computation: some probability moves, none by much
SELECT cmp_ok((SELECT max(greatest(abs(s.p_negative - r.p_negative), abs(s.p_neutral - r.p_neutral),
                                   abs(s.p_positive - r.p_positive)))
               FROM int8_scores s JOIN mvsa_predict r USING (id) WHERE r.id IN
               (SELECT id FROM fixture_posts WHERE image_path IS NOT NULL))::float8, '>', 0::float8,
              'int8 probabilities differ from fp32''s (the int8 kernels ran)');
SELECT cmp_ok((SELECT max(greatest(abs(s.p_negative - r.p_negative), abs(s.p_neutral - r.p_neutral),
                                   abs(s.p_positive - r.p_positive)))
               FROM int8_scores s JOIN mvsa_predict r USING (id))::float8, '<', 0.2::float8,
              'int8 probabilities stay within 0.2 of fp32''s');
CREATE TEMP TABLE int8_embedding AS
SELECT mmsa_image_embedding(pg_read_binary_file(image_path)) AS e
FROM fixture_posts WHERE image_path IS NOT NULL ORDER BY id LIMIT 1;
CREATE TEMP TABLE int8_text AS
SELECT id, mmsa_text_embedding(body) AS e FROM fixture_posts;
SET LOCAL mmsa.precision = fp32;
SELECT cmp_ok((SELECT min(c) FROM (
                 SELECT sum(a * b) / sqrt(sum(a * a) * sum(b * b)) AS c
                 FROM int8_text t JOIN fixture_posts p USING (id),
                      unnest(t.e, mmsa_text_embedding(p.body)) AS u(a, b)
                 GROUP BY id) v)::float8, '>', 0.98::float8,
              'every int8 text embedding points where the fp32 one does (cosine > 0.98)');
SELECT ok((SELECT bool_or(t.e <> mmsa_text_embedding(p.body)) FROM int8_text t JOIN fixture_posts p USING (id)),
          'and int8 text embeddings differ from fp32''s (the int8 BERT ran)');
SELECT cmp_ok((SELECT sum(a * b) / sqrt(sum(a * a) * sum(b * b))
               FROM (SELECT unnest(e) AS a, unnest(mmsa_image_embedding(pg_read_binary_file(image_path))) AS b
                     FROM int8_embedding, (SELECT image_path FROM fixture_posts WHERE image_path IS NOT NULL
                                           ORDER BY id LIMIT 1) p) v)::float8, '>', 0.98::float8,
              'the int8 image embedding points where the fp32 one does (cosine > 0.98)');
SELECT is((SELECT count(*)::int FROM fixture_posts p JOIN mvsa_predict r USING (id)
           WHERE mmsa_sentiment(p.body, CASE WHEN image_path IS NULL THEN NULL
                                        ELSE pg_read_binary_file(image_path) END)::text = r.label),
          (SELECT count(*)::int FROM fixture_posts),
          'back at fp32, every post gets mmsa predict''s fp32 label again');

-- ---- int8 weights that are refused ---------------------------------------------
SELECT no_int8_dir, corrupt_int8_dir, truncated_int8_dir FROM fixture_settings \gset
CREATE FUNCTION pg_temp.first_image() RETURNS bytea LANGUAGE sql AS
$$SELECT pg_read_binary_file(image_path) FROM fixture_posts WHERE image_path IS NOT NULL ORDER BY id LIMIT 1$$;
SET LOCAL mmsa.precision = int8;
SET LOCAL mmsa.model_dir = :'no_int8_dir';
SELECT throws_ok($$SELECT mmsa_image_embedding(pg_temp.first_image())$$, '58P01', NULL,
                 'int8 without int8 weights is 58P01');
CREATE FUNCTION pg_temp.hint_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
    EXECUTE query;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN h;
END $$;
SELECT matches(pg_temp.hint_of($$SELECT mmsa_image_embedding(pg_temp.first_image())$$),
               'mmsa pack --model .*calibration\.json.*mmsa\.precision = ''fp32''',
               'its hint says how to make them (mmsa pack) or to go back to fp32');
SET LOCAL mmsa.model_dir = :'corrupt_int8_dir';
SELECT throws_ok($$SELECT mmsa_image_embedding(pg_temp.first_image())$$, 'XX001', NULL,
                 'int8 weights with a changed byte are refused (XX001: their checksum)');
SET LOCAL mmsa.model_dir = :'truncated_int8_dir';
SELECT throws_ok($$SELECT mmsa_image_embedding(pg_temp.first_image())$$, 'XX001', NULL,
                 'int8 weights cut short are refused (XX001)');
SET LOCAL mmsa.precision = fp32;
SELECT is(array_length(mmsa_image_embedding(pg_temp.first_image()), 1), 2048,
          'the same model directory still serves fp32');

-- the text encoder's: the tiny model of the fixtures has none
SELECT model_dir AS tiny_dir FROM fixture_settings \gset
SET LOCAL mmsa.precision = int8;
SET LOCAL mmsa.model_dir = :'tiny_dir';
SELECT throws_ok($$SELECT mmsa_text_embedding('a post')$$, '58P01', NULL,
                 'int8 without the text encoder''s int8 weights is 58P01');
SELECT matches(pg_temp.hint_of($$SELECT mmsa_text_embedding('a post')$$),
               'mmsa pack --model .*/text.*mmsa\.precision = ''fp32''',
               'its hint says how to make them (mmsa pack) or to go back to fp32');
SET LOCAL mmsa.model_dir = :'corrupt_int8_dir';
SELECT throws_ok($$SELECT mmsa_text_embedding('a post')$$, 'XX001', NULL,
                 'text int8 weights with a changed byte are refused (XX001)');
SET LOCAL mmsa.model_dir = :'truncated_int8_dir';
SELECT throws_ok($$SELECT mmsa_text_embedding('a post')$$, 'XX001', NULL,
                 'text int8 weights cut short are refused (XX001)');
SET LOCAL mmsa.precision = fp32;
SELECT ok(array_length(mmsa_text_embedding('a post'), 1) > 0,
          'the same text model still serves fp32');

-- ---- a session's setting is its own ----------------------------------------------
SET LOCAL mmsa.model_dir = :'model_dir';
CREATE ROLE regress_mmsa_precision_user;
SET LOCAL ROLE regress_mmsa_precision_user;
SET LOCAL mmsa.precision = int8;
SELECT is(current_setting('mmsa.precision'), 'int8', 'a role without privileges may set int8');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
