#!/bin/bash
# The image decoder under valgrind memcheck: the generated test images (good
# and hostile, test/reference/make_test_images.py) decoded and preprocessed
# by `mmsa decode`, and the C unit test (every truncation, bit flips, ...),
# must run without invalid reads/writes, uses of uninitialised memory or
# leaks (--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect).
# The hostile files must still be refused with the right status.
# valgrind cannot run AVX-512, so everything under it runs on the AVX2 kernel
# path (MMSA_ISA=avx2); the build is portable, so nothing outside the
# kernels' own files uses wider instructions.
. "$(dirname "$0")/../reference/tap.sh"
DIR=$TMP/image_decode_valgrind

valgrind_avx2
if [ ! -x "$CLI" ] || [ ! -x "$ROOT/build/unit/test_image_decode" ]; then
	ok 1 "mmsa and build/unit/test_image_decode built (run make)"
	tap_done
fi
mkdir -p "$DIR"
# run a private copy: a concurrent `make` relinking build/mmsa must not break the run
cp "$CLI" "$DIR/mmsa" && CLI=$DIR/mmsa
cp "$ROOT/build/unit/test_image_decode" "$DIR/test_image_decode"
/usr/bin/python3 "$ROOT/test/reference/make_test_images.py" "$DIR"
ok $? "test images generated"
cat > "$DIR/tv.json" <<'EOF'
{"resize":256,"crop":224,"channel_order":"RGB","scale":0.00392156862745098,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]}
EOF

echo "# under valgrind: MMSA_ISA=avx2 (CPU: $("$CLI" cpu | sed -n 's/^cpu_flags: //p'))"

# expected status of each file, from the manifest: name<TAB>expect
/usr/bin/python3 -c '
import json, sys
for k, v in sorted(json.load(open(sys.argv[1])).items()):
    print(k + "\t" + v["expect"])' "$DIR/manifest.json" > "$DIR/expect.tsv"

while IFS=$'\t' read -r name expect; do
	case $name in large_*) continue ;; esac	# 12 MP under memcheck: slow, covered by the reference test
	$VG "$CLI" decode --preprocess "$DIR/tv.json" -o "$DIR/out.f32" "$DIR/$name" >"$DIR/out.txt" 2>"$DIR/err.txt"
	rc=$?
	case $expect in
	ok) want_rc=0; want_msg="" ;;
	FORMAT) want_rc=1; want_msg="format error" ;;
	LIMIT) want_rc=1; want_msg="limit exceeded" ;;
	UNSUPPORTED) want_rc=1; want_msg="unsupported" ;;
	INVALID) want_rc=1; want_msg="invalid input" ;;
	esac
	if [ $rc -eq 99 ]; then
		ok 1 "$name: valgrind errors: $(head -c 600 "$DIR/err.txt")"
	elif [ $rc -ne $want_rc ] || { [ -n "$want_msg" ] && ! grep -q "$want_msg" "$DIR/err.txt"; }; then
		ok 1 "$name: expected $expect, got rc $rc: $(head -c 300 "$DIR/err.txt")"
	else
		ok 0 "$name: $expect under valgrind, clean$( [ $rc -ne 0 ] && echo " ($(sed 's/^mmsa decode: [^:]*: //' "$DIR/err.txt" | head -c 120))")"
	fi
done < "$DIR/expect.tsv"

$VG "$DIR/test_image_decode" >"$DIR/unit.txt" 2>"$DIR/unit_err.txt"
rc=$?
ok $rc "unit test test_image_decode under valgrind: rc $rc, $(grep -c '^ok' "$DIR/unit.txt") tests ok$( [ $rc -ne 0 ] && head -c 600 "$DIR/unit_err.txt")"

tap_done
