"""Small real datasets with known faults for the doctor's tests."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ..conftest import make_subset


def document_scan(path: Path) -> None:
    """A page of typed text on white paper: nothing like a food photo."""
    img = Image.new("RGB", (620, 800), (250, 250, 246))
    draw = ImageDraw.Draw(img)
    draw.text((60, 50), "INVOICE No. 2026-118", fill=(10, 10, 10))
    for row in range(34):
        y = 110 + row * 19
        draw.text((60, y), f"{row + 1:02d}  item description ........ qty 1  EUR {row * 7 % 90}.50",
                  fill=(20, 20, 20))
    img.save(path)


def folder_hash(root: Path) -> dict[str, str]:
    """Every file under ``root`` (name -> blake2b of bytes, plus its mtime)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (
                hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest() + f":{st.st_mtime_ns}")
        else:
            out[p.relative_to(root).as_posix() + "/"] = "dir"
    return out


@pytest.fixture(scope="session")
def faulty_data(tmp_path_factory) -> tuple[Path, dict]:
    """food4 subset (12 train + 5 val per class) with 3 label flips, 2 leaks (identical and
    resized to 75 %), 2 duplicates within train (identical and re-encoded) and 1 document scan."""
    root = make_subset(tmp_path_factory.mktemp("faulty"), train=12, val=5)
    classes = sorted(p.name for p in (root / "train").iterdir())
    truth: dict[str, list] = {"flip": [], "leak": [], "duplicate": [], "outlier": []}
    for n, (src, dst) in enumerate([(0, 2), (1, 3), (3, 0)]):
        p = sorted((root / "train" / classes[src]).iterdir())[n]
        new = root / "train" / classes[dst] / f"flip_{p.name}"
        p.rename(new)
        truth["flip"].append(new.relative_to(root).as_posix())
        truth.setdefault("origin", {})[truth["flip"][-1]] = classes[src]
    v0 = sorted((root / "val" / classes[0]).iterdir())[0]
    shutil.copy(v0, root / "train" / classes[0] / "leak_exact.jpg")
    v1 = sorted((root / "val" / classes[1]).iterdir())[1]
    with Image.open(v1) as img:
        img.convert("RGB").resize((img.width * 3 // 4, img.height * 3 // 4)).save(
            root / "train" / classes[1] / "leak_resized.jpg", quality=85)
    truth["leak"] = [f"train/{classes[0]}/leak_exact.jpg", f"train/{classes[1]}/leak_resized.jpg"]
    def original(cls: str, n: int) -> Path:  # an image that is not one of the flips
        return [p for p in sorted((root / "train" / cls).iterdir())
                if not p.name.startswith("flip_")][n]

    t2 = original(classes[2], -1)
    with Image.open(t2) as img:
        img.convert("RGB").save(root / "train" / classes[2] / "dup_reencoded.jpg", quality=55)
    t3 = original(classes[3], -1)
    shutil.copy(t3, root / "train" / classes[3] / "dup_exact.jpg")
    truth["duplicate"] = [f"train/{classes[2]}/dup_reencoded.jpg",
                          f"train/{classes[3]}/dup_exact.jpg"]
    document_scan(root / "train" / classes[0] / "scan.png")
    truth["outlier"] = [f"train/{classes[0]}/scan.png"]
    return root, truth


@pytest.fixture(scope="session")
def faulty_report(faulty_data):
    from transferlab.doctor import diagnose

    root, _ = faulty_data
    before = folder_hash(root)
    report = diagnose(root)
    assert folder_hash(root) == before, "diagnose changed the dataset folder"
    return report
