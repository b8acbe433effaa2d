"""Layer groups and parameter counts, checked against the models' own numel sums."""

import pytest
import torch

from transferlab.finetune.freeze import train_top
from transferlab.models import create_model
from transferlab.models.summary import summarize

MODELS = ["resnet18", "resnet50", "vgg16", "mobilenetv3_large_100", "efficientnet_b0",
          "tf_efficientnet_lite0"]


@pytest.mark.parametrize("name", MODELS)
def test_groups_partition_every_parameter(name):
    model = create_model(name, num_classes=7, weights="random")
    all_names = [n for n, _ in model.named_parameters()]
    grouped = [n for g in model.groups for n in g.param_names]
    assert sorted(grouped) == sorted(all_names), "every parameter in exactly one group"
    assert len(grouped) == len(set(grouped))
    assert model.group_names[0] == "stem" and model.group_names[-1] == "head"
    assert any(n.startswith("stage") for n in model.group_names)
    summary = summarize(model, shapes=False)
    assert sum(g.params for g in summary.groups) == sum(p.numel() for p in model.parameters())
    assert summary.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name,stages",
    [("resnet18", 4), ("resnet50", 4), ("mobilenetv3_large_100", 7), ("efficientnet_b0", 7),
     ("tf_efficientnet_lite0", 7)],
)
def test_stage_count_follows_the_architecture(name, stages):
    model = create_model(name, num_classes=3, weights="random")
    assert sum(n.startswith("stage") for n in model.group_names) == stages


def test_resnet50_total_matches_published_count():
    model = create_model("resnet50", weights="random")  # keeps the 1000-class ImageNet head
    assert summarize(model, shapes=False).total_params == 25_557_032


def test_vgg16_has_a_neck_for_its_fully_connected_layers():
    model = create_model("vgg16", num_classes=5, weights="random")
    assert model.group_names[-2] == "neck"
    neck = model.group("neck")
    assert all(".pre_logits." in n for n in neck.param_names)


def test_summary_shapes_and_trainable_totals():
    model = create_model("resnet18", num_classes=7, weights="random")
    trainable = train_top(model, 1)
    assert trainable == ["stage4", "head"]
    s = summarize(model)
    shapes = {g.name: g.output_shape for g in s.groups}
    assert shapes["stem"] == [64, 112, 112]
    assert shapes["stage4"] == [512, 7, 7]
    assert shapes["head"] == [7]
    expected = sum(p.numel() for p in model.body.layer4.parameters()) + 512 * 7 + 7
    assert s.trainable_params == expected
    assert s.frozen_params == s.total_params - expected
    assert {g.name: g.state for g in s.groups}["stage3"] == "frozen"
    assert s.groups[0].layer_types == {"Conv2d": 1, "BatchNorm2d": 1}


def test_fallback_groups_without_a_group_matcher():
    from torch import nn

    from transferlab.models.groups import build_layer_groups

    body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())
    groups = build_layer_groups(body, nn.Linear(8, 2))
    assert [g.name for g in groups] == ["stem", "stage1", "stage2", "head"]
    assert sum(len(g.param_names) for g in groups) == len(list(body.parameters())) + 2
    x = torch.zeros(1, 3, 8, 8)
    assert body(x).shape == (1, 8)
