"""Data-parallel training over ``torch.distributed``, launched by PyTorch's own ``torchrun``.

``torchrun --nproc_per_node=K -m transferlab train DATA`` starts K processes that each run the
same program; this module is what makes them one job:

- :func:`init_from_env` joins the process group that torchrun describes in ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` (NCCL on CUDA, gloo on CPU)
  and picks each process's GPU from ``LOCAL_RANK``. Without those variables nothing happens
  and every helper below behaves as in a single process.
- :class:`ShardedSampler` splits each epoch's shuffled order so that, with a global batch of
  ``B`` and ``W`` processes of ``B / W`` images each, step *i* of all processes together sees
  exactly the images that step *i* of a single-process run sees. DDP averages the gradients,
  so the update is the single-process update up to floating-point summation order. Loaders
  that are not a ``DataLoader`` are split by :class:`SlicedLoader` (each rank keeps every
  ``W``-th row of each global batch).
- :func:`wrap_ddp` wraps only the parameters that train now; :class:`~.loop.Trainer` re-wraps
  when gradual unfreezing changes that set, so frozen parameters never reach DDP's reducer
  and ``find_unused_parameters`` is never needed.
- :func:`all_reduce_sums` makes epoch metrics agree on every rank; :func:`cached_features`
  and :func:`evaluate` split inference over the ranks and all-gather the results in order.
- Logging, progress bars, run-folder writes and checkpoints happen on rank 0 (:func:`is_main`);
  the others wait on :func:`barrier`.

BatchNorm layers that train normalise with each process's own batch statistics (as in plain
DDP); frozen BatchNorm layers (the default policy) are in eval mode and are unaffected.
"""

from __future__ import annotations

import atexit
import hashlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler

from .loop import Callback

__all__ = [
    "Barrier",
    "ShardedSampler",
    "SlicedLoader",
    "all_gather_rows",
    "all_reduce_sums",
    "barrier",
    "broadcast_object",
    "cached_features",
    "device_for_rank",
    "evaluate",
    "init_from_env",
    "is_distributed",
    "is_main",
    "local_rank",
    "rank",
    "shard_loader",
    "world_size",
    "wrap_ddp",
]


# -- the process group ---------------------------------------------------------------------
def launched_by_torchrun() -> bool:
    """True when the environment describes a multi-process job (torchrun sets these)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    """Rank 0, or the only process: the one that logs and writes the run folder."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def device_for_rank(device: torch.device) -> torch.device:
    """Each process of a multi-GPU job gets its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and is_distributed():
        if device.index is None:
            device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    return device


def init_from_env(device: torch.device | str = "cpu") -> bool:
    """Join the process group torchrun describes; returns True if this call created it.

    Does nothing (returns False) in a single process or when a group already exists (a caller
    that set one up itself, e.g. with ``torch.multiprocessing``). The group is destroyed at
    interpreter exit.
    """
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed; run without torchrun")
    device = torch.device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device} requested but CUDA is not available")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    atexit.register(_destroy)
    return True


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (e.g. the run folder name rank 0 created)."""
    if not is_distributed():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sums(values: Sequence[float]) -> list[float]:
    """Element-wise sum over ranks (float64, so counts and loss sums stay exact enough)."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def all_gather_rows(x: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``x`` (same trailing shape, any number of rows), in rank order, on CPU."""
    if not is_distributed():
        return [x]
    dev = _comm_device()
    n = torch.tensor([x.shape[0]], dtype=torch.int64, device=dev)
    counts = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(counts, n)
    counts_ = [int(c) for c in counts]
    most = max(counts_)
    padded = torch.zeros((most, *x.shape[1:]), dtype=x.dtype, device=dev)
    padded[: x.shape[0]] = x.to(dev)
    out = [torch.empty_like(padded) for _ in counts_]
    dist.all_gather(out, padded)
    return [o[:c].cpu() for o, c in zip(out, counts_, strict=True)]


def _interleave(parts: Sequence[torch.Tensor], total: int) -> torch.Tensor:
    """Inverse of taking ``rows[r::W]`` on rank r."""
    out = torch.empty((total, *parts[0].shape[1:]), dtype=parts[0].dtype)
    for r, part in enumerate(parts):
        out[r::len(parts)] = part
    return out


