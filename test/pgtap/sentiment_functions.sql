-- pgTAP: the sentiment SQL surface (mmsa_label, mmsa_sentiment,
-- mmsa_scores, the mmsa_distribution aggregates): signatures, markings and
-- comments, the NULL rules, errors and their SQLSTATEs, a generated column
-- with an index, and the aggregates with and without parallel workers.
--
-- Needs a trained model: the one under mmsa.model_dir when it has a
-- model.json (developers: PGOPTIONS='-c mmsa.model_dir=DIR' pg_prove ...),
-- else the installed default <sharedir>/mmsa, which test/run-tests.sh uses
-- (its mmsa.model_dir is the text-only test model).  Expects the fixtures
-- of test/reference/sql_fixtures.py (fixture_texts, fixture_settings,
-- fixture_posts and mvsa_predict: `mmsa predict` on the same posts).
BEGIN;
SELECT plan(61);

CREATE EXTENSION IF NOT EXISTS mmsa;

SELECT fixture_trained_model_dir() AS model_dir \gset
SET LOCAL mmsa.model_dir = :'model_dir';
SELECT ok((pg_stat_file(:'model_dir' || '/model.json', true)).size IS NOT NULL,
          'a trained model is installed (' || :'model_dir' || '/model.json)');

CREATE FUNCTION pg_temp.photo(name text) RETURNS bytea LANGUAGE sql AS
$$SELECT pg_read_binary_file((SELECT skimage_dir FROM fixture_settings) || '/' || name)$$;
CREATE FUNCTION pg_temp.test_image(name text) RETURNS bytea LANGUAGE sql AS
$$SELECT pg_read_binary_file((SELECT images_dir FROM fixture_settings) || '/' || name)$$;

-- ---- the types ---------------------------------------------------------------
SELECT has_type('mmsa_label', 'type mmsa_label exists');
SELECT enum_has_labels('mmsa_label', ARRAY['negative', 'neutral', 'positive'],
                       'mmsa_label is the enum negative < neutral < positive');
SELECT has_composite('mmsa_label_distribution', 'type mmsa_label_distribution exists');
SELECT columns_are('mmsa_label_distribution',
                   ARRAY['total', 'negative', 'neutral', 'positive',
                         'negative_share', 'neutral_share', 'positive_share'],
                   'mmsa_label_distribution has the counts and the shares');

-- ---- signatures, markings, comments -----------------------------------------
SELECT has_function('mmsa_sentiment', ARRAY['text', 'bytea'], 'mmsa_sentiment(text, bytea) exists');
SELECT function_returns('mmsa_sentiment', ARRAY['text', 'bytea'], 'mmsa_label',
                        'mmsa_sentiment(text, bytea) returns mmsa_label');
SELECT has_function('mmsa_sentiment', ARRAY['text', 'bytea', 'text'], 'mmsa_sentiment(text, bytea, text) exists');
SELECT function_returns('mmsa_sentiment', ARRAY['text', 'bytea', 'text'], 'mmsa_label',
                        'mmsa_sentiment(text, bytea, text) returns mmsa_label');
SELECT has_function('mmsa_scores', ARRAY['text', 'bytea', 'text'], 'mmsa_scores(text, bytea, text) exists');
SELECT is(pg_get_function_arguments('mmsa_scores(text, bytea, text)'::regprocedure),
          'body text, image bytea, model text DEFAULT NULL::text, OUT label mmsa_label, '
          'OUT p_negative real, OUT p_neutral real, OUT p_positive real',
          'mmsa_scores: model defaults to NULL; OUT label, p_negative, p_neutral, p_positive');
SELECT is_aggregate('mmsa_distribution', ARRAY['mmsa_label'], 'mmsa_distribution(mmsa_label) is an aggregate');
SELECT function_returns('mmsa_distribution', ARRAY['mmsa_label'], 'mmsa_label_distribution',
                        'mmsa_distribution(mmsa_label) returns mmsa_label_distribution');
