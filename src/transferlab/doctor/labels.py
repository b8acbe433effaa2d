"""Likely label errors: out-of-sample probabilities from k-fold linear probes, ranked by
cleanlab's confident learning.

Each training image is scored by a logistic-regression probe (on the pretrained features)
fitted on the *other* folds only, so no image is judged by a probe that saw its label.
``cleanlab.filter.find_label_issues`` (Northcutt, Jiang, Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021) then estimates the joint distribution
of given and true labels and flags the images whose given label is least likely, ranked by
self-confidence (the probability the probe gives to the given label).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOLDS = 5
PROBE_C = 1.0
"""Inverse regularisation of the probes (scikit-learn's ``C``) on unit-length features.

On food10 with 5 % of labels flipped (1,200 images per fit), C=1 flagged 188 images and found
79 % of the flips; C=10 and C=100 flagged 229 and 300 for 81 % and 89 % (docs/DOCTOR.md)."""


@dataclass
class LabelIssue:
    index: int  # position in the training split
    given: int
    suggested: int
    quality: float  # probability of the given label, out of sample (low: suspicious)
    suggested_prob: float


def out_of_sample_probs(features: np.ndarray, labels: np.ndarray, *, folds: int = FOLDS,
                        seed: int = 0, n_classes: int | None = None) -> np.ndarray:
    """``(n, classes)`` probabilities, each row from a probe fitted without that row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    n_classes = n_classes or int(labels.max()) + 1
    counts = np.bincount(labels, minlength=n_classes)
    present = counts[counts > 0]
    k = int(min(folds, present.min()))
    if k < 2:
        raise ValueError("every class needs at least 2 training images for k-fold probes")
    probs = np.zeros((len(labels), n_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    # one BLAS thread: on a busy 2-core machine, threads fighting over the cores made a
    # probe 10x slower (5.4 s vs 0.5 s for 1,200 x 1,280 features, load average 13)
    with threadpool_limits(1):
        for fit_idx, held_idx in splitter.split(features, labels):
            probe = LogisticRegression(C=PROBE_C, max_iter=1000)
            probe.fit(features[fit_idx], labels[fit_idx])
            probs[np.ix_(held_idx, probe.classes_)] = probe.predict_proba(features[held_idx])
    return probs


def find_label_issues(features: np.ndarray, labels: np.ndarray, *, n_classes: int,
                      seed: int = 0, folds: int = FOLDS) -> tuple[list[LabelIssue], np.ndarray]:
    """Likely mislabelled training images (most suspicious first) and the probabilities."""
    from cleanlab.filter import find_label_issues as cl_find

    labels = np.asarray(labels, dtype=np.int64)
    probs = out_of_sample_probs(features, labels, folds=folds, seed=seed, n_classes=n_classes)
    # n_jobs=1: cleanlab would otherwise start a process pool, which a daemonic worker
    # (the web's job process) may not do; on 1,500 images one process takes milliseconds
    ranked = cl_find(labels, probs, filter_by="prune_by_noise_rate",
                     return_indices_ranked_by="self_confidence", n_jobs=1)
    issues = []
    for i in ranked.tolist():
        row = probs[i].copy()
        given = int(labels[i])
        row[given] = -1.0
        suggested = int(row.argmax())
        issues.append(LabelIssue(i, given, suggested, float(probs[i, given]),
                                 float(probs[i, suggested])))
    return issues, probs
