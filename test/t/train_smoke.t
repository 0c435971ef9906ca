#!/usr/bin/python3
# train_smoke.t - the CI smoke test of `mmsa train`, `mmsa predict` and
# `mmsa eval` (train --smoke: a tiny text encoder, 48 MVSA-Single posts per
# split for the heads).
#
#  1. train --smoke writes OUT/text (config, F16 model, vocab), the seven
#     heads and model.json (format, val_accuracy of the eight models, default
#     = first argmax of it, a decision rule per model, the ensemble's
#     members); progress lines with an ETA on stderr, a table of the eight
#     on stdout.
#  2. A second run resumes: the text encoder "resuming at step", the seven
#     heads "already trained", the 35 out-of-fold results read back, the
#     head files and model.json byte-identical.
#  3. `--only text` then a full run into a new directory gives the same
#     bytes as the one-go run (same seed), model.json included.
#  4. predict: the CSV shape, one row per val post in order, probabilities,
#     label = the model's decision rule, determinism, --fusion, --fusion
#     ensemble = the mean of its members' probabilities, bad --fusion (exit
#     2), missing --posts (exit 1), a post without an image (text model).
#  5. --fusion bert = softmax(W F_T + b) with W, b read here from
#     heads/bert.safetensors and F_T from `mmsa embed` of OUT/text.
#  6. eval: the Markdown table of the eight, one "(default)", each accuracy
#     equal to that of predict --fusion <name> on the same posts; the PNG.
#  7. Tweet normalisation: without --text-normalization the first run took
#     the vocabulary's directory's setting (weights/text/tokenizer_config.json);
#     a run with the other setting trains on a different number of tokens, the
#     model trained with it is marked by text/tokenizer_config.json and the
#     other is not, predict runs it, and its checkpoint is refused by a run
#     with the first setting.
#  8. Bad hyper-parameters and --only: exit 2.
import csv
import io
import json
import re
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tap import ok, diag, skip, done, ROOT, CLI, DATA, TMP  # noqa: E402

HEADS = ['bert', 'resnet', 'nativecat', 'nativecombine', 'cmac', 'hstec', 'ote']
MODELS = HEADS + ['ensemble']
LABELS = ['negative', 'neutral', 'positive']
image_model = os.path.join(ROOT, 'weights', 'image')
vocab = os.path.join(ROOT, 'weights', 'text', 'vocab.txt')
images = os.path.join(DATA, 'mvsa-single', 'images')
work = os.path.join(TMP, 'train_smoke')
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
OUT = os.path.join(work, 'out')
OUT2 = os.path.join(work, 'out2')

if not (os.path.isfile(os.path.join(image_model, 'model.safetensors')) and os.path.isfile(vocab)
        and os.path.isdir(os.path.join(DATA, 'mvsa-single'))):
    diag('need weights/image/model.safetensors, weights/text/vocab.txt (make) and %s/mvsa-single'
         % DATA)
    skip('mmsa train --smoke', 'ResNet-50 weights, vocabulary or MVSA-Single missing')
    done()


def missing_any(paths):
    return any(not os.path.isfile(p) for p in paths)


def decide(model, pr):
    """model.json's rule: the k with the largest log p_k + b_k (first on ties)."""
    b = mj['decision_bias'][model]
    score = [np.log(x) + b[k] if x > 0 else -np.inf for k, x in enumerate(pr)]
    return LABELS[int(np.argmax(score))]


def run(args):
    return subprocess.run([CLI] + args, capture_output=True, text=True)


def train(out, extra=()):
    return run(['train', '--smoke', '--out', out, '--vocab', vocab, '--image-model', image_model,
                '--data', DATA] + list(extra))


def read_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def read_safetensors(path):
    raw = read_bytes(path)
    hlen = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + hlen])
    header.pop('__metadata__', None)
    base = 8 + hlen
    dt = {'F32': np.float32, 'F16': np.float16}
    out = {}
    for name, t in header.items():
        b, e = t['data_offsets']
        arr = None
        if t['dtype'] in dt:
            arr = np.frombuffer(raw[base + b:base + e], dtype=dt[t['dtype']]).reshape(t['shape'])
        out[name] = (t['dtype'], arr)
    return out


