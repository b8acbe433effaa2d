"""``--strategy auto``: choose strategy, depth, epochs, learning rates and resolution from data.

The rule is a pure function of a few cheap dataset statistics (:class:`DatasetStats`), written
down in ``docs/AUTO.md``. It borrows from two published recipes:

* **BiT-HyperRule** (Kolesnikov et al., 2020): the schedule length and the input resolution
  depend only on the dataset's size and image size, not on a search. Small images (< 96 px)
  are trained at 128 px; small datasets get a fixed budget of steps, so fewer images mean more
  epochs.
* **LP-FT** (Kumar et al., 2022): fit a linear probe on frozen features first, then fine-tune;
  the trained head stops the random-head gradients from distorting the pretrained features.

And from the lab's own measurements (docs/AUTO.md): BiT can fine-tune every layer on a few
images because its ResNets use GroupNorm; the BatchNorm backbones here, fine-tuned with
batches of 32, move their normalisation statistics and lost 8-10 points against a linear
probe at 30 images per class. So on a domain near ImageNet the rule stays with the linear probe
on cached features (seconds) until there are ``DEEP_FROM`` images per class. A domain far from
ImageNet (grayscale industrial textures) is different: frozen ImageNet features fit it poorly
and input-level shifts live in the early layers (surgical fine-tuning), so every group is
fine-tuned there, after a probe.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import asdict, dataclass, field

from PIL import Image

from ..config import TrainConfig

# Thresholds of the rule (images per class, pixels); docs/AUTO.md explains each.
PROBE_ONLY_BELOW = 10  # fewer images per class than this: linear probe only, any domain
DEEP_FROM = 100  # near domain: linear probe below this many images per class, LP-FT from it
SMALL_IMAGE = 96  # median shorter side below this: train at LOW_RES (BiT-HyperRule)
LOW_RES = 128
GRAYSCALE_FAR = 0.5  # this fraction of grayscale images or more: a far domain
FINETUNE_IMAGE_BUDGET = 3000  # images seen while fine-tuning (epochs = budget / train size)
FINETUNE_EPOCHS = (3, 10)  # ...clipped to this range
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
    far = stats.grayscale_fraction >= GRAYSCALE_FAR
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
        reasons.append("images large enough: the backbone's own resolution")

    if n < PROBE_ONLY_BELOW or (n < DEEP_FROM and not far):
        why = (f"fewer than {PROBE_ONLY_BELOW} images per class" if n < PROBE_ONLY_BELOW else
               f"fewer than {DEEP_FROM} images per class on a domain near ImageNet")
        reasons.append(f"{why}: a linear probe on frozen features (fine-tuning a BatchNorm "
                       "body on this little data moves its statistics and loses accuracy)")
        return AutoChoice("feature-extraction", 0, 50, None, 1e-3, None, image_size, reasons)

    epochs = _finetune_epochs(stats.train_images)
    reasons.append(f"fine-tuning for {epochs} epochs (~{FINETUNE_IMAGE_BUDGET} images seen, "
                   f"clipped to {FINETUNE_EPOCHS[0]}..{FINETUNE_EPOCHS[1]}: fewer images, more "
                   "epochs, as BiT-HyperRule's fixed step budget)")
    if far:
        reasons.append(f"{stats.grayscale_fraction:.0%} grayscale images: a domain far from "
                       "ImageNet, so every group is fine-tuned (input-level shift) with a "
                       "higher body LR, after a linear probe (LP-FT)")
        return AutoChoice("two-phase", None, epochs, 30, 1e-4, 3e-5, image_size, reasons)
    reasons.append(f"{DEEP_FROM}+ images per class on a near domain: linear probe, then "
                   "fine-tune every group (LP-FT)")
    return AutoChoice("two-phase", None, epochs, 30, 1e-4, 1e-5, image_size, reasons)


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
    if group_names is not None and doc["train_top"] is not None:
        doc["train_top"] = min(doc["train_top"], len(group_names) - 1)
    summary = (f"auto: {choice.strategy}, train_top={_depth(doc['train_top'])}, "
               f"epochs={doc['epochs']}, probe_epochs={doc['probe_epochs']}, "
               f"head_lr={doc['head_lr']:g}, body_lr={doc['body_lr']}, "
               f"image_size={doc['image_size'] or 'default'}")
    doc["notes"] = [*cfg.notes, summary, *(f"auto: {r}" for r in choice.reasons)]
    if kept:
        doc["notes"].append(f"auto: kept your settings {', '.join(kept)}")
    return TrainConfig.from_dict(doc)


def _depth(k: int | None) -> str:
    return "all" if k is None else str(k)
