"""The new head: in_features read from the backbone, out_features = number of classes."""

import pytest
import torch
from torch import nn

from transferlab.models import create_model, make_head


def test_resnet18_seven_classes_is_linear_512_7():
    model = create_model("resnet18", num_classes=7, weights="random")
    assert isinstance(model.head, nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (512, 7)
    assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 7)


@pytest.mark.parametrize(
    "name,features",
    [("resnet50", 2048), ("vgg16", 4096), ("mobilenetv3_large_100", 1280),
     ("efficientnet_b0", 1280), ("tf_efficientnet_lite0", 1280)],
)
def test_in_features_match_what_the_body_outputs(name, features):
    model = create_model(name, num_classes=3, weights="random").eval()
    assert model.num_features == features
    with torch.no_grad():
        assert model.forward_features(torch.zeros(1, 3, 224, 224)).shape == (1, features)


def test_hidden_layer_and_dropout():
    head = make_head(512, 4, hidden=128, dropout=0.2)
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear"]
    assert head(torch.zeros(3, 512)).shape == (3, 4)
    assert [type(m).__name__ for m in make_head(512, 4, dropout=0.5)] == ["Dropout", "Linear"]


def test_bad_head_arguments_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        make_head(512, 1)
    with pytest.raises(ValueError, match="dropout"):
        make_head(512, 3, dropout=1.5)


def test_unknown_backbone_names_close_matches():
    with pytest.raises(ValueError, match="unknown backbone 'resnet_18'"):
        create_model("resnet_18", num_classes=3, weights="random")
