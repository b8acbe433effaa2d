"""Run the training step at the hardware's limit, on a GPU or a CPU.

* :func:`configure_backend`: cuDNN autotuning and TF32 matmuls on CUDA; on a CPU no more
  threads than the cores this process may use (containers often report the host's).
* :func:`maybe_compile`: optional ``torch.compile`` of the module that trains.
* :func:`forward_backward`: the Trainer's forward, loss and backward, split into
  micro-batches whose gradients add up to the full batch's. When CUDA runs out of memory it
  frees the cache, halves the micro-batch and redoes the same step: nothing was applied yet
  (no optimizer step, no scheduler step), so the run loses no state and keeps its effective
  batch size, learning rate and results (up to float rounding and the statistics of
  BatchNorm layers that train).
* :func:`find_batch_size`: the largest batch (up to a limit) whose step fits, by doubling
  and backing off on out-of-memory.

bf16 autocast, channels_last and fused AdamW are switched on by the caller
(:func:`transferlab.api.run_phase`) through the Trainer's own arguments.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable

import torch
from torch import nn

OOM_ERRORS: tuple[type[BaseException], ...] = (torch.cuda.OutOfMemoryError,)


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def configure_cpu_threads(threads: int | None = None) -> int:
    """Intra-op threads for CPU work; returns the count in force.

    ``threads`` (or ``$TRANSFERLAB_THREADS``) sets it. Otherwise the count is only ever
    lowered, to the CPUs this process may run on: torch starts with the machine's physical
    core count, which in a container or under an affinity mask can exceed the cores granted,
    and oversubscribed OpenMP threads spin against each other (on a loaded 2-core machine
    two threads ran a Lite0 forward pass slower than one). A count the user set lower is
    kept, so results stay bit-reproducible.
    """
    env = os.environ.get("TRANSFERLAB_THREADS")
    want = threads or (int(env) if env and env.isdigit() and int(env) > 0 else None)
    if want is None:
        want = min(torch.get_num_threads(), available_cpus())
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)
    return torch.get_num_threads()


@contextlib.contextmanager
def cpu_threads(threads: int | None):
    """Run the block with ``threads`` intra-op threads (None: unchanged), then restore.

    Training a head on cached features is a stream of tiny operations: a second thread
    adds nothing, and on a busy machine every parallel region waits for a descheduled
    thread (measured: a 35-epoch head fit under load ~10 on 2 cores took 29 s with 2
    threads). Always the same count for the same phase, so runs stay reproducible.
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def configure_backend(device: str | torch.device, *, cpu_threads: int | None = None) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        configure_cpu_threads(cpu_threads)


def maybe_compile(module: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile(module)`` when enabled; the compiled wrapper shares the parameters."""
    if not enabled:
        return module
    return torch.compile(module)


def free_device_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, OOM_ERRORS)


def _accumulate(trainer, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = y.shape[0]
    total = torch.zeros((), device=y.device)
    outputs = []
    for index, start in enumerate(range(0, n, chunk)):
        xs, ys = x[start:start + chunk], y[start:start + chunk]
        with trainer._autocast():
            logits = model(xs)
            loss = trainer.loss_fn(logits.float(), ys)
            if chunk < n:
                loss = loss * (ys.shape[0] / n)  # mean over the full batch, not the chunk
            if index == 0 and trainer.regularizer is not None:
                loss = loss + trainer.regularizer.penalty(trainer.owner)
        if not torch.isfinite(loss):
            trainer._raise_non_finite(loss, xs, ys)
        if index == 0:  # after the check, so diagnostics still see the previous step
            trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        total = total + loss.detach()
        outputs.append(logits.detach())
    return total, outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def forward_backward(trainer, model: nn.Module, x: torch.Tensor,
                     y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss (detached) and logits of one step, gradients left in ``.grad``.

    Uses ``trainer.micro_batch`` (None: the whole batch at once) and halves it for the rest
    of the fit whenever the device runs out of memory.
    """
    while True:
        n = y.shape[0]
        chunk = min(trainer.micro_batch or n, n)
        try:
            return _accumulate(trainer, model, x, y, chunk)
        except OOM_ERRORS:
            if chunk <= 1:
                raise
            trainer.optimizer.zero_grad(set_to_none=True)
            free_device_memory()
            trainer.micro_batch = max(1, chunk // 2)
            warnings.warn(
                f"out of device memory at {chunk} images per forward pass; retrying the step "
                f"as {math.ceil(n / trainer.micro_batch)} micro-batches of "
                f"{trainer.micro_batch} (same effective batch)", RuntimeWarning, stacklevel=2)


class ChunkedEval(nn.Module):
    """``module`` for evaluation, run in chunks that halve on out-of-memory.

    Evaluation has no backward, so splitting a batch changes nothing but peak memory. The
    chunk size lives on ``trainer.eval_micro_batch`` so that it persists across epochs.
    """

    def __init__(self, module: nn.Module, trainer) -> None:
        super().__init__()
        self.module = module
        object.__setattr__(self, "trainer", trainer)  # not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trainer = self.trainer
        while True:
            n = x.shape[0]
            chunk = min(getattr(trainer, "eval_micro_batch", None) or n, n)
            try:
                if chunk == n:
                    return self.module(x)
                return torch.cat([self.module(part) for part in x.split(chunk)])
            except OOM_ERRORS:
                if chunk <= 1:
                    raise
                free_device_memory()
                trainer.eval_micro_batch = max(1, chunk // 2)


def find_batch_size(step: Callable[[int], object], *, start: int = 32, limit: int = 1024,
                    minimum: int = 1) -> int:
    """Largest batch size in ``[minimum, limit]`` for which ``step(batch_size)`` fits.

    Doubles from ``start`` while the step succeeds, and halves on out-of-memory. ``step``
    should run a forward and backward pass at that size and leave no state behind (zero
    the gradients, do not step the optimizer).
    """
    if not 1 <= minimum <= start <= limit:
        raise ValueError(f"need 1 <= minimum <= start <= limit, got {minimum}, {start}, {limit}")
    size, best, ceiling = start, 0, limit + 1  # ceiling: the smallest size that failed
    while True:
        try:
            step(size)
        except OOM_ERRORS:
            free_device_memory()
            ceiling = size
            if best:  # the doubling overshot: the last size that fitted
                return best
            if size <= minimum:
                raise
            size = max(minimum, size // 2)
            continue
        best = size
        bigger = min(limit, size * 2)
        if bigger == size or bigger >= ceiling:
            return size
        size = bigger
