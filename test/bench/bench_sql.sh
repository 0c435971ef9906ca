#!/bin/bash
# bench_sql.sh
#   SQL throughput of the installed extension with the shipped model:
#   SELECT count(mmsa_sentiment(body, image)) FROM posts, over N real
#   MVSA-Single posts (text + JPEG), in ONE backend (one psql session,
#   max_parallel_workers_per_gather = 0), for each mmsa.threads value, each
#   instruction-set path the CPU has (mmsa.isa: avx2 always, avx512 when
#   mmsa_cpu_flags() lists avx512f, avx512bw and avx512vl) and each
#   precision (mmsa.precision: fp32, and int8 where the server has it).
#
#   It starts its own throwaway cluster (test/pg-cluster.sh, in a mktemp
#   folder, stopped and removed on exit) with the default mmsa.model_dir,
#   so the extension must have been built and installed first:
#       make && make install          (as root, or with sudo)
#   Posts: the first N rows of the train split of
#   ../shared/data/mvsa-single/posts.csv (file order; MMSA_DATA overrides
#   ../shared/data), images read with pg_read_binary_file into
#   posts(id bigint, body text, image bytea).
#
#   Each round runs every configuration once, in an order rotated by one
#   configuration per round, so that load from other processes hits them
#   alike: per configuration a warm-up over 20 posts, then the timed query
#   over all N (clock_timestamp() before and after, in the same session).
#   Prints each round's figures, then per configuration the median over
#   rounds of posts/s and of ms/post:
#     sql isa=avx2 precision=fp32 threads=1 posts=500 rounds=3 median_posts_per_s=... median_ms_per_post=...
#   and, per path and thread count, int8's posts/s over fp32's.
#   When the server has no mmsa_isa() / mmsa.isa, only the default path is
#   timed (isa=default) and the script says it could not query the path.
#
#   usage: test/bench/bench_sql.sh
#   Environment: MMSA_BENCH_SQL_POSTS (500), MMSA_BENCH_SQL_ROUNDS (3),
#   MMSA_BENCH_SQL_THREADS ("1 2"), MMSA_BENCH_SQL_ISAS (the paths to time,
#   instead of those detected), MMSA_BENCH_SQL_PRECISIONS ("fp32 int8"),
#   MMSA_DATA; OPENBLAS_CORETYPE and
#   OPENBLAS_L2_SIZE are left as they are (the server inherits them).
#   At the defaults it takes about 3 to 4 minutes per path and precision on
#   2 cores.
set -euo pipefail

. "$(dirname "$0")/sql_bench_lib.sh"
N=${MMSA_BENCH_SQL_POSTS:-500}
ROUNDS=${MMSA_BENCH_SQL_ROUNDS:-3}
THREADS=${MMSA_BENCH_SQL_THREADS:-"1 2"}
WARM=20
for v in "$N" "$ROUNDS" $THREADS; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: '$v' (MMSA_BENCH_SQL_POSTS, _ROUNDS, _THREADS)"
done
[ -n "${THREADS// /}" ] || die "MMSA_BENCH_SQL_THREADS is empty"
[ -f "$CSV" ] || die "$CSV not found (set MMSA_DATA)"
[ -d "$IMAGES" ] || die "$IMAGES not found (set MMSA_DATA)"
command -v pg_config >/dev/null || die "pg_config not found (PostgreSQL server development files)"

# --- what this runs on -------------------------------------------------------
echo "== SQL throughput: mmsa_sentiment(body, image), one backend"
bench_host
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset: auto-detected)};" \
	"OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset: auto-detected)}"
SHARE_MODEL="$(pg_config --sharedir)/mmsa"
corename=""
if [ -x "$ROOT/build/mmsa" ] && [ -d "$SHARE_MODEL/text" ]; then
	corename=$("$ROOT/build/mmsa" bench bert --model "$SHARE_MODEL/text" --runs 1 --warmup 0 \
		--threads 1 2>/dev/null | sed -n 's/.*corename=\([^ ]*\).*/\1/p' || true)
