"""Exact duplicates (same bytes), near duplicates (same picture, resized or re-encoded) and
leaks (a training image that is also a validation or test image).

Exact copies are found by a content hash of the file. Near copies are pairs whose pretrained
features have a cosine similarity of at least :data:`NEAR_THRESHOLD` (0.90). Measured on food10
(2,000 photos, Lite0 features, docs/DOCTOR.md): the most similar pair of *different* photos is
at 0.86 (the same pie photographed twice, in train and in val) and the next at 0.85, while the
same picture cropped or re-saved is at 0.95-1.0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..catalog import NEAR_THRESHOLD  # noqa: F401 (re-exported)
from ..data.features import file_digest


@dataclass(frozen=True)
class Item:
    """One image of the dataset: its split, position in that split, and path."""

    split: str
    index: int
    path: str


def exact_groups(items: Sequence[Item]) -> list[list[Item]]:
    """Groups of two or more items whose files have identical bytes."""
    by_hash: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_hash[file_digest(item.path)].append(item)
    return [group for group in by_hash.values() if len(group) > 1]


def near_pairs(features: np.ndarray, threshold: float = NEAR_THRESHOLD,
               block: int = 1024) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, similarity)`` with ``i < j`` and cosine similarity >= ``threshold``.

    ``features`` must be L2-normalised rows; the similarity matrix is computed in blocks so
    memory stays ``block x n`` floats.
    """
    n = len(features)
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, n, block):
        sims = features[start:start + block] @ features.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                pairs.append((i, c, float(sims[r, c])))
    return pairs


def components(n: int, edges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected components of size >= 2 (union-find), each sorted."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    return [sorted(g) for g in groups.values() if len(g) > 1]
