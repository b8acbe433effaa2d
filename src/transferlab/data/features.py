"""Compute a frozen body's activations once and reuse them, at any layer-group boundary.

When everything below the first trainable group is frozen and inputs are not randomly
augmented, every epoch would push the same images through the same frozen layers. Running
them once and training the rest from the stored activations turns feature extraction into
training a linear layer on a small matrix (seconds, not minutes), and makes partial
fine-tuning and freeze-depth sweeps reuse work. Optionally K augmented views per image are
stored, so that a frozen-body phase can still train with augmentation.

The cache is keyed by backbone, preprocessing, the boundary, the *values* of the frozen
weights below it (so fine-tuned, randomly initialised or otherwise changed bodies never hit a
stale entry) and the files' contents. It lives on disk as ``.npy`` files written batch by
batch (never all activations in RAM), is read back by rows or memory-mapped, and is reused
across runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .datasets import ImageDataset
from .scan import Sample

CACHE_FORMAT = 2  # bump when the on-disk layout changes


def default_cache_dir() -> Path:
    base = os.environ.get("TRANSFERLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "transferlab"
    )
    return Path(base)


# -- content keys ----------------------------------------------------------------------------
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """Hash of a file's bytes, memoised per (path, size, mtime) within the process."""
    st = os.stat(path)
    memo = (os.fspath(path), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(memo)
    if digest is None:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = _DIGESTS[memo] = h.hexdigest()
    return digest


def samples_digest(samples: Sequence[Sample]) -> str:
    """One hash over the contents and labels of ``samples``, in order."""
    h = hashlib.blake2b(digest_size=16)
    for path, label in samples:
        try:
            h.update(f"{file_digest(path)}\0{label}\n".encode())
        except OSError:
            h.update(f"{path}\0missing\0{label}\n".encode())
    return h.hexdigest()


def module_digest(module: torch.nn.Module) -> str:
    """Hash of a module's parameter and buffer values (what its outputs depend on)."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}\0{t.dtype}\0{tuple(tensor.shape)}\n".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy().data)
    return h.hexdigest()


def feature_key(model_desc: dict, samples: Sequence[Sample], extra: str = "") -> str:
    """A content key: what network, which preprocessing, which exact files (by content)."""
    h = hashlib.sha256()
    h.update(json.dumps({k: model_desc[k] for k in ("model_name", "weights", "data_config")},
                        sort_keys=True).encode())
    h.update(extra.encode())
    h.update(samples_digest(samples).encode())
    return h.hexdigest()[:32]


# -- a disk array of rows ----------------------------------------------------------------------
class DiskArray:
    """A ``.npy`` file of equally shaped rows, read by row without mapping it all in.

    :meth:`rows` reads with ``pread`` into a fresh buffer (the OS page cache still keeps hot
    files in memory, but the process's resident size stays one batch); :meth:`memmap` maps
    the whole array for random access.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if fortran:
            raise ValueError(f"{self.path}: Fortran-ordered arrays are not supported")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, indices: Sequence[int] | np.ndarray, out: np.ndarray | None = None
             ) -> np.ndarray:
        """Rows ``indices`` (in that order), read into ``out`` (e.g. a view of pinned memory)
        or a new array; runs of consecutive rows are one read."""
        idx = np.asarray(indices, dtype=np.int64)
        shape = (len(idx), *self.shape[1:])
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif out.shape != shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a contiguous {self.dtype} array of shape {shape}")
        if not len(idx):
            return out
        if idx.min() < 0 or idx.max() >= self.shape[0]:
            raise IndexError(f"row index out of range 0..{self.shape[0] - 1} in {self.path}")
        buf = out.reshape(len(idx), -1).view(np.uint8)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(idx)], strict=True):
                view = memoryview(buf[start:stop].reshape(-1))
                offset = self.offset + int(idx[start]) * self.row_bytes
                while len(view):
                    got = os.preadv(fd, [view], offset)
                    if got <= 0:
                        raise OSError(f"{self.path} is shorter than its header says")
                    view, offset = view[got:], offset + got
        finally:
            os.close(fd)
        return out

    def memmap(self, mode: str = "r") -> np.ndarray:
        return np.load(self.path, mmap_mode=mode)