def head_files(out):
    return {m: os.path.join(out, 'heads', m + '.safetensors') for m in HEADS}


def lines(stderr):
    return stderr.replace('\r', '\n').split('\n')


# ---- 1. train --smoke ------------------------------------------------------
r = train(OUT)
if not ok(r.returncode == 0, 'train --smoke exits 0'):
    diag('\n'.join(lines(r.stderr)[-30:]))
    done()
expected = [os.path.join(OUT, 'text', f) for f in ('config.json', 'model.safetensors', 'vocab.txt')]
expected += list(head_files(OUT).values()) + [os.path.join(OUT, 'model.json')]
model_json_before = read_bytes(os.path.join(OUT, 'model.json')) if not missing_any(expected) else None
missing = [p for p in expected if not os.path.isfile(p)]
ok(not missing, 'OUT/text/{config.json,model.safetensors,vocab.txt}, 7 heads and model.json written'
   + ('' if not missing else ' (missing: %s)' % ', '.join(missing)))
with open(os.path.join(OUT, 'model.json')) as f:
    mj = json.load(f)
acc = mj.get('val_accuracy', {})
ok(mj.get('format') == 'mmsa-sentiment-1', 'model.json format mmsa-sentiment-1')
ok(sorted(acc) == sorted(MODELS), 'model.json val_accuracy has the eight models')
bias = mj.get('decision_bias', {})
ok(sorted(bias) == sorted(MODELS) and
   all(len(b) == 3 and b[2] == 0 and all(-2 <= x <= 3 and abs(x * 20 - round(x * 20)) < 1e-6
                                         for x in b) for b in bias.values()),
   'model.json decision_bias: [b_neg, b_neu, 0] on the grid of 0.05 in [-2, 3] for each of the eight')
ens = mj.get('ensemble', {})
members = ens.get('members', [])
ok(ens.get('combine') == 'mean' and members in (HEADS[2:], HEADS),
   'model.json ensemble: the mean of the five fusion heads or of all seven (%s)' % members)
best = max(MODELS, key=lambda m: (acc.get(m, -1), -MODELS.index(m)))
default = mj.get('default_fusion')
ok(default in MODELS and default == best,
   'default_fusion %s is the first argmax of val_accuracy (%s)' % (default, best))
dtypes = {t[0] for t in read_safetensors(os.path.join(OUT, 'text', 'model.safetensors')).values()}
ok(dtypes == {'F16'}, 'text model.safetensors stores F16 tensors (%s)' % sorted(dtypes))
ok(any('ETA' in ln and 'text encoder' in ln for ln in lines(r.stderr))
   and any('ETA' in ln and 'heads' in ln for ln in lines(r.stderr)),
   'stderr has progress lines with an ETA (text encoder and heads)')
rows = [ln for ln in r.stdout.splitlines() if ln.startswith('|')]
row_names = [ln.split('|')[1].strip() for ln in rows]
ok(all(row_names.count(m) == 2 for m in MODELS),
   'stdout has the val table and the decision-rule table, one row per model in each')
heads_before = {m: read_bytes(p) for m, p in head_files(OUT).items()}
text_before = read_bytes(os.path.join(OUT, 'text', 'model.safetensors'))

first_stderr = r.stderr
first_tokens = re.search(r'training texts \((\d+) tokens\)', r.stderr)

# ---- 2. resume ---------------------------------------------------------------
r = train(OUT)
ok(r.returncode == 0, 'a second run exits 0')
n_already = sum(1 for ln in lines(r.stderr) if 'already trained' in ln)
ok(n_already == 7, 'the seven heads are "already trained" (%d)' % n_already)
ok('35 of 35 out-of-fold results read back' in r.stderr,
   'the decision stage reads its 35 out-of-fold results back')
ok(read_bytes(os.path.join(OUT, 'model.json')) == model_json_before,
   'model.json byte-identical after the second run')
