"""Training augmentation on whole batches of decoded images, on the GPU when there is one.

A per-image PIL pipeline (decode, random resized crop, flip, colour jitter, to tensor,
normalise) costs milliseconds of CPU per image, which starves a GPU. Here the images are
already decoded (see :mod:`transferlab.data.decoded`), and each augmentation is one batched
tensor operation: the crop, resize and flip of every image in the batch is a single
``grid_sample`` with one affine map per image.

The random parameters are drawn on the CPU from an explicit ``torch.Generator`` (the
loader's, which the Trainer reseeds every epoch), so a run is reproducible and gives the same
crops on a CPU and a GPU.

Presets follow :data:`transferlab.data.transforms.AUGMENTATIONS`: ``"none"`` (the evaluation
centre crop) and ``"standard"`` (random resized crop, horizontal flip, colour jitter) run
here; ``"strong"`` adds RandAugment, which only the PIL pipeline implements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from .transforms import AUGMENTATIONS

DEVICE_AUGMENTS = ("none", "standard")
_RATIO = (3 / 4, 4 / 3)
_GREY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def to_float_nchw(x: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC (as stored) -> float NCHW in [0, 1], channels_last, no copy of layout."""
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {x.dtype} "
                         f"{tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def center_crop_offset(full: int, size: int) -> int:
    """The offset torchvision's CenterCrop uses (so crops match the PIL pipeline exactly)."""
    return int(round((full - size) / 2.0))


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop of NHWC images (the store's layout), as torchvision's CenterCrop."""
    h, w = x.shape[1], x.shape[2]
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size}px from {h}x{w} images")
    top, left = center_crop_offset(h, size), center_crop_offset(w, size)
    return x[:, top:top + size, left:left + size]


def random_resized_crop_boxes(n: int, height: int, width: int, *,
                              scale: tuple[float, float] = (0.08, 1.0),
                              ratio: tuple[float, float] = _RATIO,
                              generator: torch.Generator | None = None,
                              attempts: int = 10) -> torch.Tensor:
    """``(n, 4)`` boxes ``(left, top, w, h)`` in pixels, drawn as torchvision's
    ``RandomResizedCrop.get_params`` draws them (first of 10 valid tries, else centre crop)."""
    area = height * width
    target = area * torch.empty(n, attempts).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(n, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]),
                                              generator=generator)
    aspect = torch.exp(log_r)
    w = torch.sqrt(target * aspect).round()
    h = torch.sqrt(target / aspect).round()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    u = torch.rand(n, 2, generator=generator)
    # fallback: the largest centred crop within the ratio bounds
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    rows = torch.arange(n)
    pick = first.clamp(min=0)
    bw = torch.where(first >= 0, w[rows, pick], torch.full((n,), float(fw)))
    bh = torch.where(first >= 0, h[rows, pick], torch.full((n,), float(fh)))
    left = torch.where(first >= 0, torch.floor(u[:, 0] * (width - bw + 1)),
                       torch.full((n,), float((width - fw) // 2)))
    top = torch.where(first >= 0, torch.floor(u[:, 1] * (height - bh + 1)),
                      torch.full((n,), float((height - fh) // 2)))
    return torch.stack([left, top, bw, bh], 1)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size: int | tuple[int, int],
                 flip: torch.Tensor | None = None, mode: str = "bilinear") -> torch.Tensor:
    """Crop ``boxes`` (left, top, w, h) out of float NCHW ``x``, resize to ``size``, and
    mirror the images where ``flip`` is true: one ``grid_sample`` for the whole batch."""
    n, _, height, width = x.shape
    out_h, out_w = (size, size) if isinstance(size, int) else size
    boxes = boxes.to(device=x.device, dtype=torch.float32)
    left, top, bw, bh = boxes.unbind(1)
    sx, sy = bw / width, bh / height
    cx = (2 * left + bw) / width - 1
    cy = (2 * top + bh) / height - 1
    if flip is not None:
        sx = torch.where(flip.to(x.device), -sx, sx)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta, [n, 3, out_h, out_w], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)


def jitter_matrices(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
                    saturation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image colour map ``y = A x + t`` equal to torchvision's brightness, contrast and
    saturation adjustments applied in that order (without their intermediate clamps)."""
    n = x.shape[0]
    w = torch.tensor(_GREY, device=x.device, dtype=torch.float32)
    b, c, s = (f.to(device=x.device, dtype=torch.float32) for f in
               (brightness, contrast, saturation))
    grey_mean = torch.einsum("nchw,c->n", x.float(), w) / (x.shape[2] * x.shape[3])
    eye = torch.eye(3, device=x.device)
    sat = s.view(n, 1, 1) * eye + (1 - s).view(n, 1, 1) * w.view(1, 1, 3)  # s I + (1-s) 1 w^T
    a = (c * b).view(n, 1, 1) * sat
    t = ((1 - c) * b * grey_mean).view(n, 1) * sat.sum(2)
    return a, t


def color_jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
                 saturation: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation with per-image factors on float NCHW in [0, 1]:
    one 3x3 colour matrix per image, then a single clamp."""
    a, t = jitter_matrices(x, brightness, contrast, saturation)
    a, t = a.to(x.dtype), t.to(x.dtype)
    out = (x[:, 0:1] * a[:, :, 0, None, None] + x[:, 1:2] * a[:, :, 1, None, None]
           + x[:, 2:3] * a[:, :, 2, None, None] + t[:, :, None, None])
    return out.clamp_(0, 1)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


class DeviceAugment:
    """uint8 NHWC batch on ``device`` -> normalised float NCHW (channels_last) model input.

    ``augment="none"``: the evaluation centre crop (identical to the PIL pipeline on a store
    made with the same resize). ``"standard"``: random resized crop, flip and colour jitter
    with the parameters of :data:`AUGMENTATIONS`.
    """

    def __init__(self, data_cfg: Mapping[str, Any], augment: str = "none") -> None:
        if augment not in DEVICE_AUGMENTS:
            raise ValueError(
                f"augment {augment!r} has no batched device implementation (RandAugment is "
                f"PIL-only); use one of {', '.join(DEVICE_AUGMENTS)} or the PIL pipeline"
            )
        self.augment = augment
        self.size = int(data_cfg["input_size"][-1])
        self.mean, self.std = tuple(data_cfg["mean"]), tuple(data_cfg["std"])
        preset = AUGMENTATIONS[augment]
        self.scale = tuple(preset.get("scale", (0.08, 1.0)))
        self.ratio = tuple(preset.get("ratio", _RATIO))
        self.hflip = float(preset.get("hflip", 0.0))
        jitter = preset.get("color_jitter", 0.0) or 0.0
        self.jitter = float(jitter if not isinstance(jitter, (tuple, list)) else jitter[0])

    def describe(self) -> str:
        return (f"device-augment:{self.augment}:{self.size}:{self.scale}:{self.ratio}:"
                f"{self.hflip}:{self.jitter}:{self.mean}:{self.std}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        if self.augment == "none":
            return normalize(to_float_nchw(center_crop(x, self.size)), self.mean, self.std)
        n, height, width = x.shape[0], x.shape[1], x.shape[2]
        boxes = random_resized_crop_boxes(n, height, width, scale=self.scale,
                                          ratio=self.ratio, generator=generator)
        flip = torch.rand(n, generator=generator) < self.hflip
        factors = torch.empty(3, n).uniform_(max(0.0, 1 - self.jitter), 1 + self.jitter,
                                             generator=generator)
        out = resized_crop(to_float_nchw(x), boxes, self.size, flip)
        if self.jitter > 0:
            out = color_jitter(out, factors[0], factors[1], factors[2])
        out = normalize(out, self.mean, self.std)
        return out.contiguous(memory_format=torch.channels_last)
