"""doctor.json and doctor.md (with thumbnails) for a :class:`DoctorReport`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image, ImageOps

from .core import KINDS, DoctorReport

TITLES = {"label": "Likely label errors", "leak": "Leaks across splits",
          "duplicate": "Duplicates within a split", "outlier": "Outliers (far from every class)",
          "other-class": "Images in another class's cluster"}
MAX_PER_KIND = 50  # doctor.md shows this many per kind; doctor.json has them all


def thumbnail(src: Path, folder: Path, size: int = 112) -> str:
    """A small JPEG of ``src`` in ``folder`` (named by the source path); its file name."""
    name = hashlib.blake2b(str(src).encode(), digest_size=8).hexdigest() + ".jpg"
    out = folder / name
    if not out.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(src) as img:
            img = ImageOps.exif_transpose(img)
            img.draft("RGB", (size * 2, size * 2))
            img = img.convert("RGB")
            img.thumbnail((size, size))
            img.save(out, quality=80)
    return name


def write_report(report: DoctorReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``doctor.json`` and ``doctor.md`` (thumbnails in ``thumbs/``) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "doctor.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    root = Path(report.root)
    counts = report.counts()
    sizes = ", ".join(f"{n} {s}" for n, s in report.sizes.items())
    lines = [f"# Data doctor: {root}", "",
             f"{len(report.classes)} classes, {sizes} images; features of `{report.model}`; "
             f"{report.seconds.get('total', 0):.1f} s.", "",
             "| check | findings |", "|---|---|"]
    lines += [f"| {TITLES[k]} | {counts[k]} |" for k in KINDS]
    lines += ["", "Thresholds: " + ", ".join(f"{k} {v}" for k, v in report.thresholds.items()),
              ""]
    if report.balance.get("suggestion"):
        lines += [f"**Class balance:** {report.balance['suggestion']}", ""]
    for kind in KINDS:
        found = report.of_kind(kind)
        if not found:
            continue
        lines += [f"## {TITLES[kind]} ({len(found)})", "",
                  "| images | labels | score | detail | suggested |", "|---|---|---|---|---|"]
        for f in found[:MAX_PER_KIND]:
            thumbs = " ".join(f"![{p}](thumbs/{thumbnail(root / p, out / 'thumbs')})"
                              for p in f.paths[:4])
            names = "<br>".join(f"`{p}`" for p in f.paths[:4])
            acts = "; ".join(f"{a['action']} {a['path'].rsplit('/', 1)[-1]}"
                             + (f" → {a['label']}" if a.get("label") else "")
                             for a in f.actions) or "review"
            lines.append(f"| {thumbs}<br>{names} | {', '.join(sorted(set(f.labels)))} | "
                         f"{f.score:.3f} | {f.detail} | {acts} |")
        if len(found) > MAX_PER_KIND:
            lines.append(f"\n… and {len(found) - MAX_PER_KIND} more in doctor.json.")
        lines.append("")
    lines += ["## Classes", "", "| class | train images | median size | mean RGB | grey |",
              "|---|---|---|---|---|"]
    stats = {s["class"]: s for s in report.class_stats}
    for c in report.classes:
        s = stats.get(c, {})
        size = f"{s['width_median']}×{s['height_median']}" if "width_median" in s else "—"
        rgb = ", ".join(f"{v:.2f}" for v in s.get("mean_rgb", [])) or "—"
        grey = f"{s['grey_fraction']:.0%}" if "grey_fraction" in s else "—"
        lines.append(f"| {c} | {report.balance['counts'].get(c, 0)} | {size} | {rgb} | {grey} |")
    if report.notes:
        lines += ["", "Notes: " + "; ".join(report.notes)]
    md_path = out / "doctor.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, md_path
