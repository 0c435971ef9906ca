-- pgTAP: the text path's SQL functions (mmsa_tokenize, mmsa_wordpieces,
-- mmsa_text_embedding): signatures, volatility, parallel safety, results
-- against the PyTorch reference and the reference tokenizer, NULL handling
-- and errors.  Expects the fixtures of test/reference/sql_fixtures.py
-- (tables fixture_texts, fixture_settings) in the database.
BEGIN;
SELECT plan(36);

CREATE EXTENSION IF NOT EXISTS mmsa;

-- signatures and markings
SELECT has_function('mmsa_tokenize', ARRAY['text'], 'mmsa_tokenize(text) exists');
SELECT function_returns('mmsa_tokenize', ARRAY['text'], 'integer[]', 'mmsa_tokenize returns int[]');
SELECT has_function('mmsa_wordpieces', ARRAY['text'], 'mmsa_wordpieces(text) exists');
SELECT function_returns('mmsa_wordpieces', ARRAY['text'], 'text[]', 'mmsa_wordpieces returns text[]');
SELECT has_function('mmsa_text_embedding', ARRAY['text'], 'mmsa_text_embedding(text) exists');
SELECT function_returns('mmsa_text_embedding', ARRAY['text'], 'real[]', 'mmsa_text_embedding returns real[]');
SELECT volatility_is('mmsa_tokenize', ARRAY['text'], 'immutable', 'mmsa_tokenize is IMMUTABLE');
SELECT volatility_is('mmsa_wordpieces', ARRAY['text'], 'immutable', 'mmsa_wordpieces is IMMUTABLE');
SELECT volatility_is('mmsa_text_embedding', ARRAY['text'], 'immutable', 'mmsa_text_embedding is IMMUTABLE');
SELECT is_strict('mmsa_text_embedding', ARRAY['text'], 'mmsa_text_embedding is STRICT');
SELECT is(
    (SELECT string_agg(proname || '=' || proparallel::text, ',' ORDER BY proname) FROM pg_proc
     WHERE proname IN ('mmsa_tokenize', 'mmsa_wordpieces', 'mmsa_text_embedding')),
    'mmsa_text_embedding=s,mmsa_tokenize=s,mmsa_wordpieces=s',
    'the text functions are PARALLEL SAFE');
SELECT ok(obj_description('mmsa_text_embedding(text)'::regprocedure, 'pg_proc') IS NOT NULL
          AND obj_description('mmsa_tokenize(text)'::regprocedure, 'pg_proc') IS NOT NULL
          AND obj_description('mmsa_wordpieces(text)'::regprocedure, 'pg_proc') IS NOT NULL,
          'every text function has a COMMENT');

-- tokenizer against the independent Python reference
SELECT is((SELECT count(*) FROM fixture_texts WHERE mmsa_tokenize(body) = ref_ids),
          (SELECT count(*) FROM fixture_texts),
          'mmsa_tokenize gives the reference tokenizer''s ids for every fixture text');
SELECT is(mmsa_tokenize(''), ARRAY[101, 102], 'empty text gives [CLS] [SEP]');
SELECT is(mmsa_wordpieces('Héllo, wörld!'), ARRAY['[CLS]', 'hello', ',', 'world', '!', '[SEP]'],
          'wordpieces: lower case, accents stripped, punctuation split');
SELECT is(array_length(mmsa_tokenize(repeat('sentiment ', 5000)), 1),
          (SELECT max_length FROM fixture_settings),
          'a text far longer than the maximum length is truncated to it');
SELECT is((mmsa_tokenize(repeat('sentiment ', 5000)))[(SELECT max_length FROM fixture_settings)], 102,
          'a truncated text still ends with [SEP]');
SELECT is(mmsa_tokenize(NULL), NULL, 'NULL text gives NULL ids');

-- embeddings against the PyTorch reference
SELECT is(array_length(mmsa_text_embedding('a post'), 1),
          (SELECT hidden_size FROM fixture_settings), 'embedding has hidden_size values');
SELECT cmp_ok(
    (SELECT max(abs(u.got::float8 - u.want::float8))
     FROM fixture_texts f, unnest(mmsa_text_embedding(f.body), f.ref_pooled) AS u(got, want)),
    '<=', 1e-4::float8,
    'mmsa_text_embedding matches the PyTorch reference pooled output within 1e-4 for every fixture text');
SELECT is(mmsa_text_embedding(NULL), NULL, 'NULL text gives a NULL embedding');
SELECT is(mmsa_text_embedding('same text twice'), mmsa_text_embedding('same text twice'),
          'the same text gives the same embedding');

