"""Decode once: every image decoded and resized a single time into a uint8 store on disk.

A PIL pipeline decodes every JPEG again in every epoch; for a small network that decoding,
not the network, sets the speed. Here each image is decoded, made upright RGB
(:func:`transferlab.data.datasets.load_rgb`), resized so its shorter side is
``size / crop_pct`` (as the evaluation transform does) and centre-cropped to a square of that
side, then written as one row of a ``(N, S, S, 3)`` uint8 ``.npy`` file. The square keeps a
margin around the model's input crop, so a random resized crop still has room; the
evaluation centre crop of a row equals the PIL evaluation transform of the file.

Epochs then read rows (with ``pread``: resident memory stays one batch) and augment whole
batches on the device (:mod:`transferlab.data.gpu_augment`). On CUDA, JPEGs are decoded on
the GPU with ``torchvision.io.decode_jpeg(device="cuda")``; files it cannot take (other
formats, CMYK, EXIF-rotated) go through PIL.

Stores are keyed by the files' contents and labels, the square side, the interpolation and
the decoder, and are reused across runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .datasets import load_rgb
from .features import (
    DiskArray,
    DiskArrayWriter,
    default_cache_dir,
    epoch_order,
    new_tmp_dir,
    prefetch,
    publish_dir,
    samples_digest,
)
from .gpu_augment import DeviceAugment
from .scan import DataError, Sample

STORE_FORMAT = 1
# pil-draft: PIL with JPEG draft mode (decode at a reduced DCT scale that still covers the
# resize): 2.4x faster on food10's 512 px photos, pixels within ~1.3/255 on average; opt-in
# (decoder="pil-draft"): as the default it moved training on cached activations measurably
# away from the per-file PIL pipeline (tests/training/test_fastpath.py)
DECODERS = ("pil", "pil-draft", "torchvision")


def eval_resize(data_cfg: Mapping[str, Any]) -> int:
    """Shorter side after the evaluation resize: ``floor(size / crop_pct)``, as timm does."""
    size = int(data_cfg["input_size"][-1])
    crop_pct = float(data_cfg.get("crop_pct") or 1.0)
    return max(size, math.floor(size / crop_pct))


def stored_size(data_cfg: Mapping[str, Any]) -> int:
    """Side of the stored square: the evaluation resize, trimmed so that ``side - size`` is a
    multiple of 4. Then the model's centre crop of the square is exactly the centre crop of
    the resized image (torchvision rounds half offsets to even)."""
    size = int(data_cfg["input_size"][-1])
    return eval_resize(data_cfg) - (eval_resize(data_cfg) - size) % 4


def _resize_square(image, resize: int, side: int, interpolation: str) -> np.ndarray:
    from torchvision.transforms import CenterCrop, InterpolationMode, Resize

    mode = InterpolationMode(interpolation)
    return np.asarray(CenterCrop(side)(Resize(resize, interpolation=mode)(image)),
                      dtype=np.uint8)


def _pil_resize_square(path: str, resize: int, side: int, interpolation: str,
                       draft: bool = False) -> np.ndarray:
    try:
        image = load_rgb(path, draft=resize if draft else None)
    except Exception as exc:
        raise DataError(f"cannot decode image {path}: {exc}") from exc
    return _resize_square(image, resize, side, interpolation)


def _tensor_decodable(path: str) -> bool:
    """JPEG, RGB or grey, upright: what ``decode_jpeg`` decodes exactly like PIL."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.format != "JPEG" or img.mode not in {"RGB", "L"}:
                return False
            return img.getexif().get(0x0112, 1) == 1
    except Exception:
        return False


