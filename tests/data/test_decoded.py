"""Decode once: the store's centre crop is the PIL evaluation transform, keys, loaders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from timm.data import resolve_data_config

from transferlab.data import DataError, ImageDataset, build_transforms, load_splits
from transferlab.data.decoded import (
    DecodedLoader,
    DecodedSource,
    StreamingDecodedSource,
    decoded_store,
    eval_resize,
    find_store,
    stored_size,
)
from transferlab.data.gpu_augment import DeviceAugment


@pytest.fixture(scope="module")
def cfgs():
    return {name: resolve_data_config(model=timm.create_model(name, pretrained=False))
            for name in ("tf_efficientnet_lite0", "resnet18")}


@pytest.fixture(scope="module")
def splits(tiny_data):
    return load_splits(tiny_data)


def test_store_geometry(cfgs):
    assert (eval_resize(cfgs["tf_efficientnet_lite0"]), stored_size(cfgs["tf_efficientnet_lite0"])) == (256, 256)
    # resnet18: crop_pct 0.95 -> resize 235; the square is trimmed to 232 (232 - 224 = 8)
    assert (eval_resize(cfgs["resnet18"]), stored_size(cfgs["resnet18"])) == (235, 232)


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18"])
def test_centre_crop_of_the_store_is_the_pil_eval_transform(name, cfgs, splits, tmp_path):
    cfg = cfgs[name]
    store = decoded_store(splits.train, cfg, cache_dir=tmp_path, decoder="pil")
    assert store.array.shape == (len(splits.train), stored_size(cfg), stored_size(cfg), 3)
    reference = ImageDataset(splits.train, build_transforms(cfg, train=False))
    x = DeviceAugment(cfg, "none")(torch.from_numpy(store.rows(range(len(store)))))
    expected = torch.stack([reference[i][0] for i in range(len(store))])
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)


def test_store_is_reused_and_keyed_by_content_and_geometry(cfgs, tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    splits = load_splits(data)
    cfg = cfgs["tf_efficientnet_lite0"]
    first = decoded_store(splits.val, cfg, cache_dir=tmp_path / "c")
    again = decoded_store(splits.val, cfg, cache_dir=tmp_path / "c")
    assert again.hit and again.path == first.path
    other = decoded_store(splits.val, cfgs["resnet18"], cache_dir=tmp_path / "c")
    assert other.key != first.key
    victim = Path(splits.val[0][0])
    victim.write_bytes(Path(splits.val[1][0]).read_bytes())
    changed = decoded_store(splits.val, cfg, cache_dir=tmp_path / "c")
    assert not changed.hit and changed.key != first.key
    np.testing.assert_array_equal(changed.rows([0]), changed.rows([1]))


def test_torchvision_decoder_matches_pil(cfgs, splits, tmp_path):
    cfg = cfgs["tf_efficientnet_lite0"]
    pil = decoded_store(splits.val, cfg, cache_dir=tmp_path, decoder="pil")
    tv = decoded_store(splits.val, cfg, cache_dir=tmp_path, decoder="torchvision")
    assert tv.key != pil.key
    a = pil.rows(range(len(pil))).astype(np.float32)
    b = tv.rows(range(len(tv))).astype(np.float32)
    assert np.abs(a - b).mean() < 1.0


def test_unreadable_file_is_named(cfgs, tmp_path, splits):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        decoded_store([*splits.val, (str(bad), 0)], cfgs["tf_efficientnet_lite0"],
                      cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c" / "decoded").glob("*/meta.json"))  # nothing half-written


def test_loader_is_reproducible_and_labels_follow_the_shuffle(cfgs, splits, tmp_path):
    cfg = cfgs["tf_efficientnet_lite0"]
    store = decoded_store(splits.train, cfg, cache_dir=tmp_path)
    loader = DecodedLoader(store, DeviceAugment(cfg, "standard"), batch_size=5, shuffle=True,
                           seed=0)
    assert len(loader) == -(-len(store) // 5)

    def epoch(seed):
        loader.generator.manual_seed(seed)
        xs, ys = zip(*loader, strict=True)
        return torch.cat(xs), torch.cat(ys)

    x1, y1 = epoch(3)
    x2, y2 = epoch(3)
    x3, _ = epoch(4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert x1.shape == (len(store), 3, 224, 224)
    assert x1.is_contiguous(memory_format=torch.channels_last)
    # the order a DataLoader(shuffle=True) would visit, for the same generator seed
    dl = torch.utils.data.DataLoader(range(len(store)), batch_size=5, shuffle=True,
                                     generator=torch.Generator().manual_seed(3))
    order = torch.cat(list(dl))
    assert y1.tolist() == store.labels[order].tolist()


def test_eval_loader_in_sample_order(cfgs, splits, tmp_path):
    cfg = cfgs["tf_efficientnet_lite0"]
    store = decoded_store(splits.val, cfg, cache_dir=tmp_path)
    loader = DecodedLoader(store, DeviceAugment(cfg, "none"), batch_size=4, shuffle=False,
                           prefetch=0)
    ys = torch.cat([y for _, y in loader])
    assert ys.tolist() == [label for _, label in splits.val]


def test_decoded_source_views_differ(cfgs, splits, tmp_path):
    cfg = cfgs["tf_efficientnet_lite0"]
    store = decoded_store(splits.val, cfg, cache_dir=tmp_path)
    source = DecodedSource(store, cfg, augment="standard", seed=1)
    plain = torch.cat([x for x, _ in source.batches(None, 8, torch.device("cpu"))])
    v0 = torch.cat([x for x, _ in source.batches(0, 8, torch.device("cpu"))])
    v0b = torch.cat([x for x, _ in source.batches(0, 8, torch.device("cpu"))])
    v1 = torch.cat([x for x, _ in source.batches(1, 8, torch.device("cpu"))])
    assert torch.equal(v0, v0b) and not torch.equal(v0, v1) and not torch.equal(plain, v0)


def test_draft_decoding_is_close_to_the_full_decode_and_keyed_apart(cfgs, splits, tmp_path):
    """Draft mode decodes a JPEG at a reduced DCT scale only when that still covers the
    resize: a 1024 px photo is decoded at 1/2 or 1/4, a sample photo (under 512 px) in full."""
    from PIL import Image

    cfg = cfgs["tf_efficientnet_lite0"]
    big = tmp_path / "photos" / "big.jpg"
    big.parent.mkdir()
    with Image.open(splits.val[0][0]) as img:
        img.convert("RGB").resize((1024, 1024), Image.BICUBIC).save(big, quality=92)
    samples = [(str(big), 0), *splits.val[1:4]]
    full = decoded_store(samples, cfg, cache_dir=tmp_path, decoder="pil")
    draft = decoded_store(samples, cfg, cache_dir=tmp_path, decoder="pil-draft")
    assert draft.key != full.key
    a = full.rows(range(len(full))).astype(np.float32)
    b = draft.rows(range(len(draft))).astype(np.float32)
    assert 0 < np.abs(a[0] - b[0]).mean() < 3.0  # the big photo: decoded smaller, close
    np.testing.assert_array_equal(a[1:], b[1:])  # small photos: the full decode


def test_streaming_source_feeds_the_same_batches_and_publishes_the_store(cfgs, splits, tmp_path):
    cfg = cfgs["tf_efficientnet_lite0"]
    assert find_store(splits.train, cfg, cache_dir=tmp_path) is None
    stream = StreamingDecodedSource(splits.train, cfg, cache_dir=tmp_path)
    got = list(stream.batches(None, 5, torch.device("cpu")))
    store = find_store(splits.train, cfg, cache_dir=tmp_path)
    assert store is not None and stream.store is not None and store.path == stream.store.path
    plain = DecodedSource(store, cfg, augment="none")
    assert stream.describe() == plain.describe()  # the same activation-cache key either way
    want = list(plain.batches(None, 5, torch.device("cpu")))
    assert len(got) == len(want) == -(-len(splits.train) // 5)
    for (x, y), (x2, y2) in zip(got, want, strict=True):
        torch.testing.assert_close(x, x2, rtol=0, atol=0)
        assert torch.equal(y, y2)
    assert stream.stats.images == len(splits.train) and stream.stats.busy_s > 0


def test_a_stream_stopped_early_publishes_nothing(cfgs, splits, tmp_path):
    cfg = cfgs["tf_efficientnet_lite0"]
    stream = StreamingDecodedSource(splits.train, cfg, cache_dir=tmp_path)
    batches = stream.batches(None, 4, torch.device("cpu"))
    next(batches)
    batches.close()  # the consumer failed after one batch
    assert find_store(splits.train, cfg, cache_dir=tmp_path) is None
    assert not [p for p in (tmp_path / "decoded").iterdir() if p.name.startswith(".")]
