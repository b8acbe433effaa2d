"""The resolved configuration of a run: one dataclass, saved into every run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .models.factory import DEFAULT_MODEL

STRATEGIES = ("feature-extraction", "finetune", "full", "two-phase", "gradual")


@dataclass
class TrainConfig:
    """Everything that determines a run. ``None`` means "the strategy's default"."""

    data: str
    model: str = DEFAULT_MODEL
    weights: str = "auto"
    strategy: str = "two-phase"
    # epochs of the main phase; two-phase also has ``probe_epochs`` for its linear probe
    epochs: int | None = None
    probe_epochs: int | None = None
    # finetune / two-phase: number of top body groups trained with the head (None: all)
    train_top: int | None = None
    unfreeze_every: int = 1  # gradual: one more group every N epochs
    head_lr: float | None = None
    body_lr: float | None = None
    lr_decay: float | None = None  # head_lr * decay**depth per group
    lrs: list[float] | None = None  # explicit per-group LRs (see group_learning_rates)
    weight_decay: float = 0.01
    schedule: str = "cosine"  # cosine | constant | plateau
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    l2sp: float = 0.0  # L2-SP strength; 0 disables
    grad_clip: float | None = None
    patience: int = 5
    min_delta: float = 0.0
    batch_size: int = 32
    augment: str = "auto"  # auto | none | standard | strong
    hidden: int | None = None
    dropout: float = 0.0
    bn_policy: str = "freeze"
    per_class: int | None = None
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    cache_features: bool = True
    cache_dir: str | None = None
    out: str = "runs"
    name: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        for name in ("epochs", "probe_epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.augment not in {"auto", "none", "standard", "strong"}:
            raise ValueError(f"augment must be auto, none, standard or strong, got {self.augment!r}")
        if self.schedule not in {"cosine", "constant", "plateau"}:
            raise ValueError(f"schedule must be cosine, constant or plateau, got {self.schedule!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def save(self, path: str | Path) -> None:
        from .training.checkpoint import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
