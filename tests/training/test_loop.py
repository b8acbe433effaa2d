"""The loop: events, early stopping with best-weight restore, non-finite losses."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from transferlab.finetune.freeze import train_top
from transferlab.finetune.param_groups import build_param_groups, group_learning_rates
from transferlab.finetune.schedules import Scheduler
from transferlab.models import create_model
from transferlab.training.callbacks import EarlyStopping
from transferlab.training.loop import Callback, NonFiniteLossError, Trainer


def _data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.arange(n) % 3
    return DataLoader(TensorDataset(x, y), batch_size=8)


def _trainer(model, lr, epochs, callbacks=()):
    lrs = group_learning_rates(model.group_names, head_lr=lr)
    opt = torch.optim.AdamW(build_param_groups(model, model.groups, lrs))
    return Trainer(model, opt, Scheduler(opt, epochs * 2, kind="constant"),
                   train_loader=_data(), val_loader=_data(seed=1), epochs=epochs,
                   callbacks=callbacks, owner=model)


class _Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, t):
        self.events.append("fit_start")

    def on_epoch_start(self, t):
        self.events.append("epoch_start")

    def on_batch_end(self, t, batch, n, loss):
        self.events.append(f"batch {batch}/{n}")

    def on_epoch_end(self, t, record):
        self.events.append(f"epoch_end {record.epoch}")

    def on_fit_end(self, t):
        self.events.append("fit_end")


def test_events_in_order_and_records():
    model = create_model("resnet18", num_classes=3, weights="random")
    rec = _Recorder()
    history = _trainer(model, 1e-3, 2, [rec]).fit()
    assert rec.events == ["fit_start", "epoch_start", "batch 1/2", "batch 2/2", "epoch_end 1",
                          "epoch_start", "batch 1/2", "batch 2/2", "epoch_end 2", "fit_end"]
    assert [r.epoch for r in history] == [1, 2]
    assert set(history[0].lrs) == set(model.group_names)
    assert history[0].images_per_s > 0


def test_early_stopping_restores_the_best_weights():
    model = create_model("resnet18", num_classes=3, weights="random")
    train_top(model, 0)
    early = EarlyStopping(model, patience=1)
    snapshots = {}

    class Snap(Callback):
        def on_epoch_end(self, t, record):
            snapshots[record.epoch] = (record.val_loss, model.head.weight.detach().clone())

    # A huge LR makes validation loss go up after the first epoch.
    trainer = _trainer(model, 5.0, 6, [early, Snap()])
    trainer.fit()
    best_epoch = min(snapshots, key=lambda e: snapshots[e][0])
    assert early.best_epoch == best_epoch
    assert best_epoch < max(snapshots)  # else "restored" and "last" weights are the same
    assert not torch.equal(snapshots[max(snapshots)][1], snapshots[best_epoch][1])
    assert torch.equal(model.head.weight, snapshots[best_epoch][1])
    assert trainer.should_stop == (len(snapshots) < 6)
    if trainer.should_stop:
        assert "early stopping" in trainer.stop_reason


def test_nan_loss_stops_with_the_exploding_group_named():
    model = create_model("resnet18", num_classes=3, weights="random")
    train_top(model, 0)

    class Poison(Callback):
        def on_batch_end(self, t, batch, n, loss):
            if t.step == 1:
                with torch.no_grad():
                    model.head.weight.mul_(float("inf"))
                model.head.weight.grad = torch.full_like(model.head.weight, 1e30)

    with pytest.raises(NonFiniteLossError, match="group 'head'"):
        _trainer(model, 1e-3, 1, [Poison()]).fit()


@pytest.mark.parametrize("culprit", ["head", "stage3"])
def test_a_real_divergence_names_the_group_whose_learning_rate_is_too_high(culprit):
    """No injected values: one group's learning rate (1e37) makes its weights blow up after
    the first AdamW step, and the loss of the second step is not finite. The previous step's
    gradients were finite and unremarkable, so only the weights can name the culprit."""
    model = create_model("resnet18", num_classes=3, weights="random")
    train_top(model, None)
    lrs = {g: 1e37 if g == culprit else 1e-3 for g in model.group_names}
    opt = torch.optim.AdamW(build_param_groups(model, model.groups, lrs))
    trainer = Trainer(model, opt, Scheduler(opt, 8, kind="constant"), train_loader=_data(),
                      val_loader=_data(seed=1), epochs=2, owner=model)
    with pytest.raises(NonFiniteLossError, match=f"weights exploded: {culprit!r}") as info:
        trainer.fit()
    assert "step 2" in str(info.value)
