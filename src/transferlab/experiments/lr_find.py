"""Learning-rate range test (Smith 2017; fastai's ``lr_find``).

Train for a few dozen steps while the learning rate grows exponentially from ``start_lr`` to
``end_lr``, record the loss, and stop once it explodes. The loss is smoothed with a
bias-corrected exponential moving average; two classic suggestions are read off the curve:
the LR of the steepest descent, and a tenth of the LR at the minimum (past the minimum the
loss is already on its way up). Discriminative learning rates keep their ratios: every group
is scaled by the same factor, and the reported LR is the head's.

The moving average uses beta 0.9 (a window of ~10 steps, under a decade of LR in a 100-step
test); fastai's 0.98 averages over ~50 steps, which on a 100-step test lags the raw loss by
more than two decades of LR and pushes the steepest-descent suggestion too high.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..config import TrainConfig


@dataclass
class LRFindResult:
    lrs: list[float]  # the head's LR at each step
    losses: list[float]
    smoothed: list[float]
    steepest: float | None  # LR at the steepest descent of the smoothed loss
    min_loss_lr: float | None  # LR at the minimum of the smoothed loss
    ratios: dict[str, float] = field(default_factory=dict)  # group LR / head LR
    groups: list[str] = field(default_factory=list)  # trainable groups
    phase: str = ""
    stopped: str = ""

    @property
    def min_over_10(self) -> float | None:
        return None if self.min_loss_lr is None else self.min_loss_lr / 10

    @property
    def suggestion(self) -> float | None:
        """The steepest-descent LR, or min/10 when the curve has no descent to speak of."""
        return self.steepest if self.steepest is not None else self.min_over_10

    def suggested_lrs(self) -> dict[str, float]:
        """Per-group LRs: the suggestion times each group's ratio to the head."""
        s = self.suggestion
        return {} if s is None else {g: s * r for g, r in self.ratios.items()}

    def as_dict(self) -> dict:
        return {**asdict(self), "suggestion": self.suggestion, "min_over_10": self.min_over_10,
                "suggested_lrs": self.suggested_lrs()}