fi
if [ -n "$corename" ]; then
	echo "OpenBLAS kernel: $corename (as build/mmsa sees it; the extension links the same libopenblas)"
else
	echo "OpenBLAS kernel: unknown (build/mmsa or the installed model missing)"
fi

# --- the cluster ---------------------------------------------------------------
bench_cluster_start
echo "PostgreSQL: $(q -c 'SELECT version()')"

# --- the posts ---------------------------------------------------------------
bench_load_posts "$N"
loaded=$(q -c "SELECT count(*) || ' ' || round(avg(length(body))) || ' ' || round(sum(length(image)) / 1048576.0, 1) FROM posts")
read -r count avg_chars image_mb <<<"$loaded"
echo "posts: the first $N rows of the train split of $CSV (file order):" \
	"mean text $avg_chars characters, images $image_mb MiB in all"

# --- which paths -------------------------------------------------------------
# In one session: load the library (which defines its settings), then look.
probe=$(q -F ' ' <<'SQL'
LOAD 'mmsa';
SELECT to_regprocedure('mmsa_isa()') IS NOT NULL,
       to_regprocedure('mmsa_cpu_flags()') IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_settings WHERE name = 'mmsa.isa'),
       EXISTS (SELECT 1 FROM pg_settings WHERE name = 'mmsa.precision'),
       current_setting('mmsa.model_dir');
SQL
)
read -r has_isa_fn has_flags_fn has_isa_guc has_precision model_dir <<<"$probe"
echo "mmsa.model_dir: $model_dir"
if [ "$has_isa_fn" = t ] && [ "$has_isa_guc" = t ]; then
	if [ "$has_flags_fn" = t ]; then
		cpu_flags=$(q -c 'SELECT mmsa_cpu_flags()::text')
		src="mmsa_cpu_flags(): $cpu_flags"
	else
		cpu_flags=$BENCH_FLAGS
		src="/proc/cpuinfo (no mmsa_cpu_flags() on the server)"
	fi
	ISAS="avx2"
	if [[ " ${cpu_flags//[^a-z0-9_]/ } " =~ \ avx512f\  ]] &&
		[[ " ${cpu_flags//[^a-z0-9_]/ } " =~ \ avx512bw\  ]] &&
		[[ " ${cpu_flags//[^a-z0-9_]/ } " =~ \ avx512vl\  ]]; then
		ISAS="avx2 avx512"
	fi
	echo "paths: $ISAS (from $src)"
	if [ -n "${MMSA_BENCH_SQL_ISAS:-}" ]; then
		ISAS=$MMSA_BENCH_SQL_ISAS
		echo "paths: $ISAS (MMSA_BENCH_SQL_ISAS)"
	fi
	ISA_IN_USE="mmsa_isa()"
else
	missing=""
	[ "$has_isa_fn" = t ] || missing+=", no function mmsa_isa()"
	[ "$has_isa_guc" = t ] || missing+=", no setting mmsa.isa"
	echo "paths: could not query the path (the installed extension has${missing#,}):" \
		"timing only the default path (isa=default)"
	ISAS="default"
	ISA_IN_USE="'unknown'"
fi

if [ "$has_precision" = t ]; then
	PRECISIONS=${MMSA_BENCH_SQL_PRECISIONS:-"fp32 int8"}
	echo "precisions: $PRECISIONS; int8 kernels: $(q -c 'SELECT mmsa_int8_kernels()')"
else
	PRECISIONS="default"
	echo "precisions: the server has no setting mmsa.precision: timing only its default"
fi

# --- the timed session -------------------------------------------------------
configs=()
for isa in $ISAS; do
	for p in $PRECISIONS; do
		for t in $THREADS; do
			configs+=("$isa $p $t")
		done
	done
