#!/usr/bin/python3
# tokenizer_agreement.t - the C WordPiece tokenizer against the Python one.
#
# Every text of ../shared/data/*/posts.csv (about 128,000 tweets) goes through
# `mmsa tokenize --null` (the C tokenizer, src/core/tokenizer.c) and through
# test/reference/bert_tokenizer_ref.py, an independent implementation of
# Hugging Face's BertTokenizer on Python's unicodedata and str.lower(), and
# again with tweet normalisation on (tokenizer.h) against its tweet_normalize.  The
# ids must be identical; a text where they differ must be listed in
# KNOWN_DIFFERENCES below with the reason, else the test fails.  Truncation is
# checked at max length 16 on a subset and at 512 on long texts made by
# joining consecutive tweets.
import csv
import glob
import os
import random
import subprocess
import sys
import time
import unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import bert_tokenizer_ref as ref  # noqa: E402
from tap import ok, diag, done, ROOT, CLI, DATA, TMP  # noqa: E402

vocab_path = os.environ.get('MMSA_VOCAB') or os.path.join(ROOT, 'weights', 'text', 'vocab.txt')
os.makedirs(TMP, exist_ok=True)

# Texts on which the C tokenizer and the reference may disagree, keyed by
# "<data set>:<id>", with the reason.  Where the two differ because of the
# reference (for instance Python 3.11's Unicode 14 tables against utf8proc's
# Unicode 15 for a character added in Unicode 15), say so here; the test
# prints both outputs for every entry.  An entry whose texts agree again is
# reported as stale and fails, so the table stays true.  (Empty: the C
# tokenizer agrees with the reference on every text.)
KNOWN_DIFFERENCES = {
}

def run_cli(texts, max_length, null=True, vocab=None):
    """ids lists of texts from `mmsa tokenize` (None entries on failure)."""
    sep = b'\0' if null else b'\n'
    payload = b''.join(t.encode('utf-8') + sep for t in texts)
    cmd = [CLI, 'tokenize', '--vocab', vocab or plain_vocab, '--max-length', str(max_length)]
    if null:
        cmd.append('--null')
    r = subprocess.run(cmd, input=payload, capture_output=True)
    if r.returncode != 0:
        diag('%s failed (%d): %s' % (' '.join(cmd), r.returncode, r.stderr.decode(errors='replace')[:2000]))
        return None
    lines = r.stdout.decode().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    if len(lines) != len(texts):
        diag('%s printed %d lines for %d texts' % (' '.join(cmd), len(lines), len(texts)))
        return None
    return [[int(x) for x in line.split()] for line in lines]


def show(ids, inv):
    return ' '.join('%d:%s' % (i, inv.get(i, '?')) for i in ids)


# ---- inputs -------------------------------------------------------------
if not ok(os.path.isfile(vocab_path), 'vocabulary %s exists' % vocab_path):
    diag('run src/tools/fetch-vocab.sh')
    done()
if not ok(os.access(CLI, os.X_OK), 'mmsa tool %s built' % CLI):
    done()


def vocab_dir(name, config=None):
    """A vocabulary directory in TMP: vocab.txt copied, tokenizer_config.json
    written when config is given, absent otherwise."""
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, 'vocab.txt')
    with open(vocab_path, 'rb') as src, open(path, 'wb') as dst:
        dst.write(src.read())
    if config is not None:
        with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
            f.write(config)
    return path