ok('resuming at step' in r.stderr, 'the text encoder says "resuming at step"')
changed = [m for m, p in head_files(OUT).items() if read_bytes(p) != heads_before[m]]
ok(not changed, 'head files byte-identical after the second run' +
   ('' if not changed else ' (changed: %s)' % ', '.join(changed)))

# ---- 3. --only text, then the rest: the same bytes --------------------------
# The image-feature cache is copied to spare ResNet-50 (stage 0 is tested above).
os.makedirs(os.path.join(OUT2, 'cache'))
shutil.copy(os.path.join(OUT, 'cache', 'mvsa-single-subset-features.safetensors'),
            os.path.join(OUT2, 'cache'))
r = train(OUT2, ['--only', 'text'])
ok(r.returncode == 0 and os.path.isfile(os.path.join(OUT2, 'text', 'model.safetensors'))
   and not os.path.exists(os.path.join(OUT2, 'heads', 'bert.safetensors')),
   'train --only text exits 0 and writes the text encoder, no heads')
if r.returncode != 0:
    diag('\n'.join(lines(r.stderr)[-20:]))
r = train(OUT2)
ok(r.returncode == 0, 'then a full run into the same directory exits 0')
ok(read_bytes(os.path.join(OUT2, 'text', 'model.safetensors')) == text_before,
   'text model.safetensors identical to the one-go run')
differ = [m for m, p in head_files(OUT2).items()
          if not os.path.isfile(p) or read_bytes(p) != heads_before[m]]
ok(not differ, 'the seven head files identical to the one-go run' +
   ('' if not differ else ' (differ: %s)' % ', '.join(differ)))
ok(os.path.isfile(os.path.join(OUT2, 'model.json')) and
   read_bytes(os.path.join(OUT2, 'model.json')) == model_json_before,
   'model.json (rules, ensemble, figures) identical to the one-go run')

# ---- 4. predict --------------------------------------------------------------
subset = os.path.join(OUT, 'cache', 'mvsa-single-subset.csv')
with open(subset, newline='', encoding='utf-8') as f:
    val_rows = [row for row in csv.DictReader(f) if row['split'] == 'val']


def predict(extra=(), posts=subset):
    return run(['predict', '--model', OUT, '--posts', posts, '--images', images,
                '--split', 'val'] + list(extra))


def parse_predictions(stdout):
    rd = list(csv.reader(io.StringIO(stdout)))
    return rd[0] if rd else None, rd[1:]


r_default = predict(['--threads', '2'])
ok(r_default.returncode == 0, 'predict exits 0')
header, pred_rows = parse_predictions(r_default.stdout)
ok(header == ['id', 'label', 'p_negative', 'p_neutral', 'p_positive'],
   'header id,label,p_negative,p_neutral,p_positive')
ok([p[0] for p in pred_rows] == [v['id'] for v in val_rows] and len(pred_rows) > 0,
   'one row per val post of the subset, in order (%d rows)' % len(pred_rows))
good_p = good_label = True
for p in pred_rows:
    try:
        pr = [float(x) for x in p[2:5]]
    except (ValueError, IndexError):
        good_p = False
        continue
    if len(p) != 5 or not all(0 <= x <= 1 for x in pr) or abs(sum(pr) - 1) > 1e-5:
        good_p = False
    if p[1] != decide(default, pr):
        good_label = False
ok(good_p, 'probabilities parse, lie in [0,1] and sum to 1 within 1e-5')
ok(good_label, 'label = the default model\'s rule: the k with the largest log p_k + b_k')

# predictions of each model (also used by 6.); --fusion <default> reruns the default
# with another thread count: results must not depend on it
by_model = {}
for m in MODELS:
    # the default model's rerun uses one thread: the first run used all cores
    r = predict(['--fusion', m] + (['--threads', '1'] if m == default else ['--threads', '2']))
    by_model[m] = parse_predictions(r.stdout)[1] if r.returncode == 0 else None
    if r.returncode != 0:
        diag('predict --fusion %s: %s' % (m, r.stderr.strip()))
