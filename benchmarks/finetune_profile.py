"""Where the all-groups fine-tuning phase of two-phase (LP-FT) spends CPU time.

One command::

    .venv/bin/python benchmarks/finetune_profile.py --record benchmarks/RESULTS.md

Builds the phase exactly as ``fine_tune`` does (the model after its probe is not needed for
timing: the offline Lite0 weights with a fresh head; the decode-once store; device
augmentation; AdamW over every group), then times one epoch step by step: reading rows and
augmenting the batch, the forward pass, the backward pass, the optimizer step, and the
per-epoch validation pass with PyTorch fp32 and with the ``auto`` engine (which has to export
the changed model again every epoch). Prints the seconds per part and its share.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    SHARED_DATA,
    load_average,
    machine,
    machine_line,
    record,
    subset_folder,
    warm_page_cache,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", default="apple_pie,baby_back_ribs")
    p.add_argument("--batches", type=int, default=4, help="training batches timed")
    p.add_argument("--record")
    args = p.parse_args(argv)

    from transferlab.config import TrainConfig
    from transferlab.data import load_splits
    from transferlab.finetune.freeze import train_top
    from transferlab.finetune.param_groups import build_param_groups
    from transferlab.finetune.strategies import plan_phases
    from transferlab.models.engines import build_engine
    from transferlab.models.factory import create_model
    from transferlab.training.fastpath import phase_inputs

    info = machine()
    print(machine_line(info), flush=True)
    work = Path(tempfile.mkdtemp(prefix="tl-ftprof-"))
    data = subset_folder(SHARED_DATA / "food10", work / "data", args.classes.split(","))
    warm_page_cache(data)
    cfg = TrainConfig(data=str(data), strategy="two-phase", cache_dir=str(work / "cache"))
    splits = load_splits(data)
    model = create_model(cfg.model, classes=splits.classes)
    phase = plan_phases(cfg, model.group_names)[-1]  # the all-groups phase
    train_top(model, phase.train_top)
    device = torch.device("cpu")
    inputs = phase_inputs(model, cfg, phase, splits, device, {})
    module = inputs.module.to(memory_format=torch.channels_last)
    groups = model.groups
    optimizer = torch.optim.AdamW(build_param_groups(model, groups, phase.lrs,
                                                     weight_decay=cfg.weight_decay),
                                  lr=phase.lrs[model.groups[-1].name], fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    parts = {"read rows + augment": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    it = iter(inputs.train_loader)
    images = 0
    module.train()
    for step in range(args.batches + 1):  # the first batch warms up and is not counted
        t0 = time.perf_counter()
        x, y = next(it)
        x = x.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        loss = loss_fn(module(x), y)
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        if step:
            images += len(y)
            for k, (a, b) in zip(parts, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=True):
                parts[k] += b - a
    per_image = {k: v / images for k, v in parts.items()}
    epoch_images = len(splits.train)
    # validation once per epoch over the val split, with each engine
    module.eval()
    val = {}
    for engine in ("torch", "auto"):
        t0 = time.perf_counter()
        run = None
        n = 0
        for x, _ in inputs.val_loader:
            if run is None:
                run = build_engine(model, x, engine=engine, cache_dir=work / "cache")
                setup = time.perf_counter() - t0
            run(x)
            n += len(x)
        val[engine] = (time.perf_counter() - t0, setup, run.name)
    epoch = {k: v * epoch_images for k, v in per_image.items()}
    epoch["validation (torch fp32)"] = val["torch"][0]
    total = sum(epoch.values())
    info["load_end"] = load_average()
    lines = [f"{machine_line(info)}; load average at end {info['load_end']} (shared machine: "
             "shares matter, absolute seconds are under load).", "",
             f"Command: `.venv/bin/python benchmarks/finetune_profile.py`. The all-groups "
             f"phase of two-phase on {epoch_images} train / {len(splits.val)} val food10 "
             f"images ({args.classes}), batch {cfg.batch_size}, Lite0, {args.batches} timed "
             "batches scaled to one epoch:", "",
             "| part | s per epoch | share |", "|---|---|---|"]
    for k, v in epoch.items():
        lines.append(f"| {k} | {v:.1f} | {v / total:.0%} |")
    t_ort, setup, name = val["auto"]
    lines += ["", f"Validation with the `auto` engine ({name}): {t_ort:.1f} s per epoch, of "
              f"which {setup:.1f} s export + check of the changed weights, against "
              f"{val['torch'][0]:.1f} s with PyTorch fp32."]
    text = "\n".join(lines)
    print(text)
    record(args.record, f"Fine-tuning profile (two-phase, all groups) — {info['date']}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
