"""Class balance and per-class image size and colour statistics."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..data.scan import Sample
from ..finetune.auto import IMBALANCE


def image_stats(path: str) -> tuple[int, int, float, float, float, float]:
    """(width, height, mean R, G, B in 0..1, colourfulness) of one image.

    JPEGs are decoded at reduced scale (the means barely change); colourfulness is the mean
    absolute difference between channels (0 for a grey image).
    """
    with Image.open(path) as img:
        width, height = img.size
        if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation: turned 90 degrees
            width, height = height, width
        img.draft("RGB", (64, 64))  # JPEG: decode at 1/8 scale (colour means barely change)
        small = np.asarray(img.convert("RGB").resize((32, 32)), dtype=np.float32) / 255.0
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    colour = float((np.abs(r - g) + np.abs(g - b) + np.abs(r - b)).mean() / 3)
    return width, height, float(r.mean()), float(g.mean()), float(b.mean()), colour


def class_statistics(samples: Sequence[Sample], classes: list[str],
                     workers: int = 2) -> list[dict]:
    """Per class: count, median and range of width and height, mean colour, grey fraction."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(image_stats, [p for p, _ in samples]))
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    labels = np.asarray([label for _, label in samples])
    out = []
    for c, name in enumerate(classes):
        a = arr[labels == c]
        if not len(a):
            out.append({"class": name, "count": 0})
            continue
        out.append({
            "class": name, "count": int(len(a)),
            "width_median": int(np.median(a[:, 0])), "height_median": int(np.median(a[:, 1])),
            "width_range": [int(a[:, 0].min()), int(a[:, 0].max())],
            "height_range": [int(a[:, 1].min()), int(a[:, 1].max())],
            "mean_rgb": [round(float(v), 3) for v in a[:, 2:5].mean(axis=0)],
            "grey_fraction": round(float((a[:, 5] < 0.02).mean()), 3),
        })
    return out


def balance(train: Sequence[Sample], classes: list[str]) -> dict:
    """Training counts per class, the largest/smallest ratio and the weighting suggestion.

    The threshold is the one ``--strategy auto`` uses (:data:`transferlab.finetune.auto.
    IMBALANCE`), so the doctor and auto give the same advice.
    """
    counts = np.bincount([label for _, label in train], minlength=len(classes))
    ratio = float(counts.max() / max(counts.min(), 1))
    suggestion = None
    if ratio >= IMBALANCE:
        suggestion = (f"classes are imbalanced ({ratio:.1f}x between the largest and the "
                      "smallest): train with --class-weighting balanced and read balanced "
                      "accuracy, not only accuracy")
    return {"counts": {c: int(n) for c, n in zip(classes, counts, strict=True)},
            "imbalance": round(ratio, 2), "threshold": IMBALANCE, "suggestion": suggestion}
