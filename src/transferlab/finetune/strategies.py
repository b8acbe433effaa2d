"""Transfer-learning recipes as lists of phases.

A phase says which groups train, at which learning rates, for how many epochs, with which
augmentation. Recipes are a few lines each; :func:`transferlab.api.fine_tune` runs the phases
with the generic loop and listeners.

| strategy           | phases                                                                  |
|--------------------|-------------------------------------------------------------------------|
| feature-extraction | head only, LR 1e-3, on cached features (50 epochs, early stopping)      |
| finetune           | top K=2 groups + head, body 1e-5, head 1e-4, augmented (8 epochs)       |
| full               | everything, discriminative LRs head 1e-4 decaying x0.6 per group down   |
| two-phase (LP-FT)  | linear probe (as feature-extraction, 30 epochs), then all groups,       |
|                    | body 1e-5, head 1e-4, augmented (5 epochs)                              |
| gradual            | head first, one more group every N epochs, body 1e-5, head 1e-3         |
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TrainConfig
from .param_groups import group_learning_rates


@dataclass
class Phase:
    name: str
    train_top: int | None  # body groups trained with the head at the start (None: all)
    lrs: dict[str, float]
    epochs: int
    augment: str  # none | standard | strong
    unfreeze_every: int | None = None  # gradual unfreezing

    @property
    def head_only(self) -> bool:
        return self.train_top == 0 and self.unfreeze_every is None


def _augment(cfg: TrainConfig, head_only: bool) -> str:
    if cfg.augment != "auto":
        return cfg.augment
    return "none" if head_only else "standard"


def _lrs(cfg: TrainConfig, names: list[str], head_lr: float, body_lr: float | None,
         decay: float | None = None) -> dict[str, float]:
    return group_learning_rates(
        names,
        head_lr=cfg.head_lr if cfg.head_lr is not None else head_lr,
        body_lr=cfg.body_lr if cfg.body_lr is not None else body_lr,
        decay=cfg.lr_decay if cfg.lr_decay is not None else decay,
        lrs=cfg.lrs,
    )


def plan_phases(cfg: TrainConfig, group_names: list[str]) -> list[Phase]:
    """The phases of ``cfg.strategy`` for a model with these layer groups (last = head)."""
    s = cfg.strategy
    if s == "feature-extraction":
        return [Phase("probe", 0, _lrs(cfg, group_names, 1e-3, None), cfg.epochs or 50,
                      _augment(cfg, True))]
    if s == "finetune":
        k = 2 if cfg.train_top is None else cfg.train_top
        return [Phase("finetune", k, _lrs(cfg, group_names, 1e-4, 1e-5), cfg.epochs or 8,
                      _augment(cfg, k == 0))]
    if s == "full":
        return [Phase("full", None, _lrs(cfg, group_names, 1e-4, None, decay=0.6),
                      cfg.epochs or 8, _augment(cfg, False))]
    if s == "two-phase":
        probe_lrs = group_learning_rates(group_names, head_lr=1e-3)
        probe_aug = "none" if cfg.augment == "auto" else cfg.augment
        return [
            Phase("probe", 0, probe_lrs, cfg.probe_epochs or 30, probe_aug),
            Phase("finetune", cfg.train_top, _lrs(cfg, group_names, 1e-4, 1e-5),
                  cfg.epochs or 5, _augment(cfg, cfg.train_top == 0)),
        ]
    if s == "gradual":
        return [Phase("gradual", 0, _lrs(cfg, group_names, 1e-3, 1e-5), cfg.epochs or 8,
                      _augment(cfg, False), unfreeze_every=cfg.unfreeze_every)]
    raise ValueError(f"unknown strategy {s!r}")
