#!/usr/bin/python3
"""Reference BERT uncased WordPiece tokenizer, for testing src/core/tokenizer.c.

An independent pure-Python implementation of Hugging Face's BertTokenizer
(transformers, models/bert/tokenization_bert.py: BasicTokenizer followed by
WordpieceTokenizer) with do_lower_case=True, tokenize_chinese_chars=True,
strip_accents=None, using Python's unicodedata and str.lower() as Hugging
Face does.  Special-token strings in the text ("[CLS]", ...) are tokenized
as literal text, like Hugging Face with split_special_tokens=True.

Command line:
    bert_tokenizer_ref.py --vocab vocab.txt [--max-length N] [--tokens]
                          [--null] [FILE]
reads texts from FILE (default stdin), one per line or NUL-separated with
--null, and prints one line of space-separated ids ([CLS] ... [SEP]) per
text, exactly like `mmsa tokenize`.
"""

import argparse
import sys
import unicodedata

MAX_INPUT_CHARS_PER_WORD = 100


def load_vocab(path):
    """vocab.txt -> dict token -> id (line number), as HF load_vocab."""
    vocab = {}
    with open(path, "r", encoding="utf-8") as reader:
        tokens = reader.readlines()
    for index, token in enumerate(tokens):
        vocab[token.rstrip("\n")] = index
    return vocab


def is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF
            or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class _CharMap(dict):
    """A str.translate table filled on demand from a per-character
    function: the same result as mapping every character, but fast."""

    def __init__(self, func):
        super().__init__()
        self.func = func

    def __missing__(self, cp):
        value = self.func(chr(cp))
        self[cp] = value
        return value


def _clean_char(ch):
    cp = ord(ch)
    if cp == 0 or cp == 0xFFFD or is_control(ch):
        return ""
    return " " if is_whitespace(ch) else ch


def _space_chinese_char(ch):
    return " " + ch + " " if is_chinese_char(ord(ch)) else ch


_CLEAN_MAP = _CharMap(_clean_char)
_CHINESE_MAP = _CharMap(_space_chinese_char)


def clean_text(text):
    """HF _clean_text: drop NUL, U+FFFD and controls; whitespace -> space."""
    return text.translate(_CLEAN_MAP)


def space_chinese_chars(text):
    """HF _tokenize_chinese_chars: spaces around CJK ideographs."""
    return text.translate(_CHINESE_MAP)


def tweet_normalize(text):
    """The C tokenizer's optional tweet normalisation (tokenizer.h), as
    TweetEval prepares its texts: after cleaning and CJK spacing, a
    whitespace-delimited word that starts with "@" and has more characters
    becomes "@user", one that starts with "http" becomes "http".  Returns a
    text that tokenizes as the normalised one."""
    words = space_chinese_chars(clean_text(text)).split()
    return " ".join("@user" if w.startswith("@") and len(w) > 1 else
                    "http" if w.startswith("http") else w for w in words)


def strip_accents(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text)
                   if unicodedata.category(ch) != "Mn")


def split_on_punctuation(text):
    words = []
    start_new_word = True
    for ch in text:
        if is_punctuation(ch):
            words.append([ch])
            start_new_word = True
        else:
            if start_new_word:
                words.append([])
            start_new_word = False
            words[-1].append(ch)
    return ["".join(w) for w in words]


def basic_tokenize(text):
    """HF BasicTokenizer.tokenize (never_split empty)."""
    split_tokens = []
    for token in whitespace_tokens(text):
        split_tokens.extend(basic_tokenize_token(token))
    return " ".join(split_tokens).split()


def whitespace_tokens(text):
    """Cleaning, CJK spacing, NFC and whitespace split: the first half of
    HF BasicTokenizer.tokenize."""
    text = clean_text(text)
    text = space_chinese_chars(text)
    text = unicodedata.normalize("NFC", text)
    return text.split()


def basic_tokenize_token(token):
    """The second half, per whitespace token: lower (str.lower, whose final
    sigma rule looks only inside the token), strip accents, split on
    punctuation."""
    return split_on_punctuation(strip_accents(token.lower()))


def wordpiece(word, vocab, unk="[UNK]"):
    """HF WordpieceTokenizer on one word: greedy longest match first."""
    chars = list(word)
    if len(chars) > MAX_INPUT_CHARS_PER_WORD:
        return [unk]
    pieces = []
    start = 0
    while start < len(chars):
        end = len(chars)
        found = None
        while start < end:
            sub = "".join(chars[start:end])
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return [unk]
        pieces.append(found)
        start = end
    return pieces


def tokenize(text, vocab, cache=None):
    """Wordpieces of text (no [CLS]/[SEP]).  cache (a dict) memoizes the
    pieces of each whitespace token, which depend on nothing else."""
    pieces = []
    for token in whitespace_tokens(text):
        token_pieces = cache.get(token) if cache is not None else None
        if token_pieces is None:
            token_pieces = []
            for word in basic_tokenize_token(token):
                for w in word.split():  # HF re-splits the joined words
                    token_pieces.extend(wordpiece(w, vocab))
            if cache is not None:
                cache[token] = token_pieces
        pieces.extend(token_pieces)
    return pieces


def encode(text, vocab, max_length=512, cache=None):
    """[CLS] pieces [SEP] as ids, the pieces truncated to max_length - 2
    (HF: truncation=True, max_length=max_length)."""
    ids = [vocab[p] for p in tokenize(text, vocab, cache)][: max_length - 2]
    return [vocab["[CLS]"]] + ids + [vocab["[SEP]"]]


def read_records(stream, null_separated):
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    sep = b"\0" if null_separated else b"\n"
    records = data.split(sep)
    if records and records[-1] == b"":
        records.pop()
    if not null_separated:
        records = [r[:-1] if r.endswith(b"\r") else r for r in records]
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--tokens", action="store_true", help="print wordpieces, not ids")
    ap.add_argument("--null", "-0", action="store_true", help="NUL-separated input")
    ap.add_argument("file", nargs="?")
    args = ap.parse_args()

    vocab = load_vocab(args.vocab)
    inv = {i: t for t, i in vocab.items()}
    if args.file:
        with open(args.file, "rb") as f:
            records = read_records(f, args.null)
    else:
        records = read_records(sys.stdin, args.null)
    out = []
    cache = {}
    status = 0
    for number, raw in enumerate(records, 1):
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            print(f"bert_tokenizer_ref: text {number}: not valid UTF-8: {e}", file=sys.stderr)
            out.append("")
            status = 1
            continue
        ids = encode(text, vocab, args.max_length, cache)
        out.append(" ".join(inv[i] for i in ids) if args.tokens else " ".join(map(str, ids)))
    sys.stdout.write("".join(line + "\n" for line in out))
    return status


if __name__ == "__main__":
    sys.exit(main())
