"""A small training loop that emits named events; everything else is a listener.

The loop knows nothing of freezing, early stopping, checkpoints or progress bars: those are
callbacks (see :mod:`transferlab.training.callbacks`). Each epoch reseeds the RNGs from
``(seed, epoch)``, so a run resumed from an epoch checkpoint replays exactly what an
uninterrupted run would have done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..finetune.param_groups import current_lrs
from ..utils import seed_everything  # noqa: F401 (re-export: the loop's public API)
from .accel import ChunkedEval, forward_backward

EVENTS = ("fit_start", "epoch_start", "batch_end", "epoch_end", "fit_end")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the group whose gradients exploded."""


@dataclass
class EpochRecord:
    phase: str
    epoch: int  # 1-based within the phase
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lrs: dict[str, float]
    images_per_s: float
    seconds: float
    trainable_groups: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class Callback:
    """Listener base class: override the events you need. ``state_dict`` is saved on resume."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, batch: int, num_batches: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def group_grad_norms(model: nn.Module, groups: Sequence | None) -> dict[str, float]:
    """L2 norm of the gradients of each layer group (for diagnostics and the inspector)."""
    if not groups:
        return {}
    params = dict(model.named_parameters())
    out = {}
    for g in groups:
        sq = 0.0
        for name in g.param_names:
            p = params.get(name)
            if p is not None and p.grad is not None:
                sq += float(p.grad.detach().float().pow(2).sum())
        out[g.name] = math.sqrt(sq)
    return out


def group_weight_sizes(model: nn.Module, groups: Sequence | None) -> dict[str, float]:
    """Largest absolute weight of each layer group (inf or nan when one is not finite)."""
    if not groups:
        return {}
    params = dict(model.named_parameters())
    out = {}
    for g in groups:
        size = 0.0
        for name in g.param_names:
            p = params.get(name)
            if p is not None and p.numel():
                value = float(p.detach().abs().max())
                if not math.isfinite(value):
                    size = value
                    break
                size = max(size, value)
        out[g.name] = size
    return out


class Trainer:
    """Runs ``epochs`` epochs of ``model`` over ``train_loader``, validating after each."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler,
        *,
        train_loader: Iterable,
        val_loader: Iterable,
        epochs: int,
        loss_fn: Callable | None = None,
        device: str | torch.device = "cpu",
        callbacks: Sequence[Callback] = (),
        regularizer=None,
        seed: int = 0,
        phase: str = "train",
        groups: Sequence | None = None,
        grad_clip: float | None = None,
        channels_last: bool = False,
        amp_dtype: torch.dtype | None = None,
        owner: nn.Module | None = None,
        distributed: bool = False,
    ) -> None:
        self.model = model
        # Data-parallel over the process group (torchrun): the forward/backward pass goes
        # through DistributedDataParallel, re-wrapped whenever the trainable set changes, and
        # epoch metrics are summed over ranks (see transferlab.training.distributed).
        self.distributed = distributed
        self._ddp: tuple[tuple[str, ...], nn.Module] | None = None
        # The full TransferModel when ``model`` is only part of it (a head on cached features).
        self.owner = owner if owner is not None else model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.epochs = epochs
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.device = torch.device(device)
        self.callbacks = list(callbacks)
        self.regularizer = regularizer
        self.seed = seed
        self.phase = phase
        self.groups = groups  # layer groups named in the model's parameter names
        self.grad_clip = grad_clip
        self.channels_last = channels_last
        self.amp_dtype = amp_dtype
        # Images per forward pass (None: the whole batch); halved on CUDA out-of-memory.
        self.micro_batch: int | None = None
        self.epoch = 0  # completed epochs
        self.step = 0
        self.history: list[EpochRecord] = []
        self.should_stop = False
        self.stop_reason = ""

    # -- events ----------------------------------------------------------------------------
    def emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, f"on_{event}")(self, *args)

    # -- state for resume ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "phase": self.phase,
            "epoch": self.epoch,
            "step": self.step,
            "history": [r.as_dict() for r in self.history],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.history = [EpochRecord(**r) for r in state["history"]]
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        saved = state.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in saved:
                cb.load_state_dict(saved[type(cb).__name__])

    # -- the loop --------------------------------------------------------------------------
    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        non_blocking = self.device.type == "cuda"
        x = x.to(self.device, non_blocking=non_blocking)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=non_blocking)

    def _autocast(self):
        if self.amp_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def fit(self) -> list[EpochRecord]:
        self.emit("fit_start")
        while self.epoch < self.epochs and not self.should_stop:
            seed_everything(self.seed * 1009 + self.epoch)
            generator = getattr(self.train_loader, "generator", None)
            if generator is not None:
                generator.manual_seed(self.seed * 1009 + self.epoch)
            sampler = getattr(self.train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):  # a sharded sampler: same order as one process
                sampler.set_epoch(self.seed * 1009 + self.epoch)
            self.emit("epoch_start")
            record = self._run_epoch()
            self.epoch += 1
            self.history.append(record)
            if self.scheduler is not None and hasattr(self.scheduler, "epoch_end"):
                self.scheduler.epoch_end(record.val_loss)
            self.emit("epoch_end", record)
        self.emit("fit_end")
        return self.history

    def _train_module(self) -> nn.Module:
        """``self.model``, or its DDP wrapper over exactly the parameters that train now."""
        if not self.distributed:
            return self.model
        from .distributed import wrap_ddp

        key = tuple(n for n, p in self.model.named_parameters() if p.requires_grad)
        if self._ddp is None or self._ddp[0] != key:
            self._ddp = None  # drop the old reducer's hooks before registering new ones
            self._ddp = (key, wrap_ddp(self.model, self.device))
        return self._ddp[1]

    def _run_epoch(self) -> EpochRecord:
        from ..finetune.freeze import trainable_groups

        model = self._train_module()
        model.train()
        lrs = current_lrs(self.optimizer)
        start = time.perf_counter()
        total_loss, correct, seen = 0.0, 0, 0
        num_batches = len(self.train_loader) if hasattr(self.train_loader, "__len__") else -1
        for i, (x, y) in enumerate(self.train_loader):
            x, y = self._to_device(x, y)
            loss, logits = forward_backward(self, model, x, y)  # backs off on CUDA OOM
            if self.grad_clip:
                nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], self.grad_clip
                )
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.step += 1
            batch_loss = float(loss.detach())
            total_loss += batch_loss * y.shape[0]
            correct += int((logits.argmax(1) == y).sum())
            seen += y.shape[0]
            self.emit("batch_end", i + 1, num_batches, batch_loss)
        train_seconds = time.perf_counter() - start
        val_sums = evaluate_sums(ChunkedEval(self.model, self), self.val_loader, self.loss_fn,
                                 self._to_device, self._autocast)  # backs off on CUDA OOM
        if self.distributed:
            from .distributed import all_reduce_sums

            total_loss, correct, seen, *val_sums = all_reduce_sums(
                [total_loss, correct, seen, *val_sums])
        val_loss, val_acc = val_sums[0] / max(val_sums[2], 1), val_sums[1] / max(val_sums[2], 1)
        owner = self.owner
        groups = trainable_groups(owner) if hasattr(owner, "groups") else []
        return EpochRecord(
            phase=self.phase,
            epoch=self.epoch + 1,
            train_loss=total_loss / max(seen, 1),
            train_acc=correct / max(seen, 1),
            val_loss=val_loss,
            val_acc=val_acc,
            lrs=lrs,
            images_per_s=seen / max(train_seconds, 1e-9),
            seconds=time.perf_counter() - start,
            trainable_groups=groups,
        )

    def _raise_non_finite(self, loss: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        """Find which group's gradients exploded (backward on the last finite state) and stop."""
        owner = self.owner
        groups = getattr(owner, "groups", None)
        # A real divergence (a learning rate far too high for a group) shows in that group's
        # weights: non-finite, or orders of magnitude larger than the others'. The previous
        # step's gradients were computed before it, so they rarely point at the culprit.
        sizes = group_weight_sizes(owner, groups)
        norms = group_grad_norms(owner, groups)
        worst = max(sizes, key=lambda k: (not math.isfinite(sizes[k]), sizes[k]), default=None)
        steepest = max(norms, key=lambda k: (not math.isfinite(norms[k]), norms[k]),
                       default=None)
        detail = (f"; the group whose weights exploded: {worst!r} (largest |weight| "
                  f"{sizes[worst]:.3g}); largest gradient norm at the previous step: group "
                  f"{steepest!r} ({norms[steepest]:.3g})" if worst else "")
        raise NonFiniteLossError(
            f"loss became {float(loss.detach())} at phase {self.phase!r}, epoch {self.epoch + 1}, "
            f"step {self.step + 1}{detail}. The last good checkpoint is kept; lower the "
            "learning rate of that group or enable gradient clipping (--grad-clip)."
        )


def evaluate_loss(model: nn.Module, loader: Iterable, loss_fn: Callable, to_device=None,
                  autocast=None) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` over ``loader``."""
    total, correct, seen = evaluate_sums(model, loader, loss_fn, to_device, autocast)
    return total / max(seen, 1), correct / max(seen, 1)


@torch.inference_mode()
def evaluate_sums(model: nn.Module, loader: Iterable, loss_fn: Callable, to_device=None,
                  autocast=None) -> tuple[float, int, int]:
    """(summed loss, correct, seen): sums, so that ranks of a distributed run can add them."""
    was_training = model.training
    model.eval()
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        if to_device is not None:
            x, y = to_device(x, y)
        if autocast is not None:
            with autocast():
                logits = model(x)
        else:
            logits = model(x)
        total += float(loss_fn(logits.float(), y)) * y.shape[0]
        correct += int((logits.argmax(1) == y).sum())
        seen += y.shape[0]
    model.train(was_training)
    return total, correct, seen
