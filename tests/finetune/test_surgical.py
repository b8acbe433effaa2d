"""train_groups: fine-tune exactly one named group plus the head (surgical fine-tuning)."""

from __future__ import annotations

import pytest
import torch

from transferlab.api import fine_tune
from transferlab.config import TrainConfig
from transferlab.finetune.strategies import plan_phases

NAMES = ["stem", "stage1", "stage2", "head"]


def test_plan_carries_the_groups():
    (ft,) = plan_phases(TrainConfig(data="x", strategy="finetune", train_groups=["stem"]), NAMES)
    assert ft.train_groups == ["stem"] and not ft.head_only and ft.augment == "standard"
    (ho,) = plan_phases(TrainConfig(data="x", strategy="finetune", train_groups=[]), NAMES)
    assert ho.head_only and ho.augment == "none"
    probe, ft = plan_phases(TrainConfig(data="x", train_groups=["stage1"]), NAMES)
    assert probe.train_groups is None and ft.train_groups == ["stage1"]


def test_bad_groups_and_strategies_are_named():
    with pytest.raises(ValueError, match="no body group 'neck'; groups are stem, stage1"):
        plan_phases(TrainConfig(data="x", strategy="finetune", train_groups=["neck"]), NAMES)
    with pytest.raises(ValueError, match="not 'full'"):
        plan_phases(TrainConfig(data="x", strategy="full", train_groups=["stem"]), NAMES)


def test_only_the_named_group_and_the_head_change(tiny_data, tmp_path):
    cfg = TrainConfig(data=str(tiny_data), strategy="finetune", train_groups=["stage2"],
                      epochs=1, batch_size=8, image_size=64, out=str(tmp_path),
                      weights="package")
    from transferlab.models import create_model

    reference = create_model(num_classes=4, weights="package").state_dict()
    result = fine_tune(cfg, progress=False)
    state = result.model.state_dict()
    changed = {g.name for g in result.model.groups[:-1]
               if any(not torch.equal(state[p], reference[p]) for p in g.param_names)}
    assert changed == {"stage2"}
    assert result.history[-1]["trainable_groups"] == ["stage2", "head"]
