"""Transfer-learning recipes as lists of phases.

A phase says which groups train, at which learning rates, for how many epochs, with which
augmentation. Recipes are a few lines each; :func:`transferlab.api.fine_tune` runs the phases
with the generic loop and listeners.

| strategy           | phases                                                                  |
|--------------------|-------------------------------------------------------------------------|
| feature-extraction | head only, LR 1e-3, on cached features (50 epochs, early stopping)      |
| finetune           | top K=2 groups + head, body 1e-5, head 1e-4, augmented (8 epochs)       |
| full               | everything, discriminative LRs head 1e-4 decaying x0.6 per group down   |
| two-phase (LP-FT)  | linear probe (as feature-extraction: 50 epochs, early stopping), then   |
|                    | all groups, body 1e-5, head 1e-4, augmented (5 epochs)                  |
| gradual            | head first, one more group every N epochs, body 1e-5, head 1e-3         |
| auto               | one of the above with settings chosen from dataset statistics           |
|                    | (see :mod:`transferlab.finetune.auto` and docs/AUTO.md)                 |

``cfg.train_groups`` (finetune, two-phase) trains exactly those body groups plus the head
instead of the top K: surgical fine-tuning of, say, only ``stage1``.
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
    train_groups: list[str] | None = None  # exactly these body groups (+ head); beats train_top

    @property
    def head_only(self) -> bool:
        if self.train_groups is not None:
            return not self.train_groups and self.unfreeze_every is None
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


def _train_groups(cfg: TrainConfig, group_names: list[str]) -> list[str] | None:
    if cfg.train_groups is None:
        return None
    if cfg.strategy not in {"finetune", "two-phase"}:
        raise ValueError(f"train_groups applies to the finetune and two-phase strategies, "
                         f"not {cfg.strategy!r}")
    body = group_names[:-1]
    for name in cfg.train_groups:
        if name not in body:
            raise ValueError(f"train_groups: no body group {name!r}; groups are {', '.join(body)}")
    return list(cfg.train_groups)


def plan_phases(cfg: TrainConfig, group_names: list[str], stats=None) -> list[Phase]:
    """The phases of ``cfg.strategy`` for a model with these layer groups (last = head).

    ``strategy="auto"`` is first resolved from ``stats`` (a :class:`~.auto.DatasetStats`).
    """
    if cfg.strategy == "auto":
        from .auto import resolve_auto

        if stats is None:
            raise ValueError("strategy 'auto' needs dataset statistics: pass "
                             "stats=transferlab.finetune.auto.dataset_stats(splits)")
        cfg = resolve_auto(cfg, stats, group_names)
    s = cfg.strategy
    chosen = _train_groups(cfg, group_names)
    if s == "feature-extraction":
        return [Phase("probe", 0, _lrs(cfg, group_names, 1e-3, None), cfg.epochs or 50,
                      _augment(cfg, True))]
    if s == "finetune":
        k = 2 if cfg.train_top is None else cfg.train_top
        head_only = not chosen if chosen is not None else k == 0
        return [Phase("finetune", k, _lrs(cfg, group_names, 1e-4, 1e-5), cfg.epochs or 8,
                      _augment(cfg, head_only), train_groups=chosen)]
    if s == "full":
        return [Phase("full", None, _lrs(cfg, group_names, 1e-4, None, decay=0.6),
                      cfg.epochs or 8, _augment(cfg, False))]
    if s == "two-phase":
        probe_lrs = group_learning_rates(group_names, head_lr=1e-3)
        probe_aug = "none" if cfg.augment == "auto" else cfg.augment
        return [
            # LP-FT wants the head converged before the body moves: as long a probe as
            # feature extraction (a 30-epoch probe left magnetic_tile 5 points short)
            Phase("probe", 0, probe_lrs, cfg.probe_epochs or 50, probe_aug),
            Phase("finetune", cfg.train_top, _lrs(cfg, group_names, 1e-4, 1e-5),
                  cfg.epochs or 5,
                  _augment(cfg, not chosen if chosen is not None else cfg.train_top == 0),
                  train_groups=chosen),
        ]
    if s == "gradual":
        return [Phase("gradual", 0, _lrs(cfg, group_names, 1e-3, 1e-5), cfg.epochs or 8,
                      _augment(cfg, False), unfreeze_every=cfg.unfreeze_every)]
    raise ValueError(f"unknown strategy {s!r}")
