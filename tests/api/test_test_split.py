"""The untouched figure: a test split that influences nothing, reported with its interval."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transferlab.api import fine_tune
from transferlab.data import DataError, load_splits

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "transferlab" / "sample_data" / "food4"


def _dataset(dest: Path, *, test: bool) -> Path:
    """4 classes x 6 train / 3 val (+ 4 test drawn from the sample's other val photos)."""
    for cls in sorted(p.name for p in (SAMPLE / "train").iterdir()):
        train = sorted((SAMPLE / "train" / cls).iterdir())[:6]
        val = sorted((SAMPLE / "val" / cls).iterdir())
        for split, files in (("train", train), ("val", val[:3]), ("test", val[3:7])):
            if split == "test" and not test:
                continue
            out = dest / split / cls
            out.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy(f, out / f.name)
    return dest


def _train(data: Path, out: Path, name: str):
    return fine_tune(data=str(data), out=str(out), name=name, strategy="feature-extraction",
                     epochs=6, batch_size=8, seed=1, progress=False)


def test_test_images_influence_nothing(tmp_path):
    with_test = _train(_dataset(tmp_path / "a", test=True), tmp_path / "runs", "with")
    without = _train(_dataset(tmp_path / "b", test=False), tmp_path / "runs", "without")

    # same weights, same temperature, same epochs chosen: the test folder changed nothing
    wa = load_file(str(with_test.run_dir / "best.safetensors"))
    wb = load_file(str(without.run_dir / "best.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert with_test.model.temperature == without.model.temperature
    assert [r["val_loss"] for r in with_test.history] == [r["val_loss"] for r in without.history]

    # ...and it is reported: accuracy, interval, balanced and per-class accuracy on 16 images
    doc = json.loads((with_test.run_dir / "evaluation.json").read_text())
    test = doc["test"]
    assert test["num_images"] == 16 and test["split"] == "test"
    lo, hi = test["accuracy_interval"]
    assert 0 <= lo <= test["accuracy"] <= hi <= 1 and hi - lo > 0.1  # 16 images: wide
    assert set(test["per_class_accuracy"]) == set(with_test.test_evaluation.classes)
    assert "balanced_accuracy" in test
    assert doc["calibration"]["measured_on"] == "test"
    assert "untouched" in doc["note"]
    report = (with_test.run_dir / "report.md").read_text()
    assert "test accuracy" in report and "untouched" in report

    # without a test split the validation figure is called optimistic
    doc_b = json.loads((without.run_dir / "evaluation.json").read_text())
    assert doc_b["test"] is None and "optimistic" in doc_b["note"]
    assert doc_b["calibration"]["measured_on"] == "val"
    assert "optimistic" in (without.run_dir / "report.md").read_text()


def test_holdout_test_is_stratified_seeded_and_apart_from_training(tmp_path):
    data = _dataset(tmp_path / "d", test=False)
    plain = load_splits(data, seed=3)
    held = load_splits(data, seed=3, test_fraction=0.34)
    again = load_splits(data, seed=3, test_fraction=0.34)
    other = load_splits(data, seed=4, test_fraction=0.34)
    assert held.test == again.test and held.test != other.test
    assert held.val == plain.val  # the validation split is untouched
    assert not set(held.test) & set(held.train)
    assert sorted(held.test + held.train) == sorted(plain.train)
    per_class = torch.bincount(torch.tensor([y for _, y in held.test]), minlength=4)
    assert per_class.tolist() == [2, 2, 2, 2]  # 6 x 0.34 rounds to 2 in every class
    # the test images do not change with --per-class (data-size sweeps share one test split)
    small = load_splits(data, seed=3, test_fraction=0.34, per_class=2)
    assert small.test == held.test and len(small.train) == 8
    assert any("test split" in n for n in held.notes)


def test_holdout_test_refuses_a_dataset_with_a_test_folder(tmp_path):
    data = _dataset(tmp_path / "t", test=True)
    with pytest.raises(DataError, match="already has a test folder"):
        load_splits(data, test_fraction=0.2)
