"""--strategy auto: the rule on synthetic statistics, statistics of real folders, and a run."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from PIL import Image

from transferlab.api import fine_tune
from transferlab.config import TrainConfig
from transferlab.data import load_splits
from transferlab.finetune.auto import (
    DEEP_FROM,
    DatasetStats,
    choose,
    dataset_stats,
    resolve_auto,
)
from transferlab.finetune.strategies import plan_phases

NAMES = ["stem", "stage1", "stage2", "stage3", "head"]
PHOTOS = DatasetStats(num_classes=10, train_images=300, images_per_class=30, min_per_class=30,
                      max_per_class=30, median_short_side=384, median_long_side=512,
                      grayscale_fraction=0.0)


BIG = replace(PHOTOS, images_per_class=DEEP_FROM, train_images=10 * DEEP_FROM)
GRAY = replace(BIG, grayscale_fraction=1.0)


def test_below_deep_from_every_domain_gets_a_linear_probe():
    for stats in (PHOTOS, replace(PHOTOS, grayscale_fraction=1.0),
                  replace(BIG, images_per_class=DEEP_FROM - 1)):
        c = choose(stats)
        assert (c.strategy, c.train_top, c.image_size) == ("feature-extraction", 0, None)
        assert (c.epochs, c.class_weighting) == (50, "none")
        assert any("linear probe" in r for r in c.reasons)


def test_much_data_is_lp_ft_of_every_group():
    c = choose(BIG)
    assert (c.strategy, c.train_top, c.probe_epochs) == ("two-phase", None, 50)
    assert (c.head_lr, c.body_lr) == (1e-4, 1e-5)


def test_a_far_domain_is_named_but_treated_alike():
    """Measured on magnetic_tile: fine-tuning did not beat the probe there either."""
    far, near = choose(GRAY), choose(BIG)
    assert any("far from ImageNet" in r for r in far.reasons)
    assert (far.strategy, far.body_lr) == (near.strategy, near.body_lr)


def test_imbalanced_classes_get_balanced_weights():
    tiles = replace(PHOTOS, num_classes=6, images_per_class=75, min_per_class=26,
                    max_per_class=762, train_images=1076, grayscale_fraction=1.0)
    c = choose(tiles)  # magnetic_tile's training split
    assert (c.strategy, c.class_weighting) == ("feature-extraction", "balanced")
    assert any("26 to 762 images" in r for r in c.reasons)
    assert choose(replace(tiles, min_per_class=300)).class_weighting == "none"  # 2.5x
    cfg = resolve_auto(TrainConfig(data="x", strategy="auto"), tiles)
    assert cfg.class_weighting == "balanced" and "class_weighting=balanced" in cfg.notes[0]


def test_epochs_follow_a_fixed_image_budget():
    few = choose(replace(BIG, num_classes=2, train_images=200))
    more = choose(replace(BIG, num_classes=5, train_images=500))
    assert few.epochs == 10 and more.epochs == 6  # clipped at 10; 3000 / 500
    huge = choose(replace(BIG, images_per_class=2000, train_images=200_000))
    assert huge.epochs == 3  # clipped from below


def test_small_images_train_at_low_resolution():
    assert choose(replace(PHOTOS, median_short_side=64, median_long_side=64)).image_size == 128
    assert choose(PHOTOS).image_size is None


def test_resolve_auto_fills_only_unset_fields_and_writes_notes():
    cfg = TrainConfig(data="x", strategy="auto", epochs=4, image_size=160, train_top=2)
    out = resolve_auto(cfg, BIG, NAMES)
    assert out.strategy == "two-phase"
    assert (out.epochs, out.image_size, out.train_top) == (4, 160, 2)  # yours win
    assert out.head_lr == 1e-4 and out.body_lr == 1e-5
    assert out.notes[0].startswith("auto: two-phase, train_top=2, epochs=4")
    assert any("kept your settings train_top=2, epochs=4, image_size=160" in n
               for n in out.notes)
    assert cfg.strategy == "auto" and cfg.notes == []  # the input is not modified
    assert resolve_auto(out, BIG) is out  # nothing to resolve
    assert resolve_auto(TrainConfig(data="x", strategy="auto"), PHOTOS).strategy == (
        "feature-extraction")


def test_plan_phases_resolves_auto_from_stats():
    with pytest.raises(ValueError, match="needs dataset statistics"):
        plan_phases(TrainConfig(data="x", strategy="auto"), NAMES)
    probe, ft = plan_phases(TrainConfig(data="x", strategy="auto"), NAMES, stats=BIG)
    assert (probe.name, probe.train_top, ft.train_top) == ("probe", 0, None)
    assert ft.lrs["head"] == 1e-4 and ft.lrs["stage3"] == 1e-5
    (fe,) = plan_phases(TrainConfig(data="x", strategy="auto"), NAMES, stats=PHOTOS)
    assert fe.head_only


def test_dataset_stats_of_the_sample_photos(sample_root):
    stats = dataset_stats(load_splits(sample_root))
    assert (stats.num_classes, stats.train_images, stats.images_per_class) == (4, 120, 30)
    assert stats.grayscale_fraction == 0.0
    assert 100 < stats.median_short_side <= stats.median_long_side <= 512


def test_dataset_stats_see_grayscale(sample_root, tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    photos = sorted((sample_root / "train" / "baklava").iterdir())[:8]
    for i, path in enumerate(photos):
        with Image.open(path) as img:
            img.convert("L").resize((80, 60)).save(tmp_path / "ab"[i % 2] / f"{i}.jpg")
    stats = dataset_stats(load_splits(tmp_path, val_fraction=0.25))
    assert stats.grayscale_fraction == 1.0
    assert (stats.median_short_side, stats.median_long_side) == (60, 80)
    assert stats.images_per_class == 3
    assert choose(stats).image_size == 128  # small images: BiT's low resolution


def test_fine_tune_with_auto_records_its_choice(tiny_data, tmp_path):
    cfg = TrainConfig(data=str(tiny_data), strategy="auto", out=str(tmp_path), epochs=2,
                      batch_size=8, image_size=64)
    result = fine_tune(cfg, progress=False)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["strategy"] == "feature-extraction"  # 6 images per class, photos
    assert saved["notes"][0].startswith("auto: feature-extraction")
    assert any("6 training images per class" in n for n in saved["notes"])
    assert result.run_dir.name.endswith("feature-extraction")
