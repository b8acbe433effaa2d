"""Between the recipe and the loop: what a run will do, decided once for every face.

``fine_tune``, ``lr-find``, ``transferlab train --dry-run`` and the web's plan all ask here:

* :func:`resolve_strategy` — strategy ``auto`` replaced by its choice (the rule from the
  dataset's statistics, then the measured resolution unless an image size was given), so
  ``lr-find`` with auto measures at the image size ``train`` will use;
* :func:`architecture_group_names` — a backbone's layer groups from its architecture alone
  (no weights are read), cached;
* :func:`plan_document` — the resolved plan as plain data: phases, groups, learning rates,
  epochs and auto's reasons (``POST /api/train/plan`` returns it, ``--dry-run`` prints it);
* :func:`prepare` — a :class:`Session`: splits, auto resolved once, the seeded model at its
  image size, the phases and the device; ``fine_tune`` and ``lr-find`` start from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .config import TrainConfig


def resolve_device(device: str):
    """``auto``: CUDA when there is one, else the CPU."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@lru_cache(maxsize=32)
def _group_names(model: str) -> tuple[str, ...]:
    from .models.factory import create_model

    return tuple(create_model(model, num_classes=2, weights="random").group_names)


def architecture_group_names(model: str) -> list[str]:
    """The layer-group names of backbone ``model`` (last: the head), from its architecture:
    group names never depend on weights or on the number of classes."""
    return list(_group_names(model))


def resolve_strategy(cfg: TrainConfig, splits, *, device=None, measure: bool = True,
                     log: Callable[[str], None] | None = None) -> TrainConfig:
    """``cfg`` with strategy ``auto`` resolved (other strategies: ``cfg`` unchanged).

    The rule picks strategy, depth, epochs and rates from the dataset's statistics
    (:mod:`transferlab.finetune.auto`); then, unless you set ``image_size`` or ``measure`` is
    False (a plan made inside a web request), the resolution is measured on held-out
    training images (:mod:`transferlab.experiments.resolution`). The one place auto is decided.
    """
    if cfg.strategy != "auto":
        return cfg
    from .finetune.auto import dataset_stats, resolve_auto
    from .training import distributed

    yours = cfg.image_size
    cfg = resolve_auto(cfg, dataset_stats(splits), architecture_group_names(cfg.model))
    if not measure or yours is not None or distributed.world_size() > 1:
        return cfg
    from .experiments.resolution import pick_resolution

    if device is None:
        device = resolve_device(cfg.device)
    choice = pick_resolution(cfg, splits, device=device, log=log)
    if choice is not None:
        cfg.image_size = choice.image_size
        cfg.notes.append(f"auto: {choice.note()}")
    return cfg


def plan_document(cfg: TrainConfig, group_names: list[str], *,
                  resolved_from_auto: bool = False) -> dict:
    """The plan of ``cfg`` (already resolved) as plain data, the same for every face."""
    from .finetune.strategies import plan_phases

    phases = plan_phases(cfg, group_names)
    resolved = None
    if resolved_from_auto:
        resolved = {"strategy": cfg.strategy, "train_top": cfg.train_top, "epochs": cfg.epochs,
                    "image_size": cfg.image_size,
                    "notes": [n for n in cfg.notes if n.startswith("auto")]}
    return {"strategy": cfg.strategy, "groups": list(group_names), "resolved": resolved,
            "phases": [
                {"name": p.name, "train_top": p.train_top, "lrs": p.lrs, "epochs": p.epochs,
                 "augment": p.augment, "unfreeze_every": p.unfreeze_every,
                 "train_groups": p.train_groups, "head_only": p.head_only,
                 "cached_features": p.head_only and p.augment == "none" and cfg.cache_features}
                for p in phases]}


def dry_run(cfg: TrainConfig) -> dict:
    """What ``fine_tune(cfg)`` would do, without training: the dataset is scanned when
    strategy ``auto`` needs its statistics (the resolution is not measured: that trains)."""
    auto = cfg.strategy == "auto"
    if auto:
        from .data import load_splits

        splits = load_splits(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed,
                             per_class=cfg.per_class, test_fraction=cfg.test_fraction)
        cfg = resolve_strategy(cfg, splits, measure=False)
    return plan_document(cfg, architecture_group_names(cfg.model), resolved_from_auto=auto)


@dataclass
class Session:
    """Everything a run needs before its first phase, decided once."""

    cfg: TrainConfig  # resolved: strategy ``auto`` replaced by its choice
    splits: Any  # transferlab.data.Splits
    model: Any  # transferlab.models.TransferModel, seeded, at cfg.image_size
    phases: list  # transferlab.finetune.strategies.Phase
    device: Any  # torch.device
    fixes_applied: list = field(default_factory=list)  # what --apply-fixes changed


def check_data(cfg: TrainConfig, splits, log: Callable[[str], None] | None = None
               ) -> tuple[Any, list[dict]]:
    """Apply a reviewed action list (in memory), then warn about identical files within a
    split and shared between splits; the data itself is never changed here
    (``transferlab doctor`` shows and fixes). Returns the splits and what the list changed."""
    from .training import distributed

    changes: list[dict] = []
    if cfg.apply_fixes:
        from .doctor.fixes import apply_fixes, load_fixes

        splits, changes = apply_fixes(splits, load_fixes(cfg.apply_fixes),
                                      source=str(cfg.apply_fixes))
    if cfg.check_data and distributed.is_main():
        from .doctor import fast_checks

        message = fast_checks(splits).message(cfg.data)
        if message:
            splits.notes.append(message)
            if log is not None:
                log(message)
    return splits, changes


def prepare(cfg: TrainConfig, *, device=None, log: Callable[[str], None] | None = None
            ) -> Session:
    """Splits, auto resolved (:func:`resolve_strategy`), the model created after seeding (its
    new head depends on the seed only), its input size, and the strategy's phases."""
    from .data import load_splits
    from .finetune.strategies import plan_phases
    from .models.factory import create_model, require_offline_weights
    from .utils import seed_everything

    require_offline_weights(cfg.model, cfg.weights)  # before any work, as the web does

    if device is None:
        device = resolve_device(cfg.device)
    splits = load_splits(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed,
                         per_class=cfg.per_class, test_fraction=cfg.test_fraction)
    splits, fixes_applied = check_data(cfg, splits, log)
    cfg = resolve_strategy(cfg, splits, device=device, log=log)
    seed_everything(cfg.seed)
    model = create_model(cfg.model, classes=splits.classes, weights=cfg.weights,
                         hidden=cfg.hidden, dropout=cfg.dropout, bn_policy=cfg.bn_policy)
    if cfg.image_size:
        model.data_config["input_size"] = (3, cfg.image_size, cfg.image_size)
    return Session(cfg, splits, model, plan_phases(cfg, model.group_names), device,
                   fixes_applied)
