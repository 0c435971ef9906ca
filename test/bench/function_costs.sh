#!/bin/bash
# function_costs.sh
#   Measures the planner COST of each mmsa inference function: its time per
#   call over real MVSA-Single posts, in units of the time of one call of a
#   cheap built-in operator (int4 + int4, which PostgreSQL costs at 1, i.e.
#   one cpu_operator_cost), in one backend with mmsa.threads = 1 and no
#   parallel workers.  sql/mmsa--0.1.0--0.2.0.sql sets COST from these
#   figures (rounded); the README says what they give the planner.
#
#   The operator's time: over a table of 1,000,000 integers, SELECT
#   count(*) WHERE i + 1 + ... + 1 > 0 (ten additions) minus the same with
#   WHERE i > 0, divided by 10,000,000 (medians of 5).  Each
#   function: a warm-up over 5 posts (the model loads), then the median of
#   3 timed passes over N posts of
#     SELECT count(f(...)) FROM posts
#   minus the same pass without the call, divided by N.
#
#   Starts its own throwaway cluster with the installed extension and the
#   default mmsa.model_dir (make && make install first).
#   usage: test/bench/function_costs.sh
#   Environment: MMSA_COST_POSTS (40), MMSA_DATA.
set -euo pipefail

. "$(dirname "$0")/sql_bench_lib.sh"
N=${MMSA_COST_POSTS:-40}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "MMSA_COST_POSTS is not a positive integer"

echo "== planner costs of the mmsa functions, one backend, mmsa.threads = 1"
bench_host
bench_cluster_start
bench_load_posts "$N"

# seconds of one query, run in a session with the settings below
time_query() {
	q <<SQL
SET max_parallel_workers_per_gather = 0;
SET mmsa.threads = 1;
SET jit = off;
CREATE TEMP TABLE t (v float8);
DO \$\$
DECLARE t0 timestamptz; n bigint;
BEGIN
	PERFORM count(mmsa_sentiment(body, image)) FROM posts WHERE id IN (SELECT id FROM posts ORDER BY id LIMIT 5);
	PERFORM count(mmsa_text_embedding(body)) FROM posts WHERE id IN (SELECT id FROM posts ORDER BY id LIMIT 5);
	FOR r IN 1..$2 LOOP
		t0 := clock_timestamp();
		EXECUTE \$q\$ $1 \$q\$ INTO n;
		INSERT INTO t VALUES (extract(epoch FROM clock_timestamp() - t0));
	END LOOP;
END \$\$;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM t;
SQL
}

q -c "CREATE TABLE nums AS SELECT i FROM generate_series(1, 1000000) i" -c "VACUUM ANALYZE nums"
op_with=$(time_query "SELECT count(*) FROM nums WHERE i + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 > 0" 5)
op_without=$(time_query "SELECT count(*) FROM nums WHERE i > 0" 5)
op=$(awk -v a="$op_with" -v b="$op_without" 'BEGIN { print (a - b) / 10000000 }')
base=$(time_query "SELECT count(body) + count(image) FROM posts" 3)
echo "int4 + int4: $(awk -v o="$op" 'BEGIN { printf "%.2f", o * 1e9 }') ns a call (one cpu_operator_cost)"
echo "posts: the first $N rows of the train split (file order)"
printf '%-44s %12s %12s\n' function "ms a call" "COST"
for f in "mmsa_tokenize(body)" "mmsa_wordpieces(body)" "mmsa_text_embedding(body)" \
	"mmsa_image_embedding(image)" "mmsa_image_classes(image, 5)" \
	"mmsa_sentiment(body, image)" "mmsa_sentiment(body, image, 'bert')" \
	"mmsa_scores(body, image)" "mmsa_distribution(body, image)"; do
	case "$f" in
		mmsa_image_classes*) sql="SELECT count(*) FROM posts, $f" ;;
		mmsa_distribution*) sql="SELECT ($f).total FROM posts" ;;
		*) sql="SELECT count($f) FROM posts" ;;
	esac
	t=$(time_query "$sql" 3)
	awk -v f="$f" -v t="$t" -v b="$base" -v n="$N" -v o="$op" 'BEGIN {
		c = (t - b) / n
		printf "%-44s %12.3f %12.0f\n", f, c * 1000, c / o }'
done
