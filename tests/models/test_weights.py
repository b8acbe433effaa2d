"""Weight sources: packaged offline weights, local files, the hub — never silently random."""

import pickle

import pytest
import torch
from safetensors.torch import save_file
from timm.data import ImageNetInfo

from transferlab.data import build_transforms, load_rgb
from transferlab.models import WeightsUnavailableError, create_model
from transferlab.models.weights import load_state_dict_file


@pytest.fixture(scope="module")
def lite0_imagenet():
    return create_model("tf_efficientnet_lite0", weights="package").eval()


def test_packaged_lite0_weights_classify_real_photos(lite0_imagenet, sample_root):
    """The order-based mapping is right: breakfast burritos are ImageNet 'burrito'."""
    model = lite0_imagenet
    assert model.weights.source == "package"
    assert model.data_config["mean"] == (0.5, 0.5, 0.5)  # Lite's own normalisation
    tf = build_transforms(model.data_config, train=False)
    files = sorted((sample_root / "val" / "breakfast_burrito").iterdir())[:8]
    with torch.no_grad():
        probs = model(torch.stack([tf(load_rgb(f)) for f in files])).softmax(1)
    names = [ImageNetInfo().index_to_description(int(i)) for i in probs.argmax(1)]
    assert sum(n == "burrito" for n in names) >= 6, names
    # Random weights would spread probability thinly; real ones are confident.
    assert float(probs.max(1).values.mean()) > 0.5


def test_new_head_keeps_the_pretrained_body(lite0_imagenet):
    model = create_model("tf_efficientnet_lite0", num_classes=4, weights="package")
    ref = lite0_imagenet.body.state_dict()
    for key, value in model.body.state_dict().items():
        assert torch.equal(value, ref[key]), key


def test_local_safetensors_and_pth_files(tmp_path, lite0_imagenet):
    state = {f"body.{k}": v.clone() for k, v in lite0_imagenet.body.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    for path in (tmp_path / "w.safetensors", tmp_path / "w.pth"):
        model = create_model("tf_efficientnet_lite0", num_classes=3, weights=str(path))
        assert model.weights.source == "file"
        got = model.body.state_dict()
        assert all(torch.equal(got[k], v) for k, v in lite0_imagenet.body.state_dict().items())


def test_weights_file_of_another_architecture_is_refused(tmp_path):
    save_file({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.safetensors")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        create_model("resnet18", num_classes=3, weights=str(tmp_path / "other.safetensors"))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_crafted_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"weight": _Evil()}, fh)
    with pytest.raises(WeightsUnavailableError, match="refusing to load"):
        load_state_dict_file(path)
    assert "pwned" not in capsys.readouterr().out


def test_no_weights_fails_with_instructions_instead_of_random():
    # HF_HUB_OFFLINE=1 (set in conftest): the hub is unreachable, as on this machine.
    with pytest.raises(WeightsUnavailableError) as info:
        create_model("resnet18", num_classes=3, weights="auto")
    message = str(info.value)
    assert "resnet18" in message and "--weights" in message


def test_package_source_for_a_model_without_a_package():
    with pytest.raises(WeightsUnavailableError, match="no packaged offline weights"):
        create_model("resnet18", num_classes=3, weights="package")


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="nope.safetensors"):
        create_model("resnet18", num_classes=3, weights=str(tmp_path / "nope.safetensors"))


def test_corrupt_safetensors_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04 not safetensors at all")
    with pytest.raises(WeightsUnavailableError, match="bad.safetensors"):
        load_state_dict_file(bad)
