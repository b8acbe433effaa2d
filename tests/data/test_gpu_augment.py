"""Batched device augmentation: crop boxes, resampling, flips, colour jitter, presets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import functional as TF

from transferlab.data.gpu_augment import (
    DeviceAugment,
    center_crop,
    color_jitter,
    random_resized_crop_boxes,
    resized_crop,
)

CFG = {"input_size": (3, 32, 32), "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3),
       "interpolation": "bicubic", "crop_pct": 0.875}


def test_crop_boxes_follow_scale_and_ratio_and_the_generator():
    g = torch.Generator().manual_seed(0)
    boxes = random_resized_crop_boxes(500, 100, 80, scale=(0.35, 1.0), generator=g)
    left, top, w, h = boxes.unbind(1)
    assert bool(((left >= 0) & (top >= 0) & (left + w <= 80) & (top + h <= 100)).all())
    area = w * h / (100 * 80)
    assert float(area.min()) > 0.3 and float(area.max()) <= 1.0 + 1e-6
    ratio = w / h
    assert float(ratio.min()) > 3 / 4 - 0.05 and float(ratio.max()) < 4 / 3 + 0.05
    again = random_resized_crop_boxes(500, 100, 80, scale=(0.35, 1.0),
                                      generator=torch.Generator().manual_seed(0))
    assert torch.equal(boxes, again)


def test_impossible_scale_falls_back_to_the_centre_crop():
    boxes = random_resized_crop_boxes(3, 10, 40, scale=(5.0, 6.0))  # never fits
    # in ratio 4 > 4/3: the widest centred crop with ratio 4/3
    assert boxes[0].tolist() == [(40 - round(10 * 4 / 3)) // 2, 0, round(10 * 4 / 3), 10]


def test_full_box_is_the_identity_and_flip_mirrors():
    x = torch.rand(2, 3, 16, 20)
    full = torch.tensor([[0, 0, 20, 16]] * 2, dtype=torch.float32)
    torch.testing.assert_close(resized_crop(x, full, (16, 20)), x, rtol=0, atol=1e-5)
    flipped = resized_crop(x, full, (16, 20), flip=torch.tensor([True, False]))
    torch.testing.assert_close(flipped[0], x[0].flip(-1), rtol=0, atol=1e-5)
    torch.testing.assert_close(flipped[1], x[1], rtol=0, atol=1e-5)


def test_crop_resamples_the_box_like_interpolate():
    x = torch.rand(1, 3, 40, 40)
    box = torch.tensor([[8.0, 4.0, 20.0, 24.0]])
    out = resized_crop(x, box, 12)
    region = x[:, :, 4:28, 8:28]
    expected = F.interpolate(region, size=(12, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_colour_jitter_equals_torchvision_without_clipping():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8) * 0.3 + 0.35
    b, c, s = torch.empty(3, 4).uniform_(0.9, 1.1)
    out = color_jitter(x, b, c, s)
    expected = torch.stack([
        TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[i], float(b[i])),
                                                float(c[i])), float(s[i]))
        for i in range(4)])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_eval_preset_is_centre_crop_and_normalise():
    x = torch.randint(0, 256, (2, 37, 37, 3), dtype=torch.uint8)
    out = DeviceAugment(CFG, "none")(x)
    crop = center_crop(x, 32).permute(0, 3, 1, 2).float() / 255
    expected = TF.normalize(crop, CFG["mean"], CFG["std"])
    torch.testing.assert_close(out, expected)
    top = int(round((37 - 32) / 2))
    assert torch.equal(center_crop(x, 32), x[:, top:top + 32, top:top + 32])


def test_standard_preset_is_seeded_and_shaped():
    x = torch.randint(0, 256, (6, 36, 36, 3), dtype=torch.uint8)
    aug = DeviceAugment(CFG, "standard")
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == (6, 3, 32, 32) and a.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b) and not torch.equal(a, c)
    lo = (0 - max(CFG["mean"])) / min(CFG["std"])
    hi = (1 - min(CFG["mean"])) / min(CFG["std"])
    assert lo - 1e-5 <= float(a.min()) and float(a.max()) <= hi + 1e-5
    assert math.isfinite(float(a.sum()))


def test_randaugment_is_refused():
    with pytest.raises(ValueError, match="RandAugment is PIL-only"):
        DeviceAugment(CFG, "strong")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_same_batch_as_the_cpu():
    x = torch.randint(0, 256, (8, 36, 36, 3), dtype=torch.uint8)
    aug = DeviceAugment(CFG, "standard")
    cpu = aug(x, torch.Generator().manual_seed(5))
    gpu = aug(x.cuda(), torch.Generator().manual_seed(5)).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-4)