SELECT is_aggregate('mmsa_distribution', ARRAY['text', 'bytea'], 'mmsa_distribution(text, bytea) is an aggregate');
SELECT function_returns('mmsa_distribution', ARRAY['text', 'bytea'], 'mmsa_label_distribution',
                        'mmsa_distribution(text, bytea) returns mmsa_label_distribution');
SELECT is(
    (SELECT string_agg(p.oid::regprocedure::text || ' ' || provolatile::text || proparallel::text || (CASE WHEN proisstrict THEN ' strict' ELSE '' END),
                       ', ' ORDER BY p.oid::regprocedure::text)
     FROM pg_proc p WHERE proname IN ('mmsa_sentiment', 'mmsa_scores') OR proname LIKE 'mmsa\_distribution%'),
    'mmsa_distribution(mmsa_label) is, mmsa_distribution(text,bytea) is, '
    'mmsa_distribution_accum(bigint[],mmsa_label) is strict, mmsa_distribution_combine(bigint[],bigint[]) is strict, '
    'mmsa_distribution_final(bigint[]) is strict, mmsa_distribution_post_accum(bigint[],text,bytea) is, '
    'mmsa_scores(text,bytea,text) is, mmsa_sentiment(text,bytea) is, mmsa_sentiment(text,bytea,text) is',
    'every sentiment function and aggregate is IMMUTABLE PARALLEL SAFE; the classifiers are not STRICT');
SELECT is(
    (SELECT string_agg(aggfnoid::regprocedure::text || ': ' || aggtransfn::text || ' ' || aggcombinefn::text || ' '
                       || aggfinalfn::text || ' ' || aggtranstype::regtype::text || ' ' || agginitval,
                       ', ' ORDER BY aggfnoid::regprocedure::text)
     FROM pg_aggregate JOIN pg_proc p ON p.oid = aggfnoid WHERE p.proname = 'mmsa_distribution'),
    'mmsa_distribution(mmsa_label): mmsa_distribution_accum mmsa_distribution_combine mmsa_distribution_final bigint[] {0,0,0}, '
    'mmsa_distribution(text,bytea): mmsa_distribution_post_accum mmsa_distribution_combine mmsa_distribution_final bigint[] {0,0,0}',
    'the aggregates have a combine function and a plain bigint[] state (no serialization needed)');
SELECT is(
    (SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
     WHERE (proname IN ('mmsa_sentiment', 'mmsa_scores') OR proname LIKE 'mmsa\_distribution%')
       AND obj_description(p.oid, 'pg_proc') IS NULL),
    NULL, 'every sentiment function and aggregate has a COMMENT');
SELECT ok(obj_description('mmsa_label'::regtype, 'pg_type') IS NOT NULL
          AND obj_description('mmsa_label_distribution'::regtype, 'pg_type') IS NOT NULL,
          'both types have a COMMENT');

-- ---- one post -----------------------------------------------------------------
CREATE TEMP TABLE one AS
SELECT 'What a lovely cat, best day ever! #happy'::text AS body, pg_temp.photo('chelsea.png') AS image,
       (SELECT pg_read_file(:'model_dir' || '/model.json')::json ->> 'default_fusion') AS default_fusion;

-- each model's decision rule, as model.json gives it: the label is the k
-- with the largest ln p_k + b_k (zero biases where none is given)
CREATE TEMP TABLE rules AS
SELECT m, coalesce((SELECT array_agg(x::float8 ORDER BY i)
                    FROM jsonb_array_elements_text(j -> 'decision_bias' -> m) WITH ORDINALITY AS b(x, i)),
                   '{0,0,0}') AS b
FROM (SELECT pg_read_file(:'model_dir' || '/model.json')::jsonb AS j) mj,
     unnest(ARRAY['bert', 'resnet', 'nativecat', 'nativecombine', 'cmac', 'hstec', 'ote', 'ensemble']) m