# The plain tokenizer: vocab.txt alone, whatever the directory it comes
# from says (the shipped encoder's has tweet normalisation on).
plain_vocab = vocab_dir('tokenizer_plain')
vocab = ref.load_vocab(vocab_path)
inv = {i: t for t, i in vocab.items()}
keys, texts = [], []
files = sorted(glob.glob(os.path.join(DATA, '*', 'posts.csv')))
for path in files:
    name = os.path.basename(os.path.dirname(path))
    with open(path, newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            keys.append('%s:%s' % (name, row['id']))
            texts.append(row['text'])
names = [os.path.basename(os.path.dirname(p)) for p in files]
ok('mvsa-single' in names and len(texts) >= 36000,
   '%d texts from %d posts.csv files (%s)' % (len(texts), len(files), ', '.join(names)))
if not texts:
    done()
diag('Unicode data: Python %s (reference); the C tokenizer uses utf8proc' % unicodedata.unidata_version)

# ---- every text at the default max length ---------------------------------
t0 = time.perf_counter()
c_ids = run_cli(texts, 512)
c_seconds = time.perf_counter() - t0
if not ok(c_ids is not None, 'mmsa tokenize --null ran on every text'):
    done()
diag('mmsa tokenize: %d texts in %.2f s (process start, I/O and printing included)' % (len(texts), c_seconds))

cache = {}
t0 = time.perf_counter()
ref_ids = [ref.encode(t, vocab, 512, cache) for t in texts]
diag('reference: %.1f s' % (time.perf_counter() - t0))

identical = 0
unexplained = []
explained = []
for key, text, c, r in zip(keys, texts, c_ids, ref_ids):
    if c == r:
        identical += 1
    elif key in KNOWN_DIFFERENCES:
        explained.append((key, text, c, r))
    else:
        unexplained.append((key, text, c, r))
ok(not unexplained,
   '%d of %d texts give identical ids (%d known differences, %d unexplained)'
   % (identical, len(texts), len(explained), len(unexplained)))
for key, text, c, r in explained + unexplained[:20]:
    diag('%s: %s' % (key, KNOWN_DIFFERENCES.get(key, 'UNEXPLAINED')))
    diag('  text:      %r' % text)
    diag('  C:         %s' % show(c, inv))
    diag('  reference: %s' % show(r, inv))
differing = set(k for k, _, _, _ in explained)

# sanity: the comparison is not trivially true
n_pieces = sum(len(r) - 2 for r in ref_ids)
n_unk = sum(r.count(vocab['[UNK]']) for r in ref_ids)
n_cont = sum(1 for r in ref_ids for i in r if inv[i].startswith('##'))
ok(n_pieces > 10 * len(texts) and n_cont > 0,
   '%d pieces compared (%d continuation pieces, %d [UNK])' % (n_pieces, n_cont, n_unk))

# ---- synthetic texts: the Unicode corner cases tweets rarely have ------------
def synthetic_texts(n, seed=20261129):
    """n random texts mixing vocabulary words (upper-cased, accented) with
    accents, combining marks, Greek sigma contexts, CJK, Hangul, every kind
    of whitespace and control character, punctuation and symbols, emoji and
    any code point assigned in Python's Unicode database (not U+0000, which
    separates records; unassigned code points are left out because the two
    sides may use different Unicode versions)."""
    rng = random.Random(seed)
    assigned = [c for c in range(0x20, 0x32000)
                if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != 'Cn']
    words = [t[2:] if t.startswith('##') else t for t in vocab if not t.startswith('[')]
    pools = [
        lambda: rng.choice(words),
        lambda: rng.choice(words).upper(),
        lambda: rng.choice(words).title(),
        lambda: rng.choice('ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿ'
                           'ĀāĂăĄąĆćİıŁłŒœŠšŸŽžǅǈǋßẞ'),
        lambda: rng.choice('ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩαβγδεζηθικλμνξοπρσςτυφχψωΆΈΉΊΌΎΏάέήίόύώΐΰ'
                           'ΣΣΣ\u0345ͅ'),
        lambda: chr(rng.choice(list(range(0x300, 0x370)) + [0x1AB0, 0x1DC0, 0x20D0, 0x20E3, 0x302A, 0xFE20,
                                                             0x0903, 0x093E, 0x1D165, 0x05B0, 0x0E31])),
        lambda: chr(rng.choice([rng.randrange(0x4E00, 0xA000), rng.randrange(0x3400, 0x4DC0),
                                rng.randrange(0xF900, 0xFADA), rng.randrange(0x20000, 0x2A6E0),
                                rng.randrange(0x2F800, 0x2FA1E), rng.randrange(0x3040, 0x3100)])),
        lambda: chr(rng.choice([rng.randrange(0xAC00, 0xD7A4), rng.randrange(0x1100, 0x1113),
                                rng.randrange(0x1161, 0x1176), rng.randrange(0x11A8, 0x11C3)])),
        lambda: rng.choice([' ', '\t', '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1f', '\x85', '\xa0',
                            '\u1680', '\u2000', '\u2001', '\u200a', '\u2028', '\u2029', '\u202f',
                            '\u205f', '\u3000', '\x05', '\x7f', '\u200b', '\u200d', '\xad',
                            '\ufeff', '\ufffd', '\ue000', '\U000F0000', '\u2066', '\U000E0041']),
        lambda: rng.choice('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»‘’“”„‹›–—…‰′″※‼⁉、。〈〉《》「」『』【】'
                           '！＂＃％＆＇（）＊，－．／：；？＠［＼］＿｛｝·׳․‧︓﹒﹕：＇．'),
        lambda: rng.choice('ªºⅠⅡⅰⅱⒶⓐⓩ🄰🅐🅰ʰˀᴬᵃ'),
        lambda: chr(rng.choice([rng.randrange(0x1F300, 0x1F650), rng.randrange(0x1F900, 0x1FA00),
                                rng.randrange(0x2600, 0x2800)])),
        lambda: chr(rng.choice(assigned)),
        lambda: chr(rng.choice(assigned)) * rng.randrange(1, 4),
        lambda: 'a' * rng.choice([99, 100, 101]),
        lambda: sigma_context(),
    ]
    weights = [20, 6, 6, 8, 8, 6, 5, 4, 10, 8, 3, 3, 6, 2, 1, 4]

    # capital sigma between cased, case-ignorable and other characters:
    # str.lower()'s final-sigma rule
    cased = 'ΑαAzÀⅠⅰⓐ🄰🅰ªºǅ'
    ignorable = ".'’:·׳․‧\u0301\u0345ʰˀ^`¨\u200d\u00ad"
    other = '1-$ ¡ⅼ'
    around = cased + ignorable + other

    def sigma_context():
        return (''.join(rng.choice(around) for _ in range(rng.randrange(0, 3))) + 'Σ'
                + ''.join(rng.choice(ignorable) for _ in range(rng.randrange(0, 3)))
                + ''.join(rng.choice(around) for _ in range(rng.randrange(0, 2))))
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randrange(1, 14)):
            for _ in range(rng.randrange(1, 5)):
                parts.append(rng.choices(pools, weights)[0]())
            if rng.random() < 0.7:
                parts.append(' ')
        out.append(''.join(parts))
    return out


