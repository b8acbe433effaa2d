"""The resolved configuration of a run: one dataclass, saved into every run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .catalog import DEFAULT_BN_POLICY, DEFAULT_MODEL, ENGINES

STRATEGIES = ("feature-extraction", "finetune", "full", "two-phase", "gradual", "auto")


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
    # finetune / two-phase: train exactly these body groups (+ head), e.g. ["stage2"]
    # (surgical fine-tuning); overrides train_top
    train_groups: list[str] | None = None
    unfreeze_every: int = 1  # gradual: one more group every N epochs
    head_lr: float | None = None
    body_lr: float | None = None
    lr_decay: float | None = None  # head_lr * decay**depth per group
    lrs: list[float] | None = None  # explicit per-group LRs (see group_learning_rates)
    weight_decay: float = 0.01
    schedule: str = "cosine"  # cosine | constant | plateau
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    class_weighting: str = "none"  # none | balanced (inverse class frequency in the loss)
    l2sp: float = 0.0  # L2-SP strength; 0 disables
    grad_clip: float | None = None
    patience: int = 5
    min_delta: float = 0.0
    batch_size: int = 32
    augment: str = "auto"  # auto | none | standard | strong
    hidden: int | None = None
    dropout: float = 0.0
    image_size: int | None = None  # square input resolution (None: the backbone's default)
    bn_policy: str = DEFAULT_BN_POLICY  # eval | freeze | train (transferlab.models.batchnorm)
    per_class: int | None = None
    val_fraction: float = 0.2
    # hold out this fraction of the training images as a test split (no test folder)
    test_fraction: float = 0.0
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    cache_features: bool = True
    cache_dir: str | None = None
    # what runs every frozen forward pass on the CPU (transferlab.models.engines)
    engine: str = "auto"  # auto | torch | torch-bf16 | onnxruntime
    # speed (see transferlab.training.fastpath): decode every image once into a uint8 store
    # and augment batches on the device; K augmented views per image in activation caches;
    # torch.compile the module that trains
    fast_data: bool = True
    feature_views: int = 0
    compile: bool = False
    out: str = "runs"
    name: str | None = None
    # optional experiment tracking (see transferlab.training.tracking); off unless asked
    tensorboard: bool = False
    mlflow: bool = False
    mlflow_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite in the run folder
    mlflow_experiment: str = "transferlab"
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
        if self.image_size is not None and self.image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {self.image_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"test_fraction (--holdout-test) must be in [0, 1), "
                             f"got {self.test_fraction}")
        if self.feature_views < 0:
            raise ValueError(f"feature_views must be >= 0, got {self.feature_views}")
        if self.augment not in {"auto", "none", "standard", "strong"}:
            raise ValueError(f"augment must be auto, none, standard or strong, got {self.augment!r}")
        if self.class_weighting not in {"none", "balanced"}:
            raise ValueError(f"class_weighting must be none or balanced, got {self.class_weighting!r}")
        from .models.batchnorm import check_bn_policy

        check_bn_policy(self.bn_policy)
        if self.engine not in ENGINES:
            raise ValueError("engine must be auto, torch, torch-bf16 or onnxruntime, got "
                             f"{self.engine!r}")
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
