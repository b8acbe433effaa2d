"""Activation caches at any boundary: exact values, content keys, disk rows, views, loaders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from transferlab.data import build_transforms, load_splits
from transferlab.data.features import (
    DiskArrayWriter,
    PilSource,
    cached_activations,
    cached_features,
)
from transferlab.models.factory import create_model
from transferlab.models.staged import num_boundaries, split_at

SIZE = 64  # small inputs keep extraction fast; the code path is the same at 224


def small_model(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("tf_efficientnet_lite0", num_classes=4, weights="random")
    model.data_config["input_size"] = (3, SIZE, SIZE)
    return model


@pytest.fixture(scope="module")
def splits(tiny_data):
    return load_splits(tiny_data)


def test_disk_array_rows_in_any_order(tmp_path):
    data = np.arange(7 * 3 * 2, dtype=np.float32).reshape(7, 3, 2)
    writer = DiskArrayWriter(tmp_path / "a.npy", 7, (3, 2), np.float32)
    writer.append(data[:4])
    writer.append(data[4:])
    array = writer.close()
    assert array.shape == (7, 3, 2)
    for idx in ([0, 1, 2], [6, 0, 3, 4, 5], [2], []):
        np.testing.assert_array_equal(array.rows(idx), data[idx])
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), data)  # a plain .npy file
    np.testing.assert_array_equal(array.memmap()[5], data[5])
    with pytest.raises(IndexError):
        array.rows([7])
    buffer = np.zeros((2, 3, 2), np.float32)  # e.g. a view of pinned memory
    assert array.rows([3, 1], out=buffer) is buffer
    np.testing.assert_array_equal(buffer, data[[3, 1]])
    with pytest.raises(ValueError, match="out must be"):
        array.rows([3], out=buffer)


def test_disk_array_writer_checks_count_and_shape(tmp_path):
    writer = DiskArrayWriter(tmp_path / "b.npy", 2, (3,), np.float32)
    with pytest.raises(ValueError, match="rows of shape"):
        writer.append(np.zeros((1, 4), np.float32))
    writer.append(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="1 rows written, 2 declared"):
        writer.close()


def _reference(model, samples, boundary: int) -> torch.Tensor:
    tf = build_transforms(model.data_config, train=False)
    from transferlab.data import ImageDataset

    x = torch.stack([ImageDataset(samples, tf)[i][0] for i in range(len(samples))])
    lower, _ = split_at(model.eval(), boundary)
    with torch.no_grad():
        return lower(x)


def test_activations_at_an_inner_boundary_equal_the_lower_part(splits, tmp_path):
    model = small_model()
    k = num_boundaries(model) - 2
    tf = build_transforms(model.data_config, train=False)
    cache = cached_activations(model, PilSource(splits.train, tf), boundary=k,
                               cache_dir=tmp_path, batch_size=5)
    assert not cache.hit and cache.spatial and cache.array.dtype == np.float16
    expected = _reference(model, splits.train, k)
    got = cache.tensor()
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=2e-3, atol=2e-3)  # float16 storage
    assert cache.labels.tolist() == [label for _, label in splits.train]

    again = cached_activations(model, PilSource(splits.train, tf), boundary=k,
                               cache_dir=tmp_path)
    assert again.hit and again.path == cache.path


def test_key_follows_weights_boundary_and_file_contents(tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    splits = load_splits(data)
    model = small_model()
    tf = build_transforms(model.data_config, train=False)
    cache_dir = tmp_path / "cache"

    def path(m, k=None):
        return cached_activations(m, PilSource(splits.val, tf), boundary=k,
                                  cache_dir=cache_dir).path

    first = path(model)
    assert path(model) == first
    assert path(model, num_boundaries(model) - 1) != first  # another boundary
    with torch.no_grad():  # the frozen body changed (e.g. after a fine-tuning phase)
        model.body.conv_stem.weight.mul_(1.01)
    changed = path(model)
    assert changed != first
    # The same bytes under a new mtime hit; new bytes miss.
    victim = Path(splits.val[0][0])
    victim.write_bytes(victim.read_bytes())
    assert path(model) == changed
    victim.write_bytes(Path(splits.val[1][0]).read_bytes())
    assert path(model) != changed


def test_cached_features_keeps_its_api(splits, tmp_path):
    model = small_model()
    tf = build_transforms(model.data_config, train=False)
    x, y, hit = cached_features(model, splits.val, tf, cache_dir=tmp_path)
    assert not hit and x.shape == (len(splits.val), model.num_features) and x.dtype == torch.float32
    torch.testing.assert_close(x, _reference(model, splits.val, num_boundaries(model)))
    x2, y2, hit2 = cached_features(model, splits.val, tf, cache_dir=tmp_path)
    assert hit2 and torch.equal(x, x2) and torch.equal(y, y2)


def test_augmented_views_are_distinct_and_reproducible(splits, tmp_path):
    model = small_model()
    tf = build_transforms(model.data_config, train=False)
    train_tf = build_transforms(model.data_config, train=True, augment="standard")
    src = PilSource(splits.val, tf, train_transform=train_tf, seed=3)
    cache = cached_activations(model, src, views=2, cache_dir=tmp_path / "a")
    n = len(splits.val)
    x = cache.tensor()
    assert x.shape[0] == 2 * n
    assert not torch.allclose(x[:n], x[n:])
    again = cached_activations(model, PilSource(splits.val, tf, train_transform=train_tf,
                                                seed=3), views=2, cache_dir=tmp_path / "b")
    torch.testing.assert_close(again.tensor(), x)


def test_loader_reshuffles_per_seed_and_draws_views(splits, tmp_path):
    model = small_model()
    tf = build_transforms(model.data_config, train=False)
    train_tf = build_transforms(model.data_config, train=True, augment="standard")
    cache = cached_activations(model, PilSource(splits.train, tf, train_transform=train_tf),
                               views=3, cache_dir=tmp_path)
    all_rows = cache.tensor()
    n = cache.n
    loader = cache.loader(batch_size=5, shuffle=True, seed=0)
    assert len(loader) == -(-n // 5)

    def epoch(seed):
        loader.generator.manual_seed(seed)
        xs, ys = zip(*loader, strict=True)
        return torch.cat(xs), torch.cat(ys)

    x1, y1 = epoch(7)
    x2, y2 = epoch(7)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert sorted(y1.tolist()) == sorted(cache.labels.tolist())
    # every batch row is one of the stored views of a sample with that label
    for row, label in zip(x1, y1, strict=True):
        match = [i for i in range(3 * n) if torch.equal(all_rows[i], row)]
        assert match and cache.labels[match[0] % n] == label
    views_used = {next(i for i in range(3 * n) if torch.equal(all_rows[i], r)) // n for r in x1}
    assert len(views_used) > 1


def test_a_small_cache_is_read_once_and_gives_the_same_batches(splits, tmp_path, monkeypatch):
    import transferlab.data.features as features

    model = small_model()
    tf = build_transforms(model.data_config, train=False)
    cache = cached_activations(model, PilSource(splits.train, tf), cache_dir=tmp_path)
    resident = cache.loader(batch_size=5, shuffle=True, seed=3)
    assert resident.resident is not None  # a few KB: kept in memory
    monkeypatch.setattr(features, "RESIDENT_BYTES", 0)
    on_disk = cache.loader(batch_size=5, shuffle=True, seed=3)
    assert on_disk.resident is None  # over the limit: read by rows from disk
    reads = []
    real_rows = cache.array.rows
    monkeypatch.setattr(cache.array, "rows", lambda idx: reads.append(len(idx)) or real_rows(idx))
    for (xa, ya), (xb, yb) in zip(resident, on_disk, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert len(reads) == len(on_disk)  # only the on-disk loader touched the file
