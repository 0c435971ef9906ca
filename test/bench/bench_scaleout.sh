#!/bin/bash
# bench_scaleout.sh
#   The same N real MVSA-Single posts (text + JPEG; the first N of the
#   train split in posts.csv's order) labelled, wall-clock seconds:
#     (a) one server, one backend: ALTER TABLE posts DROP COLUMN IF EXISTS
#         sentiment, ADD COLUMN sentiment mmsa_label GENERATED ALWAYS AS
#         (mmsa_sentiment(body, image)) STORED, at mmsa.threads = 1 and 2;
#     (b) one server, parallel workers: CREATE TABLE ... AS SELECT id,
#         mmsa_sentiment(body, image) with parallel_workers = 2 (Gather, 2
#         workers and the leader), mmsa.threads = 1;
#     (c) two shards through the coordinator (the README's "Scale-out"
#         layout, test/scaleout/cluster_lib.sh: posts hash-partitioned by
#         id over two postgres_fdw foreign partitions), mmsa.threads = 1:
#         recipe   the README's recipe for existing rows: each shard adds
#                  the generated column to its own table, both at once
#                  (dblink_send_query from the coordinator);
#         view     the alternative: CREATE TABLE ... AS SELECT id, sentiment
#                  on the coordinator from foreign partitions on a view per
#                  shard that computes mmsa_sentiment (Async Append over
#                  both; the labels end up on the coordinator), with
#                  postgres_fdw's default fetch_size (100 rows) and with
#                  fetch_size = N (each shard labels its rows in one FETCH).
#   Three clusters (a coordinator, which is also the one server of (a) and
#   (b), and two shards), each on its own Unix socket, started by this
#   script in a mktemp folder and always stopped; each setup is a new
#   client connection (connecting and model loading included, as a user
#   would see them).  Rounds run every setup once, in an order rotated by
#   one per round, so that load from other processes hits them alike.
#   Prints each round, then per setup the median seconds and posts/s, and
#   its time over (a)'s at mmsa.threads = 1 (the median of the per-round
#   ratios).  Every setup's labels are checked equal to (a)'s.
#
#   The extension must have been built and installed first (make && make
#   install, as root); the shipped model is the installed one.
#   usage: test/bench/bench_scaleout.sh
#   Environment: MMSA_SCALEOUT_POSTS (400), MMSA_SCALEOUT_ROUNDS (3),
#   MMSA_DATA.  At the defaults it takes about 10 minutes on 2 cores.
set -euo pipefail

. "$(dirname "$0")/sql_bench_lib.sh"
. "$ROOT/test/scaleout/cluster_lib.sh"
N=${MMSA_SCALEOUT_POSTS:-400}
ROUNDS=${MMSA_SCALEOUT_ROUNDS:-3}
for v in "$N" "$ROUNDS"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: '$v' (MMSA_SCALEOUT_POSTS, _ROUNDS)"
done
[ -f "$CSV" ] || die "$CSV not found (set MMSA_DATA)"
[ -d "$IMAGES" ] || die "$IMAGES not found (set MMSA_DATA)"

echo "== labelling $N posts: one server (one backend, parallel workers), two shards through a coordinator"
bench_host
echo "CPU flags: $(grep -m1 '^flags' /proc/cpuinfo | sed 's/^flags[[:space:]]*: //')"
SHARE_MODEL="$(pg_config --sharedir)/mmsa"
corename=""
if [ -x "$ROOT/build/mmsa" ] && [ -d "$SHARE_MODEL/text" ]; then
	corename=$("$ROOT/build/mmsa" bench bert --model "$SHARE_MODEL/text" --runs 1 --warmup 0 \
		--threads 1 2>/dev/null | sed -n 's/.*corename=\([^ ]*\).*/\1/p' || true)
fi
echo "OpenBLAS kernel: ${corename:-unknown (build/mmsa or the installed model missing)} (as build/mmsa sees it;" \
	"the extension links the same libopenblas); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset: auto-detected)};" \
	"OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset: auto-detected)}"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