class DiskArrayWriter:
    """Append rows batch by batch to a ``.npy`` file whose length is known up front."""

    def __init__(self, path: str | os.PathLike[str], n: int, row_shape: tuple[int, ...],
                 dtype) -> None:
        self.path = Path(path)
        self.n, self.row_shape, self.dtype = n, tuple(row_shape), np.dtype(dtype)
        self.written = 0
        self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        np.lib.format.write_array_header_1_0(self._f, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (n, *self.row_shape)})

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"rows of shape {rows.shape[1:]} for an array of {self.row_shape}")
        if self.written + len(rows) > self.n:
            raise ValueError(f"more than {self.n} rows written to {self.path}")
        self._f.write(rows.data)
        self.written += len(rows)

    def close(self) -> DiskArray:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        if self.written != self.n:
            raise ValueError(f"{self.path}: {self.written} rows written, {self.n} declared")
        return DiskArray(self.path)

    def abort(self) -> None:
        self._f.close()


def publish_dir(tmp: Path, final: Path) -> Path:
    """Atomically move a finished cache folder into place (another process may have won)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a cache entry is readable like any file
    try:
        os.replace(tmp, final)
    except OSError:
        if not (final / "meta.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def new_tmp_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.{uuid.uuid4().hex[:6]}.",
                                 dir=final.parent))


# -- image sources ------------------------------------------------------------------------
class PilSource:
    """Images decoded and transformed per file with PIL (the reference pipeline).

    ``views(v)`` with ``v=None`` yields the evaluation transform; an integer ``v`` yields
    augmented view ``v`` with ``train_transform``, seeded by ``(seed, v)``.
    """

    tag = "pil"

    def __init__(self, samples: Sequence[Sample], transform: Callable, *,
                 train_transform: Callable | None = None, seed: int = 0,
                 num_workers: int = 0) -> None:
        self.samples = list(samples)
        self.transform, self.train_transform = transform, train_transform
        self.seed, self.num_workers = seed, num_workers

    def describe(self) -> str:
        return f"pil:{self.transform!r}:{self.train_transform!r}"

    def batches(self, view: int | None, batch_size: int,
                device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        tf = self.transform
        if view is not None:
            if self.train_transform is None:
                raise ValueError("augmented views need a train_transform")
            from ..utils import seed_everything

            seed_everything(self.seed * 7919 + view)
            tf = self.train_transform
        loader = DataLoader(ImageDataset(self.samples, tf), batch_size=batch_size,
                            shuffle=False, num_workers=self.num_workers,
                            pin_memory=device.type == "cuda")
        for x, y in loader:
            yield x.to(device, non_blocking=True), y


# -- cached activations ----------------------------------------------------------------------
@dataclass
class ActivationCache:
    """Activations of ``n`` samples at one boundary: ``views`` augmented copies or one plain."""

    path: Path
    array: DiskArray  # rows: view * n + sample (plain: sample); 4-D maps stored NHWC
    labels: torch.Tensor
    boundary: int
    views: int  # 0: the evaluation transform only
    hit: bool

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def spatial(self) -> bool:
        return len(self.array.shape) == 4

    def rows_as_tensor(self, rows: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rows).float()
        return x.permute(0, 3, 1, 2) if self.spatial else x  # NHWC -> channels_last NCHW

    def tensor(self) -> torch.Tensor:
        """All rows as one tensor backed by a copy-on-write memory map (no copy in RAM)."""
        x = torch.from_numpy(self.array.memmap("c"))
        if x.dtype != torch.float32:
            x = x.float()
        return x.permute(0, 3, 1, 2) if self.spatial else x

    def loader(self, *, batch_size: int, shuffle: bool, seed: int = 0) -> ActivationLoader:
        return ActivationLoader(self, batch_size=batch_size, shuffle=shuffle, seed=seed)


def epoch_order(n: int, generator: torch.Generator, shuffle: bool) -> torch.Tensor:
    """Sample order of one epoch, drawn exactly as a ``DataLoader(shuffle=True,
    generator=generator)`` draws it (a base seed first, then the permutation), so cached
    and decoded loaders visit batches in the same order as the per-image pipeline."""
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(n, generator=generator) if shuffle else torch.arange(n)


RESIDENT_BYTES = 64 * 2**20  # caches up to this size are read into memory once per loader


class ActivationLoader:
    """Batches ``(activations, labels)`` read from an :class:`ActivationCache`.

    Like a DataLoader it has ``generator`` (the Trainer reseeds it every epoch) and
    ``__len__``. With augmented views, each sample's view is drawn from that generator.
    """

    def __init__(self, cache: ActivationCache, *, batch_size: int, shuffle: bool,
                 seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.cache, self.batch_size, self.shuffle = cache, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self.pin = torch.cuda.is_available()
        # A small cache (pooled features: 1,500 x 1,280 floats are 7.7 MB) is read once and
        # kept in memory: a batch is then one index, not one pread per batch. Large caches
        # (spatial maps, many views) stay on disk and memory stays one batch.
        nbytes = int(np.prod(cache.array.shape, dtype=np.int64)) * cache.array.dtype.itemsize
        self.resident = (cache.array.rows(np.arange(len(cache.array)))
                         if nbytes <= RESIDENT_BYTES else None)

    def __len__(self) -> int:
        return math.ceil(self.cache.n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, views = self.cache.n, self.cache.views
        order = epoch_order(n, self.generator, self.shuffle)
        if views and self.shuffle:
            rows = torch.randint(views, (n,), generator=self.generator)[order] * n + order
        else:
            rows = order
        for start in range(0, n, self.batch_size):
            sel = rows[start:start + self.batch_size].numpy()
            x = self.cache.rows_as_tensor(self.resident[sel] if self.resident is not None
                                          else self.cache.array.rows(sel))
            y = self.cache.labels[order[start:start + self.batch_size]]
            if self.pin:
                x = x.pin_memory()
            yield x, y


def _storage_dtype(shape: torch.Size, dtype: str | None) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    # Spatial maps are large: half precision (11-bit mantissa) halves disk and reads.
    return np.dtype(np.float16 if len(shape) == 4 else np.float32)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def activation_key(model, source, *, boundary: int, lower: torch.nn.Module, views: int,
                   dtype: str | None, device: torch.device | None = None) -> str:
    desc = model.describe()
    precision = "bf16-autocast" if device is not None and device.type == "cuda" else "fp32"
    h = hashlib.sha256()
    h.update(json.dumps({"format": CACHE_FORMAT, "model": desc["model_name"],
                         "data_config": desc["data_config"], "boundary": boundary,
                         "views": views, "dtype": dtype, "precision": precision,
                         "source": source.describe(),
                         "seed": getattr(source, "seed", 0) if views else 0},
                        sort_keys=True, default=str).encode())
    h.update(module_digest(lower).encode())
    h.update(samples_digest(source.samples).encode())
    return h.hexdigest()[:32]


def _lower_part(model, boundary: int) -> torch.nn.Module:
    from ..models.staged import split_at

    return split_at(model, boundary)[0]


def cached_activations(
    model,
    source,
    *,
    boundary: int | None = None,
    views: int = 0,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    dtype: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ActivationCache:
    """Activations at ``boundary`` (default: the pooled features) for ``source``'s samples.

    ``source`` is a :class:`PilSource` or a :class:`transferlab.data.decoded.DecodedSource`.
    ``views=K`` stores K augmented views per image instead of the plain evaluation view.
    Extraction runs in eval mode without autograd, writes each batch straight to disk and
    publishes the finished entry atomically; a later call with the same key reads it back.
    """
    from ..models.staged import num_boundaries

    n_body = num_boundaries(model)
    boundary = n_body if boundary is None else boundary
    device = torch.device(device)
    if batch_size is None:
        # On a CPU the activations of 64 images at 224 px cost ~1 GB; Lite0 extracts as fast
        # at 16 as at 32 on 2 cores (11.7-12.1 vs 11.3-11.5 img/s), so 16 keeps memory low.
        batch_size = 128 if device.type == "cuda" else 16
    if views < 0:
        raise ValueError(f"views must be >= 0, got {views}")
    lower = _lower_part(model, boundary)
    key = activation_key(model, source, boundary=boundary, lower=lower, views=views,
                         dtype=dtype, device=device)
    final = Path(cache_dir or default_cache_dir()) / "activations" / key
    labels = torch.tensor([label for _, label in source.samples], dtype=torch.long)
    if (final / "meta.json").is_file():
        try:
            array = DiskArray(final / "x.npy")
            if len(array) == max(views, 1) * len(labels):
                return ActivationCache(final, array, labels, boundary, views, True)
        except (OSError, ValueError):
            pass
        shutil.rmtree(final, ignore_errors=True)  # torn or foreign: recompute
    was_training = model.training
    model.eval()
    model.to(device)
    if device.type == "cpu":
        lower.to(memory_format=torch.channels_last)
    tmp = new_tmp_dir(final)
    writer: DiskArrayWriter | None = None
    total, done = max(views, 1) * len(labels), 0
    try:
        with torch.inference_mode():
            for view in (range(views) if views else [None]):
                for x, _ in source.batches(view, batch_size, device):
                    if x.ndim == 4:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with _autocast(device):
                        z = lower(x)
                    z = z.float()
                    if z.ndim == 4:
                        z = z.permute(0, 2, 3, 1)  # NHWC: channels_last rows
                    if writer is None:
                        writer = DiskArrayWriter(tmp / "x.npy", total, tuple(z.shape[1:]),
                                                 _storage_dtype(z.shape, dtype))
                    writer.append(z.cpu().numpy())
                    done += len(z)
                    if progress:
                        progress(done, total)
        if writer is None:
            raise ValueError("no samples to extract activations from")
        array_path = writer.close()
        (tmp / "meta.json").write_text(json.dumps({
            "model": model.model_name, "boundary": boundary, "views": views,
            "n": len(labels), "shape": list(array_path.shape), "dtype": str(array_path.dtype),
            "source": source.describe()}, indent=1))
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        model.train(was_training)
    publish_dir(tmp, final)
    return ActivationCache(final, DiskArray(final / "x.npy"), labels, boundary, views, False)


# -- the original, penultimate-features API ------------------------------------------------
@torch.inference_mode()
def extract_features(
    forward: Callable[[torch.Tensor], torch.Tensor],
    samples: Sequence[Sample],
    transform: Callable,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``forward`` (a frozen body, in eval mode) over ``samples``; returns (X, y) on CPU.

    Holds every output in RAM: for large sets use :func:`cached_activations`.
    """
    loader = DataLoader(ImageDataset(list(samples), transform), batch_size=batch_size,
                        shuffle=False, num_workers=num_workers)
    feats, labels = [], []
    done = 0
    for x, y in loader:
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        feats.append(forward(x).float().cpu())
        labels.append(y)
        done += len(y)
        if progress:
            progress(done, len(samples))
    return torch.cat(feats), torch.cat(labels)


def cached_features(
    model,
    samples: Sequence[Sample],
    transform: Callable,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Pooled features of ``model.body`` for ``samples``, from the disk cache when possible.

    Returns (X, y, hit); X is memory-mapped from the cache file. ``cache_dir`` None or empty
    uses :func:`default_cache_dir`.
    """
    cache = cached_activations(model, PilSource(samples, transform), cache_dir=cache_dir,
                               batch_size=batch_size, device=device, progress=progress)
    return cache.tensor(), cache.labels, cache.hit


def feature_loader(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, shuffle: bool,
                   seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=generator)
