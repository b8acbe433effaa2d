"""Splitting a body at a layer-group boundary: upper(lower(x)) must be body(x) exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferlab.finetune.freeze import train_top
from transferlab.models.factory import create_model
from transferlab.models.staged import (
    FrozenLowerModel,
    UnsupportedModelError,
    UpperModel,
    body_steps,
    num_boundaries,
    split_at,
    supports_staging,
)

FAMILIES = ["resnet18", "tf_efficientnet_lite0", "mobilenetv3_large_100", "efficientnet_b0",
            "vgg16"]


@pytest.mark.parametrize("name", FAMILIES)
def test_upper_of_lower_is_the_body_at_every_boundary(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, weights="random").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model.body(x)
        for k in range(num_boundaries(model) + 1):
            lower, upper = split_at(model, k)
            torch.testing.assert_close(upper(lower(x)), reference, rtol=0, atol=0,
                                       msg=f"{name} boundary {k}")


def test_steps_cover_every_body_parameter_in_group_order():
    model = create_model("tf_efficientnet_lite0", num_classes=3, weights="random")
    steps = body_steps(model)
    groups = [s.group for s in steps]
    assert groups == sorted(groups)
    assert groups[-1] == num_boundaries(model) - 1
    covered = {f"body.{s.path}.{n}" for s in steps for n, _ in s.module.named_parameters()}
    body_params = {n for g in model.groups[:-1] for n in g.param_names}
    assert covered == body_params


def test_parts_share_modules_with_the_model():
    model = create_model("resnet18", num_classes=3, weights="random")
    lower, upper = split_at(model, 2)  # stem + stage1 below; stage2..4 above
    assert lower[0] is model.body.conv1
    assert upper[0] is model.body.layer2
    with torch.no_grad():
        upper[0][0].conv1.weight.zero_()
    assert float(model.body.layer2[0].conv1.weight.detach().abs().sum()) == 0.0


def test_unsupported_family_raises_a_clear_error_but_the_top_boundary_works():
    model = create_model("vit_tiny_patch16_224", num_classes=3, weights="random").eval()
    assert not supports_staging(model)
    with pytest.raises(UnsupportedModelError, match="vit_tiny_patch16_224.*pooled features"):
        split_at(model, 1)
    lower, upper = split_at(model, num_boundaries(model))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(upper(lower(x)), model.body(x))


def test_boundary_out_of_range():
    model = create_model("resnet18", num_classes=3, weights="random")
    with pytest.raises(ValueError, match="boundary must be in 0..5"):
        split_at(model, 6)


def _bn_modes(module: nn.Module) -> list[bool]:
    return [m.training for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def test_upper_model_keeps_frozen_batchnorm_in_eval():
    model = create_model("resnet18", num_classes=3, weights="random", bn_policy="freeze")
    train_top(model, 1)  # stage4 + head train
    _, upper = split_at(model, 3)  # stage3 (frozen) and stage4 (trainable) above
    model.train()  # the whole model in training mode first: the wrapper must re-freeze
    assert all(_bn_modes(model.body.layer4))
    top = UpperModel(upper, model.head, "freeze")
    for m in model.body.layer3.modules():
        m.training = True  # as nn.Module.train() on a plain container would leave them
    top.train()
    assert not any(_bn_modes(model.body.layer3))
    assert all(_bn_modes(model.body.layer4))


def test_frozen_lower_model_matches_the_model_and_builds_no_graph_below():
    torch.manual_seed(0)
    model = create_model("tf_efficientnet_lite0", num_classes=3, weights="random")
    train_top(model, 2)
    k = num_boundaries(model) - 2
    lower, upper = split_at(model, k)
    wrapped = FrozenLowerModel(lower, upper, model.head).train()
    assert not any(_bn_modes(lower))
    x = torch.randn(2, 3, 64, 64)
    model.train()
    expected = model(x)
    out = wrapped(x)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert all(p.grad is None for p in lower.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
