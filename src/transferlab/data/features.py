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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..utils import default_cache_dir, module_digest  # noqa: F401 (re-exported)
from .datasets import ImageDataset
from .scan import Sample

CACHE_FORMAT = 2  # bump when the on-disk layout changes


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
        self.stats = DecodeStats()

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
        if view is None and self.num_workers == 0:
            # The evaluation transform is deterministic: decode in threads (PIL releases the
            # GIL while decoding and resizing), in order.
            yield from threaded_batches(self.samples, tf, batch_size, device, self.stats)
            return
        loader = DataLoader(ImageDataset(self.samples, tf), batch_size=batch_size,
                            shuffle=False, num_workers=self.num_workers,
                            pin_memory=device.type == "cuda")
        for x, y in loader:
            yield x.to(device, non_blocking=True), y


@dataclass
class DecodeStats:
    """What decoding cost: images, the seconds decoder threads were busy, how many threads."""

    images: int = 0
    busy_s: float = 0.0
    threads: int = 1

    def add(self, images: int, seconds: float) -> None:
        self.images += images
        self.busy_s += seconds

    @property
    def per_thread_rate(self) -> float:
        return self.images / self.busy_s if self.busy_s > 0 else float("inf")


def decode_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def threaded_batches(samples: Sequence[Sample], transform: Callable, batch_size: int,
                     device: torch.device, stats: DecodeStats | None = None
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``transform(image)`` decoded by a thread pool, in order."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from .datasets import load_rgb

    def one(sample: Sample) -> torch.Tensor:
        t0 = time.perf_counter()
        out = transform(load_rgb(sample[0]))
        if stats is not None:
            stats.add(1, time.perf_counter() - t0)
        return out

    threads = decode_threads()
    if stats is not None:
        stats.threads = threads
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(samples), batch_size):
            part = samples[start:start + batch_size]
            x = torch.stack(list(pool.map(one, part)))
            y = torch.tensor([label for _, label in part], dtype=torch.long)
            yield x.to(device, non_blocking=True), y