def _tensor_resize_square(paths: Sequence[str], resize: int, side: int, interpolation: str,
                          device: torch.device) -> np.ndarray:
    """Decode JPEGs with torchvision (on ``device``), resize and centre-crop, in one batch."""
    import torch.nn.functional as F

    from .gpu_augment import center_crop_offset

    with warnings.catch_warnings():  # torchvision 0.29 points to TorchCodec; still supported
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg, read_file

        data = [read_file(p) for p in paths]
        images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    out = []
    for img in images:
        h, w = img.shape[-2:]
        # torchvision's Resize(resize): the shorter side becomes ``resize``
        if h <= w:
            nh, nw = resize, int(resize * w / h)
        else:
            nh, nw = int(resize * h / w), resize
        resized = F.interpolate(img[None].float(), size=(nh, nw), mode=interpolation,
                                antialias=interpolation in {"bilinear", "bicubic"},
                                align_corners=False if interpolation != "nearest" else None)
        resized = resized.round_().clamp_(0, 255).to(torch.uint8)[0]
        top, left = center_crop_offset(nh, side), center_crop_offset(nw, side)
        out.append(resized[:, top:top + side, left:left + side].permute(1, 2, 0))
    return torch.stack(out).cpu().numpy()  # one copy back from the device


@dataclass
class DecodedStore:
    """``N`` images as uint8 ``(S, S, 3)`` rows on disk, in the order of ``samples``."""

    path: Path
    array: DiskArray
    samples: list[Sample]
    size: int  # S, the side of the stored square
    key: str
    hit: bool

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def rows(self, indices, out: np.ndarray | None = None) -> np.ndarray:
        return self.array.rows(indices, out)

    def memmap(self) -> np.ndarray:
        return self.array.memmap()


def store_key(samples: Sequence[Sample], resize: int, side: int, interpolation: str,
              decoder: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": STORE_FORMAT, "resize": resize, "side": side,
                         "interpolation": interpolation, "decoder": decoder},
                        sort_keys=True).encode())
    h.update(samples_digest(samples).encode())
    return h.hexdigest()[:32]


def resolve_decoder(decoder: str, device: torch.device) -> str:
    if decoder == "auto":
        return "torchvision" if device.type == "cuda" else "pil"
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be auto, pil, pil-draft or torchvision, got {decoder!r}")
    return decoder


def _store_place(samples, data_cfg, cache_dir, decoder: str):
    resize, side = eval_resize(data_cfg), stored_size(data_cfg)
    interpolation = str(data_cfg.get("interpolation") or "bilinear")
    key = store_key(samples, resize, side, interpolation, decoder)
    return resize, side, interpolation, key, Path(cache_dir or default_cache_dir()) / "decoded" / key


def find_store(samples: Sequence[Sample], data_cfg: Mapping[str, Any], *,
               cache_dir: str | Path | None = None, device: str | torch.device = "cpu",
               decoder: str = "auto") -> DecodedStore | None:
    """The decoded store of ``samples`` if it was built already, else None."""
    samples = list(samples)
    decoder = resolve_decoder(decoder, torch.device(device))
    _, side, _, key, final = _store_place(samples, data_cfg, cache_dir, decoder)
    if (final / "meta.json").is_file():
        try:
            array = DiskArray(final / "x.npy")
            if array.shape == (len(samples), side, side, 3):
                return DecodedStore(final, array, samples, side, key, True)
        except (OSError, ValueError):
            pass
        shutil.rmtree(final, ignore_errors=True)
    return None