ok(all(by_model[m] is not None for m in MODELS), 'predict --fusion <each of the eight> exits 0')
ok(all(by_model[m] is not None and all(p[1] == decide(m, [float(x) for x in p[2:5]]) for p in by_model[m])
       for m in MODELS),
   'each model\'s labels follow its own rule (decision_bias[model])')
n_moved = sum(1 for m in MODELS if by_model[m] is not None
              for p in by_model[m] if p[1] != LABELS[int(np.argmax([float(x) for x in p[2:5]]))])
diag('labels that differ from the plain argmax, all models: %d' % n_moved)
ok(by_model[default] is not None and r_default.stdout.splitlines()[1:] ==
   [','.join(p) for p in by_model[default]],
   'a second run (--fusion %s, the default, on 1 thread instead of 2) gives identical output' % default)


def probs(rows_):
    return np.array([[float(x) for x in p[2:5]] for p in rows_])


ok(by_model['resnet'] is not None and by_model['bert'] is not None and
   np.abs(probs(by_model['resnet']) - probs(by_model['bert'])).max() > 1e-4,
   '--fusion resnet gives other probabilities than --fusion bert')
r = predict(['--fusion', 'nosuch'])
ok(r.returncode == 2 and all(m in r.stderr for m in MODELS),
   '--fusion nosuch exits 2 naming the eight models')
if all(by_model[m] is not None for m in members + ['ensemble']):
    mean = sum(probs(by_model[m]) for m in members) / len(members)
    dev = float(np.abs(mean - probs(by_model['ensemble'])).max())
else:
    dev = float('inf')
ok(dev <= 2e-6, '--fusion ensemble = the mean of its members\' probabilities: max abs diff %.2g '
   '<= 2e-6 (printed to 1e-6)' % dev)
noens = os.path.join(work, 'noens')
shutil.copytree(OUT, noens, ignore=shutil.ignore_patterns('cache'))
mj_noens = dict(mj)
mj_noens.pop('ensemble')
if mj_noens.get('default_fusion') == 'ensemble':
    mj_noens['default_fusion'] = 'ote'
with open(os.path.join(noens, 'model.json'), 'w') as f:
    json.dump(mj_noens, f)
r = run(['predict', '--model', noens, '--posts', subset, '--images', images, '--split', 'val',
         '--fusion', 'ensemble'])
ok(r.returncode != 0 and 'no ensemble' in r.stderr,
   '--fusion ensemble on a model.json without "ensemble" fails saying so')
for what, change, says in [
        ('a decision_bias of two numbers', {'decision_bias': {'ote': [0.0, 1.0]}},
         '"decision_bias" must map model names to three numbers'),
        ('a decision_bias for an unknown model', {'decision_bias': {'nosuch': [0, 0, 0]}},
         '"decision_bias" must map model names to three numbers'),
        ('a non-finite bias', {'decision_bias': {'ote': [0, 1e300 * 10, 0]}}, None),
        ('an ensemble member that is no head', {'ensemble': {'combine': 'mean',
                                                             'members': ['ote', 'ensemble']}},
         'distinct heads of the seven'),
        ('an ensemble combined by "max"', {'ensemble': {'combine': 'max', 'members': HEADS}},
         '"ensemble" must be'),
        ('default_fusion "ensemble" without an ensemble', {'default_fusion': 'ensemble'},
         '"default_fusion" must name one of the seven heads')]:
    bad = dict(mj_noens)
    bad.update(change)
    with open(os.path.join(noens, 'model.json'), 'w') as f:
        f.write(json.dumps(bad).replace('Infinity', '1e999'))
    r = run(['predict', '--model', noens, '--posts', subset, '--images', images, '--split', 'val'])
    ok(r.returncode == 1 and 'model.json' in r.stderr and (says is None or says in r.stderr),
       'model.json with %s: predict exits 1 naming the file and the fault' % what)
    if r.returncode != 1:
        diag(r.stderr.strip())
