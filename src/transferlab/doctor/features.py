"""Pooled features of the pretrained backbone for every image, through the shared cache.

The doctor uses the very cache that feature-extraction training uses
(:func:`transferlab.data.features.cached_features`, one entry per split, keyed by backbone,
weights, preprocessing and file contents): once a folder's features exist, every check here
runs on a small matrix in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..data.scan import Sample


def split_features(
    splits: dict[str, Sequence[Sample]],
    *,
    model: str,
    weights: str = "auto",
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """``{split: L2-normalised float32 features}`` for each split's samples (cached on disk)."""
    from ..data.features import cached_features
    from ..data.transforms import build_transforms
    from ..models.factory import create_model

    n_classes = max(2, 1 + max((label for s in splits.values() for _, label in s), default=1))
    net = create_model(model, num_classes=n_classes, weights=weights)
    transform = build_transforms(net.data_config, train=False)
    out: dict[str, np.ndarray] = {}
    for name, samples in splits.items():
        if not samples:
            out[name] = np.zeros((0, 1), dtype=np.float32)
            continue
        report = (lambda done, total, _n=name: progress(_n, done, total)) if progress else None
        x, _, _ = cached_features(net, list(samples), transform, cache_dir=cache_dir or None,
                                  device=device, progress=report)
        out[name] = normalise(np.asarray(x, dtype=np.float32))
    return out


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity becomes a dot product)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)
