"""Splitting: stratified, deterministic, nested subsets, and one class list for all splits."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

import transferlab
from transferlab.data import (
    DataError,
    DatasetSplits,
    load_splits,
    per_class_subset,
    stratified_split,
)

SAMPLE = Path(transferlab.__file__).parent / "sample_data" / "food4"
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CLASS_SIZES = {0: 100, 1: 37, 2: 9, 3: 2}  # imbalanced, with a tiny class


def fake_samples(sizes: dict[int, int] = CLASS_SIZES) -> list[tuple[str, int]]:
    """Path/label pairs only: the split functions never open files."""
    return [(f"/data/c{label}/{i:04d}.jpg", label) for label, n in sizes.items() for i in range(n)]


def copy_class(src: Path, dest: Path, n: int | None = None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.jpg"))[:n]:
        shutil.copyfile(path, dest / path.name)


def make_split_tree(root: Path, train: dict[str, int], val: dict[str, int]) -> Path:
    """root/train/<class> and root/val/<class> with real sample photos."""
    sources = sorted(p for p in (SAMPLE / "train").iterdir() if p.is_dir())
    for split, spec in (("train", train), ("val", val)):
        for i, (name, n) in enumerate(spec.items()):
            copy_class(sources[i % len(sources)], root / split / name, n)
    return root


# ----------------------------------------------------------------------------- stratified_split


def test_stratified_split_is_stratified_and_complete() -> None:
    samples = fake_samples()
    train, val = stratified_split(samples, 0.2, seed=0)
    assert sorted(train + val) == sorted(samples)
    assert not set(train) & set(val)
    val_counts = Counter(label for _, label in val)
    train_counts = Counter(label for _, label in train)
    assert val_counts == {0: 20, 1: 7, 2: 2, 3: 1}
    assert all(train_counts[label] >= 1 for label in CLASS_SIZES)


def test_stratified_split_deterministic_and_seed_dependent() -> None:
    samples = fake_samples()
    assert stratified_split(samples, 0.2, 0) == stratified_split(samples, 0.2, 0)
    assert stratified_split(samples, 0.2, 0) != stratified_split(samples, 0.2, 1)
    assert stratified_split(samples[::-1], 0.2, 0) == stratified_split(samples, 0.2, 0)


def test_stratified_split_class_is_independent_of_other_classes() -> None:
    """Adding a class must not reshuffle the others (each class has its own RNG)."""
    _, val_small = stratified_split(fake_samples({0: 50, 1: 20}), 0.2, 3)
    _, val_big = stratified_split(fake_samples({0: 50, 1: 20, 2: 30}), 0.2, 3)
    assert [s for s in val_big if s[1] < 2] == val_small


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_split_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(DataError, match=f"val_fraction.*{fraction}"):
        stratified_split(fake_samples(), fraction, 0)


def test_stratified_split_rejects_single_image_class() -> None:
    with pytest.raises(DataError, match="class 3 has only 1 image"):
        stratified_split(fake_samples({0: 5, 3: 1}), 0.2, 0)


# ----------------------------------------------------------------------------- per_class_subset


def test_per_class_subset_is_nested_across_sizes() -> None:
    samples = fake_samples()
    subsets = {n: set(per_class_subset(samples, n, seed=7)[0]) for n in (1, 5, 10, 50)}
    assert subsets[1] <= subsets[5] <= subsets[10] <= subsets[50]


def test_per_class_subset_counts_and_clipping() -> None:
    subset, clipped = per_class_subset(fake_samples(), 10, seed=0)
    assert Counter(label for _, label in subset) == {0: 10, 1: 10, 2: 9, 3: 2}
    assert clipped == {2: 9, 3: 2}


def test_per_class_subset_deterministic_and_seed_dependent() -> None:
    samples = fake_samples()
    assert per_class_subset(samples, 10, 0) == per_class_subset(samples[::-1], 10, 0)
    assert per_class_subset(samples, 10, 0)[0] != per_class_subset(samples, 10, 1)[0]


def test_per_class_subset_rejects_zero() -> None:
    with pytest.raises(DataError, match="per_class must be at least 1, got 0"):
        per_class_subset(fake_samples(), 0, 0)


# ----------------------------------------------------------------------------- load_splits


def test_load_splits_split_folders_sample_dataset() -> None:
    splits = load_splits(SAMPLE)
    assert isinstance(splits, DatasetSplits)
    assert splits.layout == "split-folders"
    assert splits.classes == ["baklava", "beef_tartare", "bibimbap", "breakfast_burrito"]
    assert (len(splits.train), len(splits.val), splits.test) == (120, 60, None)
    assert splits.bad_files == [] and splits.notes == []
    assert all("/train/" in p for p, _ in splits.train)
    assert all("/val/" in p for p, _ in splits.val)


def test_load_splits_per_class_subsets_only_train_and_nests() -> None:
    small = load_splits(SAMPLE, per_class=5, seed=1, validate=False)
    large = load_splits(SAMPLE, per_class=20, seed=1, validate=False)
    assert Counter(label for _, label in small.train) == {0: 5, 1: 5, 2: 5, 3: 5}
    assert set(small.train) <= set(large.train)
    assert small.val == large.val == load_splits(SAMPLE, validate=False).val
    assert small.notes == []


def test_load_splits_records_clipping_in_notes() -> None:
    splits = load_splits(SAMPLE, per_class=50, validate=False)
    assert len(splits.train) == 120
    assert "class 'bibimbap' has 30 training images; using 30 of 50 requested" in splits.notes
    assert sum("using 30 of 50 requested" in note for note in splits.notes) == 4


def test_load_splits_class_folders_layout(tmp_path: Path) -> None:
    for cls in ("baklava", "bibimbap", "beef_tartare"):
        copy_class(SAMPLE / "train" / cls, tmp_path / cls, 10)
    copy_class(SAMPLE / "train" / "breakfast_burrito", tmp_path / "breakfast_burrito", 3)
    splits = load_splits(tmp_path, val_fraction=0.2, seed=0)
    assert splits.layout == "class-folders" and splits.test is None
    assert Counter(label for _, label in splits.val) == {0: 2, 1: 2, 2: 2, 3: 1}
    assert Counter(label for _, label in splits.train) == {0: 8, 1: 8, 2: 8, 3: 2}
    assert any("stratified" in note for note in splits.notes)
    again = load_splits(tmp_path, val_fraction=0.2, seed=0)
    assert (again.train, again.val) == (splits.train, splits.val)
    assert load_splits(tmp_path, val_fraction=0.2, seed=5).val != splits.val


def test_load_splits_class_folders_single_image_class_is_named(tmp_path: Path) -> None:
    copy_class(SAMPLE / "train" / "baklava", tmp_path / "baklava", 5)
    copy_class(SAMPLE / "train" / "bibimbap", tmp_path / "bibimbap", 1)
    with pytest.raises(DataError, match="class 'bibimbap' .* only 1 usable image"):
        load_splits(tmp_path)


def test_load_splits_val_class_missing_from_train(tmp_path: Path) -> None:
    make_split_tree(tmp_path, train={"a": 3, "b": 3}, val={"a": 2, "b": 2, "c": 2})
    with pytest.raises(DataError, match="class 'c' is in .*val but not in .*train"):
        load_splits(tmp_path)


def test_load_splits_val_lacking_a_train_class(tmp_path: Path) -> None:
    make_split_tree(tmp_path, train={"a": 3, "b": 3, "c": 3}, val={"a": 2, "b": 2})
    with pytest.raises(DataError, match="class 'c' has no folder in .*val"):
        load_splits(tmp_path)


def test_load_splits_enforces_train_labels_on_val_and_test(tmp_path: Path) -> None:
    make_split_tree(tmp_path, train={"a": 3, "b": 3}, val={"a": 2, "b": 2})
    for cls in ("a", "b"):
        copy_class(tmp_path / "val" / cls, tmp_path / "test" / cls)
    splits = load_splits(tmp_path)
    assert splits.test is not None and len(splits.test) == 4
    for split in (splits.train, splits.val, splits.test):
        assert {label for p, label in split if "/a/" in p} == {0}
        assert {label for p, label in split if "/b/" in p} == {1}


def test_load_splits_accepts_validation_alias_and_reports_bad_files(tmp_path: Path) -> None:
    make_split_tree(tmp_path, train={"a": 3, "b": 3}, val={"a": 2, "b": 2})
    (tmp_path / "val").rename(tmp_path / "validation")
    (tmp_path / "validation" / "b" / "empty.jpg").write_bytes(b"")
    splits = load_splits(tmp_path)
    assert len(splits.val) == 4
    assert [(Path(b.path).name, b.reason) for b in splits.bad_files] == [
        ("empty.jpg", "zero bytes")
    ]
    assert "skipped 1 unusable file(s); see bad_files" in splits.notes


def test_load_splits_two_val_folders_is_ambiguous(tmp_path: Path) -> None:
    make_split_tree(tmp_path, train={"a": 3, "b": 3}, val={"a": 2, "b": 2})
    shutil.copytree(tmp_path / "val", tmp_path / "valid")
    with pytest.raises(DataError, match="two val folders"):
        load_splits(tmp_path, validate=False)


def test_load_splits_without_val_folder_holds_out_train(tmp_path: Path) -> None:
    make_split_tree(tmp_path, train={"a": 5, "b": 5}, val={})
    splits = load_splits(tmp_path, val_fraction=0.2, validate=False)
    assert splits.layout == "split-folders"
    assert (len(splits.train), len(splits.val)) == (8, 2)
    assert any(note.startswith("no val folder") for note in splits.notes)


def test_load_splits_val_without_train(tmp_path: Path) -> None:
    make_split_tree(tmp_path, train={}, val={"a": 2, "b": 2})
    with pytest.raises(DataError, match="'val' folder but no 'train' folder"):
        load_splits(tmp_path)


def test_load_splits_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_splits(tmp_path / "missing")
    with pytest.raises(DataError, match="val_fraction"):
        load_splits(SAMPLE, val_fraction=1.0)
    with pytest.raises(DataError, match="per_class must be at least 1, got 0"):
        load_splits(SAMPLE, per_class=0)


def test_load_splits_real_magnetic_tile_imbalanced() -> None:
    tiles = SHARED_DATA / "magnetic_tile"
    if not tiles.is_dir():
        pytest.skip(f"shared data not found at {tiles.resolve()} (see ../shared/data/README.md)")
    splits = load_splits(tiles, per_class=50, seed=0, validate=False)
    assert splits.layout == "class-folders"
    assert splits.classes == ["blowhole", "break", "crack", "fray", "free", "uneven"]
    val_counts = Counter(splits.classes[label] for _, label in splits.val)
    assert val_counts["free"] > 100 and val_counts["fray"] >= 1
    assert "class 'fray' has 26 training images; using 26 of 50 requested" in splits.notes
    train_counts = Counter(splits.classes[label] for _, label in splits.train)
    assert train_counts["free"] == 50 and train_counts["fray"] == 26