done
K=${#configs[@]}
SCRIPT="$BENCH_TMP/bench.sql"
{
	echo "LOAD 'mmsa';"
	echo "SET max_parallel_workers_per_gather = 0;"
	for r in $(seq "$ROUNDS"); do
		for i in $(seq 0 $((K - 1))); do
			read -r isa p t <<<"${configs[$(((i + r - 1) % K))]}"
			[ "$isa" = default ] || echo "SET mmsa.isa = '$isa';"
			[ "$p" = default ] || echo "SET mmsa.precision = '$p';"
			echo "SET mmsa.threads = $t;"
			echo "SELECT count(mmsa_sentiment(body, image)) FROM (SELECT body, image FROM posts ORDER BY id LIMIT $WARM) w \\gset warm_"
			echo "SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset"
			echo "SELECT count(mmsa_sentiment(body, image)) AS n FROM posts \\gset"
			echo "SELECT format('row round=%s isa=%s precision=%s threads=%s n=%s ms=%s isa_in_use=%s', $r, '$isa', '$p'," \
				"current_setting('mmsa.threads'), :n," \
				"round((extract(epoch FROM clock_timestamp()) - :t0) * 1000, 1), $ISA_IN_USE);"
		done
	done
} >"$SCRIPT"

echo "timing: $ROUNDS rounds x $K configurations (paths: $ISAS; precisions: $PRECISIONS; mmsa.threads: $THREADS)," \
	"each a warm-up over $WARM posts then count(mmsa_sentiment(body, image)) over $N posts"
ROWS="$BENCH_TMP/rows"
q -f "$SCRIPT" | while read -r tag rest; do
	[ "$tag" = row ] || { echo "$tag $rest"; continue; }
	echo "$rest" >>"$ROWS"
	echo "$rest" | awk '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		printf "  round %s: isa=%s precision=%s threads=%s posts=%s ms=%.1f posts_per_s=%.2f ms_per_post=%.2f isa_in_use=%s\n",
			f["round"], f["isa"], f["precision"], f["threads"], f["n"], f["ms"], f["n"] * 1000 / f["ms"], f["ms"] / f["n"], f["isa_in_use"]
	}'
done
[ -s "$ROWS" ] || die "no timings came back"

# --- medians -----------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
declare -A PPS
for c in "${configs[@]}"; do
	read -r isa p t <<<"$c"
	sel=$(grep " isa=$isa precision=$p threads=$t " "$ROWS")
	n=$(echo "$sel" | sed -n '1s/.* n=\([0-9]*\).*/\1/p')
	[ "$n" -eq "$N" ] || die "count() gave $n, not $N (isa=$isa precision=$p threads=$t)"
	ms=$(echo "$sel" | sed -n 's/.* ms=\([0-9.]*\).*/\1/p')
	pps=$(echo "$ms" | awk -v n="$N" '{ print n * 1000 / $1 }' | median)
	mpp=$(echo "$ms" | awk -v n="$N" '{ print $1 / n }' | median)
	in_use=$(echo "$sel" | sed 's/.* isa_in_use=\([^ ]*\).*/\1/' | sort -u | tr '\n' ',' | sed 's/,$//')
	PPS["$isa $p $t"]=$pps
	awk -v isa="$isa" -v prec="$p" -v t="$t" -v n="$N" -v r="$ROUNDS" -v p="$pps" -v m="$mpp" -v u="$in_use" \
		'BEGIN { printf "sql isa=%s precision=%s threads=%s posts=%s rounds=%s median_posts_per_s=%.2f median_ms_per_post=%.2f isa_in_use=%s\n",
			isa, prec, t, n, r, p, m, u }'
done
if [[ " $PRECISIONS " == *" fp32 "* ]] && [[ " $PRECISIONS " == *" int8 "* ]]; then
	for isa in $ISAS; do
		for t in $THREADS; do
			awk -v isa="$isa" -v t="$t" -v a="${PPS["$isa int8 $t"]}" -v b="${PPS["$isa fp32 $t"]}" \
				'BEGIN { printf "sql isa=%s threads=%s int8/fp32 posts per second: %.2f\n", isa, t, a / b }'
		done
	done
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