WHERE m <> 'ensemble' OR j ? 'ensemble';
CREATE FUNCTION pg_temp.rule_label(p real[], b float8[]) RETURNS mmsa_label LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['negative', 'neutral', 'positive']::mmsa_label[])[
        CASE WHEN s[1] >= s[2] AND s[1] >= s[3] THEN 1 WHEN s[2] >= s[3] THEN 2 ELSE 3 END]
    FROM (SELECT ARRAY(SELECT CASE WHEN p[k] > 0 THEN ln(p[k]::float8) + b[k] ELSE '-Infinity'::float8 END
                       FROM generate_series(1, 3) k ORDER BY k) AS s) x
$$;
SELECT is((SELECT count(*)::int FROM rules), 8,
          'the shipped model offers eight models: the seven heads and the ensemble');
SELECT is(
    (SELECT count(*)::int FROM one, rules r, mmsa_scores(body, image, r.m) s
     WHERE abs(s.p_negative + s.p_neutral + s.p_positive - 1) < 1e-5
       AND s.label = pg_temp.rule_label(ARRAY[s.p_negative, s.p_neutral, s.p_positive], r.b)
       AND s.label = mmsa_sentiment(body, image, r.m)),
    (SELECT count(*)::int FROM rules),
    'each model gives probabilities that sum to 1, and mmsa_sentiment gives the label of its decision rule');
SELECT cmp_ok(
    (SELECT max(greatest(abs(e.p_negative - a.n), abs(e.p_neutral - a.u), abs(e.p_positive - a.p)))
     FROM one, mmsa_scores(body, image, 'ensemble') e,
          LATERAL (SELECT avg(s.p_negative::float8) AS n, avg(s.p_neutral::float8) AS u, avg(s.p_positive::float8) AS p
                   FROM jsonb_array_elements_text(pg_read_file(:'model_dir' || '/model.json')::jsonb
                                                  -> 'ensemble' -> 'members') mem,
                        mmsa_scores(body, image, mem) s) a),
    '<=', 1e-6::float8, 'the ensemble''s probabilities are the mean of its members''');
SELECT is((SELECT mmsa_scores(body, image)::text FROM one), (SELECT mmsa_scores(body, image, default_fusion)::text FROM one),
          'the default is the fusion model.json names');
SELECT is((SELECT mmsa_scores(body, image, NULL)::text FROM one), (SELECT mmsa_scores(body, image)::text FROM one),
          'a NULL model name means the default');
SELECT is((SELECT mmsa_sentiment(body, image) FROM one), (SELECT (mmsa_scores(body, image)).label FROM one),
          'mmsa_sentiment(body, image) is the label of mmsa_scores(body, image)');
SELECT is((SELECT mmsa_scores(body, image)::text FROM one), (SELECT mmsa_scores(body, image)::text FROM one),
          'the same post gives the same probabilities twice');

-- ---- NULL rules ---------------------------------------------------------------
SELECT is((SELECT mmsa_scores(body, NULL)::text FROM one), (SELECT mmsa_scores(body, image, 'bert')::text FROM one),
          'text and NULL image: the text model bert');
SELECT is((SELECT mmsa_scores(NULL, image)::text FROM one), (SELECT mmsa_scores(body, image, 'resnet')::text FROM one),
          'NULL text and image: the image model resnet');
SELECT is((SELECT mmsa_scores(body, NULL, 'cmac')::text FROM one), (SELECT mmsa_scores(body, NULL, 'bert')::text FROM one),
          'a NULL image falls back to bert even when a fusion model is named');
SELECT is((SELECT mmsa_sentiment(NULL, image, 'ote') FROM one), (SELECT mmsa_sentiment(NULL, image, 'resnet') FROM one),
          'a NULL text falls back to resnet even when a fusion model is named');
SELECT ok(mmsa_sentiment(NULL, NULL) IS NULL AND mmsa_sentiment(NULL, NULL, 'hstec') IS NULL,
          'NULL text and NULL image: NULL');
SELECT ok(mmsa_scores(NULL, NULL) IS NULL AND (SELECT label IS NULL AND p_positive IS NULL FROM mmsa_scores(NULL, NULL)),
          'mmsa_scores of NULL text and NULL image: a NULL row');

