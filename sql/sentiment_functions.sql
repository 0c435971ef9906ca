-- Sentiment labels and their distributions, from SQL.  Only what needs no
-- trained model is here (the test cluster's model has none); the
-- classifiers themselves are tested by test/pgtap/sentiment_functions.sql.
CREATE EXTENSION mmsa;

SELECT enum_range(NULL::mmsa_label);

-- a column of labels, counted per group; NULL labels are not counted
CREATE TABLE sentiment_labels (topic text, label mmsa_label);
INSERT INTO sentiment_labels VALUES
    ('cats', 'positive'), ('cats', 'positive'), ('cats', 'neutral'), ('cats', NULL),
    ('mondays', 'negative'), ('mondays', 'negative'), ('mondays', 'negative'), ('mondays', 'positive'),
    ('weather', NULL);
SELECT topic, (mmsa_distribution(label)).* FROM sentiment_labels GROUP BY topic ORDER BY topic;
SELECT (mmsa_distribution(label)).* FROM sentiment_labels;

-- nothing counted: total 0, NULL shares
SELECT mmsa_distribution(label) FROM sentiment_labels WHERE false;

-- the same when parallel plans are cheap (test/pgtap/sentiment_functions.sql
-- checks that partial aggregation with workers gives the same counts)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
ALTER TABLE sentiment_labels SET (parallel_workers = 2);
SELECT topic, mmsa_distribution(label) FROM sentiment_labels GROUP BY topic ORDER BY topic;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- a post with neither text nor image has no sentiment, whatever the model
SELECT mmsa_sentiment(NULL, NULL) IS NULL AS no_post,
       mmsa_sentiment(NULL, NULL, 'cmac') IS NULL AS no_post_cmac,
       mmsa_scores(NULL, NULL) IS NULL AS no_scores;
SELECT (mmsa_distribution(NULL::text, NULL::bytea)).*;

-- errors
SELECT mmsa_sentiment(NULL, NULL, 'vgg16');
\set VERBOSITY sqlstate
SELECT * FROM mmsa_scores(NULL, NULL, 'BERT');
SELECT mmsa_distribution_accum('{1,2}', 'positive');
\set VERBOSITY default

DROP TABLE sentiment_labels;
DROP EXTENSION mmsa;