-- parallel workers give the same answer as the leader
CREATE TABLE many_posts AS
    SELECT row_number() OVER () AS i, body FROM fixture_texts, generate_series(1, 50);
ANALYZE many_posts;
CREATE TEMP TABLE serial_result AS
    SELECT i, body, mmsa_text_embedding(body) AS e FROM many_posts;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL force_parallel_mode = on;
SELECT is((SELECT count(*) FROM serial_result s
           JOIN (SELECT i, mmsa_text_embedding(body) AS e FROM many_posts) p USING (i)
           WHERE p.e = s.e),
          (SELECT count(*) FROM serial_result),
          'embeddings computed with parallel workers equal the serial ones');
CREATE FUNCTION pg_temp.workers_launched(query text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || query INTO plan;
    RETURN coalesce((plan->0->'Plan'->>'Workers Launched')::int, 0);
END $$;
SELECT cmp_ok(pg_temp.workers_launched('SELECT mmsa_text_embedding(body) FROM many_posts'), '>', 0,
              'the parallel comparison really ran in parallel workers');
RESET force_parallel_mode;

-- tweet normalisation: the same encoder, marked by text/tokenizer_config.json,
-- reads user names and links as @user and http
CREATE TEMP TABLE plain AS
    SELECT mmsa_tokenize('@bob loves it http://t.co/x') AS raw_ids,
           mmsa_tokenize('@user loves it http') AS norm_ids,
           mmsa_text_embedding('@user loves it http') AS norm_e;
SELECT (SELECT 'SET LOCAL mmsa.model_dir = ' || quote_literal(tweet_dir) FROM fixture_settings) \gexec
SELECT is(mmsa_tokenize('@bob loves it http://t.co/x'), (SELECT norm_ids FROM plain),
          'a model with tweet normalisation tokenizes "@bob ... http://t.co/x" as "@user ... http"');
SELECT isnt((SELECT raw_ids FROM plain), (SELECT norm_ids FROM plain),
            'which a model without it does not');
SELECT is(mmsa_text_embedding('@bob loves it http://t.co/x'), (SELECT norm_e FROM plain),
          'and embeds it as the plain model embeds the normalised text');
SELECT (SELECT 'SET LOCAL mmsa.model_dir = ' || quote_literal(bad_tokenizer_config_dir) FROM fixture_settings) \gexec
SELECT throws_ok($$SELECT mmsa_tokenize('x')$$, 'XX001', NULL,
                 'a malformed tokenizer_config.json is XX001 data_corrupted');
SELECT throws_like($$SELECT mmsa_tokenize('x')$$, '%tokenizer_config.json%true or false%',
                   'naming the file and what is wrong');
SELECT (SELECT 'SET LOCAL mmsa.model_dir = ' || quote_literal(model_dir) FROM fixture_settings) \gexec

-- errors: missing, corrupt and mismatched model files, and who may move the model
SET LOCAL mmsa.model_dir = '/nonexistent/mmsa-model';
SELECT throws_ok($$SELECT mmsa_tokenize('x')$$, '58P01', NULL, 'a missing model directory is 58P01 undefined_file');
SELECT (SELECT 'SET LOCAL mmsa.model_dir = ' || quote_literal(missing_weights_dir) FROM fixture_settings) \gexec
SELECT lives_ok($$SELECT mmsa_tokenize('x')$$, 'tokenizing needs only the vocabulary');
SELECT throws_ok($$SELECT mmsa_text_embedding('x')$$, '58P01', NULL, 'missing weights are 58P01 undefined_file');
SELECT (SELECT 'SET LOCAL mmsa.model_dir = ' || quote_literal(truncated_dir) FROM fixture_settings) \gexec
SELECT throws_ok($$SELECT mmsa_text_embedding('x')$$, 'XX001', NULL, 'a truncated weights file is XX001 data_corrupted');
SELECT (SELECT 'SET LOCAL mmsa.model_dir = ' || quote_literal(wrong_shape_dir) FROM fixture_settings) \gexec
SELECT throws_like($$SELECT mmsa_text_embedding('x')$$, '%shape%', 'a tensor of the wrong shape is refused, naming the shape');
SELECT (SELECT 'SET LOCAL mmsa.model_dir = ' || quote_literal(model_dir) FROM fixture_settings) \gexec
SELECT lives_ok($$SELECT mmsa_text_embedding('x')$$, 'back to the good model');

CREATE ROLE mmsa_plain_user;
SET LOCAL ROLE mmsa_plain_user;
SELECT throws_ok($$SET mmsa.model_dir = '/etc'$$, '42501', NULL, 'only superusers may change mmsa.model_dir');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
