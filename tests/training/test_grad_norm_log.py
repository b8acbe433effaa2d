"""GradNormLog: per-group gradient norms in the event feed, zero for frozen groups."""

from __future__ import annotations

import json

import torch
from torch.utils.data import DataLoader, TensorDataset

from transferlab.finetune.freeze import train_top
from transferlab.models.factory import create_model
from transferlab.training.callbacks import GradNormLog
from transferlab.training.loop import Trainer


def test_grad_norms_follow_what_is_trainable(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18", weights="random", num_classes=2)
    trainable = train_top(model, 1)  # the top body group and the head
    x, y = torch.randn(6, 3, 64, 64), torch.tensor([0, 1, 0, 1, 0, 1])
    loader = DataLoader(TensorDataset(x, y), batch_size=2)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    path = tmp_path / "events.jsonl"
    Trainer(model, optimizer, None, train_loader=loader, val_loader=loader, epochs=2,
            callbacks=[GradNormLog(path, every_batches=2)]).fit()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["epoch"], e["batch"]) for e in events] == [(1, 2), (1, 3), (2, 2), (2, 3)]
    assert {e["event"] for e in events} == {"grad_norms"}  # nothing else is written
    for e in events:
        assert list(e["norms"]) == model.group_names
        for name, norm in e["norms"].items():
            assert (norm > 0) == (name in trainable), (name, norm)