export PGOPTIONS="-c client_min_messages=warning"   # no NOTICE of DROP ... IF EXISTS
BENCH_TMP=$(mktemp -d /tmp/mmsa-bench-scaleout.XXXXXX)
chmod 755 "$BENCH_TMP"
trap 'so_stop "$BENCH_TMP/pg"; rm -rf "$BENCH_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
so_start "$BENCH_TMP/pg"
so_layout
echo "PostgreSQL: $(qc -c 'SELECT version()')"
echo "mmsa: $(qc -c "SELECT format('%s, path %s, precision %s', version, isa, inference_precision) FROM mmsa_info()")"

# ---- the posts: on the coordinator alone (the one server), and sharded ---
so_load_csv "$N" train
[ "$(qc -c "SELECT count(*) FROM posts_csv")" -eq "$N" ] || die "fewer than $N train posts in $CSV"
qc <<'SQL'
CREATE TABLE posts_local (id bigint PRIMARY KEY, body text, image bytea);
INSERT INTO posts_local SELECT id, body, image FROM posts_csv;
INSERT INTO posts SELECT id, body, image FROM posts_csv;
VACUUM ANALYZE posts_local;
SQL
for s in 1 2; do "q$s" -c "VACUUM ANALYZE posts"; done
c1=$(q1 -c "SELECT count(*) FROM posts")
c2=$(q2 -c "SELECT count(*) FROM posts")
echo "posts: $N, $(qc -c "SELECT pg_size_pretty(pg_total_relation_size('posts_local'))") with TOAST;" \
	"shard 1 holds $c1, shard 2 $c2 (hash of id)"
# the view alternative: a view per shard computing the label, read through
# foreign partitions
for s in 1 2; do
	"q$s" -c "CREATE VIEW posts_labelled AS SELECT id, mmsa_sentiment(body, image) AS sentiment FROM posts"
done
qc <<SQL
CREATE TABLE posts_labelled (id bigint NOT NULL, sentiment mmsa_label) PARTITION BY HASH (id);
CREATE FOREIGN TABLE posts_labelled_1 PARTITION OF posts_labelled FOR VALUES WITH (MODULUS 2, REMAINDER 0)
	SERVER shard1 OPTIONS (table_name 'posts_labelled');
CREATE FOREIGN TABLE posts_labelled_2 PARTITION OF posts_labelled FOR VALUES WITH (MODULUS 2, REMAINDER 1)
	SERVER shard2 OPTIONS (table_name 'posts_labelled');
ALTER TABLE posts_local SET (parallel_workers = 2);
SQL
CTAS_PAR="SET max_parallel_workers_per_gather = 2; SET mmsa.threads = 1;
	CREATE TABLE labelled_par AS SELECT id, mmsa_sentiment(body, image) AS sentiment FROM posts_local"
plan=$(qc -c "SET max_parallel_workers_per_gather = 2" \
	-c "EXPLAIN (COSTS OFF) SELECT id, mmsa_sentiment(body, image) FROM posts_local" | paste -sd ';')