def smooth_losses(losses: list[float], beta: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average (the first values are not pulled to 0)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def suggest(lrs: list[float], smoothed: list[float], skip_start: int | None = None,
            ) -> tuple[float | None, float | None]:
    """(steepest-descent LR, minimum-loss LR) of a range-test curve.

    The slope is taken against log10(LR) up to the minimum; the first ``skip_start`` points
    (default a tenth) are skipped because the moving average is still settling there.
    """
    if len(lrs) < 3:
        return None, (lrs[0] if lrs else None)
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    lowest = min(finite, key=lambda i: smoothed[i])
    skip = max(1, len(lrs) // 10) if skip_start is None else skip_start
    best, best_slope = None, 0.0
    for i in range(skip, lowest + 1):
        lo, hi = max(i - 1, 0), min(i + 1, len(lrs) - 1)
        span = math.log10(lrs[hi]) - math.log10(lrs[lo])
        if span <= 0:
            continue
        slope = (smoothed[hi] - smoothed[lo]) / span
        if slope < best_slope:
            best, best_slope = i, slope
    return (lrs[best] if best is not None else None), lrs[lowest]


def lr_range_test(module: nn.Module, optimizer: torch.optim.Optimizer, loader: Iterable,
                  loss_fn, *, start_lr: float = 1e-7, end_lr: float = 1.0,
                  num_steps: int = 100, beta: float = 0.9, diverge: float = 4.0,
                  device: torch.device | str = "cpu", head_group: str | None = None,
                  ) -> tuple[list[float], list[float], list[float], str]:
    """Run the range test on ``module``; returns (lrs, losses, smoothed, why it stopped).

    Each optimizer group's LR is ``base_lr / base_lr(head) * lr`` (ratios kept). The weights
    of ``module`` change: call it on a model you will rebuild or reload afterwards.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if num_steps < 3:
        raise ValueError(f"num_steps must be at least 3, got {num_steps}")
    head_base = next((g["base_lr"] for g in optimizer.param_groups
                      if head_group is not None and g.get("layer_group") == head_group),
                     None) or max(g.get("base_lr", g["lr"]) for g in optimizer.param_groups)
    ratios = [g.get("base_lr", g["lr"]) / head_base for g in optimizer.param_groups]
    factor = (end_lr / start_lr) ** (1 / (num_steps - 1))
    device = torch.device(device)
    module.to(device).train()
    lrs, losses, smoothed = [], [], []
    reason = f"reached end_lr {end_lr:g}"
    step, best = 0, math.inf

    def batches():
        while True:
            empty = True
            for batch in loader:
                empty = False
                yield batch
            if empty:
                raise ValueError("the training loader is empty")

    for x, y in batches():
        if step >= num_steps:
            break
        lr = start_lr * factor**step
        for g, r in zip(optimizer.param_groups, ratios, strict=True):
            g["lr"] = lr * r
        x, y = x.to(device), y.to(device)
        loss = loss_fn(module(x).float(), y)
        value = float(loss.detach())
        if not math.isfinite(value):
            reason = f"loss became {value} at LR {lr:.3g}"
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lrs.append(lr)
        losses.append(value)
        smoothed = smooth_losses(losses, beta)
        best = min(best, smoothed[-1])
        step += 1
        if step > max(5, num_steps // 20) and smoothed[-1] > diverge * best:
            reason = f"loss diverged (over {diverge:g}x its minimum) at LR {lr:.3g}"
            break
    return lrs, losses, smoothed, reason


def lr_find(cfg: TrainConfig, *, phase: int = -1, start_lr: float = 1e-7, end_lr: float = 1.0,
            num_steps: int = 100, beta: float = 0.9, diverge: float = 4.0,
            plot_path: str | Path | None = None) -> LRFindResult:
    """Range test for phase ``phase`` (default the last, main one) of ``cfg``'s strategy.

    The model, data and frozen groups are those :func:`transferlab.api.fine_tune` would use;
    a head-only phase without augmentation runs on cached features (seconds).
    """
    from ..finetune.freeze import freeze_all, set_group_trainable, train_top, trainable_groups
    from ..finetune.param_groups import build_param_groups
    from ..session import prepare
    from ..training.fastpath import phase_loaders

    # the splits, auto's resolution (same image size as train), model and phases of fine_tune
    session = prepare(cfg)
    cfg, splits, model, phases, device = (session.cfg, session.splits, session.model,
                                          session.phases, session.device)
    try:
        ph = phases[phase]
    except IndexError:
        raise ValueError(f"strategy {cfg.strategy} has {len(phases)} phase(s); "
                         f"phase {phase} does not exist") from None
    if ph.train_groups is not None:
        freeze_all(model)
        set_group_trainable(model, [*ph.train_groups, model.group_names[-1]], True)
    else:
        train_top(model, ph.train_top)
    module, loader, _, cached = phase_loaders(model, cfg, ph, splits, device, {})
    groups = [model.groups[-1]] if cached else model.groups
    trainable = set(trainable_groups(model))
    groups = [g for g in groups if g.name in trainable]
    head = model.group_names[-1]
    param_groups = build_param_groups(model, groups, ph.lrs, weight_decay=cfg.weight_decay)
    optimizer = torch.optim.AdamW(param_groups, lr=ph.lrs[head])
    if device.type == "cpu" and not cached:
        model.to(memory_format=torch.channels_last)
    lrs, losses, smoothed, reason = lr_range_test(
        module, optimizer, loader, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        start_lr=start_lr, end_lr=end_lr, num_steps=num_steps, beta=beta, diverge=diverge,
        device=device, head_group=head)
    steepest, lowest = suggest(lrs, smoothed)
    result = LRFindResult(lrs, losses, smoothed, steepest, lowest,
                          ratios={g.name: ph.lrs[g.name] / ph.lrs[head] for g in groups},
                          groups=[g.name for g in groups], phase=ph.name, stopped=reason)
    if plot_path is not None:
        plot_lr_find(result, plot_path)
    return result


def plot_lr_find(result: LRFindResult, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(result.lrs, result.losses, color="#bbb", lw=0.8, label="loss")
    ax.plot(result.lrs, result.smoothed, color="#1f77b4", label="smoothed")
    if result.steepest is not None:
        i = result.lrs.index(result.steepest)
        ax.plot([result.steepest], [result.smoothed[i]], "ro",
                label=f"steepest {result.steepest:.2g}")
    if result.min_over_10 is not None:
        ax.axvline(result.min_over_10, color="g", ls="--",
                   label=f"min/10 {result.min_over_10:.2g}")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:  # keep the start and the dip in view; the explosion may leave the plot
        lo, start = min(finite), finite[0]
        pad = 0.5 * max(start - lo, 0.05 * abs(lo), 1e-3)
        ax.set_ylim(lo - 0.2 * pad, max(start, lo) + pad)
    ax.set_xscale("log")
    ax.set_xlabel(f"learning rate (head; groups keep their ratios) — phase {result.phase}")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