def prefetch(batches: Iterator, depth: int = 2) -> Iterator:
    """Run ``batches`` in a background thread, ``depth`` items ahead of the consumer, so
    that producing the next batch (decoding) overlaps with consuming this one (the engine)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in batches:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


@dataclass
class ExtractionReport:
    """Rates of one extraction: which of decoding and the engine set the pace."""

    images: int
    wall_s: float
    engine: str
    engine_s: float
    decode: DecodeStats | None
    setup_s: float = 0.0  # building the engine (ONNX export on first use, the fp32 check)

    @property
    def engine_rate(self) -> float:
        return self.images / self.engine_s if self.engine_s > 0 else float("inf")

    @property
    def decode_rate(self) -> float | None:
        """Images per second all decoder threads together could deliver."""
        if self.decode is None or not self.decode.images:
            return None
        return self.decode.per_thread_rate * self.decode.threads

    @property
    def rate(self) -> float:
        return self.images / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def bottleneck(self) -> str:
        d = self.decode_rate
        return "engine" if d is None or self.engine_rate <= d else "decode"

    @property
    def bound_fraction(self) -> float:
        d = self.decode_rate
        bound = self.engine_rate if d is None else min(d, self.engine_rate)
        return self.rate / bound

    def line(self) -> str:
        d = self.decode_rate
        dec = ("decode n/a (rows read from the decoded store)" if d is None else
               f"decode {d:.0f} img/s ({self.decode.per_thread_rate:.0f}/thread x "
               f"{self.decode.threads})")
        setup = f" + {self.setup_s:.1f} s engine set-up" if self.setup_s >= 0.05 else ""
        return (f"extracted {self.images} images in {self.wall_s:.1f} s{setup} "
                f"({self.rate:.0f} img/s): "
                f"{dec}, engine {self.engine} {self.engine_rate:.0f} img/s; bottleneck "
                f"{self.bottleneck}, {self.bound_fraction:.0%} of the slower one's rate")

    def as_dict(self) -> dict:
        return {"images": self.images, "wall_s": round(self.wall_s, 3), "engine": self.engine,
                "engine_img_s": round(self.engine_rate, 1),
                "decode_img_s": None if self.decode_rate is None else round(self.decode_rate, 1),
                "decode_threads": self.decode.threads if self.decode else None,
                "img_s": round(self.rate, 1), "setup_s": round(self.setup_s, 3),
                "bottleneck": self.bottleneck,
                "bound_fraction": round(self.bound_fraction, 3)}


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
    engine: str = "torch"  # the engine tag the activations were computed with
    report: ExtractionReport | None = None  # rates, when extracted (not on a hit)
    notes: list[str] = field(default_factory=list)

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


def activation_key(model, source, *, boundary: int, lower: torch.nn.Module, views: int,
                   dtype: str | None, device: torch.device | None = None,
                   engine: str = "torch") -> str:
    """Content key of an activation cache entry; ``engine`` is the engine's name (outputs of
    different engines never share an entry)."""
    from ..models.engines import engine_tag

    desc = model.describe()
    precision = engine_tag(engine, device if device is not None else "cpu")
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


def _load_entry(final: Path, labels: torch.Tensor, boundary: int, views: int,
                engine: str) -> ActivationCache | None:
    if (final / "meta.json").is_file():
        try:
            array = DiskArray(final / "x.npy")
            if len(array) == max(views, 1) * len(labels):
                return ActivationCache(final, array, labels, boundary, views, True, engine)
        except (OSError, ValueError):
            pass
        shutil.rmtree(final, ignore_errors=True)  # torn or foreign: recompute
    return None


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
    engine: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> ActivationCache:
    """Activations at ``boundary`` (default: the pooled features) for ``source``'s samples.

    ``source`` is a :class:`PilSource` or a :class:`transferlab.data.decoded.DecodedSource`.
    ``views=K`` stores K augmented views per image instead of the plain evaluation view.
    ``engine`` runs the frozen part (:mod:`transferlab.models.engines`); it is part of the
    key. Decoding runs in background threads while the engine works; the returned cache's
    ``report`` says which of the two set the pace. Each batch is written straight to disk and
    the finished entry published atomically; a later call with the same key reads it back.
    """
    import time

    from ..models.engines import build_engine, resolve_engine
    from ..models.staged import num_boundaries

    n_body = num_boundaries(model)
    boundary = n_body if boundary is None else boundary
    device = torch.device(device)
    if batch_size is None:
        # On a CPU the activations of 64 images at 224 px cost ~1 GB; 16 keeps memory low
        # and the engines run as fast at 16 as at 32 on 2 cores.
        batch_size = 128 if device.type == "cuda" else 16
    if views < 0:
        raise ValueError(f"views must be >= 0, got {views}")
    name, _ = resolve_engine(engine, device)  # an unusable engine named explicitly fails here
    lower = _lower_part(model, boundary)
    key = activation_key(model, source, boundary=boundary, lower=lower, views=views,
                         dtype=dtype, device=device, engine=name)
    root = Path(cache_dir or default_cache_dir()) / "activations"
    labels = torch.tensor([label for _, label in source.samples], dtype=torch.long)
    hit = _load_entry(root / key, labels, boundary, views, name)
    if hit is not None:
        return hit
    was_training = model.training
    model.eval()
    model.to(device)
    writer: DiskArrayWriter | None = None
    run = None
    total, done = max(views, 1) * len(labels), 0
    engine_s = setup_s = 0.0
    stats = getattr(source, "stats", None)
    tmp: Path | None = None
    start = time.perf_counter()
    try:
        for view in (range(views) if views else [None]):
            for x, _ in prefetch(source.batches(view, batch_size, device)):
                t0 = time.perf_counter()
                if run is None:  # the engine is built and checked on the first real batch
                    run = build_engine(lower, x, engine=engine, device=device,
                                       cache_dir=cache_dir, log=log)
                    if run.name != name:  # fell back: the entry is the fallback's
                        name = run.name
                        key = activation_key(model, source, boundary=boundary, lower=lower,
                                             views=views, dtype=dtype, device=device,
                                             engine=name)
                    tmp = new_tmp_dir(root / key)
                    setup_s = time.perf_counter() - t0  # export + check: not the rate
                    t0 = time.perf_counter()
                z = run(x)
                if z.ndim == 4:
                    z = z.permute(0, 2, 3, 1)  # NHWC: channels_last rows
                engine_s += time.perf_counter() - t0
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
        report = ExtractionReport(done, time.perf_counter() - start - setup_s, name, engine_s,
                                  stats if stats is not None and stats.images else None,
                                  setup_s)
        (tmp / "meta.json").write_text(json.dumps({
            "model": model.model_name, "boundary": boundary, "views": views,
            "n": len(labels), "shape": list(array_path.shape), "dtype": str(array_path.dtype),
            "source": source.describe(), "engine": run.tag, "extraction": report.as_dict()},
            indent=1))
    except BaseException:
        if writer is not None:
            writer.abort()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        model.train(was_training)
    final = publish_dir(tmp, root / key)
    if log is not None:
        log(report.line())
    return ActivationCache(final, DiskArray(final / "x.npy"), labels, boundary, views, False,
                           name, report, list(run.notes))


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
    engine: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Pooled features of ``model.body`` for ``samples``, from the disk cache when possible.

    Returns (X, y, hit); X is memory-mapped from the cache file. ``cache_dir`` None or empty
    uses :func:`default_cache_dir`.
    """
    cache = cached_activations(model, PilSource(samples, transform), cache_dir=cache_dir,
                               batch_size=batch_size, device=device, engine=engine,
                               progress=progress)
    return cache.tensor(), cache.labels, cache.hit


def feature_loader(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, shuffle: bool,
                   seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                      generator=generator)
