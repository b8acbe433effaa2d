"""Image to tensor: RGB loading of every mode, model-specific transforms, Dataset, DataLoader."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import resolve_data_config

import transferlab
from transferlab.data import (
    DataError,
    ImageDataset,
    build_transforms,
    load_rgb,
    load_splits,
    make_loader,
)

SAMPLE = Path(transferlab.__file__).parent / "sample_data" / "food4"


@pytest.fixture(scope="module")
def cfgs() -> dict[str, dict[str, Any]]:
    """The preprocessing each model was pretrained with, as timm resolves it."""
    return {
        name: resolve_data_config(model=timm.create_model(name, pretrained=False))
        for name in ("resnet18", "tf_efficientnet_lite0")
    }


def find(transform: Any, type_name: str) -> Any:
    matches = [t for t in transform.transforms if type(t).__name__ == type_name]
    assert len(matches) == 1, f"{type_name} not in {transform}"
    return matches[0]


def solid(value: int, size: tuple[int, int] = (300, 260)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


# ----------------------------------------------------------------------------- build_transforms


def test_eval_transform_uses_each_models_normalisation(cfgs: dict[str, dict[str, Any]]) -> None:
    resnet = build_transforms(cfgs["resnet18"], train=False)
    lite = build_transforms(cfgs["tf_efficientnet_lite0"], train=False)
    assert find(resnet, "Normalize").mean.tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert find(lite, "Normalize").mean.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert find(lite, "Normalize").std.tolist() == pytest.approx([0.5, 0.5, 0.5])
    # A mid-grey image lands near 0 for lite0 but not for resnet18: the stats really apply.
    grey = solid(128)
    assert lite(grey).mean().item() == pytest.approx((128 / 255 - 0.5) / 0.5, abs=1e-3)
    expected = [
        (128 / 255 - m) / s
        for m, s in zip(cfgs["resnet18"]["mean"], cfgs["resnet18"]["std"], strict=True)
    ]
    assert resnet(grey).mean(dim=(1, 2)).tolist() == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("name", ["resnet18", "tf_efficientnet_lite0"])
def test_eval_transform_resizes_by_crop_pct_then_crops(
    cfgs: dict[str, dict[str, Any]], name: str
) -> None:
    cfg = cfgs[name]
    tf = build_transforms(cfg, train=False)
    size = cfg["input_size"][-1]
    resize = find(tf, "Resize")
    assert resize.size == math.floor(size / cfg["crop_pct"])  # 235 for resnet18, 256 for lite0
    assert resize.interpolation.value == cfg["interpolation"]
    assert tuple(find(tf, "CenterCrop").size) == (size, size)
    out = tf(solid(10, (500, 333)))
    assert out.shape == (3, size, size) and out.dtype == torch.float32


def test_transforms_follow_a_custom_config() -> None:
    cfg = {
        "input_size": (3, 96, 96),
        "interpolation": "bilinear",
        "mean": (0.1, 0.2, 0.3),
        "std": (0.9, 0.8, 0.7),
        "crop_pct": 1.0,
        "crop_mode": "center",
    }
    for train in (False, True):
        tf = build_transforms(cfg, train=train)
        assert tf(solid(200)).shape == (3, 96, 96)
        assert find(tf, "Normalize").std.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert find(build_transforms(cfg, train=False), "Resize").size == 96


def test_train_transform_standard(cfgs: dict[str, dict[str, Any]]) -> None:
    tf = build_transforms(cfgs["resnet18"], train=True)
    crop = find(tf, "RandomResizedCropAndInterpolation")
    assert crop.scale == (0.35, 1.0) and crop.size == (224, 224)
    assert find(tf, "RandomHorizontalFlip").p == 0.5
    jitter = find(tf, "ColorJitter")
    assert jitter.brightness == jitter.contrast == jitter.saturation == pytest.approx((0.8, 1.2))
    assert find(tf, "Normalize").mean.tolist() == pytest.approx([0.485, 0.456, 0.406])
    torch.manual_seed(0)
    a = tf(Image.open(sorted(SAMPLE.glob("train/*/*.jpg"))[0]))
    b = tf(Image.open(sorted(SAMPLE.glob("train/*/*.jpg"))[0]))
    assert a.shape == (3, 224, 224) and not torch.equal(a, b)  # random each call


def test_train_transform_strong_crops_harder(cfgs: dict[str, dict[str, Any]]) -> None:
    tf = build_transforms(cfgs["tf_efficientnet_lite0"], train=True, augment="strong")
    assert find(tf, "RandomResizedCropAndInterpolation").scale == (0.08, 1.0)
    assert find(tf, "Normalize").mean.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert tf(solid(90)).shape == (3, 224, 224)


def test_augment_none_is_the_eval_transform(cfgs: dict[str, dict[str, Any]]) -> None:
    cfg = cfgs["resnet18"]
    train_tf = build_transforms(cfg, train=True, augment="none")
    assert repr(train_tf) == repr(build_transforms(cfg, train=False))
    img = Image.open(sorted(SAMPLE.glob("val/*/*.jpg"))[0])
    assert torch.equal(train_tf(img), train_tf(img))


def test_build_transforms_rejects_bad_input(cfgs: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="unknown augment 'heavy'"):
        build_transforms(cfgs["resnet18"], train=True, augment="heavy")
    with pytest.raises(ValueError, match="mean, std"):
        build_transforms(
            {"input_size": (3, 224, 224), "interpolation": "bicubic", "crop_pct": 0.9}, train=False
        )


# ----------------------------------------------------------------------------- load_rgb


def test_load_rgb_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink
    img = load_rgb(path)
    assert img.mode == "RGB"
    r, g, b = img.getpixel((8, 8))
    assert r > 230 and g < 30 and b < 30


def test_load_rgb_16bit_png_is_rescaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    ramp = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == "I;16"
    pixels = np.asarray(load_rgb(path))
    assert pixels.shape == (32, 64, 3)
    assert pixels.mean() == pytest.approx(127.5, abs=1.0)  # plain convert() gives ~254
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[-1, -1].tolist() == [255, 255, 255]


def test_load_rgb_rgba_composites_on_white(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # red, but fully transparent
    img.paste((0, 0, 255, 255), (0, 0, 5, 10))  # left half opaque blue
    img.save(path)
    out = load_rgb(path)
    assert out.getpixel((8, 5)) == (255, 255, 255)
    assert out.getpixel((2, 5)) == (0, 0, 255)


def test_load_rgb_palette_png(tmp_path: Path) -> None:
    plain, transparent = tmp_path / "p.png", tmp_path / "pt.png"
    img = Image.new("P", (6, 6), 0)
    img.putpalette([0, 0, 0, 0, 200, 0] + [0] * (254 * 3))
    img.paste(1, (0, 0, 3, 6))
    img.save(plain)
    img.save(transparent, transparency=0)
    assert load_rgb(plain).getpixel((5, 0)) == (0, 0, 0)
    assert load_rgb(transparent).getpixel((5, 0)) == (255, 255, 255)
    assert load_rgb(transparent).getpixel((0, 0)) == (0, 200, 0)


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [("L", 77, (77, 77, 77)), ("LA", (10, 0), (255, 255, 255)), ("1", 1, (255, 255, 255))],
)
def test_load_rgb_grey_modes(tmp_path: Path, mode: str, color: Any, expected: tuple) -> None:
    path = tmp_path / "grey.png"
    Image.new(mode, (4, 4), color).save(path)
    out = load_rgb(path)
    assert out.mode == "RGB" and out.getpixel((1, 1)) == expected


def test_load_rgb_applies_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img.save(path, exif=exif, quality=95)
    out = load_rgb(path)
    assert out.size == (20, 40)  # width and height swapped
    r, _, b = out.getpixel((10, 5))
    assert r > 200 and b < 60  # stored left edge is now the top
    r, _, b = out.getpixel((10, 35))
    assert b > 200 and r < 60


def test_load_rgb_real_grayscale_tile() -> None:
    tiles = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "magnetic_tile"
    if not tiles.is_dir():
        pytest.skip(f"shared data not found at {tiles.resolve()} (see ../shared/data/README.md)")
    path = sorted((tiles / "fray").glob("*.jpg"))[0]
    assert Image.open(path).mode == "L"
    out = np.asarray(load_rgb(path))
    assert out.ndim == 3 and (out[..., 0] == out[..., 2]).all()


# ----------------------------------------------------------------------------- dataset + loader


@pytest.fixture(scope="module")
def small_cfg() -> dict[str, Any]:
    return {
        "input_size": (3, 32, 32),
        "interpolation": "bilinear",
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
        "crop_pct": 1.0,
        "crop_mode": "center",
    }


def test_image_dataset_returns_tensor_and_label(small_cfg: dict[str, Any]) -> None:
    splits = load_splits(SAMPLE, validate=False)
    ds = ImageDataset(splits.val, build_transforms(small_cfg, train=False))
    assert len(ds) == 60
    x, y = ds[59]
    assert x.shape == (3, 32, 32) and y == 3
    assert ds.labels == [label for _, label in splits.val]


def test_image_dataset_names_a_file_that_broke(tmp_path: Path, small_cfg: dict[str, Any]) -> None:
    path = tmp_path / "was_fine.jpg"
    shutil.copyfile(sorted(SAMPLE.glob("val/*/*.jpg"))[0], path)
    ds = ImageDataset([(str(path), 0)], build_transforms(small_cfg, train=False))
    assert ds[0][0].shape == (3, 32, 32)
    path.write_bytes(path.read_bytes()[:300])  # truncated after scanning
    with pytest.raises(DataError, match="was_fine.jpg"):
        ds[0]
    path.unlink()
    with pytest.raises(DataError, match="cannot load image .*was_fine.jpg"):
        ds[0]


def test_make_loader_is_seeded(small_cfg: dict[str, Any]) -> None:
    samples = load_splits(SAMPLE, validate=False).val
    tf = build_transforms(small_cfg, train=False)

    def order(seed: int) -> list[int]:
        loader = make_loader(samples, tf, batch_size=16, shuffle=True, seed=seed)
        return [int(y) for _, labels in loader for y in labels]

    first = order(0)
    assert first == order(0)
    assert first != order(1)
    assert sorted(first) == sorted(label for _, label in samples)
    loader = make_loader(samples, tf, batch_size=16, shuffle=False, seed=0)
    images, labels = next(iter(loader))
    assert images.shape == (16, 3, 32, 32) and labels.dtype == torch.int64
    assert labels.tolist() == [label for _, label in samples[:16]]


def test_make_loader_workers_repeat_augmentations(small_cfg: dict[str, Any]) -> None:
    """With workers, the seed also fixes each worker's RNG, so augmented batches repeat."""
    samples = load_splits(SAMPLE, validate=False).val[:8]
    tf = build_transforms(small_cfg, train=True)

    def first_batch(seed: int) -> torch.Tensor:
        loader = make_loader(samples, tf, batch_size=4, shuffle=True, seed=seed, num_workers=2)
        return next(iter(loader))[0]

    assert torch.equal(first_batch(3), first_batch(3))
    assert not torch.equal(first_batch(3), first_batch(4))
