"""Turn (path, label) samples into tensors: RGB loading, a Dataset and a seeded DataLoader.

Pretrained ImageNet models expect 3-channel RGB in the orientation a person sees, but user
photos arrive as grayscale scans, palette PNGs with transparency, CMYK JPEGs from print
workflows, 16-bit microscope images and phone photos rotated only by an EXIF tag.
:func:`load_rgb` normalises all of them so the transforms see one kind of image.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from .scan import DataError, Sample, _open_guarded

__all__ = ["ImageDataset", "load_rgb", "make_loader", "to_rgb"]

# Phone photos often carry EXIF blocks that overrun the file; Pillow warns once per tag while
# the image itself decodes fine. The warning says nothing actionable, so keep it out of logs.
warnings.filterwarnings("ignore", message="Tag data larger than file", category=UserWarning)


_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def load_rgb(path: str | os.PathLike[str], *, draft: int | None = None) -> Image.Image:
    """Open *path* as an upright 8-bit RGB image (EXIF orientation applied).

    Images over ``PIL.Image.MAX_IMAGE_PIXELS`` raise ``DecompressionBombWarning`` before any
    pixel memory is allocated, as in :func:`~transferlab.data.scan.validate_image`.
    ``draft=S``: a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps both
    sides at least ``S`` (libjpeg's draft mode: several times faster on large photos; pixels
    differ slightly from a full decode followed by a resize).
    """
    with _open_guarded(Path(path)) as img:
        if draft and img.format == "JPEG":
            img.draft(img.mode, (draft, draft))
        try:
            upright = ImageOps.exif_transpose(img)
        except (SyntaxError, ValueError, KeyError, TypeError):
            # A malformed EXIF block should not make a decodable photo unusable.
            upright = img.copy()
        return to_rgb(upright)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB without the usual silent mistakes.

    Transparent pixels are composited on white (``convert("RGB")`` would expose whatever
    colour hides under alpha 0, often black), and 16-bit/float images are rescaled
    (``convert`` clips them, so most 16-bit pixels come out white).
    """
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_DEPTH_MODES:
        return _high_depth_to_rgb(img)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """Map 16-bit integer or float greyscale to 0..255, keeping the file's own scale.

    16-bit formats use 0..65535 by definition; 32-bit ``I`` and float ``F`` carry no range,
    so values already in 0..255 (or 0..1 for float) are kept and anything else is stretched
    to its own min..max.
    """
    values = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
        if img.mode == "F" and low >= 0.0 and high <= 1.0:
            scaled = values * 255.0
        elif low >= 0.0 and high <= 255.0:
            scaled = values
        elif low >= 0.0 and high <= 65535.0 and img.mode == "I":
            scaled = values / 257.0
        else:
            scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    grey = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    return grey.convert("RGB")


class ImageDataset(Dataset[tuple[Any, int]]):
    """Samples as ``(transform(image), label)``; a file that broke since scanning names itself.

    Without the path in the error, a failure surfaces deep inside a DataLoader worker with
    no hint of which of thousands of files is at fault.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[Image.Image], Any] | None,
    ) -> None:
        self.samples: list[Sample] = list(samples)
        self.transform = transform

    @property
    def labels(self) -> list[int]:
        """Labels in sample order (for class weights or balanced samplers)."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        try:
            image = load_rgb(path)
        except Exception as exc:  # the file changed or was never checked: name it
            raise DataError(f"cannot load image {path} (label {label}): {exc}") from exc
        if self.transform is not None:
            return self.transform(image), label
        return image, label


def make_loader(
    samples: Sequence[Sample],
    transform: Callable[[Image.Image], Any] | None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
) -> DataLoader[tuple[Any, int]]:
    """A DataLoader whose shuffling order (and worker RNG seeds) depend only on *seed*.

    With ``num_workers=0`` the random augmentations draw from the global torch RNG, so seed
    it (``torch.manual_seed``) for fully repeatable runs.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        ImageDataset(samples, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