def decoded_store(
    samples: Sequence[Sample],
    data_cfg: Mapping[str, Any],
    *,
    cache_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    decoder: str = "auto",
    threads: int | None = None,
    chunk: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> DecodedStore:
    """The decoded store of ``samples`` for a model's preprocessing ``data_cfg``, built once.

    ``decoder="auto"`` decodes JPEGs on the GPU when ``device`` is CUDA and with PIL
    otherwise (PIL decoding and resizing release the GIL, so ``threads`` work in parallel).
    """
    samples = list(samples)
    if not samples:
        raise DataError("no images to decode")
    device = torch.device(device)
    decoder = resolve_decoder(decoder, device)
    resize, side, interpolation, key, final = _store_place(samples, data_cfg, cache_dir,
                                                           decoder)
    found = find_store(samples, data_cfg, cache_dir=cache_dir, device=device, decoder=decoder)
    if found is not None:
        return found
    threads = threads or max(1, len(os.sched_getaffinity(0)))
    tmp = new_tmp_dir(final)
    writer = DiskArrayWriter(tmp / "x.npy", len(samples), (side, side, 3), np.uint8)
    paths = [str(p) for p, _ in samples]
    geometry = (resize, side, interpolation)
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for start in range(0, len(paths), chunk):
                part = paths[start:start + chunk]
                writer.append(_decode_chunk(part, geometry, decoder, device, pool))
                if progress:
                    progress(min(start + chunk, len(paths)), len(paths))
        writer.close()
        (tmp / "meta.json").write_text(json.dumps({
            "n": len(samples), "resize": resize, "side": side, "interpolation": interpolation,
            "decoder": decoder}, indent=1))
    except BaseException:
        writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_dir(tmp, final)
    return DecodedStore(final, DiskArray(final / "x.npy"), samples, side, key, False)


def _decode_chunk(paths: list[str], geometry: tuple[int, int, str], decoder: str,
                  device: torch.device, pool: ThreadPoolExecutor) -> np.ndarray:
    resize, side, interpolation = geometry
    out = np.empty((len(paths), side, side, 3), dtype=np.uint8)
    todo = list(range(len(paths)))
    if decoder == "torchvision" and interpolation in {"nearest", "bilinear", "bicubic"}:
        fast = [i for i, ok in zip(todo, pool.map(_tensor_decodable, paths), strict=True) if ok]
        if fast:
            try:
                out[fast] = _tensor_resize_square([paths[i] for i in fast], resize, side,
                                                  interpolation, device)
                done = set(fast)
                todo = [i for i in todo if i not in done]
            except RuntimeError:
                pass  # a file torchvision cannot decode: the whole chunk goes through PIL
    draft = decoder == "pil-draft"
    results = pool.map(lambda i: _pil_resize_square(paths[i], resize, side, interpolation,
                                                     draft), todo)
    for i, row in zip(todo, results, strict=True):
        out[i] = row
    return out


class DecodedSource:
    """Decoded-store rows as model input, for :func:`transferlab.data.features.cached_activations`.

    ``view=None``: the evaluation centre crop; ``view=v``: augmented view ``v`` with
    ``augment`` on the device, seeded by ``(seed, v)``.
    """

    tag = "decoded"

    def __init__(self, store: DecodedStore, data_cfg: Mapping[str, Any], *,
                 augment: str = "standard", seed: int = 0) -> None:
        self.store, self.samples, self.seed = store, store.samples, seed
        self.eval = DeviceAugment(data_cfg, "none")
        self.train = DeviceAugment(data_cfg, augment) if augment != "none" else None

    def describe(self) -> str:
        return (f"decoded:{self.store.key}:{self.eval.describe()}:"
                f"{self.train.describe() if self.train else ''}")

    def batches(self, view: int | None, batch_size: int,
                device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if view is None:
            fn, gen = self.eval, None
        else:
            if self.train is None:
                raise ValueError("augmented views need an augment preset other than 'none'")
            fn, gen = self.train, torch.Generator().manual_seed(self.seed * 7919 + view)
        loader = DecodedLoader(self.store, fn, batch_size=batch_size, shuffle=False,
                               device=device)
        loader.generator = gen or loader.generator
        yield from loader


class DecodedLoader:
    """Batches of augmented model input straight from a :class:`DecodedStore`.

    Rows are read in a background thread (pinned memory, non-blocking copies on CUDA) while
    the device works; shuffling and augmentation draw from ``generator`` in the main thread,
    so the Trainer's per-epoch reseeding makes every epoch reproducible.
    """

    def __init__(self, store: DecodedStore, transform: DeviceAugment, *, batch_size: int,
                 shuffle: bool, seed: int = 0, device: str | torch.device = "cpu",
                 prefetch: int = 2) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        self.store, self.transform = store, transform
        self.batch_size, self.shuffle = batch_size, shuffle
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.labels = store.labels
        self.prefetch = prefetch

    def __len__(self) -> int:
        return math.ceil(len(self.store) / self.batch_size)

    def _batches_of_rows(self, order: torch.Tensor) -> Iterator[torch.Tensor]:
        pin = self.device.type == "cuda"
        side = self.store.size
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size].numpy()
            if pin:  # read straight into page-locked memory: no extra copy before the DMA
                x = torch.empty((len(idx), side, side, 3), dtype=torch.uint8,
                                pin_memory=True)
                self.store.rows(idx, out=x.numpy())
                yield x
            else:
                yield torch.from_numpy(self.store.rows(idx))

    def _prefetched(self, order: torch.Tensor) -> Iterator[torch.Tensor]:
        if self.prefetch < 1:
            yield from self._batches_of_rows(order)
            return
        yield from prefetch(self._batches_of_rows(order), self.prefetch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.store)
        order = epoch_order(n, self.generator, self.shuffle)
        non_blocking = self.device.type == "cuda"
        for start, x in zip(range(0, n, self.batch_size), self._prefetched(order), strict=True):
            x = x.to(self.device, non_blocking=non_blocking)
            y = self.labels[order[start:start + self.batch_size]]
            yield self.transform(x, self.generator), y


class StreamingDecodedSource:
    """The evaluation view of a decoded store that is not built yet, built while it is read.

    Images are decoded and resized by a thread pool (PIL releases the GIL), appended to the
    store and handed to the caller batch by batch, so extraction does not wait for the whole
    store: :func:`transferlab.data.features.cached_activations` runs this generator in a
    background thread and the engine works on batch k while batch k+1 decodes. When the last
    batch is read the store is published (later phases and runs find it). ``describe()`` is a
    :class:`DecodedSource`'s, so activation cache keys are the same either way.
    """

    tag = "decoded"

    def __init__(self, samples: Sequence[Sample], data_cfg: Mapping[str, Any], *,
                 cache_dir: str | Path | None = None, device: str | torch.device = "cpu",
                 decoder: str = "auto", seed: int = 0) -> None:
        from .features import DecodeStats, decode_threads

        self.samples = list(samples)
        if not self.samples:
            raise DataError("no images to decode")
        self.seed, self.cache_dir = seed, cache_dir
        self.decoder = resolve_decoder(decoder, torch.device(device))
        if self.decoder == "torchvision":
            raise ValueError("streaming decode runs on the CPU decoders (pil, pil-draft)")
        (self.resize, self.side, self.interpolation, self.key,
         self.final) = _store_place(self.samples, data_cfg, cache_dir, self.decoder)
        self.eval = DeviceAugment(data_cfg, "none")
        self.threads = decode_threads()
        self.stats = DecodeStats(threads=self.threads)
        self.store: DecodedStore | None = None

    def describe(self) -> str:
        return f"decoded:{self.key}:{self.eval.describe()}:"

    def _decode(self, path: str) -> np.ndarray:
        import time

        t0 = time.perf_counter()
        row = _pil_resize_square(path, self.resize, self.side, self.interpolation,
                                 self.decoder == "pil-draft")
        self.stats.add(1, time.perf_counter() - t0)
        return row

    def batches(self, view: int | None, batch_size: int,
                device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if view is not None:
            raise ValueError("a streaming store gives the evaluation view only")
        tmp = new_tmp_dir(self.final)
        writer = DiskArrayWriter(tmp / "x.npy", len(self.samples), (self.side, self.side, 3),
                                 np.uint8)
        paths = [str(p) for p, _ in self.samples]
        labels = torch.tensor([label for _, label in self.samples], dtype=torch.long)
        published = False
        try:
            with ThreadPoolExecutor(max_workers=self.threads) as pool:
                for start in range(0, len(paths), batch_size):
                    rows = np.stack(list(pool.map(self._decode,
                                                  paths[start:start + batch_size])))
                    writer.append(rows)
                    x = torch.from_numpy(rows).to(device)
                    yield self.eval(x), labels[start:start + batch_size]
            writer.close()
            (tmp / "meta.json").write_text(json.dumps({
                "n": len(self.samples), "resize": self.resize, "side": self.side,
                "interpolation": self.interpolation, "decoder": self.decoder}, indent=1))
            publish_dir(tmp, self.final)
            published = True
            self.store = DecodedStore(self.final, DiskArray(self.final / "x.npy"),
                                      self.samples, self.side, self.key, False)
        finally:
            if not published:
                writer.abort()
                shutil.rmtree(tmp, ignore_errors=True)