# -- sampling ------------------------------------------------------------------------------
class ShardedSampler(Sampler[int]):
    """This rank's share of each epoch: every ``world``-th index of the epoch order.

    ``shuffle=True``: the epoch order is the one a single-process
    ``DataLoader(shuffle=True, generator=g)`` visits after ``g.manual_seed(seed)`` — the
    loader draws one base seed from ``g`` before its :class:`RandomSampler` draws the
    permutation. The trainer calls :meth:`set_epoch` with the same per-epoch seed it gives a
    single-process loader's generator, so both runs see the same batches. Training pads the
    order to a multiple of ``world`` by repeating its start (equal step counts on all ranks);
    evaluation (``pad=False``) visits each index exactly once.
    """

    def __init__(self, n: int, *, rank: int, world: int, shuffle: bool, pad: bool,
                 seed: int = 0) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world size {world}")
        self.n, self.rank, self.world = n, rank, world
        self.shuffle, self.pad, self.seed = shuffle, pad, seed

    def set_epoch(self, seed: int) -> None:
        """Seed of the next epoch's order (the trainer passes its per-epoch seed)."""
        self.seed = seed

    def epoch_order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator()
        g.manual_seed(self.seed)
        torch.empty((), dtype=torch.int64).random_(generator=g)  # the DataLoader's base seed
        return list(iter(RandomSampler(range(self.n), generator=g)))

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_order()
        if self.pad and order:
            total = math.ceil(self.n / self.world) * self.world
            order = (order * math.ceil(total / len(order)))[:total]
        return iter(order[self.rank::self.world])

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.n / self.world)
        return len(range(self.rank, self.n, self.world))


def shard_loader(loader: DataLoader, *, train: bool) -> DataLoader:
    """The same loader over this rank's share, with ``batch_size / world`` per rank.

    The global batch (``--batch-size``) stays what the user chose, so learning rates and
    schedules mean the same at any world size; it must divide by the number of processes.
    Returns ``loader`` unchanged in a single process.
    """
    w = world_size()
    if w == 1:
        return loader
    if not isinstance(loader, DataLoader):
        return SlicedLoader(loader, rank=rank(), world=w, pad=train)
    batch = loader.batch_size or 1
    if train and batch % w:
        raise ValueError(f"batch size {batch} is the global batch and must be divisible by "
                         f"the {w} processes; use a multiple of {w}")
    per_rank = max(1, batch // w) if train else batch
    sampler = ShardedSampler(len(loader.dataset), rank=rank(), world=w,
                             shuffle=train and isinstance(loader.sampler, RandomSampler),
                             pad=train)
    return DataLoader(loader.dataset, batch_size=per_rank, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      persistent_workers=loader.persistent_workers,
                      generator=loader.generator)


class SlicedLoader:
    """Any batch loader split over ranks by slicing its batches: rank r keeps rows r::world.

    For loaders that are not a :class:`DataLoader` (cached activations, decoded stores with
    device augmentation). Every rank iterates the whole loader -- reseeded identically by the
    trainer, so all ranks see the same global batches, random augmentation included -- and
    computes on its slice: the compute is split, the (cheap) loading is repeated. Training
    pads a batch whose size does not divide by ``world`` with its own first rows, so every
    rank gets a non-empty slice; evaluation (``pad=False``) skips empty slices.
    """

    def __init__(self, loader, *, rank: int, world: int, pad: bool) -> None:
        self.loader, self.rank, self.world, self.pad = loader, rank, world, pad

    @property
    def generator(self):
        return getattr(self.loader, "generator", None)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            n = len(y)
            if self.pad and n % self.world:
                idx = torch.arange(math.ceil(n / self.world) * self.world) % n
                idx = idx[self.rank::self.world].to(y.device)
                yield x[idx], y[idx]
            elif self.rank < n:
                yield x[self.rank::self.world], y[self.rank::self.world]


# -- the model -----------------------------------------------------------------------------
def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel over the parameters that currently train.

    Frozen parameters (``requires_grad=False``) are left out by DDP itself; every trainable
    parameter is used in the forward pass, so ``find_unused_parameters`` stays off (no extra
    graph traversal per step). When the trainable set changes the caller wraps again.
    """
    from torch.nn.parallel import DistributedDataParallel

    if not any(p.requires_grad for p in module.parameters()):
        raise ValueError("nothing to train: every parameter is frozen")
    device_ids = [device.index] if device.type == "cuda" else None
    # DDP's default buffer sync keeps BatchNorm running statistics equal to rank 0's.
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=False)


class Barrier(Callback):
    """All ranks wait here after each epoch and phase, once rank 0 has written its files."""

    def on_epoch_end(self, trainer, record) -> None:
        barrier()

    def on_fit_end(self, trainer) -> None:
        barrier()


# -- inference split over ranks ------------------------------------------------------------
def _digest(module: nn.Module) -> str:
    """Hash of the weights: a body changed by fine-tuning must not hit an old cache entry."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}{t.dtype}{t.numel()}".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy().data)
    return h.hexdigest()