-- ---- errors -------------------------------------------------------------------
SELECT throws_ok($$SELECT mmsa_sentiment('so happy', NULL, 'vgg16')$$, '22023', NULL,
                 'an unknown model name is 22023');
SELECT throws_like($$SELECT * FROM mmsa_scores(NULL, NULL, 'BERT')$$,
                   '%unknown model "BERT": the models are bert, resnet, nativecat, nativecombine, cmac, hstec, ote and ensemble%',
                   'the error lists the eight names (even for a post with neither text nor image)');
SELECT throws_ok($$SELECT mmsa_sentiment('so happy', pg_temp.test_image('truncated.jpg'))$$, '22P03', NULL,
                 'a truncated JPEG is 22P03, as for mmsa_image_embedding');
SELECT throws_ok($$SELECT * FROM mmsa_scores('so happy', pg_temp.test_image('image.gif'), 'nativecat')$$, '0A000', NULL,
                 'a GIF is 0A000');
SELECT throws_ok($$SELECT mmsa_sentiment(NULL, ''::bytea)$$, '22023', NULL, 'an empty image is 22023');
SELECT isnt(mmsa_sentiment('so happy', pg_temp.test_image('truncated.jpg'), 'bert'), NULL,
            'the text model bert does not read the image');
SET LOCAL mmsa.max_image_pixels = 10000;
SELECT throws_ok($$SELECT mmsa_sentiment('so happy', pg_temp.photo('chelsea.png'))$$, '54000', NULL,
                 'mmsa.max_image_pixels is honoured');
RESET mmsa.max_image_pixels;
SELECT set_config('mmsa.model_dir', (SELECT no_ensemble_dir FROM fixture_settings), true) IS NULL AS unused \gset
SELECT throws_ok($$SELECT mmsa_sentiment('so happy', NULL, 'ensemble')$$, '22023',
                 'mmsa: the installed model has no ensemble',
                 'a model whose model.json describes no ensemble: asking for it is 22023');
SELECT set_config('mmsa.model_dir', (SELECT model_dir FROM fixture_settings), true) IS NULL AS unused \gset
SELECT throws_ok($$SELECT mmsa_sentiment('so happy', NULL)$$, '58P01', NULL,
                 'a model directory without model.json is 58P01 ...');
SELECT throws_like($$SELECT mmsa_sentiment('so happy', NULL)$$, '%no trained sentiment model in%',
                   '... which says that no trained model is there');
SET LOCAL mmsa.model_dir = :'model_dir';

-- ---- posts: a generated column with an index ------------------------------------
-- Ordinary tables (not temporary) so that parallel workers can scan them.
CREATE TABLE sf_posts (
    id int PRIMARY KEY,
    body text,
    image bytea,
    sentiment mmsa_label GENERATED ALWAYS AS (mmsa_sentiment(body, image)) STORED
);
CREATE INDEX ON sf_posts (sentiment);
INSERT INTO sf_posts (id, body, image)
SELECT i, CASE WHEN i % 5 = 4 THEN NULL ELSE t.body END,
       CASE WHEN i % 4 = 3 THEN NULL
            ELSE pg_temp.photo((ARRAY['chelsea.png', 'coffee.png', 'astronaut.png'])[1 + i % 3]) END
FROM (SELECT row_number() OVER () AS i, body FROM (SELECT body FROM fixture_texts LIMIT 12) f) t;
INSERT INTO sf_posts (id, body, image) VALUES (100, NULL, NULL);
ALTER TABLE sf_posts SET (parallel_workers = 2);  -- small, but scanned by two workers
ANALYZE sf_posts;

-- each post classified once here (with the real model, every call runs BERT and ResNet-50)
CREATE TEMP TABLE direct AS SELECT id, mmsa_sentiment(body, image) AS sentiment FROM sf_posts;
SELECT is((SELECT count(*)::int FROM sf_posts JOIN direct d USING (id) WHERE sf_posts.sentiment IS DISTINCT FROM d.sentiment),
          0, 'the generated column holds mmsa_sentiment(body, image) for every post');
