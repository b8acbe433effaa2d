"""``torchrun --nproc_per_node=K -m transferlab train`` against the plain command, same config.

With one process torchrun must cost nothing but its own start-up: the training path is the
same (no process group is created for a world of one). With K processes on one machine the
work is split (sharded sampling and feature extraction, DDP gradients). Reports the
wall time of each command and the training images per second of its epochs (from the run's
metrics.json), median over ``--repeats`` interleaved runs, and ratios against the plain
command measured in the same session. Run::

    .venv/bin/python benchmarks/torchrun_launch.py                  # CPU, food4 sample
    .venv/bin/python benchmarks/torchrun_launch.py --nproc 1 2 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SAMPLE, link_or_copy, machine, machine_line, markdown_table, record  # noqa: E402


def run(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def subset(root: Path, dest: Path, per_split: dict[str, int]) -> Path:
    for split, n in per_split.items():
        for cls in sorted(p for p in (root / split).iterdir() if p.is_dir()):
            (dest / split / cls.name).mkdir(parents=True, exist_ok=True)
            for f in sorted(cls.iterdir())[:n]:
                link_or_copy(f, dest / split / cls.name / f.name)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(SAMPLE))
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--subset", default="12,5", help="train,val images per class")
    ap.add_argument("--train-args", default="--strategy finetune --train-top 1 --epochs 2 "
                    "--augment none --batch-size 16 --no-fast-data --no-cache")
    ap.add_argument("--record", help="append the table to this markdown file")
    args = ap.parse_args()
    info = machine()
    # torchrun itself sets OMP_NUM_THREADS=1 per process when K > 1; the plain command and
    # torchrun x1 keep PyTorch's default thread count.
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    py = sys.executable
    variants = [("plain", [py, "-m", "transferlab", "train"])]
    variants += [(f"torchrun x{k}", [py, "-m", "torch.distributed.run", "--standalone",
                                    f"--nproc_per_node={k}", "-m", "transferlab", "train"])
                 for k in args.nproc]
    results: dict[str, dict[str, list[float]]] = {name: {"wall": [], "ips": []}
                                                  for name, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        n_train, n_val = (int(v) for v in args.subset.split(","))
        data = subset(Path(args.data), Path(tmp) / "data", {"train": n_train, "val": n_val})
        for rep in range(args.repeats):
            for name, prefix in variants:  # interleaved: load changes hit every variant
                run_name = f"{name.replace(' ', '_')}-{rep}"
                cmd = [*prefix, str(data), "--out", tmp, "--name", run_name, "--device",
                       args.device, "--cache-dir", str(Path(tmp) / "cache"),
                       *args.train_args.split()]
                wall = run(cmd, env)
                rows = json.loads((Path(tmp) / run_name / "metrics.json").read_text())
                results[name]["wall"].append(wall)
                results[name]["ips"].append(statistics.mean(r["images_per_s"] for r in rows))
                print(f"{name:14s} rep {rep}: {wall:6.1f} s, "
                      f"{results[name]['ips'][-1]:6.1f} train img/s", flush=True)
    base = {k: statistics.median(v) for k, v in results["plain"].items()}
    table = []
    for name, _ in variants:
        wall, ips = (statistics.median(results[name][k]) for k in ("wall", "ips"))
        table.append({"command": name, "wall_s": wall, "train_img_s": ips,
                      "wall_vs_plain": wall / base["wall"], "img_s_vs_plain": ips / base["ips"]})
    text = (f"{machine_line(info)}; device {args.device}; `{args.train_args}` on "
            f"{args.data} ({args.subset} images per class); median of {args.repeats}\n\n"
            + markdown_table(table, [("command", "command"), ("wall_s", "wall s"),
                                     ("train_img_s", "train img/s"),
                                     ("wall_vs_plain", "wall / plain"),
                                     ("img_s_vs_plain", "img/s / plain")]))
    print(text)
    record(args.record, "torchrun vs plain launch", text)


if __name__ == "__main__":
    main()