def cached_features(model, samples: Sequence, transform: Callable, *,
                    cache_dir: str | Path | None = None, batch_size: int = 64,
                    device: str | torch.device = "cpu", engine: str = "auto",
                    progress: Callable[[int, int], None] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """:func:`transferlab.data.features.cached_features`, with extraction split over ranks.

    Each rank embeds every ``world``-th image; the features are all-gathered back into sample
    order on every rank, and rank 0 writes the cache. A cache hit counts only when every rank
    sees the file (nodes may not share a disk).
    """
    from safetensors.torch import load_file, save_file

    from ..data.features import cached_features as single_process
    from ..data.features import default_cache_dir, extract_features, feature_key
    from ..utils import atomic_write

    if not is_distributed():
        return single_process(model, samples, transform, cache_dir=cache_dir,
                              batch_size=batch_size, device=device, engine=engine,
                              progress=progress)
    key = feature_key(model.describe(), samples, extra=_digest(model.body))
    path = Path(cache_dir or default_cache_dir()) / "features-ddp" / f"{key}.safetensors"
    data = None
    if path.is_file():
        try:
            data = load_file(str(path))
        except Exception:
            data = None
    if all_reduce_sums([0.0 if data is None else 1.0])[0] == world_size():
        return data["x"], data["y"], True
    was_training = model.training
    model.eval()
    body = model.body
    if torch.device(device).type == "cpu":
        body = body.to(memory_format=torch.channels_last)
    mine = list(samples)[rank()::world_size()]
    x, y = extract_features(body, mine, transform, batch_size=batch_size, device=device,
                            progress=progress if is_main() else None)
    model.train(was_training)
    if not mine:  # more ranks than samples: gather needs the feature width
        x = torch.zeros((0, model.num_features))
    x = _interleave(all_gather_rows(x.float()), len(samples))
    y = _interleave(all_gather_rows(y.long()), len(samples))
    if is_main():
        atomic_write(path, lambda tmp: save_file({"x": x.contiguous(), "y": y.contiguous()},
                                                  tmp))
    barrier()
    return x, y, False


def evaluate(model, samples: Sequence, transform: Callable | None = None, *,
             batch_size: int = 64, device: str | torch.device = "cpu",
             features: torch.Tensor | None = None, engine: str = "auto",
             log: Callable[[str], None] | None = None):
    """:func:`transferlab.inspect.interpret.evaluate_model` with the images split over ranks.

    Every rank returns the same :class:`Evaluation` over all ``samples``. With cached
    ``features`` only the head runs, so every rank simply evaluates everything.
    """
    from ..inspect.interpret import Evaluation, evaluate_model

    if not is_distributed() or features is not None:
        return evaluate_model(model, samples, transform, batch_size=batch_size, device=device,
                              features=features, engine=engine, log=log)
    samples = list(samples)
    mine = samples[rank()::world_size()]
    classes = list(model.classes or [str(i) for i in range(model.head_config.num_classes)])
    probs = (evaluate_model(model, mine, transform, batch_size=batch_size, device=device).probs
             if mine else torch.zeros((0, len(classes))))
    probs = _interleave(all_gather_rows(probs.float()), len(samples))
    labels = torch.tensor([label for _, label in samples])
    picked = probs[torch.arange(len(labels)), labels] if len(labels) else probs.new_zeros(0)
    loss = float(-picked.clamp_min(1e-45).log().mean()) if len(labels) else 0.0
    return Evaluation(classes=classes, paths=[p for p, _ in samples], labels=labels,
                      probs=probs, loss=loss,
                      temperature=float(getattr(model, "temperature", 1.0)))