synthetic = synthetic_texts(20000)
c_syn = run_cli(synthetic, 512)
r_syn = [ref.encode(t, vocab, 512, cache) for t in synthetic]
if ok(c_syn is not None, 'mmsa tokenize --null ran on %d synthetic texts' % len(synthetic)):
    syn_identical = 0
    syn_unexplained = []
    for i, (text, c, r) in enumerate(zip(synthetic, c_syn, r_syn)):
        key = 'synthetic:%d' % i
        if c == r:
            syn_identical += 1
        elif key in KNOWN_DIFFERENCES:
            differing.add(key)
            diag('%s: %s' % (key, KNOWN_DIFFERENCES[key]))
            diag('  text:      %r' % text)
            diag('  C:         %s' % show(c, inv))
            diag('  reference: %s' % show(r, inv))
        else:
            syn_unexplained.append((key, text, c, r))
    ok(not syn_unexplained, '%d of %d synthetic texts give identical ids (%d unexplained)'
       % (syn_identical, len(synthetic), len(syn_unexplained)))
    for key, text, c, r in syn_unexplained[:20]:
        diag('%s: UNEXPLAINED' % key)
        diag('  text:      %r' % text)
        diag('  C:         %s' % show(c, inv))
        diag('  reference: %s' % show(r, inv))

stale = [k for k in KNOWN_DIFFERENCES if k not in differing]
ok(not stale, 'every KNOWN_DIFFERENCES entry still differs')
for k in stale:
    diag('stale: %s' % k)

# ---- line mode -----------------------------------------------------------
single = [t for k, t in zip(keys, texts) if k.startswith('mvsa-single:')]
if all('\n' not in t and '\r' not in t for t in single):
    line_ids = run_cli(single, 512, null=False)
    ok(line_ids == [c for k, c in zip(keys, c_ids) if k.startswith('mvsa-single:')],
       'one-text-per-line input gives the same ids as --null (%d MVSA-Single texts)' % len(single))

# ---- truncation ----------------------------------------------------------
subset = texts[::5]
c16 = run_cli(subset, 16)
r16 = [ref.encode(t, vocab, 16, cache) for t in subset]
cut16 = sum(1 for r in r16 if len(r) == 16)
ok(c16 == r16 and cut16 > 0,
   'max length 16: %d texts identical to the reference (%d of them truncated)'
   % (len(subset) if c16 == r16 else 0, cut16))

