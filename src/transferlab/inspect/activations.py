"""Tensor inspector: what each layer group makes of one image.

A forward hook on each group's modules records the group's output (the last of its modules to
run, as in :func:`transferlab.models.summary.output_shapes`): its shape, simple statistics
(mean, std, min, max, fraction of exact zeros — dead ReLUs show up here) and small uint8
thumbnails of the first channels, so a learner can see edges in the stem turn into textures
and parts in later stages.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..data.datasets import load_rgb
from ..data.transforms import build_transforms
from ..models.factory import TransferModel


@dataclass
class GroupActivation:
    """One layer group's output for one image (statistics over all of its values)."""

    name: str
    shape: list[int]  # without the batch dimension
    mean: float
    std: float
    min: float
    max: float
    zero_fraction: float
    # (channels, height, width) uint8 thumbnails, each channel scaled to its own range;
    # empty for outputs without a spatial layout (pooled features, logits, tokens).
    feature_maps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.uint8))

    def to_dict(self) -> dict:
        """JSON-friendly statistics (the thumbnails travel separately, e.g. as a PNG grid)."""
        return {"name": self.name, "shape": list(self.shape), "mean": self.mean,
                "std": self.std, "min": self.min, "max": self.max,
                "zero_fraction": self.zero_fraction,
                "feature_maps": int(self.feature_maps.shape[0])}


def _as_batch(model: TransferModel, image) -> torch.Tensor:
    """A (1, C, H, W) input from a path, a PIL image or an already preprocessed tensor."""
    if isinstance(image, torch.Tensor):
        x = image.detach().float()
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"expected a (C, H, W) or (1, C, H, W) tensor, got {tuple(x.shape)}")
        return x
    tf = build_transforms(model.data_config, train=False)
    if isinstance(image, (str, os.PathLike)):
        try:
            pil = load_rgb(image)
        except Exception as exc:
            raise ValueError(f"cannot read image {image}: {exc}") from exc
    else:
        pil = image  # a PIL image
    return tf(pil).unsqueeze(0)


def _thumbnails(t: torch.Tensor, max_maps: int, size: int) -> np.ndarray:
    """First ``max_maps`` channels of a (C, H, W) tensor as uint8, each scaled to 0..255."""
    maps = t[:max_maps].float()
    h, w = maps.shape[-2:]
    scale = min(1.0, size / max(h, w))
    if scale < 1.0:
        maps = F.interpolate(maps.unsqueeze(0), size=(max(1, round(h * scale)),
                                                      max(1, round(w * scale))),
                             mode="area").squeeze(0)
    flat = maps.flatten(1)
    lo = flat.min(1).values[:, None, None]
    hi = flat.max(1).values[:, None, None]
    span = (hi - lo).clamp_min(1e-12)
    scaled = ((maps - lo) / span * 255.0).round().clamp(0, 255)
    return scaled.to(torch.uint8).numpy()


@torch.inference_mode()
def inspect_activations(model: TransferModel, image, *, max_maps: int = 16,
                        thumb_size: int = 56) -> list[GroupActivation]:
    """Run ``image`` (path, PIL image or preprocessed tensor) through ``model``; one entry per
    layer group, in order (stem, stages, head)."""
    if max_maps < 0:
        raise ValueError(f"max_maps must be >= 0, got {max_maps}")
    if thumb_size < 1:
        raise ValueError(f"thumb_size must be >= 1, got {thumb_size}")
    x = _as_batch(model, image)
    modules = dict(model.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    hooks = []

    def hook(group: str):
        def fn(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                outputs[group] = output.detach()  # the last module of the group to run wins
        return fn

    for g in model.groups:
        for name in g.module_names:
            hooks.append(modules[name].register_forward_hook(hook(g.name)))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        model(x.to(device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)

    result = []
    for g in model.groups:
        out = outputs.get(g.name)
        if out is None:
            continue
        t = out[0].float().cpu()
        values = t.flatten()
        std = float(values.std()) if values.numel() > 1 else 0.0
        maps = (_thumbnails(t, max_maps, thumb_size) if t.ndim == 3 and max_maps
                else np.zeros((0, 0, 0), np.uint8))
        result.append(GroupActivation(
            name=g.name, shape=list(t.shape), mean=float(values.mean()), std=std,
            min=float(values.min()), max=float(values.max()),
            zero_fraction=float((values == 0).float().mean()), feature_maps=maps,
        ))
    return result


def feature_map_grid(maps: np.ndarray, *, columns: int | None = None, pad: int = 2,
                     min_cell: int = 24) -> bytes:
    """A PNG (bytes) showing (N, H, W) uint8 maps in a grid, small maps enlarged to
    ``min_cell`` pixels with nearest-neighbour so single activations stay visible."""
    from PIL import Image

    if maps.ndim != 3 or maps.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N, H, W) array of maps, got shape {maps.shape}")
    n, h, w = maps.shape
    factor = max(1, math.ceil(min_cell / max(h, w)))
    h, w = h * factor, w * factor
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        cell = np.repeat(np.repeat(maps[i].astype(np.uint8), factor, 0), factor, 1)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = cell
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    return buf.getvalue()
