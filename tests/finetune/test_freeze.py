"""Freezing by group and depth, and the BatchNorm policy for frozen groups."""

import pytest
import torch
from torch import nn

from transferlab.finetune.freeze import (
    count_parameters,
    set_group_trainable,
    train_top,
    trainable_groups,
    unfreeze_next,
)
from transferlab.models import create_model


@pytest.fixture
def resnet():
    return create_model("resnet18", num_classes=3, weights="random")


def test_train_top_k(resnet):
    assert train_top(resnet, 0) == ["head"]
    assert train_top(resnet, 2) == ["stage3", "stage4", "head"]
    assert trainable_groups(resnet) == ["stage3", "stage4", "head"]
    assert train_top(resnet, None) == resnet.group_names
    assert train_top(resnet, 99) == resnet.group_names
    with pytest.raises(ValueError):
        train_top(resnet, -1)


def test_unfreeze_next_goes_top_down(resnet):
    train_top(resnet, 0)
    assert unfreeze_next(resnet) == "stage4"
    assert unfreeze_next(resnet) == "stage3"
    assert trainable_groups(resnet) == ["stage3", "stage4", "head"]


def test_counts(resnet):
    train_top(resnet, 0)
    c = count_parameters(resnet)
    assert c["trainable"] == 512 * 3 + 3
    assert c["total"] == sum(p.numel() for p in resnet.parameters())
    assert c["frozen"] == c["total"] - c["trainable"]


def _bn_stats(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


def test_frozen_batchnorm_keeps_its_statistics():
    """"freeze": BN layers of frozen groups stay in eval mode in model.train(), BN layers of
    trainable groups use batch statistics and update their running statistics."""
    resnet = create_model("resnet18", num_classes=3, weights="random", bn_policy="freeze")
    train_top(resnet, 1)
    resnet.train()
    assert not resnet.body.bn1.training and not resnet.body.layer1[0].bn1.training
    assert resnet.body.layer4[0].bn1.training
    frozen_before = _bn_stats(resnet.body.layer1)
    trained_before = _bn_stats(resnet.body.layer4)
    with torch.no_grad():
        resnet(torch.randn(4, 3, 64, 64) * 3 + 1)
    frozen_after = _bn_stats(resnet.body.layer1)
    assert all(torch.equal(frozen_before[k], frozen_after[k]) for k in frozen_before)
    trained_after = _bn_stats(resnet.body.layer4)
    assert any(not torch.equal(trained_before[k], trained_after[k]) for k in trained_before)


def test_train_policy_lets_frozen_batchnorm_update():
    model = create_model("resnet18", num_classes=3, weights="random", bn_policy="train")
    train_top(model, 0)
    model.train()
    before = _bn_stats(model.body.layer1)
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64) * 3 + 1)
    after = _bn_stats(model.body.layer1)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_default_policy_keeps_every_batchnorm_in_inference_mode(resnet):
    """"eval" (the default): even trainable BN layers normalise with the pretrained running
    statistics, which never change; their scale and shift still get gradients."""
    assert resnet.bn_policy == "eval"
    train_top(resnet, None)
    resnet.train()
    assert resnet.training and resnet.body.layer4[0].conv1.training
    assert not any(m.training for m in resnet.modules() if isinstance(m, nn.BatchNorm2d))
    before = _bn_stats(resnet.body)
    x = torch.randn(4, 3, 64, 64) * 3 + 1
    out = resnet(x)
    out.sum().backward()
    after = _bn_stats(resnet.body)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert resnet.body.layer1[0].bn1.weight.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(out, resnet.eval()(x))  # train mode == inference mode


def test_unfreezing_puts_batchnorm_back_in_training():
    resnet = create_model("resnet18", num_classes=3, weights="random", bn_policy="freeze")
    train_top(resnet, 0)
    resnet.train()
    assert not resnet.body.layer4[1].bn2.training
    set_group_trainable(resnet, ["stage4"], True)
    assert resnet.body.layer4[1].bn2.training
    assert not resnet.body.layer3[1].bn2.training


def test_bad_bn_policy():
    with pytest.raises(ValueError, match="bn_policy"):
        create_model("resnet18", num_classes=3, weights="random", bn_policy="sometimes")
