"""Outliers (far from every class) and images that sit in another class's cluster.

Both come from one quantity, the *class affinity* of an image: for each class, the mean
cosine similarity of the image's features to its ``k`` nearest training images of that class
(never itself). An image whose best affinity is low belongs to no class (a document scan
among food photos); an image whose affinity to another class clearly beats its own looks
like that class. Taking the ``k`` nearest members rather than the class mean keeps a
varied class (many kinds of salad) from looking far from its own members, and a few
outliers dropped into one class do not make each other look normal unless they are at
least ``k``.

The outlier threshold is relative to the data: an image is an outlier when its best affinity
is below the median best affinity of the training images by more than
:data:`OUTLIER_MADS` robust standard deviations (median absolute deviation x 1.4826), so it
adapts to backbones and domains whose similarities sit at different levels.
"""

from __future__ import annotations

import numpy as np

from ..catalog import OUTLIER_MADS  # noqa: F401 (re-exported)

K_NEIGHBOURS = 5
OTHER_CLASS_MARGIN = 0.05


def class_affinity(features: np.ndarray, train_features: np.ndarray, train_labels: np.ndarray,
                   n_classes: int, *, self_index: np.ndarray | None = None,
                   k: int = K_NEIGHBOURS) -> np.ndarray:
    """``(n, n_classes)``: mean similarity to the k nearest training images of each class.

    ``self_index[i]`` is row i's own position in ``train_features`` (or -1), excluded from
    its neighbours. Classes with fewer than ``k`` members use all of them.
    """
    sims = features @ train_features.T
    if self_index is not None:
        rows = np.flatnonzero(self_index >= 0)
        sims[rows, self_index[rows]] = -np.inf
    out = np.full((len(features), n_classes), -1.0, dtype=np.float32)
    for c in range(n_classes):
        cols = np.flatnonzero(train_labels == c)
        if not len(cols):
            continue
        s = sims[:, cols]
        kk = min(k, len(cols))
        top = -np.partition(-s, kk - 1, axis=1)[:, :kk]
        top = np.where(np.isfinite(top), top, np.nan)
        out[:, c] = np.nan_to_num(np.nanmean(top, axis=1), nan=-1.0)
    return out


def outlier_threshold(best_train: np.ndarray, mads: float = OUTLIER_MADS) -> float:
    """median - mads * 1.4826 * MAD of the training images' best affinities."""
    med = float(np.median(best_train))
    mad = float(np.median(np.abs(best_train - med))) * 1.4826
    return med - mads * max(mad, 1e-6)
