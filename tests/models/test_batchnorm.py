"""The BatchNorm policy on real photos: why the default keeps BatchNorm in inference mode.

The pretrained Lite0 with its own ImageNet classifier, on 32 photos of the shipped sample:
putting the model in training mode with BatchNorm on batch statistics (``"freeze"`` with every
group trainable, as fine-tuning all groups does) changes its predictions before any weight
moves; the default ``"eval"`` leaves them exactly as in inference mode.
"""

import pytest
import torch

from transferlab.data import build_transforms, load_splits, make_loader
from transferlab.finetune.freeze import train_top
from transferlab.models import create_model
from transferlab.models.batchnorm import BN_POLICIES, apply_bn_policy, check_bn_policy


@pytest.fixture(scope="module")
def photos(sample_root):
    model = create_model("tf_efficientnet_lite0")  # offline weights, ImageNet head kept
    splits = load_splits(sample_root)
    loader = make_loader(splits.train, build_transforms(model.data_config, train=False),
                         batch_size=32, shuffle=True, seed=0)
    x, _ = next(iter(loader))
    return model, x


def _train_mode_logits(model, x, policy):
    model.bn_policy = policy
    train_top(model, None)  # every group trainable
    model.train()
    with torch.no_grad():
        return model(x)


def test_batch_statistics_change_a_pretrained_models_predictions(photos):
    model, x = photos
    with torch.no_grad():
        reference = model.eval()(x)
    moved = _train_mode_logits(model, x, "freeze")
    agree = (moved.argmax(1) == reference.argmax(1)).float().mean()
    # measured: 30 of 32 ImageNet top-1 predictions change; the logits move by 108 % of
    # their norm
    assert agree < 0.5
    assert (moved - reference).norm() / reference.norm() > 0.5


def test_eval_policy_trains_with_the_pretrained_statistics(photos):
    model, x = photos
    with torch.no_grad():
        reference = model.eval()(x)
    state = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    kept = _train_mode_logits(model, x, "eval")
    torch.testing.assert_close(kept, reference)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_policies_are_checked():
    assert check_bn_policy("eval") == "eval" and set(BN_POLICIES) == {"eval", "freeze", "train"}
    with pytest.raises(ValueError, match="bn_policy must be one of eval, freeze, train"):
        check_bn_policy("sometimes")
    layer = torch.nn.BatchNorm2d(3).train()
    apply_bn_policy(layer, "train")
    assert layer.training
    apply_bn_policy(layer, "eval")
    assert not layer.training
