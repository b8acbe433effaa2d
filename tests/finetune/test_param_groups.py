"""Per-group learning rates and optimizer groups."""

import math

import pytest
import torch

from transferlab.finetune.freeze import train_top
from transferlab.finetune.param_groups import (
    build_param_groups,
    current_lrs,
    group_learning_rates,
)
from transferlab.finetune.schedules import Scheduler, lr_factor
from transferlab.models import create_model

NAMES = ["stem", "stage1", "stage2", "stage3", "stage4", "head"]


def test_explicit_three_rates_early_middle_head():
    lrs = group_learning_rates(NAMES, head_lr=1e-3, lrs=[1e-6, 1e-5, 1e-4])
    assert lrs["head"] == 1e-4
    assert lrs["stem"] == lrs["stage1"] == lrs["stage2"] == 1e-6
    assert lrs["stage3"] == lrs["stage4"] == 1e-5


def test_one_rate_per_group_and_by_name():
    values = [1e-6, 2e-6, 3e-6, 4e-6, 5e-6, 1e-4]
    assert list(group_learning_rates(NAMES, head_lr=1, lrs=values).values()) == values
    lrs = group_learning_rates(NAMES, head_lr=1e-3, body_lr=1e-5, lrs={"stage4": 5e-5})
    assert lrs["stage4"] == 5e-5 and lrs["stem"] == 1e-5 and lrs["head"] == 1e-3
    with pytest.raises(ValueError, match="unknown layer groups"):
        group_learning_rates(NAMES, head_lr=1e-3, lrs={"stage9": 1e-5})
    with pytest.raises(ValueError, match="7 learning rates for 6 groups"):
        group_learning_rates(NAMES, head_lr=1e-3, lrs=[1e-5] * 7)


def test_decay_and_body_lr():
    lrs = group_learning_rates(NAMES, head_lr=1e-3, decay=0.5)
    assert lrs["head"] == 1e-3 and lrs["stage4"] == 5e-4
    assert math.isclose(lrs["stem"], 1e-3 * 0.5**5)
    lrs = group_learning_rates(NAMES, head_lr=1e-4, body_lr=1e-5)
    assert lrs["head"] == 1e-4 and set(lrs[n] for n in NAMES[:-1]) == {1e-5}
    with pytest.raises(ValueError):
        group_learning_rates(NAMES, head_lr=1e-3, decay=1.5)


def test_every_parameter_in_the_optimizer_from_the_start():
    model = create_model("resnet18", num_classes=3, weights="random")
    train_top(model, 0)
    lrs = group_learning_rates(model.group_names, head_lr=1e-3, body_lr=1e-5)
    groups = build_param_groups(model, model.groups, lrs, weight_decay=0.05)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    for g in groups:
        if g["group_name"].endswith(".no_decay"):
            assert g["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in g["params"])
        else:
            assert g["weight_decay"] == 0.05
    opt = torch.optim.AdamW(groups)
    assert current_lrs(opt)["stem"] == 1e-5 and current_lrs(opt)["head"] == 1e-3


def test_frozen_groups_in_the_optimizer_do_not_move():
    model = create_model("resnet18", num_classes=3, weights="random")
    train_top(model, 0)
    lrs = group_learning_rates(model.group_names, head_lr=1e-2, body_lr=1e-2)
    opt = torch.optim.AdamW(build_param_groups(model, model.groups, lrs))
    stem = model.body.conv1.weight.clone()
    head = model.head.weight.clone()
    loss = model(torch.randn(2, 3, 64, 64)).sum()
    loss.backward()
    opt.step()
    assert torch.equal(stem, model.body.conv1.weight)
    assert not torch.equal(head, model.head.weight)


def test_schedule_warmup_then_cosine():
    assert lr_factor(0, 100, warmup_steps=10) == pytest.approx(0.1)
    assert lr_factor(9, 100, warmup_steps=10) == pytest.approx(1.0)
    assert lr_factor(10, 100, warmup_steps=10) == pytest.approx(1.0)
    assert lr_factor(100, 100, warmup_steps=10, min_factor=0.0) == pytest.approx(0.0)
    mid = lr_factor(55, 100, warmup_steps=10, min_factor=0.0)
    assert mid == pytest.approx(0.5)
    assert lr_factor(50, 100, kind="constant") == 1.0
    with pytest.raises(ValueError):
        lr_factor(1, 10, kind="linear-ish")


def test_scheduler_scales_each_group_and_resumes():
    model = create_model("resnet18", num_classes=3, weights="random")
    lrs = group_learning_rates(model.group_names, head_lr=1e-3, body_lr=1e-5)
    opt = torch.optim.AdamW(build_param_groups(model, model.groups, lrs))
    sched = Scheduler(opt, 10, kind="cosine", min_factor=0.0)
    for _ in range(5):
        sched.step()
    assert current_lrs(opt)["head"] == pytest.approx(5e-4)
    assert current_lrs(opt)["stem"] == pytest.approx(5e-6)
    other = Scheduler(opt, 10, kind="cosine", min_factor=0.0)
    other.load_state_dict(sched.state_dict())
    assert current_lrs(opt)["head"] == pytest.approx(5e-4)
