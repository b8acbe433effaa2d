"""A data root with real sample photos and a runs root for the web app's tests."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, tiny_data) -> Path:
    """``food`` (4 classes, split folders), ``oneclass`` (unusable: 1 class), clutter."""
    root = tmp_path_factory.mktemp("webdata")
    shutil.copytree(tiny_data, root / "food")
    cats = root / "oneclass" / "cats"
    cats.mkdir(parents=True)
    for f in sorted((tiny_data / "train" / "baklava").iterdir())[:2]:
        shutil.copy(f, cats / f.name)
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a dataset")
    (root / "food" / "train" / "baklava" / "broken.jpg").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("webruns")


def zip_bytes(members: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> bytes:
    """A zip in memory; names in ``symlinks`` are stored as Unix symbolic links."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o120777 if name in symlinks else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


@pytest.fixture(scope="session")
def make_zip():
    """``make_zip({name: bytes}, symlinks=(...))`` (tests cannot import conftest directly)."""
    return zip_bytes
