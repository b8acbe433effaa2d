"""Image transforms derived from a model's own preprocessing config.

A pretrained model only transfers well when it sees inputs prepared the way it was trained:
same resolution, resize interpolation, crop fraction and normalisation (``resnet18`` uses
ImageNet mean 0.485/0.456/0.406, ``tf_efficientnet_lite0`` uses 0.5).  So nothing here is
hard-coded: every number comes from ``timm.data.resolve_data_config(model=model)``, and the
pipelines are timm's own (``timm.data.create_transform``) so they match timm's evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from timm.data import create_transform

__all__ = ["AUGMENTATIONS", "build_transforms"]

AUGMENTATIONS: dict[str, dict[str, Any]] = {
    # No augmentation: training images go through the evaluation transform.
    "none": {},
    # Mild: small datasets of centred objects lose the object with very small crops.
    "standard": {"scale": (0.35, 1.0), "hflip": 0.5, "color_jitter": 0.2},
    # timm's ImageNet recipe: aggressive crops plus RandAugment (which replaces colour jitter).
    "strong": {
        "scale": (0.08, 1.0),
        "hflip": 0.5,
        "color_jitter": 0.4,
        "auto_augment": "rand-m9-mstd0.5",
    },
}
"""Training augmentation presets, by name; values are ``timm.data.create_transform`` args."""

_REQUIRED_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct")


def build_transforms(
    data_cfg: Mapping[str, Any], *, train: bool, augment: str = "standard"
) -> Callable[[Any], Any]:
    """Return the PIL-image-to-normalised-tensor transform for a model's *data_cfg*.

    Evaluation: resize the shorter side to ``size / crop_pct`` with the model's
    interpolation, centre-crop to ``size`` (or the model's ``crop_mode``), ToTensor,
    Normalize(mean, std).  Training (unless ``augment="none"``): RandomResizedCrop to
    ``size`` plus the chosen :data:`AUGMENTATIONS` preset, then the same ToTensor/Normalize.
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augment '{augment}'; choose one of {', '.join(AUGMENTATIONS)}")
    missing = [key for key in _REQUIRED_KEYS if key not in data_cfg]
    if missing:
        raise ValueError(
            f"data_cfg lacks {', '.join(missing)}; build it with "
            "timm.data.resolve_data_config(model=model)"
        )
    common: dict[str, Any] = {
        "input_size": tuple(data_cfg["input_size"]),
        "interpolation": data_cfg["interpolation"],
        "mean": tuple(data_cfg["mean"]),
        "std": tuple(data_cfg["std"]),
    }
    if train and augment != "none":
        return create_transform(is_training=True, **common, **AUGMENTATIONS[augment])
    return create_transform(
        is_training=False,
        crop_pct=data_cfg["crop_pct"],
        crop_mode=data_cfg.get("crop_mode"),
        **common,
    )
