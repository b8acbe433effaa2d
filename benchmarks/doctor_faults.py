"""Precision and recall of each doctor check on a copy of a shared dataset with known faults.

    python benchmarks/doctor_faults.py food10 [--out /tmp/doctor_faults] [--seed 0]

Copies ``/work/shared/data/DATASET`` (or ``--data``) into ``--out`` (never modifying the
original), then injects: label flips of 5 % of the training images (the file moved to another
class folder of the copy), 10 validation images copied into train (4 identical, 3 resized to
60 %, 3 re-encoded at JPEG quality 50), 5 duplicates within train (2 identical, 3 resized) and
10 outliers from the other dataset. A dataset without a val folder is first split 80/20
(stratified, seeded) in the copy. Prints and writes ``faults.json`` (the truth),
``scores.json`` (precision/recall per check, timings) beside the copy.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

from PIL import Image

SHARED = Path("/work/shared/data")


def _resize(src: Path, dst: Path, scale: float = 0.6, quality: int = 90) -> None:
    with Image.open(src) as img:
        img = img.convert("RGB")
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
        img.save(dst, quality=quality)


def _reencode(src: Path, dst: Path, quality: int = 50) -> None:
    with Image.open(src) as img:
        img.convert("RGB").save(dst, quality=quality)


def build(data: Path, other: Path, out: Path, seed: int) -> dict:
    from transferlab.data import load_splits

    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    splits = load_splits(data, seed=seed)
    for name in ("train", "val"):
        for p, label in getattr(splits, name):
            dst = out / name / splits.classes[label] / Path(p).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dst)
    classes = splits.classes
    train = sorted((out / "train").glob("*/*"))
    val = sorted((out / "val").glob("*/*"))
    truth: dict[str, list] = {"flip": [], "leak": [], "duplicate": [], "outlier": []}
    # label flips: 5 % of train, moved to another class folder of the copy
    for p in rng.sample(train, round(0.05 * len(train))):
        new = rng.choice([c for c in classes if c != p.parent.name])
        dst = out / "train" / new / f"flip_{p.name}"
        p.rename(dst)
        truth["flip"].append({"path": dst.relative_to(out).as_posix(), "true": p.parent.name,
                              "given": new})
    train = sorted((out / "train").glob("*/*"))
    # leaks: 10 val images copied into train (their own class)
    for n, p in enumerate(rng.sample(val, 10)):
        kind = "exact" if n < 4 else "resized" if n < 7 else "reencoded"
        dst = out / "train" / p.parent.name / f"leak_{kind}_{p.stem}.jpg"
        {"exact": lambda s, d: shutil.copy2(s, d), "resized": _resize,
         "reencoded": _reencode}[kind](p, dst)
        truth["leak"].append({"path": dst.relative_to(out).as_posix(),
                              "of": p.relative_to(out).as_posix(), "kind": kind})
    # duplicates within train
    for n, p in enumerate(rng.sample([t for t in train if not t.name.startswith("flip_")], 5)):
        kind = "exact" if n < 2 else "resized"
        dst = p.parent / f"dup_{kind}_{p.stem}.jpg"
        (shutil.copy2 if kind == "exact" else _resize)(p, dst)
        truth["duplicate"].append({"path": dst.relative_to(out).as_posix(),
                                   "of": p.relative_to(out).as_posix(), "kind": kind})
    # outliers from the other dataset, one per class folder in turn
    others = sorted(q for q in other.rglob("*") if q.suffix.lower() in {".jpg", ".jpeg", ".png"})
    for n, q in enumerate(rng.sample(others, 10)):
        dst = out / "train" / classes[n % len(classes)] / f"outlier_{q.stem}{q.suffix}"
        shutil.copy2(q, dst)
        truth["outlier"].append({"path": dst.relative_to(out).as_posix(), "from": str(q)})
    return truth


def _pr(found: set[str], truth: set[str]) -> dict:
    hit = len(found & truth)
    return {"found": len(found), "true": len(truth), "hit": hit,
            "precision": round(hit / len(found), 3) if found else None,
            "recall": round(hit / len(truth), 3) if truth else None}


def score(report, truth: dict) -> dict:
    flips = {t["path"] for t in truth["flip"]}
    labelled = {f.paths[0] for f in report.of_kind("label")}
    other = {f.paths[0] for f in report.of_kind("other-class")}
    leak_paths = {p for f in report.of_kind("leak") for p, s in zip(f.paths, f.splits, strict=True)
                  if s == "train"}
    dup_paths = {p for f in report.of_kind("duplicate") for p in f.paths}
    outl = {f.paths[0] for f in report.of_kind("outlier")}
    leaks = {t["path"] for t in truth["leak"]}
    dups = {t["path"] for t in truth["duplicate"]}
    by_kind = {}
    for kind in ("exact", "resized", "reencoded"):
        sub = {t["path"] for t in truth["leak"] if t["kind"] == kind}
        by_kind[kind] = f"{len(sub & leak_paths)}/{len(sub)}"
    return {
        "label": _pr(labelled, flips),
        "other-class (as a flip detector)": _pr(other, flips),
        "leak": {**_pr(leak_paths, leaks), "by_kind": by_kind},
        "duplicate": _pr(dup_paths, dups | {t["of"] for t in truth["duplicate"]}),
        "outlier": _pr(outl, {t["path"] for t in truth["outlier"]}),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=["food10", "magnetic_tile"])
    ap.add_argument("--out", default="/tmp/doctor_faults")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="keep an existing copy")
    args = ap.parse_args()
    from transferlab.doctor import diagnose

    other = SHARED / ("magnetic_tile" if args.dataset == "food10" else "food10")
    out = Path(args.out) / args.dataset
    truth_path = Path(args.out) / f"{args.dataset}.faults.json"
    if args.reuse and truth_path.is_file():
        truth = json.loads(truth_path.read_text())
    else:
        truth = build(SHARED / args.dataset, other, out, args.seed)
        truth_path.write_text(json.dumps(truth, indent=1))
    runs = []
    for attempt in ("first", "cached"):
        t = time.perf_counter()
        report = diagnose(out, seed=args.seed)
        runs.append({"run": attempt, "wall_s": round(time.perf_counter() - t, 2),
                     "seconds": report.seconds})
    result = {"dataset": args.dataset, "sizes": report.sizes, "scores": score(report, truth),
              "counts": report.counts(), "thresholds": report.thresholds, "runs": runs}
    (Path(args.out) / f"{args.dataset}.scores.json").write_text(json.dumps(result, indent=1))
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
