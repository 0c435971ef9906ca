#!/bin/bash
# Builds the libFuzzer target test/fuzz/fuzz_image_decode.c with
# clang -fsanitize=fuzzer,address (linking the core sources it needs
# directly) and runs it for a short while (MMSA_FUZZ_SECONDS, default 20),
# seeded with the generated test images (good and hostile).  Passes when the
# fuzzer finds no crash, sanitizer error, leak, timeout or broken invariant.
. "$(dirname "$0")/../reference/tap.sh"
DIR=$TMP/fuzz_image_decode
SECONDS_TO_RUN=${MMSA_FUZZ_SECONDS:-20}

CLANG=$(command -v clang || command -v clang-14 || true)
if [ -z "$CLANG" ]; then
	ok 1 "clang found (src/tools/install-deps.sh installs clang and libclang-rt-14-dev)"
	tap_done
fi
rm -rf "$DIR"
mkdir -p "$DIR/seeds" "$DIR/corpus" "$DIR/artifacts"
cd "$ROOT" || exit 1
"$CLANG" -g -O1 -fsanitize=fuzzer,address -Isrc/core \
	test/fuzz/fuzz_image_decode.c src/core/image_decode.c src/core/image_preprocess.c src/core/mmsa_error.c \
	-ljpeg -lpng -lz -ljansson -lm -o "$DIR/fuzz_image_decode" 2>"$DIR/build.txt"
rc=$?
ok $rc "fuzz target built with $CLANG -fsanitize=fuzzer,address$( [ $rc -ne 0 ] && head -c 600 "$DIR/build.txt")"
if [ $rc -ne 0 ]; then
	tap_done
fi

/usr/bin/python3 test/reference/make_test_images.py "$DIR/seeds"
ok $? "seed images generated"
rm -f "$DIR/seeds/manifest.json" "$DIR/seeds"/large_*	# keep inputs small: -max_len below
nseeds=$(ls "$DIR/seeds" | wc -l)

"$DIR/fuzz_image_decode" -max_total_time="$SECONDS_TO_RUN" -max_len=100000 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$DIR/artifacts/" \
	"$DIR/corpus" "$DIR/seeds" >"$DIR/fuzz.txt" 2>&1
rc=$?
runs=$(grep -o 'Done [0-9]* runs' "$DIR/fuzz.txt" | grep -o '[0-9]*')
cov=$(grep -o 'cov: [0-9]*' "$DIR/fuzz.txt" | tail -1)
ok $rc "libFuzzer, $SECONDS_TO_RUN s from $nseeds seeds: ${runs:-?} runs, $cov, exit $rc$( [ $rc -ne 0 ] && { echo; grep -E 'ERROR|SUMMARY|artifact' "$DIR/fuzz.txt" | head -5 | sed 's/^/# /'; })"
artifacts=$(ls "$DIR/artifacts" | wc -l)
ok $((artifacts != 0)) "no crash/leak/timeout artifacts ($artifacts in $DIR/artifacts)"

tap_done
