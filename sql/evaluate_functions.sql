-- mmsa_evaluate(gold, predicted): labels scored against gold labels as
-- `mmsa eval` scores them.  Needs no model.  The figures of the first
-- query, worked by hand from its confusion matrix
--   gold negative: 3 negative, 1 neutral, 1 positive   (support 5)
--   gold neutral:  0 negative, 2 neutral, 2 positive   (support 4)
--   gold positive: 1 negative, 1 neutral, 6 positive   (support 8)
-- accuracy 11/17; precision 3/4, 2/4, 6/9; recall 3/5, 2/4, 6/8;
-- weighted F1 = (5 * 2/3 + 4 * 1/2 + 8 * 12/17) / 17.
-- That it gives exactly `mmsa eval`'s figures on MVSA-Single val, for
-- every model of the shipped one: test/t/evaluate_sql.t.
CREATE EXTENSION mmsa;

CREATE TABLE judged (topic text, gold mmsa_label, predicted mmsa_label);
INSERT INTO judged
SELECT 'a', g::mmsa_label, p::mmsa_label
FROM (VALUES ('negative', 'negative', 3), ('negative', 'neutral', 1), ('negative', 'positive', 1),
             ('neutral', 'neutral', 2), ('neutral', 'positive', 2),
             ('positive', 'negative', 1), ('positive', 'neutral', 1), ('positive', 'positive', 6)) v(g, p, k),
     generate_series(1, k);
-- pairs with a NULL are not counted
INSERT INTO judged VALUES ('a', NULL, 'positive'), ('a', 'negative', NULL), ('b', 'neutral', 'neutral'),
                          ('b', 'positive', 'neutral'), ('b', 'positive', 'positive');

SELECT n, round(accuracy::numeric, 6) AS accuracy,
       round(weighted_precision::numeric, 6) AS w_precision,
       round(weighted_recall::numeric, 6) AS w_recall,
       round(weighted_f1::numeric, 6) AS w_f1,
       round(macro_precision::numeric, 6) AS m_precision,
       round(macro_recall::numeric, 6) AS m_recall,
       round(macro_f1::numeric, 6) AS m_f1
FROM (SELECT (mmsa_evaluate(gold, predicted)).* FROM judged WHERE topic = 'a') e;
SELECT precision::numeric(8,6)[], recall::numeric(8,6)[], f1::numeric(8,6)[], support, confusion
FROM (SELECT (mmsa_evaluate(gold, predicted)).* FROM judged WHERE topic = 'a') e;

-- per group; a class never predicted has precision 0, one never in gold recall 0
SELECT topic, (e).n, round((e).accuracy::numeric, 6) AS accuracy, round((e).macro_f1::numeric, 6) AS macro_f1,
       (e).recall::numeric(8,6)[] AS recall, (e).confusion
FROM (SELECT topic, mmsa_evaluate(gold, predicted) AS e FROM judged GROUP BY topic) s ORDER BY topic;

-- nothing counted: n 0, NULL rates, zero counts
SELECT (mmsa_evaluate(gold, predicted)).* FROM judged WHERE false;

-- the same answer from a parallel plan (partial states added by the
-- combine function)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
ALTER TABLE judged SET (parallel_workers = 2);
EXPLAIN (COSTS OFF) SELECT mmsa_evaluate(gold, predicted) FROM judged;
SELECT (mmsa_evaluate(gold, predicted)).confusion FROM judged;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- the support functions called by hand with a wrong state
\set VERBOSITY sqlstate
SELECT mmsa_evaluate_accum('{1,2,3}', 'positive', 'negative');
SELECT mmsa_evaluate_final('{0,0,0,0,-1,0,0,0,0}');
\set VERBOSITY default
SELECT mmsa_evaluate_combine('{1,2,3,4,5,6,7,8,9}', '{1,1}');

DROP TABLE judged;
DROP EXTENSION mmsa;