grep -q 'Gather' <<<"$plan" && grep -q 'Workers Planned: 2' <<<"$plan" || die "(b) is not planned with 2 workers: $plan"
echo "(b)'s plan: $plan"
plan=$(qc -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id, sentiment FROM posts_labelled" | paste -sd ';')
[ "$(grep -o 'Async Foreign Scan' <<<"$plan" | wc -l)" -eq 2 ] || die "(c) view: no async scans of both shards: $plan"
echo "(c) view's plan: $(sed 's/;  */; /g' <<<"$plan")"

# ---- the setups -----------------------------------------------------------
ADD_GENERATED="ALTER TABLE %s DROP COLUMN IF EXISTS sentiment,
	ADD COLUMN sentiment mmsa_label GENERATED ALWAYS AS (mmsa_sentiment(body, image)) STORED"
# untimed before each setup: dropping its earlier table, its fetch_size
prepare() {
	case $1 in
	b) qc -c "DROP TABLE IF EXISTS labelled_par" ;;
	c_view) qc -c "DROP TABLE IF EXISTS labelled_view"
		for s in 1 2; do qc -c "ALTER SERVER shard$s OPTIONS (DROP fetch_size)" 2>/dev/null || true; done ;;
	c_view_n) qc -c "DROP TABLE IF EXISTS labelled_view_n"
		for s in 1 2; do qc -c "ALTER SERVER shard$s OPTIONS (ADD fetch_size '$N')" 2>/dev/null ||
			qc -c "ALTER SERVER shard$s OPTIONS (SET fetch_size '$N')"; done ;;
	esac
}
timed() {
	case $1 in
	a1) qc -c "SET mmsa.threads = 1" -c "$(printf "$ADD_GENERATED" posts_local)" ;;
	a2) qc -c "SET mmsa.threads = 2" -c "$(printf "$ADD_GENERATED" posts_local)" ;;
	b) qc <<<"$CTAS_PAR" ;;
	c_recipe) qc <<<"$SO_RELABEL_SQL" >/dev/null ;;
	c_view) qc -c "CREATE TABLE labelled_view AS SELECT id, sentiment FROM posts_labelled" ;;
	c_view_n) qc -c "CREATE TABLE labelled_view_n AS SELECT id, sentiment FROM posts_labelled" ;;
	esac
}
SETUPS=(a1 a2 b c_recipe c_view c_view_n)
declare -A WHAT=(
	[a1]="(a) one server, one backend, mmsa.threads = 1"
	[a2]="(a) one server, one backend, mmsa.threads = 2"
	[b]="(b) one server, parallel_workers = 2, mmsa.threads = 1"
	[c_recipe]="(c) two shards, the README's recipe (dblink, both at once)"
	[c_view]="(c) two shards, a view per shard, Async Append, fetch_size 100"
	[c_view_n]="(c) two shards, a view per shard, Async Append, fetch_size $N"
)
declare -A T RATIO
ns=${#SETUPS[@]}
for r in $(seq "$ROUNDS"); do
	line="  round $r:"
	declare -A this=()
	for i in $(seq 0 $((ns - 1))); do
		k=${SETUPS[$(((i + r - 1) % ns))]}
		prepare "$k" >/dev/null
		t0=$(date +%s.%N)
		timed "$k" >/dev/null
		t1=$(date +%s.%N)
		this[$k]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		line+=" $k ${this[$k]}"
	done
	for k in "${SETUPS[@]}"; do
		T[$k]+="${this[$k]} "
		RATIO[$k]+="$(awk -v a="${this[$k]}" -v b="${this[a1]}" 'BEGIN { printf "%.4f", a / b }') "
	done
	# every setup's labels are (a)'s
	bad=$(qc -c "SELECT count(*) FROM posts_local l
		LEFT JOIN labelled_par b USING (id) LEFT JOIN labelled_view v USING (id) LEFT JOIN labelled_view_n w USING (id)
		LEFT JOIN posts s USING (id)
		WHERE l.sentiment IS DISTINCT FROM b.sentiment OR l.sentiment IS DISTINCT FROM v.sentiment
		   OR l.sentiment IS DISTINCT FROM w.sentiment OR l.sentiment IS DISTINCT FROM s.sentiment")
	[ "$bad" -eq 0 ] || die "round $r: $bad posts labelled differently by the setups"
	echo "$line (seconds; labels equal in every setup)"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-66s %8s %8s %10s\n' "setup ($N posts, median of $ROUNDS rounds)" seconds posts/s "time/(a)1"
for k in "${SETUPS[@]}"; do
	m=$(echo "${T[$k]}" | median)
	ratio=$(echo "${RATIO[$k]}" | median)
	awk -v w="${WHAT[$k]}" -v m="$m" -v n="$N" -v q="$ratio" 'BEGIN { printf "%-66s %8.2f %8.2f %10.3f\n", w, m, n / m, q }'
done
rb=$(for r in $(seq "$ROUNDS"); do
	awk -v a="$(echo "${T[c_recipe]}" | cut -d' ' -f"$r")" -v b="$(echo "${T[b]}" | cut -d' ' -f"$r")" \
		'BEGIN { printf "%.4f ", a / b }'; done | median)
ra2=$(for r in $(seq "$ROUNDS"); do
	awk -v a="$(echo "${T[c_recipe]}" | cut -d' ' -f"$r")" -v b="$(echo "${T[a2]}" | cut -d' ' -f"$r")" \
		'BEGIN { printf "%.4f ", a / b }'; done | median)
echo "two shards (recipe) over (b) parallel workers: $rb; over (a) with mmsa.threads = 2: $ra2 (medians of per-round ratios)"
