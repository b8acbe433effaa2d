"""Request bodies, validated at the edge (Pydantic). Responses are plain JSON from the service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..models.factory import DEFAULT_MODEL

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SummaryRequest(_Strict):
    """The layer-group diagram of a backbone with the head for ``num_classes`` classes."""

    model: str = Field(DEFAULT_MODEL, min_length=1, max_length=100)
    num_classes: int = Field(4, ge=2, le=100_000)
    train_top: int | None = Field(None, ge=0, description="trainable: head + top K groups")
    train_groups: list[str] | None = Field(
        None, max_length=64, description="trainable: exactly these body groups + the head")
    hidden: int | None = Field(None, ge=1, le=65_536)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class TrainOptions(_Strict):
    """What the Train page sends; mapped one-to-one onto :class:`TrainConfig` fields."""

    dataset: str = Field(..., min_length=1, max_length=500,
                         description="dataset folder, relative to the data root")
    model: str = Field(DEFAULT_MODEL, min_length=1, max_length=100)
    weights: Literal["auto", "random"] = "auto"
    strategy: str = "feature-extraction"
    epochs: int | None = Field(None, ge=1, le=1000)
    probe_epochs: int | None = Field(None, ge=1, le=1000)
    train_top: int | None = Field(None, ge=0)
    train_groups: list[str] | None = Field(
        None, max_length=64, description="finetune/two-phase: exactly these body groups")
    unfreeze_every: int = Field(1, ge=1, le=1000)
    head_lr: float | None = Field(None, gt=0, le=10)
    body_lr: float | None = Field(None, ge=0, le=10)
    lr_decay: float | None = Field(None, gt=0, le=1)
    lrs: dict[str, float] | None = Field(None, description="explicit learning rate per group")
    patience: int = Field(5, ge=1, le=1000)
    batch_size: int = Field(32, ge=1, le=1024)
    per_class: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    augment: Literal["auto", "none", "standard", "strong"] = "auto"
    bn_policy: Literal["eval", "freeze", "train"] = "eval"
    class_weighting: Literal["none", "balanced"] = "none"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    hidden: int | None = Field(None, ge=1, le=65_536)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    schedule: Literal["cosine", "constant", "plateau"] = "cosine"

    @field_validator("lrs")
    @classmethod
    def _positive_lrs(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            bad = {k: v for k, v in value.items() if not 0 <= v <= 10}
            if bad:
                raise ValueError(f"learning rates must be between 0 and 10, got {bad}")
        return value


class PlanRequest(TrainOptions):
    """Same fields as a training request; the dataset is optional (only the plan is made)."""

    dataset: str = "."
    num_classes: int = Field(4, ge=2, le=100_000)


class SweepRequest(_Strict):
    kind: Literal["data-size", "freeze-depth", "strategy"]
    train: TrainOptions
    values: list[int | str] | None = Field(
        None, max_length=20,
        description="data-size: images per class; freeze-depth: K values; strategy: names")
    seeds: int = Field(1, ge=1, le=10, description="repeats per setting (for intervals)")
    scratch: bool = Field(False, description="data-size: also train from random weights")


class ExportRequest(_Strict):
    format: str = Field(..., min_length=1, max_length=40)


class Answer(_Strict):
    id: str = Field(..., min_length=1, max_length=64)
    answer: str = Field(..., max_length=200)
