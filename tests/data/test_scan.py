"""Scanning and validating image folders: bad files are reported with a reason and skipped."""

from __future__ import annotations

import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import transferlab
from transferlab.data import (
    IMAGE_EXTENSIONS,
    BadFile,
    DataError,
    ImageFolderIndex,
    scan_image_folder,
    validate_image,
)

SAMPLE = Path(transferlab.__file__).parent / "sample_data" / "food4"
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def real_jpegs(n: int) -> list[Path]:
    """Real photos from the packaged sample dataset (always present, unlike shared data)."""
    files = sorted(SAMPLE.glob("train/*/*.jpg"))
    assert len(files) >= n, f"sample dataset missing or too small at {SAMPLE}"
    return files[:n]


def copy_real(dest: Path, n: int, offset: int = 0) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, src in enumerate(real_jpegs(n + offset)[offset:]):
        target = dest / f"img{i:02d}.jpg"
        shutil.copyfile(src, target)
        out.append(target)
    return out


def write_truncated(src: Path, dest: Path) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims a huge size: what a decompression bomb looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def messy(tmp_path: Path) -> dict[str, Path]:
    """A dataset with two classes, good images in many modes and every kind of bad file."""
    root = tmp_path / "messy"
    copy_real(root / "apple", 3)
    good_b = copy_real(root / "banana", 3, offset=3)
    b = root / "banana"
    real = real_jpegs(1)[0]
    paths = {
        "zero": b / "zero.jpg",
        "text": b / "text.jpg",
        "trunc_jpg": write_truncated(real, b / "trunc.jpg"),
        "trunc_png": b / "trunc.png",
        "txt": b / "notes.txt",
        "outside_link": b / "outside_link.jpg",
        "inside_link": b / "inside_link.jpg",
        "nested": b / "sub" / "nested.jpg",
        "upper": b / "UPPER.JPG",
    }
    paths["zero"].write_bytes(b"")
    paths["text"].write_text("<html>not a photo</html>")
    full_png = tmp_path / "full.png"
    Image.open(real).save(full_png)
    write_truncated(full_png, paths["trunc_png"])
    paths["txt"].write_text("labels go elsewhere")
    outside = tmp_path / "outside.jpg"
    shutil.copyfile(real, outside)
    paths["outside_link"].symlink_to(outside)
    paths["inside_link"].symlink_to(good_b[0])
    paths["nested"].parent.mkdir()
    shutil.copyfile(real, paths["nested"])
    shutil.copyfile(real, paths["upper"])
    # Hidden files and folders are not data and must not even be reported.
    (b / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (b / "._img00.jpg").write_bytes(b"AppleDouble")
    (b / ".cache").mkdir()
    shutil.copyfile(real, b / ".cache" / "thumb.jpg")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    return {"root": root, **paths}


# ----------------------------------------------------------------------------- validate_image


def test_image_extensions_cover_common_formats() -> None:
    for ext in (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"):
        assert ext in IMAGE_EXTENSIONS


def test_validate_accepts_real_photo() -> None:
    assert validate_image(real_jpegs(1)[0]) is None


def test_validate_rejects_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "zero.jpg"
    path.write_bytes(b"")
    assert validate_image(path) == "zero bytes"


def test_validate_rejects_text_renamed_as_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "page.jpg"
    path.write_text("<html>404</html>")
    assert validate_image(path) == "not an image (cannot identify image file)"


def test_truncated_jpeg_passes_verify_but_fails_validation(tmp_path: Path) -> None:
    path = write_truncated(real_jpegs(1)[0], tmp_path / "half.jpg")
    with Image.open(path) as img:
        img.verify()  # this is why validate_image must decode: verify() does not notice
    reason = validate_image(path)
    assert reason is not None and reason.startswith("truncated or corrupt:")


def test_validate_rejects_truncated_png(tmp_path: Path) -> None:
    full = tmp_path / "full.png"
    Image.open(real_jpegs(1)[0]).save(full)
    reason = validate_image(write_truncated(full, tmp_path / "half.png"))
    assert reason is not None and reason.startswith("truncated or corrupt:")


def test_validate_rejects_missing_file(tmp_path: Path) -> None:
    reason = validate_image(tmp_path / "gone.jpg")
    assert reason is not None and reason.startswith("cannot read")


def test_validate_rejects_decompression_bomb_header(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert path.stat().st_size < 200
    limit = Image.MAX_IMAGE_PIXELS
    assert validate_image(path) == f"image too large: 100000x100000 pixels exceeds limit {limit}"


@pytest.mark.parametrize("limit", [6_000, 1_000], ids=["warning-level", "error-level"])
def test_validate_treats_pillow_bomb_warning_as_bad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Between 1x and 2x the limit Pillow only warns; above 2x it raises. Both are bad."""
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    filters_before = list(warnings.filters)
    assert validate_image(path) == f"image too large: 100x100 pixels exceeds limit {limit}"
    assert warnings.filters == filters_before  # the temporary "error" filter was undone


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1"])
def test_validate_accepts_every_pixel_mode(tmp_path: Path, mode: str) -> None:
    ext = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"img{ext}"
    if mode == "I;16":
        Image.fromarray(np.full((8, 8), 40_000, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, (8, 8)).save(path)
    assert validate_image(path) is None


# ----------------------------------------------------------------------------- scan_image_folder


def test_scan_reports_and_skips_bad_files(messy: dict[str, Path]) -> None:
    index = scan_image_folder(messy["root"])
    assert isinstance(index, ImageFolderIndex)
    assert index.classes == ["apple", "banana"]
    bad = {Path(b.path).name: b.reason for b in index.bad_files}
    assert bad["zero.jpg"] == "zero bytes"
    assert bad["text.jpg"] == "not an image (cannot identify image file)"
    assert bad["trunc.jpg"].startswith("truncated or corrupt:")
    assert bad["trunc.png"].startswith("truncated or corrupt:")
    assert bad["notes.txt"] == "unsupported extension .txt"
    assert bad["outside_link.jpg"].startswith("symlink points outside the dataset folder")
    assert len(bad) == 6, bad  # hidden files are ignored, not reported
    for b in index.bad_files:
        assert isinstance(b, BadFile) and Path(b.path).is_absolute()
        assert Path(b.path).parent == messy["root"] / "banana"

    sample_paths = {Path(p) for p, _ in index.samples}
    assert not sample_paths & {Path(b.path) for b in index.bad_files}
    assert messy["nested"] in sample_paths  # images in sub-folders belong to the class
    assert messy["inside_link"] in sample_paths  # links within the dataset are fine
    assert messy["upper"] in sample_paths  # extensions are case-insensitive
    assert not any(part.startswith(".") for p in sample_paths for part in p.parts[-2:])
    assert index.counts() == {"apple": 3, "banana": 6}
    assert all(label == (0 if "/apple/" in p else 1) for p, label in index.samples)


def test_scan_is_sorted_and_deterministic(messy: dict[str, Path]) -> None:
    serial = scan_image_folder(messy["root"], workers=1)
    threaded = scan_image_folder(messy["root"], workers=4)
    assert serial == threaded
    assert serial.samples == sorted(serial.samples)
    assert [b.path for b in serial.bad_files] == sorted(b.path for b in serial.bad_files)


def test_scan_without_validation_skips_decoding(messy: dict[str, Path]) -> None:
    index = scan_image_folder(messy["root"], validate=False)
    names = {Path(p).name for p, _ in index.samples}
    assert {"zero.jpg", "trunc.jpg"} <= names  # not decoded, so not caught
    bad = {Path(b.path).name for b in index.bad_files}
    assert bad == {"notes.txt", "outside_link.jpg"}  # structural checks still apply


def test_scan_with_given_classes_keeps_label_ids(messy: dict[str, Path]) -> None:
    index = scan_image_folder(messy["root"], classes=["banana", "apple"], validate=False)
    assert index.classes == ["banana", "apple"]
    assert {label for p, label in index.samples if "/apple/" in p} == {1}


def test_scan_rejects_folder_not_in_given_classes(messy: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="folder 'banana'"):
        scan_image_folder(messy["root"], classes=["apple", "cherry"], validate=False)


def test_scan_rejects_given_class_without_folder(tmp_path: Path) -> None:
    copy_real(tmp_path / "a", 1)
    copy_real(tmp_path / "b", 1)
    with pytest.raises(DataError, match="class 'c' has no folder"):
        scan_image_folder(tmp_path, classes=["a", "b", "c"])


def test_scan_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        scan_image_folder(tmp_path / "nope")
    assert "nope" in str(err.value)


def test_scan_root_is_a_file(tmp_path: Path) -> None:
    path = copy_real(tmp_path, 1)[0]
    with pytest.raises(DataError, match="is not a folder"):
        scan_image_folder(path)


def test_scan_no_class_folders(tmp_path: Path) -> None:
    copy_real(tmp_path, 2)  # images straight in root, no class folders
    with pytest.raises(DataError, match="no class folders") as err:
        scan_image_folder(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_scan_single_class_folder(tmp_path: Path) -> None:
    copy_real(tmp_path / "only", 3)
    with pytest.raises(DataError, match="needs at least 2 classes.*'only'"):
        scan_image_folder(tmp_path)


def test_scan_empty_class_folder_is_named(tmp_path: Path) -> None:
    copy_real(tmp_path / "full", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="class 'empty' has no usable images"):
        scan_image_folder(tmp_path)


def test_scan_class_with_only_bad_files_names_class_and_file(tmp_path: Path) -> None:
    copy_real(tmp_path / "good", 2)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "zero.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="class 'broken' has no usable images") as err:
        scan_image_folder(tmp_path)
    assert "zero.jpg: zero bytes" in str(err.value)


def test_scan_points_split_folders_to_load_splits() -> None:
    with pytest.raises(DataError, match="load_splits"):
        scan_image_folder(SAMPLE, validate=False)


def test_scan_sample_dataset_is_clean() -> None:
    index = scan_image_folder(SAMPLE / "train")
    assert index.bad_files == []
    assert index.counts() == {
        "baklava": 30,
        "beef_tartare": 30,
        "bibimbap": 30,
        "breakfast_burrito": 30,
    }


def test_scan_real_food10() -> None:
    food10 = SHARED_DATA / "food10"
    if not food10.is_dir():
        pytest.skip(f"shared data not found at {food10.resolve()} (see ../shared/data/README.md)")
    train = scan_image_folder(food10 / "train")
    val = scan_image_folder(food10 / "val", classes=train.classes)
    assert train.bad_files == [] and val.bad_files == []
    assert set(train.counts().values()) == {150}
    assert set(val.counts().values()) == {50}