SELECT is((SELECT sentiment FROM sf_posts WHERE id = 100), NULL, 'a post with neither text nor image has a NULL sentiment');
CREATE TEMP TABLE by_label AS
SELECT l, (SELECT array_agg(id ORDER BY id) FROM direct WHERE sentiment = l) AS ids
FROM unnest(enum_range(NULL::mmsa_label)) l;
SET LOCAL enable_seqscan = off;
SELECT matches(fixture_plan($$SELECT id FROM sf_posts WHERE sentiment = 'positive'$$),
               'Index.*sf_posts_sentiment_idx', 'a query on the label uses the index on the generated column');
SELECT is((SELECT array_agg(ARRAY[l::text, ids::text] ORDER BY l) FROM by_label),
          (SELECT array_agg(ARRAY[l::text, (SELECT array_agg(id ORDER BY id) FROM sf_posts WHERE sentiment = l)::text] ORDER BY l)
           FROM unnest(enum_range(NULL::mmsa_label)) l),
          'the index finds the posts that mmsa_sentiment labels so');
RESET enable_seqscan;

-- ---- aggregates -----------------------------------------------------------------
CREATE TABLE sf_labels AS
SELECT i % 4 AS g,
       CASE WHEN i % 11 = 0 THEN NULL
            ELSE (enum_range(NULL::mmsa_label))[1 + (i * 7 + i / 13) % 3] END AS l
FROM generate_series(1, 600) i;
ALTER TABLE sf_labels SET (parallel_workers = 2);
ANALYZE sf_labels;
CREATE TEMP TABLE reference AS
SELECT g, count(l) AS total, count(*) FILTER (WHERE l = 'negative') AS negative,
       count(*) FILTER (WHERE l = 'neutral') AS neutral, count(*) FILTER (WHERE l = 'positive') AS positive
FROM sf_labels GROUP BY g;

SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial AS SELECT g, (mmsa_distribution(l)).* FROM sf_labels GROUP BY g;
CREATE TEMP TABLE serial_posts AS
SELECT d::text AS direct, (d).total, v::text AS via_labels
FROM (SELECT mmsa_distribution(body, image) AS d, mmsa_distribution(mmsa_sentiment(body, image)) AS v FROM sf_posts) x;
CREATE TABLE sf_scores AS SELECT id, (mmsa_scores(body, image)).* FROM sf_posts;

SELECT is((SELECT array_agg(ARRAY[g, total, negative, neutral, positive] ORDER BY g) FROM serial),
          (SELECT array_agg(ARRAY[g, total, negative, neutral, positive] ORDER BY g) FROM reference),
          'the counts per group are those of count(*) ... GROUP BY (NULL labels not counted)');
SELECT is((SELECT count(*)::int FROM serial
           WHERE negative_share = negative::float8 / total AND neutral_share = neutral::float8 / total
             AND positive_share = positive::float8 / total),
          4, 'the shares are the counts over the total');
SELECT is((SELECT mmsa_distribution(l)::text FROM sf_labels WHERE false), '(0,0,0,0,,,)',
          'no labels: total 0 and NULL shares');
SELECT is((SELECT direct FROM serial_posts), (SELECT via_labels FROM serial_posts),
          'mmsa_distribution(body, image) = mmsa_distribution(mmsa_sentiment(body, image))');
SELECT is((SELECT total FROM serial_posts), (SELECT count(*) - 1 FROM sf_posts),
          'the post with neither text nor image is not counted');

-- forced parallel plans, with the work done by the workers only
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', true) IS NULL AS unused \gset
SELECT matches(fixture_plan($$SELECT g, mmsa_distribution(l) FROM sf_labels GROUP BY g$$, true),
               'Workers Launched: [1-9].*Partial.*Aggregate',
               'mmsa_distribution(mmsa_label) runs as a parallel partial aggregate with workers');
