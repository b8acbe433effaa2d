"""Does the chosen engine change accuracy? The same runs with fp32 PyTorch and with ``auto``.

One command::

    .venv/bin/python benchmarks/engine_agreement.py --record benchmarks/RESULTS.md

For each shared dataset (food10: its own train/val split; magnetic_tile: the seeded 80/20
split, class-weighted), feature extraction runs twice with the same seed on the same split,
once with ``--engine torch`` and once with ``--engine auto``, each with an empty feature
cache (the decoded store is shared: both engines see the same pixels). Prints both
accuracies, how many validation images one run gets right and the other wrong, and the
largest difference between the two runs' features.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, load_average, machine, machine_line, record  # noqa: E402

DATASETS = {"food10": {}, "magnetic_tile": {"class_weighting": "balanced"}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="food10,magnetic_tile")
    p.add_argument("--record")
    args = p.parse_args(argv)

    from transferlab.api import fine_tune
    from transferlab.models.engines import min_cosine

    info = machine()
    print(machine_line(info), flush=True)
    work = Path(tempfile.mkdtemp(prefix="tl-agree-"))
    lines = [f"{machine_line(info)}.", "",
             "Command: `.venv/bin/python benchmarks/engine_agreement.py`. Feature extraction, "
             "seed 0, same split, same decoded pixels; only the engine differs.", "",
             "| data | val images | acc torch fp32 | acc auto (engine) | images right in one "
             "run and wrong in the other | min cosine of val features |",
             "|---|---|---|---|---|---|"]
    for name in args.datasets.split(","):
        runs = {}
        for engine in ("torch", "auto"):
            # an empty feature cache per engine, the decoded store shared (same pixels)
            cache = work / name / f"cache-{engine}"
            shared = work / name / "decoded"
            cache.mkdir(parents=True)
            shared.mkdir(parents=True, exist_ok=True)
            (cache / "decoded").symlink_to(shared)
            runs[engine] = fine_tune(data=str(SHARED_DATA / name), strategy="feature-extraction",
                                     engine=engine, cache_dir=str(cache), out=str(work / "runs"),
                                     seed=0, progress=False, **DATASETS[name])
            print(f"{name} {engine}: {runs[engine].accuracy:.4f} "
                  f"({'; '.join(runs[engine].notes)})", flush=True)
        a, b = runs["torch"].evaluation, runs["auto"].evaluation
        right_a = a.probs.argmax(1) == a.labels
        right_b = b.probs.argmax(1) == b.labels
        differ = int((right_a != right_b).sum())
        feats = {}
        for engine in ("torch", "auto"):
            entries = sorted((work / name / f"cache-{engine}" / "activations").iterdir())
            feats[engine] = [torch.from_numpy(np.load(e / "x.npy")) for e in entries]
        cos = min(min_cosine(x, y) for x in feats["torch"] for y in feats["auto"]
                  if x.shape == y.shape)  # train with train, val with val (sizes differ)
        engine_note = next((n for n in runs["auto"].notes if n.startswith("engine")), "")
        lines.append(f"| {name} | {len(a.labels)} | {a.accuracy:.4f} | {b.accuracy:.4f} "
                     f"({engine_note.split(' (')[0].replace('engine ', '')}) | {differ} | "
                     f"{cos:.6f} |")
    lines.append(f"\nLoad average at end {load_average()}.")
    text = "\n".join(lines)
    print(text)
    record(args.record, f"Engine agreement with fp32 — {info['date']}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
