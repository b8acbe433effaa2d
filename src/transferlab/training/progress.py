"""Live progress in the terminal with rich: epoch x/N, batch bar, loss and accuracy.

When the output is not a terminal (a log file, ``make demo | tee``) there is no bar and each
epoch is exactly one line, never wrapped at the console's width."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .loop import Callback, EpochRecord, Trainer


class RichProgress(Callback):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if not self.console.is_terminal:  # a log: one line per epoch, no bar
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            console=self.console, transient=True,
        )
        self.progress.start()

    def on_epoch_start(self, trainer: Trainer) -> None:
        if self.progress is None:
            return
        total = len(trainer.train_loader) if hasattr(trainer.train_loader, "__len__") else None
        self.task = self.progress.add_task(
            f"{trainer.phase} epoch {trainer.epoch + 1}/{trainer.epochs}", total=total, info=""
        )

    def on_batch_end(self, trainer: Trainer, batch: int, num_batches: int, loss: float) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=batch, info=f"loss {loss:.3f}")

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
        self.console.print(
            f"{record.phase} epoch {record.epoch}/{trainer.epochs}  "
            f"train loss {record.train_loss:.4f} acc {record.train_acc:.3f}  "
            f"val loss {record.val_loss:.4f} acc {record.val_acc:.3f}  "
            f"{record.images_per_s:.0f} img/s  {record.seconds:.1f}s",
            soft_wrap=True,
        )

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.progress is not None:
            self.progress.stop()
        if trainer.stop_reason:
            self.console.print(f"[yellow]{trainer.stop_reason}", soft_wrap=True)
