#!/bin/bash
# bench_bulk.sh
#   Labelling a whole table, the ways the README's "Operations" gives, in
#   rows per second over N real MVSA-Single posts (text + JPEG):
#     serial     SELECT count(mmsa_sentiment(body, image)): one backend,
#                no workers, mmsa.threads = 1 and 2;
#     parallel   the same query with ALTER TABLE ... SET (parallel_workers
#                = W) and max_parallel_workers_per_gather = W: the plan
#                (Gather, workers launched) is checked, mmsa.threads = 1;
#     update     UPDATE posts SET sentiment = mmsa_sentiment(body, image)
#                (an UPDATE runs in one backend), mmsa.threads = 2;
#     ctas       CREATE TABLE ... AS SELECT id, mmsa_sentiment(...), which
#                may run in parallel workers, mmsa.threads = 1.
#   Each is timed with clock_timestamp() in its session, after a warm-up
#   that loads the model; ROUNDS rounds, medians printed.
#
#   Starts its own throwaway cluster with the installed extension and the
#   default mmsa.model_dir (make && make install first).
#   usage: test/bench/bench_bulk.sh
#   Environment: MMSA_BULK_POSTS (200), MMSA_BULK_ROUNDS (3),
#   MMSA_BULK_WORKERS (2), MMSA_DATA.
set -euo pipefail

. "$(dirname "$0")/sql_bench_lib.sh"
N=${MMSA_BULK_POSTS:-200}
ROUNDS=${MMSA_BULK_ROUNDS:-3}
W=${MMSA_BULK_WORKERS:-2}
for v in "$N" "$ROUNDS" "$W"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: '$v'"
done

echo "== labelling a table: serial, parallel, UPDATE, CREATE TABLE AS"
bench_host
bench_cluster_start
bench_load_posts "$N" "sentiment mmsa_label"
echo "posts: the first $N rows of the train split; heap $(q -c "SELECT pg_size_pretty(pg_relation_size('posts'))"), with TOAST $(q -c "SELECT pg_size_pretty(pg_total_relation_size('posts'))")"
echo "mmsa: $(q -c "SELECT format('%s, path %s, precision %s', version, isa, inference_precision) FROM mmsa_info()")"

# seconds of one statement ($2) after a warm-up, in a session with settings $1
run() {
	q <<SQL | tail -1
$1
SELECT count(mmsa_sentiment(body, image)) FROM posts WHERE id IN (SELECT id FROM posts ORDER BY id LIMIT 3);
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t;
$2;
SELECT round(extract(epoch FROM clock_timestamp() - t)::numeric, 3) FROM t0;
SQL
}
PAR="SET max_parallel_workers_per_gather = $W; SET mmsa.threads = 1;"
declare -A S
for r in $(seq "$ROUNDS"); do
	q -c "ALTER TABLE posts RESET (parallel_workers)"
	S[serial1]+="$(run "SET max_parallel_workers_per_gather = 0; SET mmsa.threads = 1;" \
		"SELECT count(mmsa_sentiment(body, image)) FROM posts") "
	S[serial2]+="$(run "SET max_parallel_workers_per_gather = 0; SET mmsa.threads = 2;" \
		"SELECT count(mmsa_sentiment(body, image)) FROM posts") "
	S[update2]+="$(run "SET mmsa.threads = 2;" \
		"UPDATE posts SET sentiment = mmsa_sentiment(body, image)") "
	q -c "ALTER TABLE posts SET (parallel_workers = $W)"
	S[parallel]+="$(run "$PAR" "SELECT count(mmsa_sentiment(body, image)) FROM posts") "
	q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS labelled"
	S[ctas]+="$(run "$PAR" "CREATE TABLE labelled AS SELECT id, mmsa_sentiment(body, image) AS sentiment FROM posts") "
	last() { echo "$1" | awk '{ print $NF }'; }
	echo "  round $r seconds: select/threads=1 $(last "${S[serial1]}") select/threads=2 $(last "${S[serial2]}")" \
		"update $(last "${S[update2]}") parallel $(last "${S[parallel]}") ctas $(last "${S[ctas]}")"
done
q -c "ALTER TABLE posts SET (parallel_workers = $W)"
plan=$(q <<SQL | grep -E "Gather|Workers Launched" | sed 's/^ *//; s/  */ /g' | paste -sd ';'
$PAR
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(mmsa_sentiment(body, image)) FROM posts;
SQL
)
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-58s %10s %10s\n' "way ($N posts, median of $ROUNDS rounds)" seconds "rows/s"
for k in serial1 serial2 update2 parallel ctas; do
	case $k in
		serial1) what="SELECT, one backend, mmsa.threads = 1" ;;
		serial2) what="SELECT, one backend, mmsa.threads = 2" ;;
		update2) what="UPDATE ... SET sentiment = ..., mmsa.threads = 2" ;;
		parallel) what="SELECT, parallel_workers = $W, mmsa.threads = 1" ;;
		ctas) what="CREATE TABLE AS, parallel_workers = $W, mmsa.threads = 1" ;;
	esac
	m=$(echo "${S[$k]}" | median)
	awk -v w="$what" -v m="$m" -v n="$N" 'BEGIN { printf "%-58s %10.2f %10.2f\n", w, m, n / m }'
done
echo "parallel plan of the SELECT: $plan"
