"""Listeners for the training loop: early stopping, checkpoints, unfreezing, logging."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..finetune.freeze import unfreeze_next
from .checkpoint import atomic_write_text
from .loop import Callback, EpochRecord, Trainer


class EarlyStopping(Callback):
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs.

    Keeps a copy of the best weights of ``model`` (trainable or not) and restores them at the
    end of the fit, so the model you get back is the best one seen, not the last.
    """

    def __init__(self, model: nn.Module, *, patience: int = 5, min_delta: float = 0.0,
                 monitor: str = "val_loss", restore_best: bool = True) -> None:
        self.model = model
        self.patience = patience
        self.min_delta = min_delta
        self.monitor = monitor
        self.restore_best = restore_best
        self.best = math.inf
        self.best_epoch = 0
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_early = False

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        value = getattr(record, self.monitor)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, record.epoch, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.should_stop = True
                self.stopped_early = True
                trainer.stop_reason = (
                    f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                    f"(best {self.best:.4f} at epoch {self.best_epoch})"
                )

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_early": self.stopped_early, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.stopped_early = state.get("stopped_early", False)
        self.best_state = state.get("best_state")


class GradualUnfreezing(Callback):
    """Unfreeze one more layer group (from the top down) every ``every`` epochs."""

    def __init__(self, model, every: int = 1, max_groups: int | None = None) -> None:
        if every < 1:
            raise ValueError(f"unfreeze interval must be >= 1 epoch, got {every}")
        self.model = model
        self.every = every
        self.max_groups = max_groups
        self.unfrozen: list[str] = []

    def on_epoch_start(self, trainer: Trainer) -> None:
        if trainer.epoch > 0 and trainer.epoch % self.every == 0:
            if self.max_groups is None or len(self.unfrozen) < self.max_groups:
                name = unfreeze_next(self.model)
                if name:
                    self.unfrozen.append(name)
        # The optimizer already holds every group, so nothing else changes.

    def state_dict(self) -> dict:
        return {"unfrozen": list(self.unfrozen)}

    def load_state_dict(self, state: dict) -> None:
        from ..finetune.freeze import set_group_trainable

        self.unfrozen = list(state.get("unfrozen", []))
        set_group_trainable(self.model, self.unfrozen, True)


class MetricsLogger(Callback):
    """Per-epoch metrics as CSV and JSON in the run folder (all phases, appended).

    ``previous`` holds the rows of the phases before this one. When the fit starts, the
    trainer's own history (restored from a checkpoint on resume) is added to them and the
    files are rewritten, so they always equal the history the run continues from, even
    if the process died after writing an epoch's row but before checkpointing it.
    """

    def __init__(self, run_dir: str | Path, previous: list[dict] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.previous: list[dict] = list(previous or [])
        self.rows: list[dict] = list(self.previous)

    def on_fit_start(self, trainer: Trainer) -> None:
        self.rows = self.previous + [r.as_dict() for r in trainer.history]
        write_metrics(self.run_dir, self.rows)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        self.rows.append(record.as_dict())
        write_metrics(self.run_dir, self.rows)


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "metrics.json", json.dumps(rows, indent=1))
    if not rows:
        return
    lr_names = sorted({k for r in rows for k in r["lrs"]})
    fields = ["phase", "epoch", "train_loss", "train_acc", "val_loss", "val_acc",
              "images_per_s", "seconds", "trainable_groups"] + [f"lr_{n}" for n in lr_names]
    lines = []
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in rows:
        row = {k: r[k] for k in fields[:8]}
        row["trainable_groups"] = " ".join(r.get("trainable_groups", []))
        for n in lr_names:
            row[f"lr_{n}"] = r["lrs"].get(n, "")
        writer.writerow(row)
    lines.append(buf.getvalue())
    atomic_write_text(run_dir / "metrics.csv", "".join(lines))


class EventLog(Callback):
    """Append every event as a JSON line: the feed that live UIs (web, notebooks) follow."""

    def __init__(self, path: str | Path, every_batches: int = 1) -> None:
        self.path = Path(path)
        self.every = max(1, every_batches)

    def _write(self, doc: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(doc) + "\n")

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._write({"event": "epoch_start", "phase": trainer.phase, "epoch": trainer.epoch + 1,
                     "epochs": trainer.epochs})

    def on_batch_end(self, trainer: Trainer, batch: int, num_batches: int, loss: float) -> None:
        if batch % self.every == 0 or batch == num_batches:
            self._write({"event": "batch_end", "phase": trainer.phase, "epoch": trainer.epoch + 1,
                         "batch": batch, "batches": num_batches, "loss": loss})

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        early = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)
        self._write({"event": "epoch_end", **record.as_dict(), "epochs": trainer.epochs,
                     "early_stopping": None if early is None else
                     {"best": early.best, "best_epoch": early.best_epoch, "wait": early.wait,
                      "patience": early.patience}})

    def on_fit_end(self, trainer: Trainer) -> None:
        self._write({"event": "fit_end", "phase": trainer.phase, "reason": trainer.stop_reason})


class StopFlag(Callback):
    """Stops the fit at the next batch when ``flag()`` returns True (SIGINT, a web Stop button)."""

    def __init__(self, flag: Callable[[], bool]) -> None:
        self.flag = flag

    def on_batch_end(self, trainer: Trainer, batch: int, num_batches: int, loss: float) -> None:
        if self.flag():
            raise KeyboardInterrupt("stop requested")


class GradNormLog(EventLog):
    """Append ``grad_norms`` events (L2 norm of each layer group's gradients) to the event feed.

    Runs after the optimizer step, while ``.grad`` still holds the batch's gradients; frozen
    groups report 0. Written every ``every_batches`` batches and at each epoch's last batch.
    """

    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...

    def on_batch_end(self, trainer: Trainer, batch: int, num_batches: int, loss: float) -> None:
        if batch % self.every == 0 or batch == num_batches:
            from .loop import group_grad_norms

            norms = group_grad_norms(trainer.owner, getattr(trainer.owner, "groups", None))
            self._write({"event": "grad_norms", "phase": trainer.phase,
                         "epoch": trainer.epoch + 1, "batch": batch, "batches": num_batches,
                         "step": trainer.step, "norms": norms})

