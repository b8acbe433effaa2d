"""Tensor inspector: per-group activation statistics and feature-map thumbnails."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.data.datasets import load_rgb
from transferlab.data.transforms import build_transforms
from transferlab.inspect.activations import feature_map_grid, inspect_activations
from transferlab.models.factory import create_model
from transferlab.models.summary import output_shapes


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("tf_efficientnet_lite0", weights="random", num_classes=3)


@pytest.fixture(scope="module")
def image(sample_root):
    return next((sample_root / "val" / "baklava").iterdir())


def test_one_entry_per_group_with_the_summary_shapes(model, image):
    acts = inspect_activations(model, image)
    assert [a.name for a in acts] == model.group_names
    shapes = output_shapes(model)
    assert {a.name: a.shape for a in acts} == shapes
    assert acts[-1].shape == [3]


def test_statistics_match_the_tensor(model, image):
    x = build_transforms(model.data_config, train=False)(load_rgb(image)).unsqueeze(0)
    model.eval()
    with torch.no_grad():
        logits = model(x)[0]
    head = inspect_activations(model, image)[-1]
    assert head.mean == pytest.approx(float(logits.mean()), rel=1e-5, abs=1e-6)
    assert head.std == pytest.approx(float(logits.std()), rel=1e-5, abs=1e-6)
    assert head.min == pytest.approx(float(logits.min()), rel=1e-5, abs=1e-6)
    assert head.max == pytest.approx(float(logits.max()), rel=1e-5, abs=1e-6)
    assert head.feature_maps.shape[0] == 0  # logits are a vector: no maps


def test_zero_fraction_sees_the_relu(model, image):
    stem = inspect_activations(model, image)[0]  # BatchNormAct2d ends with ReLU6
    assert 0.0 < stem.zero_fraction < 1.0
    assert stem.min == 0.0


def test_feature_maps_are_uint8_thumbnails_scaled_per_channel(model, image):
    stem = inspect_activations(model, image, max_maps=5, thumb_size=20)[0]
    maps = stem.feature_maps
    assert maps.dtype == np.uint8 and maps.shape[0] == 5
    assert max(maps.shape[1:]) <= 20
    for channel in maps:
        if channel.max() != channel.min():
            assert channel.min() == 0 and channel.max() == 255
    assert inspect_activations(model, image, max_maps=0)[0].feature_maps.shape[0] == 0


def test_tensor_input_equals_path_input(model, image):
    x = build_transforms(model.data_config, train=False)(load_rgb(image))
    a = inspect_activations(model, x)
    b = inspect_activations(model, image)
    assert [g.mean for g in a] == pytest.approx([g.mean for g in b], rel=1e-6, abs=1e-7)


def test_restores_mode_and_removes_hooks(model, image):
    model.train()
    inspect_activations(model, image)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    model.eval()


def test_bad_inputs_are_named(model, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("not a picture")
    with pytest.raises(ValueError, match="notes.jpg"):
        inspect_activations(model, fake)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        inspect_activations(model, torch.zeros(2, 3, 224, 224))
    with pytest.raises(ValueError, match="max_maps"):
        inspect_activations(model, torch.zeros(3, 224, 224), max_maps=-1)


def test_feature_map_grid_png():
    maps = np.stack([np.full((4, 4), v, np.uint8) for v in (0, 100, 200, 255, 50)])
    png = feature_map_grid(maps, columns=3, pad=1, min_cell=8)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.mode == "L"
    # 3 columns x 2 rows of 8-pixel cells (4 px enlarged x2) with 1 px padding
    assert img.size == (3 * 9 + 1, 2 * 9 + 1)
    pixels = np.asarray(img)
    assert pixels[1, 1 + 9] == 100 and pixels[1 + 9, 1] == 255
    with pytest.raises(ValueError, match="non-empty"):
        feature_map_grid(np.zeros((0, 4, 4), np.uint8))