shutil.rmtree(noens, ignore_errors=True)
nofile = os.path.join(work, 'no-such-posts.csv')
r = predict(posts=nofile)
ok(r.returncode == 1 and nofile in r.stderr, 'a missing --posts file exits 1 naming it')

# a post without an image file
noimg = os.path.join(work, 'noimage.csv')
with open(noimg, 'w', newline='', encoding='utf-8') as f:
    w = csv.writer(f)
    w.writerow(['id', 'split', 'label', 'text'])
    w.writerow([val_rows[0]['id'], 'val', val_rows[0]['label'], val_rows[0]['text']])
    w.writerow(['999999999', 'val', val_rows[0]['label'], val_rows[0]['text']])
r = predict(['--fusion', 'resnet'], posts=noimg)
nrows = parse_predictions(r.stdout)[1]
ok(r.returncode == 0 and len(nrows) == 2 and nrows[1][0] == '999999999',
   'a post whose image is missing is predicted (exit 0)')
ok('999999999' in r.stderr and 'image' in r.stderr, 'stderr mentions the missing image')
ok(len(nrows) == 2 and by_model['bert'] is not None and nrows[1][1:] == by_model['bert'][0][1:]
   and nrows[0][1:] == by_model['resnet'][0][1:],
   'it gets the text model\'s prediction; the post with an image gets resnet\'s')

# ---- 5. --fusion bert = softmax(W F_T + b) ---------------------------------
hb = read_safetensors(head_files(OUT)['bert'])
W = hb['classifier.weight'][1].astype(np.float64)
b = hb['classifier.bias'][1].astype(np.float64)
ok(hb['classifier.weight'][0] == 'F32' and W.shape[0] == 3 and b.shape == (3,),
   'bert head: classifier.weight (3,%d) and classifier.bias (3) F32' % W.shape[1])
worst = 0.0
n_checked = 0
for i, row in enumerate(val_rows[:5]):
    r = run(['embed', '--model', os.path.join(OUT, 'text'), '--text', row['text']])
    if r.returncode != 0:
        diag('embed: %s' % r.stderr.strip())
        worst = float('inf')
        break
    ft = np.array(json.loads(r.stdout.strip().splitlines()[0]), dtype=np.float64)
    z = W @ ft + b
    p = np.exp(z - z.max())
    p /= p.sum()
    got = np.array([float(x) for x in by_model['bert'][i][2:5]])
    worst = max(worst, float(np.abs(p - got).max()))
    n_checked += 1
ok(n_checked == 5 and worst <= 1e-4,
   'predict --fusion bert = softmax(W F_T + b) with F_T from mmsa embed, 5 posts: '
   'max abs diff %.2g <= 1e-4' % worst)

# ---- 6. eval -------------------------------------------------------------------
png = os.path.join(work, 'x.png')
r = run(['eval', '--model', OUT, '--posts', subset, '--images', images, '--png', png])
ok(r.returncode == 0, 'eval exits 0')
table = {}
for ln in r.stdout.splitlines():
    cells = [c.strip() for c in ln.split('|')]
    if len(cells) > 3 and cells[1].replace(' (default)', '') in MODELS:
        table[cells[1]] = cells[2]
names = [n.replace(' (default)', '') for n in table]
ok(sorted(names) == sorted(MODELS), 'eval prints a Markdown table of the eight models')
defaults = [n for n in table if n.endswith('(default)')]
ok(defaults == [default + ' (default)'], 'one marked (default): %s' % defaults)
truth = {v['id']: v['label'] for v in val_rows if v['label']}
mism = []
for name, cell in table.items():
    m = name.replace(' (default)', '')
    pr = by_model.get(m)
    if pr is None:
        mism.append(m)
        continue
    lab = [p for p in pr if p[0] in truth]
    a = 100.0 * sum(p[1] == truth[p[0]] for p in lab) / len(lab)
    if abs(float(cell) - round(a, 2)) > 0.006:
        mism.append('%s %s vs %.2f' % (m, cell, a))
