"""Peak resident memory of a CPU feature-extraction run over 10,000 images.

Builds a 10,000-file ImageFolder from ../shared/data/food10 (its 2,000 photos hard-linked
under new names until the count is reached; every entry is decoded and extracted as its
own image), runs ``fine_tune(strategy="feature-extraction")`` on the CPU with an empty
cache, and reports the peak resident set size (``ru_maxrss``, plus a sampled VmRSS
timeline), the time, and the cache size on disk. Target: under 2 GB. Run::

    .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    SHARED_DATA,
    link_or_copy,
    machine,
    machine_line,
    markdown_table,
    peak_rss_mb,
    record,
)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    def __init__(self, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.every, self.peak, self.samples = every, 0.0, []
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.stop.is_set():
            value = rss_mb()
            self.peak = max(self.peak, value)
            self.samples.append((time.perf_counter() - t0, value))
            self.stop.wait(self.every)


def build_folder(source: Path, dest: Path, total: int, val_per_class: int) -> tuple[int, int]:
    """``dest/{train,val}/class/`` with ``total`` files in all, cycling through ``source``."""
    files = {}
    for split in ("train", "val"):
        for cls_dir in sorted((source / split).iterdir()):
            files.setdefault(cls_dir.name, []).extend(sorted(cls_dir.iterdir()))
    classes = sorted(files)
    n_val = val_per_class * len(classes)
    per_class_train = (total - n_val) // len(classes)
    for cls in classes:
        pool = files[cls]
        for split, count in (("val", val_per_class), ("train", per_class_train)):
            out = dest / split / cls
            out.mkdir(parents=True, exist_ok=True)
            start = 0 if split == "val" else val_per_class
            for i in range(count):
                src = pool[(start + i) % len(pool)]
                link_or_copy(src, out / f"{i:05d}_{src.name}")
    return per_class_train * len(classes), n_val


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SHARED_DATA / "food10")
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--val-per-class", type=int, default=50)
    p.add_argument("--epochs", type=int, default=None, help="head epochs (strategy default)")
    p.add_argument("--record", help="append the result to this markdown file")
    args = p.parse_args(argv)
    if not (args.data / "train").is_dir():
        print(f"no dataset at {args.data}", file=sys.stderr)
        return 2

    from transferlab.api import fine_tune
    from transferlab.config import TrainConfig

    info = machine()
    print(machine_line(info), flush=True)
    work = Path(tempfile.mkdtemp(prefix="tl-mem-bench-"))
    n_train, n_val = build_folder(args.data, work / "data", args.images, args.val_per_class)
    print(f"{n_train} train + {n_val} val files in {work / 'data'}", flush=True)
    base = peak_rss_mb()
    sampler = RssSampler()
    sampler.start()
    t0 = time.perf_counter()
    result = fine_tune(TrainConfig(data=str(work / "data"), strategy="feature-extraction",
                                   device="cpu", cache_dir=str(work / "cache"),
                                   out=str(work / "runs"), epochs=args.epochs),
                       progress=False)
    seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    peak_at = max(sampler.samples, key=lambda s: s[1])[0] if sampler.samples else float("nan")
    (work / "rss_timeline.json").write_text(json.dumps(sampler.samples))
    print(f"sampled VmRSS peak {sampler.peak:.0f} MB at {peak_at:.0f} s of {seconds:.0f} s; "
          f"timeline in {work / 'rss_timeline.json'}", flush=True)
    cache_mb = sum(f.stat().st_size for f in (work / "cache").rglob("*") if f.is_file()) / 1e6
    row = {"images": n_train + n_val, "peak_rss_mb": peak_rss_mb(),
           "sampled_peak_mb": sampler.peak, "rss_before_mb": base, "seconds": seconds,
           "val_acc": result.accuracy, "cache_mb_on_disk": cache_mb,
           "under_2gb": peak_rss_mb() < 2048}
    print(row, flush=True)
    cols = [("images", "images"), ("rss_before_mb", "RSS before run MB"),
            ("peak_rss_mb", "peak RSS MB (ru_maxrss)"), ("sampled_peak_mb", "sampled VmRSS peak MB"),
            ("seconds", "run s"), ("val_acc", "val acc"), ("cache_mb_on_disk", "cache on disk MB"),
            ("under_2gb", "under 2 GB")]
    text = (f"{machine_line(info)}; load average at end {machine()['load']}.\n\n"
            f"CPU feature extraction (tf_efficientnet_lite0, offline weights) over "
            f"{n_train} train + {n_val} val files built from {args.data.name}. Command: "
            f"`.venv/bin/python benchmarks/memory.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
            f"{markdown_table([row], cols)}")
    print(text)
    record(args.record, f"Peak memory, 10k-image feature extraction — {info['date']}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
