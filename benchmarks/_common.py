"""Shared helpers for the benchmarks: data subsets, machine description, result tables."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
SAMPLE = REPO / "src" / "transferlab" / "sample_data" / "food4"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> dict:
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "load": load_average(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_line(info: dict) -> str:
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ", no GPU"
    return (f"{info['date']} — {info['cpu']} ({info['cpus']} CPUs, torch {info['torch']}, "
            f"{info['threads']} threads{gpu}); load average at start {info['load']}")


def subset_folder(root: Path, dest: Path, classes: Sequence[str] | None, *,
                  splits: Sequence[str] = ("train", "val")) -> Path:
    """An ImageFolder copy of ``root`` (``split/class/file``) restricted to ``classes``, made
    of hard links where possible (the scanner refuses symlinks that leave the folder)."""
    if dest.exists():
        shutil.rmtree(dest)
    if not (root / "train").is_dir():  # one folder per class: this project's seeded split
        return _split_folder(root, dest, classes)
    for split in splits:
        names = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
        for cls in classes or names:
            out = dest / split / cls
            out.mkdir(parents=True)
            for f in sorted((root / split / cls).iterdir()):
                link_or_copy(f.resolve(), out / f.name)
    return dest


def _split_folder(root: Path, dest: Path, classes: Sequence[str] | None) -> Path:
    """``root/class/*`` as ``dest/{train,val}/class/*``: the stratified 80/20 split (seed 0)
    that ``transferlab train root`` makes itself, so every method sees the same images."""
    from transferlab.data import load_splits

    splits = load_splits(root, seed=0)
    for split, samples in (("train", splits.train), ("val", splits.val)):
        for path, label in samples:
            cls = splits.classes[label]
            if classes and cls not in classes:
                continue
            out = dest / split / cls
            out.mkdir(parents=True, exist_ok=True)
            link_or_copy(Path(path).resolve(), out / Path(path).name)
    return dest


def link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def warm_page_cache(root: Path) -> int:
    """Read every file once so no method pays for the first disk read alone."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file():
            total += len(path.read_bytes())
    return total


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(title for _, title in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key, "")
            if isinstance(value, float):
                value = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
            cells.append(str(value))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *body])


def record(path: str | None, title: str, text: str) -> None:
    """Append a result section to ``path`` (benchmarks/RESULTS.md) when asked."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\n## {title}\n\n{text}\n")
    print(f"appended to {path}")
