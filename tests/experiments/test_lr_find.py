"""LR range test: smoothing, the suggestion rule, a real range test, and lr_find on photos."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from transferlab.config import TrainConfig
from transferlab.experiments.lr_find import lr_find, lr_range_test, smooth_losses, suggest


def test_smoothing_is_bias_corrected():
    assert smooth_losses([2.0, 2.0, 2.0], beta=0.9) == pytest.approx([2.0, 2.0, 2.0])
    s = smooth_losses([1.0, 3.0], beta=0.5)
    assert s == pytest.approx([1.0, (0.25 * 1.0 + 0.5 * 3.0) / 0.75])


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = [10 ** (-6 + 0.1 * i) for i in range(61)]  # 1e-6 .. 1
    # flat, a steep drop centred at 1e-3, a minimum at 1e-2, then a rise
    losses = [2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 3) * 4)) for lr in lrs]
    losses = [v + (max(0.0, math.log10(lr) + 2) ** 2) * 3 for v, lr in zip(losses, lrs,
                                                                          strict=True)]
    steepest, lowest = suggest(lrs, losses)
    assert steepest == pytest.approx(1e-3, rel=0.3)
    assert 3e-3 < lowest < 2e-2
    assert suggest([1e-3, 1e-2], [1.0, 0.5]) == (None, 1e-3)


def _toy_loader(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)


def test_range_test_grows_exponentially_keeps_ratios_and_stops_on_divergence():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD([
        {"params": model[0].parameters(), "lr": 1e-3, "base_lr": 1e-3, "layer_group": "body"},
        {"params": model[2].parameters(), "lr": 1e-2, "base_lr": 1e-2, "layer_group": "head"},
    ])
    lrs, losses, smoothed, reason = lr_range_test(
        model, opt, _toy_loader(), nn.CrossEntropyLoss(), start_lr=1e-4, end_lr=1e4,
        num_steps=80, head_group="head")
    ratios = [b / a for a, b in zip(lrs, lrs[1:], strict=False)]
    assert ratios == pytest.approx([(1e8) ** (1 / 79)] * len(ratios))
    assert opt.param_groups[0]["lr"] == pytest.approx(lrs[-1] * 0.1)  # body keeps 1/10
    assert len(lrs) < 80 and ("diverged" in reason or "became" in reason)
    assert min(smoothed) < smoothed[0]  # it learned before it blew up
    steepest, lowest = suggest(lrs, smoothed)
    assert 1e-4 <= steepest <= lowest


def test_lr_find_on_photos_with_cached_features(tiny_data, tmp_path):
    cfg = TrainConfig(data=str(tiny_data), strategy="feature-extraction", batch_size=8,
                      cache_dir=str(tmp_path / "cache"))
    result = lr_find(cfg, num_steps=40, start_lr=1e-5, end_lr=10, plot_path=tmp_path / "lr.png")
    assert result.phase == "probe" and result.groups == ["head"]
    assert len(result.lrs) >= 10 and result.lrs[0] == pytest.approx(1e-5)
    assert result.suggestion is not None and 1e-5 <= result.suggestion <= 10
    assert result.suggested_lrs() == {"head": result.suggestion}
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    doc = result.as_dict()
    assert doc["suggestion"] == result.suggestion and len(doc["losses"]) == len(result.lrs)


def test_lr_find_keeps_discriminative_ratios(tiny_data, tmp_path):
    cfg = TrainConfig(data=str(tiny_data), strategy="finetune", train_top=1, batch_size=8,
                      image_size=64)
    result = lr_find(cfg, num_steps=5, start_lr=1e-5, end_lr=1e-3)
    assert result.groups == ["stage7", "head"]
    assert result.ratios == pytest.approx({"stage7": 0.1, "head": 1.0})
    with pytest.raises(ValueError, match="phase 3 does not exist"):
        lr_find(cfg, phase=3, num_steps=5)
