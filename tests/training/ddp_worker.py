"""Run by ``torchrun`` from test_distributed.py (a plain script: spawned processes cannot
import pytest's test modules). Also imported by the test for the single-process reference.

usage: torchrun --standalone --nproc_per_node=2 ddp_worker.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from transferlab.training import distributed
from transferlab.training.loop import Callback, Trainer

N, BATCH, EPOCHS = 24, 8, 3


def tiny_data(n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + 2 * (x[:, 2] > 0).long()
    return x, y


class RandpermLoader:
    """Not a DataLoader: like the cached-activation loaders, it shuffles with its generator."""

    def __init__(self, x, y, batch_size: int, shuffle: bool):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(0)

    def __len__(self):
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(0, n, self.batch_size):
            sel = order[i:i + self.batch_size]
            yield self.x[sel], self.y[sel]


class UnfreezeFirst(Callback):
    """Gradual unfreezing in miniature: the first layer starts training at epoch 2."""

    def on_epoch_start(self, trainer):
        if trainer.epoch == 1:
            for p in trainer.model[0].parameters():
                p.requires_grad_(True)


def train_tiny(loader_kind: str, dist: bool, n: int = N) -> tuple[dict, list[dict]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    for p in model[0].parameters():
        p.requires_grad_(False)
    x, y = tiny_data(n)
    if loader_kind == "dataloader":
        train = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True,
                           generator=torch.Generator().manual_seed(0))
        val = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=False)
    else:
        train = RandpermLoader(x, y, BATCH, shuffle=True)
        val = RandpermLoader(x, y, 5, shuffle=False)
    if dist:
        train = distributed.shard_loader(train, train=True)
        val = distributed.shard_loader(val, train=False)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    trainer = Trainer(model, opt, None, train_loader=train, val_loader=val, epochs=EPOCHS,
                      callbacks=[UnfreezeFirst()], seed=3, distributed=dist)
    history = [r.as_dict() for r in trainer.fit()]
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, history


def primitives() -> dict:
    r, w = distributed.rank(), distributed.world_size()
    sums = distributed.all_reduce_sums([1.0, r, 0.5 * (r + 1)])
    rows = torch.arange((r + 2) * 3, dtype=torch.float32).reshape(r + 2, 3) + 100 * r
    gathered = distributed.all_gather_rows(rows)
    name = distributed.broadcast_object(f"made-by-rank-{r}")
    sampler = distributed.ShardedSampler(7, rank=r, world=w, shuffle=False, pad=False)
    return {"rank": r, "world": w, "sums": sums, "main": distributed.is_main(),
            "gathered": [g.tolist() for g in gathered], "name": name,
            "eval_share": list(iter(sampler))}


def main() -> None:
    out = Path(sys.argv[1])
    created = distributed.init_from_env("cpu")
    result: dict = {"created_group": created, **primitives()}
    for kind in ("dataloader", "sliced"):
        state, history = train_tiny(kind, dist=True)
        result[kind] = history
        if distributed.is_main():
            save_file(state, str(out / f"{kind}.safetensors"))
    (out / f"rank{distributed.rank()}.json").write_text(json.dumps(result))
    distributed.barrier()


if __name__ == "__main__":
    main()
