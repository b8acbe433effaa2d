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

from collections.abc import Callable
from dataclasses import dataclass

from ..config import TrainConfig
from ..options import DEFAULT_STRATEGY, STRATEGIES, check_train_top
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


def _feature_extraction(cfg: TrainConfig, names: list[str], chosen) -> list[Phase]:
    return [Phase("probe", 0, _lrs(cfg, names, 1e-3, None), cfg.epochs or 50,
                  _augment(cfg, True))]


def _finetune(cfg: TrainConfig, names: list[str], chosen) -> list[Phase]:
    k = 2 if cfg.train_top is None else cfg.train_top
    head_only = not chosen if chosen is not None else k == 0
    return [Phase("finetune", k, _lrs(cfg, names, 1e-4, 1e-5), cfg.epochs or 8,
                  _augment(cfg, head_only), train_groups=chosen)]


def _full(cfg: TrainConfig, names: list[str], chosen) -> list[Phase]:
    return [Phase("full", None, _lrs(cfg, names, 1e-4, None, decay=0.6), cfg.epochs or 8,
                  _augment(cfg, False))]


def _two_phase(cfg: TrainConfig, names: list[str], chosen) -> list[Phase]:
    probe_lrs = group_learning_rates(names, head_lr=1e-3)
    probe_aug = "none" if cfg.augment == "auto" else cfg.augment
    return [
        # LP-FT wants the head converged before the body moves: as long a probe as
        # feature extraction (a 30-epoch probe left magnetic_tile 5 points short)
        Phase("probe", 0, probe_lrs, cfg.probe_epochs or 50, probe_aug),
        Phase("finetune", cfg.train_top, _lrs(cfg, names, 1e-4, 1e-5), cfg.epochs or 5,
              _augment(cfg, not chosen if chosen is not None else cfg.train_top == 0),
              train_groups=chosen),
    ]


def _gradual(cfg: TrainConfig, names: list[str], chosen) -> list[Phase]:
    return [Phase("gradual", 0, _lrs(cfg, names, 1e-3, 1e-5), cfg.epochs or 8,
                  _augment(cfg, False), unfreeze_every=cfg.unfreeze_every)]


@dataclass(frozen=True)
class Strategy:
    """One recipe: its plan function, what it does in a paragraph, the options it reads."""

    name: str
    description: str
    uses: tuple[str, ...]  # options of the table this recipe reads (besides the common ones)
    plan: Callable[[TrainConfig, list[str], list[str] | None], list[Phase]] | None = None

    @property
    def uses_train_top(self) -> bool:
        return "train_top" in self.uses


_LR = ("head_lr", "body_lr", "lr_decay", "lrs")
REGISTRY: dict[str, Strategy] = {s.name: s for s in (
    Strategy("feature-extraction", "Freeze the whole pretrained body and train only the new "
             "head, on features computed once and cached. Fast; the baseline for small data.",
             ("epochs", *_LR), _feature_extraction),
    Strategy("finetune", "Train the new head plus the top K layer groups (K from the model "
             "diagram, default 2), with lower learning rates for the body.",
             ("epochs", "train_top", "train_groups", *_LR), _finetune),
    Strategy("full", "Train every group, with discriminative learning rates that shrink "
             "towards the stem.", ("epochs", *_LR), _full),
    Strategy("two-phase", "First a linear probe (head only), then fine-tune the body from "
             "there (LP-FT): the random head cannot wreck the pretrained features.",
             ("epochs", "probe_epochs", "train_top", "train_groups", *_LR), _two_phase),
    Strategy("gradual", "Start with the head only and unfreeze one more group from the top "
             "every N epochs (ULMFiT-style gradual unfreezing).",
             ("epochs", "unfreeze_every", *_LR), _gradual),
    Strategy("auto", "Let the library pick a strategy, its epochs and the image size from "
             "the dataset's size and the backbone; the plan says what it chose and why.",
             ("epochs",), None),
)}
if tuple(REGISTRY) != STRATEGIES:  # the options table lists the same names, in this order
    raise RuntimeError(f"strategy registry {tuple(REGISTRY)} != options {STRATEGIES}")


def describe() -> list[dict]:
    """Every strategy for a front end: name, description, options it uses, the default."""
    return [{"name": s.name, "description": s.description, "uses": list(s.uses),
             "uses_train_top": s.uses_train_top, "default": s.name == DEFAULT_STRATEGY}
            for s in REGISTRY.values()]


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
    strategy = REGISTRY.get(cfg.strategy)
    if strategy is None or strategy.plan is None:
        raise ValueError(f"unknown strategy {cfg.strategy!r}")
    check_train_top(cfg.train_top, group_names)
    return strategy.plan(cfg, group_names, _train_groups(cfg, group_names))
