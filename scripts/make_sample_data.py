"""Build the small sample dataset shipped in the package (src/transferlab/sample_data/food4).

The demo and the tests must run on a fresh clone without the shared data folder, so a
few MB of real photos travel with the package.  The selection is deterministic (sorted
file names, seeded sample), so re-running this script reproduces the same files.

Usage:  python scripts/make_sample_data.py [--source ../shared/data/food10] [--out ...]
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / ".." / "shared" / "data" / "food10"
DEFAULT_OUT = REPO / "src" / "transferlab" / "sample_data" / "food4"
# Visually distinct dishes, so a few epochs on a CPU already separate them.
CLASSES = ("baklava", "beef_tartare", "bibimbap", "breakfast_burrito")
COUNTS = {"train": 30, "val": 15}
SHORTER_SIDE = 256
JPEG_QUALITY = 90
SEED = 0


def resize_shorter_side(img: Image.Image, size: int) -> Image.Image:
    """Scale so the shorter side is *size* px (never upscale): enough for 224 px crops."""
    width, height = img.size
    scale = size / min(width, height)
    if scale >= 1.0:
        return img
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(new_size, Image.Resampling.LANCZOS)


def make_sample(source: Path, out: Path, seed: int = SEED) -> int:
    """Copy a seeded selection of each class from *source* into *out*; return the file count."""
    if not source.is_dir():
        raise SystemExit(f"source folder {source} not found (see ../shared/data/README.md)")
    written = 0
    for split, count in COUNTS.items():
        split_out = out / split
        if split_out.exists():
            shutil.rmtree(split_out)
        for name in CLASSES:
            files = sorted(p for p in (source / split / name).iterdir() if p.suffix == ".jpg")
            if len(files) < count:
                raise SystemExit(f"{source / split / name} has {len(files)} images, need {count}")
            chosen = sorted(random.Random(f"{seed}:{split}:{name}").sample(files, count))
            (split_out / name).mkdir(parents=True)
            for path in chosen:
                with Image.open(path) as img:
                    small = resize_shorter_side(
                        ImageOps.exif_transpose(img).convert("RGB"), SHORTER_SIDE
                    )
                small.save(
                    split_out / name / path.name, "JPEG", quality=JPEG_QUALITY, optimize=True
                )
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    count = make_sample(args.source.resolve(), args.out, args.seed)
    size = sum(p.stat().st_size for p in args.out.rglob("*.jpg"))
    print(f"wrote {count} images ({size / 1e6:.1f} MB) to {args.out}")


if __name__ == "__main__":
    main()