ok(len(table) == 8 and not mism,
   'each accuracy equals that of predict --fusion <model> on the val posts'
   + ('' if not mism else ' (%s)' % '; '.join(mism)))
ok(os.path.isfile(png) and read_bytes(png)[:8] == b'\x89PNG\r\n\x1a\n', '--png writes a PNG file')

# ---- 7. tweet normalisation ----------------------------------------------------
def json_file(path):
    with open(path) as f:
        return json.load(f)


def tokenizer_config(model_dir):
    """text/tokenizer_config.json's tweet_normalization, or None without the file."""
    path = os.path.join(model_dir, 'text', 'tokenizer_config.json')
    return json_file(path).get('tweet_normalization') if os.path.isfile(path) else None


# the first run had no --text-normalization: it follows the vocabulary's directory
default_on = tokenizer_config(os.path.dirname(os.path.dirname(vocab))) is True
onoff = {True: 'on', False: 'off'}
ok('tweet normalisation %s' % onoff[default_on] in first_stderr,
   'without --text-normalization, train follows the vocabulary\'s directory (normalisation %s)'
   % onoff[default_on])
OUT3 = os.path.join(work, 'out3')
os.makedirs(os.path.join(OUT3, 'cache'))
shutil.copy(os.path.join(OUT, 'cache', 'mvsa-single-subset-features.safetensors'),
            os.path.join(OUT3, 'cache'))
other = 'none' if default_on else 'tweet'
r = train(OUT3, ['--text-normalization', other])
other_tokens = re.search(r'training texts \((\d+) tokens\)', r.stderr)
if not ok(r.returncode == 0 and 'tweet normalisation %s' % onoff[not default_on] in r.stderr,
          'train --text-normalization %s exits 0, saying so' % other):
    diag('\n'.join(lines(r.stderr)[-20:]))
tweet_out, plain_out = (OUT, OUT3) if default_on else (OUT3, OUT)
tweet_tokens, plain_tokens = (first_tokens, other_tokens) if default_on else (other_tokens, first_tokens)
ok(tokenizer_config(tweet_out) is True,
   'the model trained with it has text/tokenizer_config.json: "tweet_normalization": true')
ok(plain_tokens and tweet_tokens and int(tweet_tokens.group(1)) < int(plain_tokens.group(1)),
   'the encoder trained with it saw fewer tokens than without it (%s against %s)'
   % (tweet_tokens and tweet_tokens.group(1), plain_tokens and plain_tokens.group(1)))
ok(not os.path.exists(os.path.join(plain_out, 'text', 'tokenizer_config.json')),
   'a model trained without it has no tokenizer_config.json')
r = run(['predict', '--model', OUT3, '--posts', subset, '--images', images, '--split', 'val'])
ok(r.returncode == 0 and len(parse_predictions(r.stdout)[1]) == len(val_rows),
   'mmsa predict runs the model trained --text-normalization %s (%d val posts)' % (other, len(val_rows)))
first = 'tweet' if default_on else 'none'
r = train(OUT3, ['--only', 'text', '--text-normalization', first])
kind = 'text+tweet' if default_on else 'text'
ok(r.returncode != 0 and re.search(r'not a checkpoint of %s(?![+\w])' % re.escape(kind), r.stderr),
   'its checkpoint is refused by a run with --text-normalization %s (not a checkpoint of %s)'
   % (first, kind))

# ---- 8. bad options ------------------------------------------------------------
bad = os.path.join(work, 'bad')
r = run(['train', '--out', bad, '--text-hidden', '30', '--text-heads', '4'])
ok(r.returncode == 2, 'train --text-hidden 30 --text-heads 4 exits 2')
r = run(['train', '--out', bad, '--only', 'nosuch'])
ok(r.returncode == 2, 'train --only nosuch exits 2')
r = run(['train', '--out', bad, '--text-normalization', 'yes'])
ok(r.returncode == 2 and 'tweet or none' in r.stderr, 'train --text-normalization yes exits 2')

shutil.rmtree(work, ignore_errors=True)
done()
