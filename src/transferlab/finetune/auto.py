"""``--strategy auto``: choose strategy, depth, epochs, learning rates and resolution from data.

The rule is a pure function of a few cheap dataset statistics (:class:`DatasetStats`), written
down in ``docs/AUTO.md``. It borrows from two published recipes:

* **BiT-HyperRule** (Kolesnikov et al., 2020): the schedule length and the input resolution
  depend only on the dataset's size and image size, not on a search. Small images (< 96 px)
  are trained at 128 px; small datasets get a fixed budget of steps, so fewer images mean more
  epochs.
* **LP-FT** (Kumar et al., 2022): fit a linear probe on frozen features first, then fine-tune;
  the trained head stops the random-head gradients from distorting the pretrained features.

And from the lab's own measurements (docs/AUTO.md, benchmarks/RESULTS.md), with BatchNorm on
its pretrained statistics while fine-tuning (the default policy): on food photos at 30 and 150
images per class and on grayscale defect tiles (26-762 per class), LP-FT was never better
than the linear probe by more than noise, at 10-100x the time. So the rule stays with the
linear probe on cached features (seconds) below ``DEEP_FROM`` images per class and fine-tunes
every group after the probe (LP-FT) from there on. Imbalanced classes get balanced loss
weights (magnetic_tile: balanced accuracy 58.5 % -> 75.9 %).
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import asdict, dataclass, field

from PIL import Image

from ..config import TrainConfig

# Thresholds of the rule (images per class, pixels); docs/AUTO.md explains each.
DEEP_FROM = 300  # linear probe below this many images per class, LP-FT from it
IMBALANCE = 3.0  # largest / smallest class at least this: balanced class weights
SMALL_IMAGE = 96  # median shorter side below this: train at LOW_RES (BiT-HyperRule)
LOW_RES = 128
GRAYSCALE_FAR = 0.5  # this fraction of grayscale images or more: said to be a far domain
FINETUNE_IMAGE_BUDGET = 3000  # images seen while fine-tuning (epochs = budget / train size)
FINETUNE_EPOCHS = (3, 10)  # ...clipped to this range
PROBE_EPOCHS = 50
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass(frozen=True)
class DatasetStats:
    """What the rule looks at; all cheap to get (file headers, not pixels)."""

    num_classes: int
    train_images: int
    images_per_class: float  # median over classes
    min_per_class: int
    max_per_class: int
    median_short_side: float  # pixels, over a sample of training images
    median_long_side: float
    grayscale_fraction: float  # of the sampled images

    @property
    def imbalance(self) -> float:
        return self.max_per_class / max(self.min_per_class, 1)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class AutoChoice:
    """The settings the rule picked, and why (written into the run's notes)."""

    strategy: str
    train_top: int | None  # None: every body group
    epochs: int
    probe_epochs: int | None
    head_lr: float
    body_lr: float | None
    image_size: int | None  # None: the backbone's default resolution
    class_weighting: str = "none"
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def dataset_stats(splits, *, sample: int = 256, seed: int = 0) -> DatasetStats:
    """Statistics of the training split of ``splits`` (a :class:`~transferlab.data.DatasetSplits`).

    Image sizes and colour modes come from the headers of at most ``sample`` images.
    """
    counts = [0] * len(splits.classes)
    for _, label in splits.train:
        counts[label] += 1
    paths = [p for p, _ in splits.train]
    if len(paths) > sample:
        paths = random.Random(seed).sample(paths, sample)
    shorts, longs, gray = [], [], 0
    for path in paths:
        try:
            with Image.open(path) as img:
                w, h = img.size
                mode = img.mode
        except OSError:
            continue  # validated at scan time; a file that broke since is not our concern here
        shorts.append(min(w, h))
        longs.append(max(w, h))
        gray += mode in _GRAY_MODES
    nonzero = [c for c in counts if c] or [0]
    return DatasetStats(
        num_classes=len(splits.classes),
        train_images=len(splits.train),
        images_per_class=float(statistics.median(nonzero)),
        min_per_class=min(nonzero),
        max_per_class=max(nonzero),
        median_short_side=float(statistics.median(shorts)) if shorts else 0.0,
        median_long_side=float(statistics.median(longs)) if longs else 0.0,
        grayscale_fraction=gray / len(shorts) if shorts else 0.0,
    )


def choose(stats: DatasetStats) -> AutoChoice:
    """The rule: dataset statistics in, training settings out (pure; see docs/AUTO.md)."""
    n = stats.images_per_class
    reasons = [
        f"{n:g} training images per class (median), {stats.num_classes} classes, "
        f"{stats.train_images} images; median image {stats.median_short_side:.0f} px "
        f"(shorter side); {stats.grayscale_fraction:.0%} grayscale"
    ]
    if 0 < stats.median_short_side < SMALL_IMAGE:
        image_size = LOW_RES
        reasons.append(f"images smaller than {SMALL_IMAGE} px: train at {LOW_RES} px "
                       "(BiT-HyperRule)")
    else:
        image_size = None
        reasons.append("images large enough for the backbone's own resolution")
    weighting = "none"
    if stats.imbalance >= IMBALANCE:
        weighting = "balanced"
        reasons.append(f"classes from {stats.min_per_class} to {stats.max_per_class} images "
                       f"({stats.imbalance:.1f}x): balanced class weights in the loss, so "
                       "rare classes count as much as common ones")
    if stats.grayscale_fraction >= GRAYSCALE_FAR:
        reasons.append(f"{stats.grayscale_fraction:.0%} grayscale: a domain far from ImageNet; "
                       "on such data (magnetic_tile) fine-tuning did not beat the probe either")

    if n < DEEP_FROM:
        reasons.append(f"fewer than {DEEP_FROM} images per class: a linear probe on frozen "
                       "features, trained to convergence in seconds (fine-tuning measured no "
                       "better at 30-150 images per class, at 10-100x the time)")
        return AutoChoice("feature-extraction", 0, PROBE_EPOCHS, None, 1e-3, None,
                          image_size, weighting, reasons)

    epochs = _finetune_epochs(stats.train_images)
    reasons.append(f"{DEEP_FROM}+ images per class: linear probe, then fine-tune every group "
                   f"at low LRs (LP-FT) for {epochs} epochs (~{FINETUNE_IMAGE_BUDGET} images "
                   f"seen, clipped to {FINETUNE_EPOCHS[0]}..{FINETUNE_EPOCHS[1]}: fewer images, "
                   "more epochs, as BiT-HyperRule's fixed step budget)")
    return AutoChoice("two-phase", None, epochs, PROBE_EPOCHS, 1e-4, 1e-5, image_size,
                      weighting, reasons)


def _finetune_epochs(train_images: int) -> int:
    lo, hi = FINETUNE_EPOCHS
    return max(lo, min(hi, math.ceil(FINETUNE_IMAGE_BUDGET / max(train_images, 1))))


def resolve_auto(cfg: TrainConfig, stats: DatasetStats,
                 group_names: list[str] | None = None) -> TrainConfig:
    """A copy of ``cfg`` with ``strategy="auto"`` replaced by the rule's choice.

    Settings the user gave explicitly (not ``None``) win over the rule. The choice and its
    reasons are appended to ``notes``, so config.json says what auto did and why.
    """
    if cfg.strategy != "auto":
        return cfg
    choice = choose(stats)
    doc = cfg.to_dict()
    doc["strategy"] = choice.strategy
    picked = {"train_top": choice.train_top, "epochs": choice.epochs,
              "probe_epochs": choice.probe_epochs, "head_lr": choice.head_lr,
              "body_lr": choice.body_lr, "image_size": choice.image_size}
    kept = []
    for key, value in picked.items():
        if doc.get(key) is None:
            doc[key] = value
        else:
            kept.append(f"{key}={doc[key]}")
    if doc["class_weighting"] == "none":  # the default: nothing to keep
        doc["class_weighting"] = choice.class_weighting
    else:
        kept.append(f"class_weighting={doc['class_weighting']}")
    if group_names is not None and doc["train_top"] is not None:
        doc["train_top"] = min(doc["train_top"], len(group_names) - 1)
    summary = (f"auto: {choice.strategy}, train_top={_depth(doc['train_top'])}, "
               f"epochs={doc['epochs']}, probe_epochs={doc['probe_epochs']}, "
               f"head_lr={doc['head_lr']:g}, body_lr={doc['body_lr']}, "
               f"image_size={doc['image_size'] or 'default'}, "
               f"class_weighting={doc['class_weighting']}")
    doc["notes"] = [*cfg.notes, summary, *(f"auto: {r}" for r in choice.reasons)]
    if kept:
        doc["notes"].append(f"auto: kept your settings {', '.join(kept)}")
    return TrainConfig.from_dict(doc)


def _depth(k: int | None) -> str:
    return "all" if k is None else str(k)
