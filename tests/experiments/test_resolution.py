"""auto's resolution search: held-out training images only, the lowest probe loss wins."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from transferlab.api import fine_tune
from transferlab.config import TrainConfig
from transferlab.data import load_splits
from transferlab.experiments import resolution
from transferlab.experiments.resolution import (
    ResolutionChoice,
    _inner_split,
    candidate_sizes,
    pick_resolution,
)


def test_candidates_are_the_native_size_then_smaller_ones():
    assert candidate_sizes(224) == [224, 160, 128, 96]
    assert candidate_sizes(128) == [128, 96]
    assert ResolutionChoice(224, 224).image_size is None
    assert ResolutionChoice(96, 224).image_size == 96


def test_inner_split_holds_out_training_images_per_class(tiny_data):
    splits = load_splits(tiny_data)
    train, val = _inner_split(splits, seed=0)
    assert sorted(train + val) == list(range(len(splits.train)))  # a partition of train
    held = [splits.train[i][1] for i in val]
    assert sorted(set(held)) == list(range(len(splits.classes)))  # every class held out
    assert _inner_split(splits, seed=1) != (train, val)  # seeded
    two = [[s for s in splits.train if s[1] == c][:2] for c in range(len(splits.classes))]
    few = replace(splits, train=sorted(s for pair in two for s in pair))
    assert _inner_split(few, seed=0) is None  # 2 per class: too few to hold any out


def test_pick_resolution_never_reads_the_validation_images(tiny_data, tmp_path):
    splits = load_splits(tiny_data)
    # validation files that do not exist: the search must not need them
    blind = replace(splits, val=[(str(tmp_path / "missing.jpg"), 0)])
    cfg = TrainConfig(data=str(tiny_data), cache_dir=str(tmp_path / "cache"), batch_size=8)
    choice = pick_resolution(cfg, blind, device=torch.device("cpu"), candidates=(128, 96))
    assert [s["size"] for s in choice.scores] == [224, 128, 96]
    losses = {s["size"]: s["inner_val_loss"] for s in choice.scores}
    best = min(losses.values())
    assert losses[choice.size] <= best * 1.01
    assert all(0 <= s["inner_val_acc"] <= 1 for s in choice.scores)
    assert f"resolution {choice.size} px" in choice.note()


def test_auto_records_the_measured_resolution(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(resolution, "CANDIDATES", (96,))
    result = fine_tune(TrainConfig(data=str(tiny_data), strategy="auto", out=str(tmp_path),
                                   epochs=2, batch_size=8, cache_dir=str(tmp_path / "c")),
                       progress=False)
    saved = json.loads((result.run_dir / "config.json").read_text())
    note = next(n for n in saved["notes"] if "chosen by a linear probe" in n)
    chosen = int(note.split("resolution ")[1].split(" px")[0])
    assert (saved["image_size"] or 224) == chosen
    assert "224 px loss" in note and "96 px loss" in note


@pytest.mark.parametrize("size", [64])
def test_your_image_size_is_kept(tiny_data, tmp_path, size):
    result = fine_tune(TrainConfig(data=str(tiny_data), strategy="auto", out=str(tmp_path),
                                   epochs=1, batch_size=8, image_size=size), progress=False)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["image_size"] == size
    assert not any("chosen by a linear probe" in n for n in saved["notes"])
