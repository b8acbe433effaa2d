"""Each strategy changes exactly the parameters it should; frozen ones stay bit-identical."""

import pytest
import torch

from transferlab.api import fine_tune
from transferlab.config import TrainConfig
from transferlab.finetune.strategies import plan_phases
from transferlab.models import create_model


@pytest.fixture(scope="module")
def pretrained_state():
    model = create_model("tf_efficientnet_lite0", num_classes=4, weights="package")
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def _changed_groups(model, reference: dict) -> tuple[set[str], set[str]]:
    """(groups whose parameters changed, groups whose params AND BN buffers are identical)."""
    state = model.state_dict()
    changed, identical = set(), set()
    for group in model.groups:
        if group.name == "head":
            continue
        keys = [k for k in state if any(k == p or k.startswith(m + ".")
                                         for p in group.param_names for m in group.module_names)]
        same = all(torch.equal(state[k], reference[k]) for k in keys)
        params_same = all(torch.equal(state[p], reference[p]) for p in group.param_names)
        if same:
            identical.add(group.name)
        if not params_same:
            changed.add(group.name)
    return changed, identical


def _run(tiny_data, tmp_path, **kw):
    options = {"batch_size": 8, "epochs": 1, "probe_epochs": 1, "seed": 1, **kw}
    cfg = TrainConfig(data=str(tiny_data), out=str(tmp_path), **options)
    return fine_tune(cfg, progress=False)


def _body_groups(model):
    return [g.name for g in model.groups[:-1]]


@pytest.mark.parametrize(
    "kw,trained",
    [
        ({"strategy": "feature-extraction"}, 0),
        ({"strategy": "finetune", "train_top": 2}, 2),
        ({"strategy": "two-phase", "train_top": 1}, 1),
        ({"strategy": "full"}, None),
    ],
    ids=["feature-extraction", "finetune-top2", "two-phase-top1", "full"],
)
def test_strategy_trains_exactly_its_groups(kw, trained, tiny_data, tmp_path, pretrained_state):
    _, reference = pretrained_state
    result = _run(tiny_data, tmp_path, **kw)
    model = result.model
    body = _body_groups(model)
    expected = set(body if trained is None else body[len(body) - trained:])
    changed, identical = _changed_groups(model, reference)
    assert changed == expected
    assert identical == set(body) - expected
    assert not torch.equal(model.state_dict()["head.weight"], reference["head.weight"])
    assert (result.run_dir / "best.safetensors").is_file()


def test_gradual_unfreezes_one_group_per_epoch(tiny_data, tmp_path, pretrained_state):
    _, reference = pretrained_state
    result = _run(tiny_data, tmp_path, strategy="gradual", epochs=3, unfreeze_every=1,
                  patience=10)
    groups = [row["trainable_groups"] for row in result.history]
    assert groups == [["head"], ["stage7", "head"], ["stage6", "stage7", "head"]]
    _, identical = _changed_groups(result.model, reference)
    assert set(_body_groups(result.model)) - {"stage6", "stage7"} <= identical


def test_two_phase_is_probe_then_finetune_at_lower_lr():
    names = ["stem", "stage1", "stage2", "head"]
    probe, ft = plan_phases(TrainConfig(data="x"), names)
    assert (probe.name, probe.train_top, probe.augment) == ("probe", 0, "none")
    assert probe.lrs["head"] == 1e-3
    assert ft.train_top is None and ft.lrs["head"] == 1e-4 and ft.lrs["stem"] == 1e-5
    (fe,) = plan_phases(TrainConfig(data="x", strategy="feature-extraction"), names)
    assert fe.head_only and fe.lrs["head"] == 1e-3
    (full,) = plan_phases(TrainConfig(data="x", strategy="full"), names)
    assert full.lrs["stem"] < full.lrs["stage2"] < full.lrs["head"]
    (custom,) = plan_phases(TrainConfig(data="x", strategy="full", lrs=[1e-6, 1e-5, 1e-4]), names)
    assert custom.lrs == {"stem": 1e-6, "stage1": 1e-6, "stage2": 1e-5, "head": 1e-4}


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="unknown strategy 'magic'"):
        TrainConfig(data="x", strategy="magic")
