"""What the web playground costs on top of the library.

1. Training through the web's job runner (a *spawn* worker process per job, freshly started
   or the standby worker that imported torch while the server was idle; events streamed from
   ``events.jsonl``) against the peer: ``fine_tune`` called directly in a warm process, as a
   notebook or ``transferlab train`` does. Same data (the shipped food4 sample,
   8 train / 4 val images per class), same feature-extraction settings, same warm feature
   cache; reported: wall time to the finished run and to the first epoch seen, and ratios.
2. The tensor inspector (forward hooks on every layer group, statistics, thumbnails, PNG
   grids) against a plain forward pass of the same image through the same model.

Run::

    .venv/bin/python benchmarks/web_jobs.py [--repeats 3] [--record benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SAMPLE, machine, machine_line, markdown_table, record  # noqa: E402

from transferlab.api import fine_tune  # noqa: E402
from transferlab.config import TrainConfig  # noqa: E402
from transferlab.store.registry import RunRegistry  # noqa: E402
from transferlab.web.jobs import JobRunner  # noqa: E402


def make_data(dest: Path) -> Path:
    import shutil

    for split, n in (("train", 8), ("val", 4)):
        for cls in sorted(p.name for p in (SAMPLE / split).iterdir()):
            out = dest / split / cls
            out.mkdir(parents=True)
            for f in sorted((SAMPLE / split / cls).iterdir())[:n]:
                shutil.copy(f, out / f.name)
    return dest


def first_epoch_seen(events: Path, start: float, timeout: float = 300) -> float:
    while time.perf_counter() - start < timeout:
        if events.is_file() and '"epoch_end"' in events.read_text(encoding="utf-8"):
            return time.perf_counter() - start
        time.sleep(0.02)
    raise TimeoutError("no epoch_end event")


def bench_jobs(data: Path, out: Path, cache: Path, repeats: int) -> list[dict]:
    base = {"data": str(data), "strategy": "feature-extraction", "epochs": 5, "batch_size": 8,
            "cache_dir": str(cache), "out": str(out)}
    fine_tune(TrainConfig(**base, name="warmup"), progress=False)  # warm imports and cache
    times: dict[str, list[float]] = {k: [] for k in ("peer", "peer_first", "cold", "cold_first",
                                                     "warm", "warm_first")}

    class First:  # the in-process peer's first epoch, for the same measure
        def __init__(self, start: float) -> None:
            self.start, self.t = start, None

        def __getattr__(self, name):
            return lambda *a: None

        def on_epoch_end(self, trainer, record) -> None:
            self.t = self.t or time.perf_counter() - self.start

    def web(runner: JobRunner, job_id: str, key: str) -> None:
        cfg = TrainConfig(**base, name=job_id)
        t = time.perf_counter()
        runner.submit(job_id, "train", {"config": cfg.to_dict()})
        times[f"{key}_first"].append(first_epoch_seen(out / job_id / "events.jsonl", t))
        info = runner.wait(job_id)
        assert info["state"] == "done", info["error"]
        times[key].append(time.perf_counter() - t)

    cold = JobRunner(RunRegistry(out / "cold.sqlite"), poll_s=0.02, warm_worker=False)
    warm = JobRunner(RunRegistry(out / "warm.sqlite"), poll_s=0.02, warm_worker=True)
    try:
        for i in range(repeats):
            while not warm.standby_ready:  # the standby imports while the server is idle
                time.sleep(0.05)
            t = time.perf_counter()
            first = First(t)
            fine_tune(TrainConfig(**base, name=f"direct-{i}"), progress=False, callbacks=[first])
            times["peer"].append(time.perf_counter() - t)
            times["peer_first"].append(first.t)
            web(cold, f"cold-{i}", "cold")
            web(warm, f"warm-{i}", "warm")
    finally:
        cold.shutdown()
        warm.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    return [
        {"what": "finished run (s)", "peer": med["peer"], "cold": med["cold"],
         "cold_ratio": med["cold"] / med["peer"], "warm": med["warm"],
         "warm_ratio": med["warm"] / med["peer"]},
        {"what": "first epoch seen (s)", "peer": med["peer_first"], "cold": med["cold_first"],
         "cold_ratio": med["cold_first"] / med["peer_first"], "warm": med["warm_first"],
         "warm_ratio": med["warm_first"] / med["peer_first"]},
    ]


def bench_inspect(repeats: int) -> list[dict]:
    from transferlab.data import build_transforms, load_rgb
    from transferlab.inspect.activations import feature_map_grid, inspect_activations
    from transferlab.models.factory import create_model

    model = create_model(num_classes=4).eval()
    image = next((SAMPLE / "val" / "baklava").iterdir())
    tf = build_transforms(model.data_config, train=False)

    def plain():
        with torch.inference_mode():
            model(tf(load_rgb(image)).unsqueeze(0))

    def inspected():
        for a in inspect_activations(model, image):
            if a.feature_maps.shape[0]:
                feature_map_grid(a.feature_maps)

    plain(), inspected()  # warm up
    times = {"plain": [], "inspect": []}
    for _ in range(repeats * 3):
        for name, fn in (("plain", plain), ("inspect", inspected)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    p, q = statistics.median(times["plain"]), statistics.median(times["inspect"])
    return [{"what": "one image (ms)", "peer": p * 1000, "web": q * 1000, "ratio": q / p}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", help="append the tables to this markdown file")
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_data(tmp / "food4mini")
        jobs = bench_jobs(data, tmp / "runs", tmp / "cache", args.repeats)
    inspect_rows = bench_inspect(args.repeats)
    cols = [("what", "measure"), ("peer", "peer"), ("web", "web"), ("ratio", "web / peer")]
    job_cols = [("what", "measure"), ("peer", "peer"), ("cold", "web, cold worker"),
                ("cold_ratio", "cold / peer"), ("warm", "web, standby worker"),
                ("warm_ratio", "standby / peer")]
    text = (machine_line(info) + "\n\n"
            f"Training, feature extraction, 5 epochs, 32+16 images, median of {args.repeats}; "
            "peer: `fine_tune` in a warm process; web: the job runner, with a freshly spawned "
            "worker (cold) or the standby worker that imported torch while idle\n\n"
            + markdown_table(jobs, job_cols) + "\n\nTensor inspector; peer: a plain forward pass "
            "of the same image; web: `inspect_activations` + PNG grids\n\n"
            + markdown_table(inspect_rows, cols))
    print(text)
    record(args.record, "Web playground overhead (benchmarks/web_jobs.py)", text)


if __name__ == "__main__":
    main()
