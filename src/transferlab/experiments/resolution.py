"""Choose the input resolution of ``--strategy auto`` on held-out training images.

The right resolution depends on the domain, not only on image size: with the offline
EfficientNet-Lite0 and a linear probe, food photos gain from every pixel (food10: 67.4 % at
96 px, 74.0 % at 128, 78.4 % at 160, 81.8 % at 224) while the grayscale defect tiles of
magnetic_tile lose from them (balanced accuracy 88.0 % at 96 px, 82.7 % at 128, 79.1 % at
160, 75.9 % at 224). No cheap statistic of the files predicts that, so ``auto`` measures it:
a linear probe is fitted at each candidate resolution on 80 % of the *training* images and
scored on the other 20 % (stratified, seeded); the validation set is never looked at. The
features come from the run's own activation cache, so the winner's training features are
reused by the run itself, and the lower resolutions cost little (96 px is 0.18x the pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import TrainConfig

CANDIDATES = (160, 128, 96)  # tried besides the backbone's own resolution
INNER_FRACTION = 0.2  # of each class's training images, held out to score the candidates
MIN_PER_CLASS = 5  # fewer training images per class (median): no search, the rule decides


@dataclass
class ResolutionChoice:
    size: int  # pixels (square)
    native: int  # the backbone's own resolution
    scores: list[dict] = field(default_factory=list)  # size, inner_val_loss, inner_val_acc

    @property
    def image_size(self) -> int | None:
        """For ``TrainConfig.image_size``: None when the backbone's own resolution won."""
        return None if self.size == self.native else self.size

    def note(self) -> str:
        table = ", ".join(f"{s['size']} px loss {s['inner_val_loss']:.3f} "
                          f"acc {s['inner_val_acc']:.3f}" for s in self.scores)
        return (f"resolution {self.size} px, chosen by a linear probe on {1 - INNER_FRACTION:.0%}"
                f" of the training images scored on the other {INNER_FRACTION:.0%}: {table}")


def candidate_sizes(native: int, candidates=None) -> list[int]:
    candidates = CANDIDATES if candidates is None else candidates
    return [native] + sorted({c for c in candidates if c < native}, reverse=True)


def _inner_split(splits, seed: int) -> tuple[list[int], list[int]] | None:
    from ..data.scan import stratified_split

    counts: dict[int, int] = {}
    for _, label in splits.train:
        counts[label] = counts.get(label, 0) + 1
    if sorted(counts.values())[len(counts) // 2] < MIN_PER_CLASS or min(counts.values()) < 2:
        return None
    inner_train, inner_val = stratified_split(splits.train, INNER_FRACTION, seed)
    index = {sample: i for i, sample in enumerate(splits.train)}
    return [index[s] for s in inner_train], [index[s] for s in inner_val]


def _probe_score(x: torch.Tensor, y: torch.Tensor, train: list[int], val: list[int],
                 cfg: TrainConfig, num_classes: int) -> tuple[float, float]:
    """Best inner-validation loss (and its accuracy) of the feature-extraction recipe."""
    from ..data.features import feature_loader
    from ..finetune.schedules import Scheduler
    from ..models.heads import make_head
    from ..training.callbacks import EarlyStopping
    from ..training.loop import Trainer, seed_everything

    seed_everything(cfg.seed)
    head = make_head(x.shape[1], num_classes, hidden=cfg.hidden, dropout=cfg.dropout)
    weight = None
    if cfg.class_weighting == "balanced":
        counts = torch.bincount(y[train], minlength=num_classes).float()
        weight = counts.sum() / (num_classes * counts.clamp(min=1))
    train_loader = feature_loader(x[train], y[train], batch_size=cfg.batch_size, shuffle=True,
                                  seed=cfg.seed)
    val_loader = feature_loader(x[val], y[val], batch_size=256, shuffle=False)
    epochs = 50
    optimizer = torch.optim.AdamW([{"params": list(head.parameters()), "base_lr": 1e-3}],
                                  lr=1e-3, weight_decay=cfg.weight_decay, fused=True)
    scheduler = Scheduler(optimizer, epochs * len(train_loader), kind="cosine")
    early = EarlyStopping(head, patience=cfg.patience, min_delta=cfg.min_delta)
    trainer = Trainer(head, optimizer, scheduler, train_loader=train_loader,
                      val_loader=val_loader, epochs=epochs,
                      loss_fn=nn.CrossEntropyLoss(weight=weight), callbacks=[early],
                      seed=cfg.seed)
    history = trainer.fit()
    best = min(history, key=lambda r: r.val_loss)
    return best.val_loss, best.val_acc


def pick_resolution(cfg: TrainConfig, splits, *, device: torch.device,
                    candidates=None, log=None) -> ResolutionChoice | None:
    """The candidate resolution whose probe has the lowest loss on held-out training images.

    None when the training set is too small to hold images out (the rule's choice stands).
    Ties within 1 % of the loss go to the larger resolution.
    """
    from ..data.features import cached_activations
    from ..models.factory import create_model
    from ..training.accel import cpu_threads
    from ..training.fastpath import activation_source

    inner = _inner_split(splits, cfg.seed)
    if inner is None:
        return None
    model = create_model(cfg.model, classes=splits.classes, weights=cfg.weights,
                         hidden=cfg.hidden, dropout=cfg.dropout, bn_policy=cfg.bn_policy)
    native = int(model.data_config["input_size"][-1])
    choice = ResolutionChoice(native, native)
    sizes = candidate_sizes(native, candidates)
    if log is not None:
        log(f"auto: choosing the resolution among {', '.join(map(str, sizes))} px with a "
            f"linear probe on held-out training images ({len(inner[1])} of "
            f"{len(splits.train)})")
    for size in sizes:
        model.data_config["input_size"] = (3, size, size)
        source = activation_source(model, cfg, splits, "train", "none", device, {})
        acts = cached_activations(model, source, cache_dir=cfg.cache_dir or None,
                                  device=device, engine=cfg.engine)
        x, y = acts.tensor(), acts.labels
        with cpu_threads(1 if device.type == "cpu" else None):
            loss, acc = _probe_score(x.float(), y, *inner, cfg, len(splits.classes))
        choice.scores.append({"size": size, "inner_val_loss": loss, "inner_val_acc": acc})
        if log is not None:
            log(f"auto: {size} px: held-out loss {loss:.3f}, accuracy {acc:.3f}"
                f"{' (features from the cache)' if acts.hit else ''}")
    finite = [s for s in choice.scores if math.isfinite(s["inner_val_loss"])]
    if finite:
        best = min(s["inner_val_loss"] for s in finite)
        choice.size = max(s["size"] for s in finite if s["inner_val_loss"] <= best * 1.01)
    return choice
