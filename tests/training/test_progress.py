"""The terminal progress: one unbroken line per epoch when the output is a log, not a TTY."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from transferlab.training.progress import RichProgress


def test_one_line_per_epoch_in_a_log_at_80_columns():
    out = io.StringIO()
    progress = RichProgress(Console(file=out, width=80, force_terminal=False))
    trainer = SimpleNamespace(epochs=40, phase="finetune", epoch=0, train_loader=[1, 2],
                              stop_reason="early stopping: no improvement in 5 epochs")
    progress.on_fit_start(trainer)
    assert progress.progress is None  # no bar in a log
    for epoch in (1, 2):
        progress.on_epoch_start(trainer)
        progress.on_batch_end(trainer, 1, 2, 0.5)
        record = SimpleNamespace(phase="finetune", epoch=epoch, train_loss=0.123456,
                                 train_acc=0.9, val_loss=0.234567, val_acc=0.85,
                                 images_per_s=1234.5, seconds=12.3)
        progress.on_epoch_end(trainer, record)
    progress.on_fit_end(trainer)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert all(len(line) > 80 for line in lines[:2])  # longer than the width, not broken
    assert lines[0].startswith("finetune epoch 1/40") and lines[0].endswith("12.3s")
    assert "img/s" in lines[1] and lines[2].startswith("early stopping")
