"""Reference 3-class metrics in plain numpy, for test/unit/test_metrics.c.

scikit-learn is not installed here, so this writes out the definitions
sklearn.metrics.precision_recall_fscore_support uses with labels=[0, 1, 2]
and zero_division=0 (a ratio with a zero denominator is 0), and
average='weighted' (weights = support) / average='macro' (plain mean).

Input (argv[1]): one case per pair of lines, the true labels then the
predicted labels, space-separated integers.  Output: one line per case with
the confusion matrix (9 numbers, rows true) then accuracy, precision[3],
recall[3], f1[3], weighted P/R/F1, macro P/R/F1, each as %.17g.
"""
import sys

import numpy as np


def div(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return np.where(y > 0, x / np.where(y > 0, y, 1), 0.0)


def metrics(t, p):
    K = 3
    cm = np.zeros((K, K), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    prec = div(tp, predicted)
    rec = div(tp, support)
    f1 = div(2 * prec * rec, prec + rec)
    w = support / support.sum()
    acc = (t == p).mean()
    vals = [acc, *prec, *rec, *f1, (w * prec).sum(), (w * rec).sum(), (w * f1).sum(),
            prec.mean(), rec.mean(), f1.mean()]
    return list(cm.ravel()), vals


lines = open(sys.argv[1]).read().split('\n')
for i in range(0, len(lines) - 1, 2):
    if not lines[i].strip():
        continue
    t = np.array([int(x) for x in lines[i].split()])
    p = np.array([int(x) for x in lines[i + 1].split()])
    cm, vals = metrics(t, p)
    print(' '.join(str(x) for x in cm) + ' ' + ' '.join('%.17g' % v for v in vals))