long_texts = [' '.join(texts[i:i + 40]) for i in range(0, min(len(texts), 300 * 40), 40)]
c512 = run_cli(long_texts, 512)
r512 = [ref.encode(t, vocab, 512, cache) for t in long_texts]
full_lengths = [len(ref.tokenize(t, vocab, cache)) for t in long_texts]
ok(c512 == r512 and all(len(r) == 512 for r in r512) and min(full_lengths) > 510,
   'max length 512: %d long texts (%d-%d pieces) truncated identically to the reference'
   % (len(long_texts), min(full_lengths), max(full_lengths)))

# ---- tweet normalisation -----------------------------------------------------
# A vocabulary directory whose tokenizer_config.json turns it on: every text
# again, and synthetic words around "@" and "http", against the reference's
# tweet_normalize followed by the same tokenization.
norm_vocab = vocab_dir('tokenizer_tweet', '{"do_lower_case": true, "tweet_normalization": true}\n')
norm_dir = os.path.dirname(norm_vocab)
rng = random.Random(7)
edge_words = ['@', '@@', '@a', '@user', '@User_1', 'a@b', '＠x', 'http', 'https://t.co/x', 'httpx',
              'htt', 'HTTP://x', 'Http', 'http\u0301x', '\x01@bob', '@\x01', '@中', '中@x',
              'www.x.com', '@bob:', '(@bob)', 'RT', '#tag']
edge = [' '.join(rng.choice(edge_words + ['good', 'day']) for _ in range(rng.randrange(1, 8)))
        for _ in range(3000)]
edge += [t.replace(' ', rng.choice(['\t', '\n', '\u3000', '\x1c', '  '])) for t in edge[:500]]
norm_texts = texts + edge
c_norm = run_cli(norm_texts, 512, vocab=norm_vocab)
r_norm = [ref.encode(ref.tweet_normalize(t), vocab, 512, cache) for t in norm_texts]
changed = sum(1 for t in texts if ref.tweet_normalize(t) != ' '.join(ref.space_chinese_chars(ref.clean_text(t)).split()))
if ok(c_norm is not None, 'mmsa tokenize with tweet normalisation ran on %d texts' % len(norm_texts)):
    bad = [(t, c, r) for t, c, r in zip(norm_texts, c_norm, r_norm) if c != r]
    ok(not bad and changed > 10000,
       'tweet normalisation: %d of %d texts identical to the reference (%d corpus texts have a '
       'user name or link)' % (len(norm_texts) - len(bad), len(norm_texts), changed))
    for t, c, r in bad[:10]:
        diag('  text:      %r' % t)
        diag('  C:         %s' % show(c, inv))
        diag('  reference: %s' % show(r, inv))
    plain = dict(zip(keys, c_ids))
    ok(sum(1 for k, c in zip(keys, c_norm) if c != plain[k]) >= changed * 0.9,
       'and it changes the ids of the texts it normalises (against the plain vocabulary)')
for bad_config, what in (('[1, 2]', 'not a JSON object'), ('{"tweet_normalization": "yes"}', 'true or false'),
                         ('{"tweet_normalization": tru', 'not a JSON object')):
    with open(os.path.join(norm_dir, 'tokenizer_config.json'), 'w') as f:
        f.write(bad_config)
    r = subprocess.run([CLI, 'tokenize', '--vocab', norm_vocab, 'x'], capture_output=True)
    ok(r.returncode == 1 and what.encode() in r.stderr and b'tokenizer_config.json' in r.stderr,
       'tokenizer_config.json %s: refused, naming the file (%s)' % (bad_config, what))

# ---- errors ----------------------------------------------------------------
r = subprocess.run([CLI, 'tokenize', '--vocab', vocab_path],
                   input=b'fine\n\xff\xfe bad\nalso fine\n', capture_output=True)
out = r.stdout.decode().split('\n')
ok(r.returncode == 1 and len(out) == 4 and out[1] == '' and out[0] and out[2]
   and b'text 2' in r.stderr and b'UTF-8' in r.stderr,
   'invalid UTF-8 in batch mode: empty line, message for text 2, exit status 1')
r = subprocess.run([CLI, 'tokenize', '--vocab', os.path.join(TMP, 'no-such-vocab.txt'), 'x'],
                   capture_output=True)
ok(r.returncode == 1 and b'no-such-vocab.txt' in r.stderr,
   'a missing vocabulary file is an error naming it')

done()
