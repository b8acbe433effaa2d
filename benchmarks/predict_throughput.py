"""Batch prediction throughput: ``predict_probs`` against a plain per-image loop.

Peer (the usual "predict a folder" script, and this project's first ``predict_images``):
decode and transform each image in the main process, stack 32 at a time, run the model in
fp32 NCHW under ``torch.inference_mode``. Ours: the same decode and transforms, batched
through a DataLoader (optionally with worker processes), channels_last on CPU; and with
``fast_decode`` (JPEG DCT-scaled decoding) on large photos. Same model, same images, same
process; each variant runs ``--repeats`` times (interleaved) and the median is reported as
images per second and as a ratio to the peer. Run::

    .venv/bin/python benchmarks/predict_throughput.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SAMPLE, SHARED_DATA, machine, machine_line, markdown_table, record  # noqa: E402

from transferlab.data import build_transforms, load_rgb  # noqa: E402
from transferlab.export.predict import list_images, predict_probs  # noqa: E402
from transferlab.models.factory import create_model  # noqa: E402


@torch.inference_mode()
def peer(model, paths, batch_size: int = 32) -> torch.Tensor:
    tf = build_transforms(model.data_config, train=False)
    model = model.eval().to(memory_format=torch.contiguous_format)
    out, batch = [], []
    for p in paths:
        batch.append(tf(load_rgb(p)))
        if len(batch) == batch_size:
            out.append(model(torch.stack(batch)).softmax(1))
            batch = []
    if batch:
        out.append(model(torch.stack(batch)).softmax(1))
    return torch.cat(out)


def big_photos(paths, dest: Path, side: int) -> list[Path]:
    """Phone-sized copies (longer side ``side``) of some photos: decoding dominates there."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(paths):
        img = Image.open(p).convert("RGB")
        scale = side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        out.append(dest / f"big{i}.jpg")
        img.save(out[-1], quality=90)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--big", type=int, default=32, help="number of large photos")
    ap.add_argument("--big-side", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--record", help="append the table to this markdown file")
    args = ap.parse_args()
    info = machine()
    folder = SHARED_DATA / "food10" / "val"
    if not folder.is_dir():
        folder = SAMPLE / "val"
    paths = list_images(folder)[: args.images]
    model = create_model(classes=[str(i) for i in range(10)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        big = big_photos(paths[: args.big], Path(tmp), args.big_side)
        sets = {"photos": paths, "big photos": big}
        variants = {
            "peer: per-image loop, NCHW": lambda ps: peer(model, ps),
            "ours: batched, channels_last": lambda ps: predict_probs(model, ps)[0],
            "ours + 1 worker": lambda ps: predict_probs(model, ps, num_workers=1)[0],
            "ours + fast_decode": lambda ps: predict_probs(model, ps, fast_decode=True)[0],
        }
        for set_name, ps in sets.items():
            times: dict[str, list[float]] = {k: [] for k in variants}
            top1: dict[str, torch.Tensor] = {}
            for _ in range(args.repeats):
                for name, fn in variants.items():  # interleaved: load changes hit all
                    start = time.perf_counter()
                    top1[name] = fn(ps).argmax(1)
                    times[name].append(time.perf_counter() - start)
            peer_name = next(iter(variants))
            base = len(ps) / statistics.median(times[peer_name])
            for name in variants:
                ips = len(ps) / statistics.median(times[name])
                rows.append({"images": f"{set_name} ({len(ps)})", "method": name,
                             "img_s": ips, "ratio": ips / base,
                             "top1_agrees": float((top1[name] == top1[peer_name])
                                                  .float().mean())})
                print(rows[-1], flush=True)
    text = (f"{machine_line(info)}; tf_efficientnet_lite0 224 px; {folder}; "
            f"big photos: longer side {args.big_side} px; median of {args.repeats}\n\n"
            + markdown_table(rows, [("images", "images"), ("method", "method"),
                                    ("img_s", "images/s"), ("ratio", "x peer"),
                                    ("top1_agrees", "top-1 = peer")]))
    print(text)
    record(args.record, "batch prediction throughput", text)


if __name__ == "__main__":
    main()