SELECT is((SELECT array_agg(ARRAY[g, total, negative, neutral, positive] ORDER BY g)
           FROM (SELECT g, (mmsa_distribution(l)).* FROM sf_labels GROUP BY g) d),
          (SELECT array_agg(ARRAY[g, total, negative, neutral, positive] ORDER BY g) FROM serial),
          'with parallel workers: the same counts per group');
SELECT matches(fixture_plan($$SELECT mmsa_distribution(body, image) FROM sf_posts$$, true),
               'Workers Launched: [1-9].*Partial.*Aggregate',
               'mmsa_distribution(body, image) runs as a parallel partial aggregate with workers');
SELECT is((SELECT mmsa_distribution(body, image)::text FROM sf_posts), (SELECT direct FROM serial_posts),
          'with parallel workers: the same distribution of posts');
SELECT is((SELECT count(*)::int FROM sf_posts p JOIN sf_scores s USING (id)
           WHERE mmsa_scores(p.body, p.image)::text = ROW(s.label, s.p_negative, s.p_neutral, s.p_positive)::text),
          (SELECT count(*)::int FROM sf_posts WHERE body IS NOT NULL OR image IS NOT NULL),
          'parallel workers give every post exactly the probabilities the leader gave');

-- ---- the same answers as `mmsa predict` --------------------------------------
-- fixture_posts: 24 MVSA-Single val posts with their images and one without;
-- mvsa_predict: what `mmsa predict --model <installed default>` printed for
-- them (probabilities with 6 decimals).
SELECT is((SELECT count(*)::int FROM mvsa_predict), (SELECT count(*)::int FROM fixture_posts),
          'mmsa predict classified every fixture post (with the installed default model)');
CREATE TEMP TABLE sql_scores AS
SELECT id, (mmsa_scores(body, CASE WHEN image_path IS NULL THEN NULL
                                   ELSE pg_read_binary_file(image_path) END)).*
FROM fixture_posts;
SELECT is((SELECT count(*)::int FROM sql_scores s JOIN mvsa_predict r USING (id) WHERE s.label::text = r.label),
          (SELECT count(*)::int FROM fixture_posts),
          'mmsa_scores gives every post the label mmsa predict gives it (text model for the post without an image)');
SELECT cmp_ok((SELECT max(greatest(abs(s.p_negative - r.p_negative), abs(s.p_neutral - r.p_neutral),
                                   abs(s.p_positive - r.p_positive)))
               FROM sql_scores s JOIN mvsa_predict r USING (id))::float8, '<=', 1e-6::float8,
              'mmsa_scores'' probabilities equal mmsa predict''s within 1e-6 (its 6 decimals)');

-- ---- cancellation ----------------------------------------------------------------
-- statement_timeout stops a running inference: interrupts are checked
-- between layers.  How soon is printed (a figure, not a timed test); the
-- bound asserted is only there to catch a hang.  (pgTAP's throws_ok cannot
-- catch query_canceled: PL/pgSQL's WHEN OTHERS leaves it out.)
CREATE FUNCTION pg_temp.cancel_after_timeout(OUT state text, OUT ms float8) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    state := 'no error';
    BEGIN
        PERFORM count(mmsa_sentiment(body, pg_read_binary_file(image_path), 'hstec'))
        FROM fixture_posts, generate_series(1, 40) WHERE image_path IS NOT NULL;
    EXCEPTION WHEN query_canceled THEN
        state := SQLSTATE;
    END;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
SET LOCAL statement_timeout = '100ms';
SELECT state AS cancel_state, ms AS cancel_ms FROM pg_temp.cancel_after_timeout() \gset
RESET statement_timeout;
SELECT is(:'cancel_state'::text, '57014'::text, 'statement_timeout stops a running inference with 57014');
SELECT diag('inference stopped ' || round(:'cancel_ms'::numeric - 100) ||
            ' ms after statement_timeout (100 ms) expired');
SELECT cmp_ok(:'cancel_ms'::float8, '<', 2000::float8, 'the cancelled statement returned within seconds (no hang)');

SELECT * FROM finish();
ROLLBACK;
