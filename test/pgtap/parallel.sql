-- pgTAP: parallel plans on an image-heavy table.  A posts table keeps its
-- images in TOAST, so 200 posts make a heap of a few pages, far below
-- min_parallel_table_scan_size: the planner plans no parallel scan unless
-- the table says how many workers it wants (ALTER TABLE ... SET
-- (parallel_workers = 2)).  With that, and the COST of the functions
-- (sql/mmsa--0.1.0--0.2.0.sql), mmsa_sentiment and mmsa_distribution(body,
-- image) run under Gather, in launched workers, and give the answers of
-- the serial plan.
--
-- Needs the fixtures of test/reference/sql_fixtures.py (fixture_posts) and
-- a trained model, as test/pgtap/sentiment_functions.sql does.
BEGIN;
SELECT plan(10);

CREATE EXTENSION IF NOT EXISTS mmsa;
SELECT fixture_trained_model_dir() AS model_dir \gset
SET LOCAL mmsa.model_dir = :'model_dir';
-- a parallel worker takes the leader's settings, mmsa.model_dir included
SET LOCAL max_parallel_workers_per_gather = 2;

-- 200 posts: the fixture posts with images, over and over
CREATE TABLE parallel_posts (id int PRIMARY KEY, body text, image bytea);
INSERT INTO parallel_posts
SELECT row_number() OVER (ORDER BY g, p.id), p.body, pg_read_binary_file(p.image_path)
FROM (SELECT * FROM fixture_posts WHERE image_path IS NOT NULL) p, generate_series(1, 20) g
LIMIT 200;
ANALYZE parallel_posts;
SELECT is((SELECT count(*)::int FROM parallel_posts), 200, '200 posts with images');

-- the plan as JSON, run (ANALYZE) or not
CREATE FUNCTION pg_temp.plan_of(query text, run boolean) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON, VERBOSE%s) %s', CASE WHEN run THEN ', ANALYZE' ELSE '' END, query)
        INTO p;
    RETURN (p::jsonb) -> 0 -> 'Plan';
END $$;
-- every node of a plan, depth first
CREATE FUNCTION pg_temp.nodes(p jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$
    WITH RECURSIVE n(node) AS (
        SELECT p
        UNION ALL
        SELECT c FROM n, jsonb_array_elements(n.node -> 'Plans') c
    ) SELECT node FROM n
$$;

SELECT ok(NOT EXISTS (SELECT 1 FROM pg_temp.nodes(pg_temp.plan_of(
              'SELECT id, mmsa_sentiment(body, image) FROM parallel_posts', false)) n
          WHERE n ->> 'Node Type' LIKE 'Gather%'),
          'without parallel_workers on the table: no parallel plan (its heap is small)');

ALTER TABLE parallel_posts SET (parallel_workers = 2);

-- mmsa_sentiment: serial answers, then the parallel plan and its answers
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_labels AS SELECT id, mmsa_sentiment(body, image) AS label FROM parallel_posts;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE sentiment_plan AS
SELECT pg_temp.plan_of('SELECT id, mmsa_sentiment(body, image) FROM parallel_posts', true) AS p;
SELECT is((SELECT p ->> 'Node Type' FROM sentiment_plan), 'Gather',
          'with parallel_workers = 2: SELECT mmsa_sentiment(...) runs under Gather');
SELECT cmp_ok((SELECT (p ->> 'Workers Launched')::int FROM sentiment_plan), '>=', 1,
              'with workers launched');
SELECT ok((SELECT (p -> 'Plans' -> 0 -> 'Output')::text LIKE '%mmsa_sentiment%' FROM sentiment_plan),
          'and mmsa_sentiment computed below the Gather, in the workers');
SELECT results_eq($$SELECT id, mmsa_sentiment(body, image) FROM parallel_posts ORDER BY id$$,
                  $$SELECT id, label FROM serial_labels ORDER BY id$$,
                  'the parallel plan labels every post as the serial plan does');

-- mmsa_distribution(body, image): partial aggregates in the workers
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_distribution AS SELECT (mmsa_distribution(body, image)).* FROM parallel_posts;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE distribution_plan AS
SELECT pg_temp.plan_of('SELECT (mmsa_distribution(body, image)).* FROM parallel_posts', true) AS p;
SELECT ok(EXISTS (SELECT 1 FROM distribution_plan, pg_temp.nodes(p) n
                  WHERE n ->> 'Node Type' LIKE 'Gather%' AND (n ->> 'Workers Launched')::int >= 1),
          'mmsa_distribution(body, image) runs under Gather with workers launched');
SELECT ok(EXISTS (SELECT 1 FROM distribution_plan, pg_temp.nodes(p) n
                  WHERE n ->> 'Node Type' = 'Aggregate' AND n ->> 'Partial Mode' = 'Partial'),
          'as partial aggregates in the workers, combined by the leader');
SELECT results_eq($$SELECT (mmsa_distribution(body, image)).* FROM parallel_posts$$,
                  $$SELECT * FROM serial_distribution$$,
                  'giving the serial plan''s distribution');
SELECT is((SELECT (total, negative + neutral + positive)::text FROM serial_distribution), '(200,200)',
          'over all 200 posts');

SELECT * FROM finish();
ROLLBACK;
