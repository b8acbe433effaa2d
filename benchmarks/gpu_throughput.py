"""Throughput of the data path as a fraction of the synthetic limit, in one process.

For each model, at one batch size and resolution (bf16 autocast + channels_last on CUDA;
fp32 + channels_last on a CPU):

* synthetic limit: forward (inference mode) and forward+backward+AdamW step on a random
  tensor already on the device;
* this project's data path: images decoded once into the uint8 store (JPEG decoding on the
  GPU when there is one), then random resized crop, flip and colour jitter batched on the
  device — full fine-tuning steps, measured after a first (warm-up) epoch;
* feature extraction from the same store (centre crop, forward only);
* optionally (``--naive``) a tutorial-style PIL DataLoader with worker processes.

Prints images/s and the fractions data-path / synthetic. Runs anywhere: on a CPU use small
sizes to check that it works, e.g.::

    .venv/bin/python benchmarks/gpu_throughput.py --size 64 --batch 16 --steps 4
    .venv/bin/python benchmarks/gpu_throughput.py            # on a GPU: 224 px, batch 256
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SAMPLE, SHARED_DATA, machine, machine_line, markdown_table, record  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, bf16: bool):
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Step:
    """One training step (forward, loss, backward, fused AdamW on CUDA) and one inference."""

    def __init__(self, model: torch.nn.Module, device: torch.device, bf16: bool,
                 compile_: bool) -> None:
        self.model = model.to(device).to(memory_format=torch.channels_last)
        self.device, self.bf16 = device, bf16
        self.fn = torch.compile(self.model) if compile_ else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4,
                                     fused=device.type == "cuda")
        self.loss = torch.nn.CrossEntropyLoss()

    def train(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model.train()
        with _autocast(self.device, self.bf16):
            loss = self.loss(self.fn(x).float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def infer(self, x: torch.Tensor) -> None:
        self.model.eval()
        with torch.inference_mode(), _autocast(self.device, self.bf16):
            self.fn(x)


def _rate(fn, batches, device: torch.device, warmup: int) -> float:
    """Images per second of ``fn`` over ``batches`` (an iterator), after ``warmup`` batches."""
    seen, start = 0, None
    for i, batch in enumerate(batches):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
            seen = 0
        fn(*batch)
        seen += batch[0].shape[0]
    _sync(device)
    if start is None:
        raise ValueError("not enough batches to measure after the warm-up")
    return seen / (time.perf_counter() - start)


def _repeat(x, y, n):
    for _ in range(n):
        yield x, y


def _epochs(loader, n_batches: int):
    """``n_batches`` full-size batches from ``loader``, restarting it as often as needed."""
    out = 0
    while True:
        for x, y in loader:
            if x.shape[0] != loader.batch_size:
                continue  # keep one shape (cudnn autotuning, comparable steps)
            yield x, y.to(x.device, non_blocking=True)
            out += 1
            if out == n_batches:
                return


def run_model(name: str, samples, classes: int, args, device: torch.device,
              cache_dir: Path) -> dict:
    from transferlab.data.decoded import DecodedLoader, decoded_store
    from transferlab.data.gpu_augment import DeviceAugment
    from transferlab.models.factory import create_model

    bf16 = device.type == "cuda" and not args.fp32
    model = create_model(name, num_classes=classes, weights="random")
    cfg = dict(model.data_config)
    cfg["input_size"] = (3, args.size, args.size)
    step = Step(model, device, bf16, args.compile)
    b = args.batch
    x = torch.randn(b, 3, args.size, args.size, device=device).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(classes, (b,), device=device)
    row = {"model": name, "batch": b, "size": args.size,
           "precision": "bf16" if bf16 else "fp32"}
    row["synthetic_fwd"] = _rate(lambda x, y: step.infer(x), _repeat(x, y, args.steps +
                                                                      args.warmup), device,
                                 args.warmup)
    row["synthetic_fwdbwd"] = _rate(step.train, _repeat(x, y, args.steps + args.warmup),
                                    device, args.warmup)

    t0 = time.perf_counter()
    store = decoded_store(samples, cfg, cache_dir=cache_dir, device=device)
    row["decode_s"] = time.perf_counter() - t0
    row["decoded_images"] = len(store)
    per_epoch = len(store) // b
    if per_epoch < 1:
        raise ValueError(f"{len(store)} images cannot fill a batch of {b}")
    train = DecodedLoader(store, DeviceAugment(cfg, "standard"), batch_size=b, shuffle=True,
                          device=device)
    # the first epoch warms up (and is excluded), as in the target
    row["data_fwdbwd"] = _rate(step.train, _epochs(train, per_epoch + args.steps), device,
                               per_epoch)
    evals = DecodedLoader(store, DeviceAugment(cfg, "none"), batch_size=b, shuffle=False,
                          device=device)
    row["data_fwd"] = _rate(lambda x, y: step.infer(x), _epochs(evals, args.warmup +
                                                                 args.steps), device,
                            args.warmup)
    # the library call itself: keys (file and weight hashes), extraction, writes to disk
    from transferlab.data.decoded import DecodedSource
    from transferlab.data.features import cached_activations

    model.eval()
    t0 = time.perf_counter()
    cached_activations(model, DecodedSource(store, cfg, augment="none"), batch_size=b,
                       cache_dir=cache_dir / f"features-{name}", device=device)
    _sync(device)
    row["extract_call"] = len(store) / (time.perf_counter() - t0)
    row["extract_call_fraction"] = row["extract_call"] / row["synthetic_fwd"]
    row["fwdbwd_fraction"] = row["data_fwdbwd"] / row["synthetic_fwdbwd"]
    row["fwd_fraction"] = row["data_fwd"] / row["synthetic_fwd"]
    if args.naive:
        row["naive_fwdbwd"] = _naive_rate(step, samples, cfg, b, args, device)
        row["naive_fraction"] = row["naive_fwdbwd"] / row["synthetic_fwdbwd"]
    print(json.dumps(row), flush=True)
    return row


def _naive_rate(step: Step, samples, cfg, b: int, args, device: torch.device) -> float:
    """Tutorial-style PIL pipeline with worker processes feeding the same step."""
    from transferlab.data import build_transforms, make_loader

    tf = build_transforms(cfg, train=True, augment="standard")
    loader = make_loader(samples, tf, batch_size=b, shuffle=True, seed=0,
                         num_workers=args.workers)

    def batches():
        for x, y in _epochs(loader, args.warmup + args.steps):
            yield (x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
                   y.to(device))

    return _rate(step.train, batches(), device, args.warmup)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet18,tf_efficientnet_lite0")
    p.add_argument("--data", type=Path, help="image folder (default ../shared/data/food10/train, "
                   "else the shipped food4 sample)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=20, help="measured batches per number")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--naive", action="store_true", help="also time a PIL DataLoader")
    p.add_argument("--workers", type=int, default=4, help="workers of the --naive loader")
    p.add_argument("--record", help="append the result table to this markdown file")
    args = p.parse_args(argv)

    from transferlab.data import scan_image_folder
    from transferlab.training.accel import configure_backend

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    configure_backend(device)
    root = args.data or (SHARED_DATA / "food10" / "train")
    if not root.is_dir():
        root = SAMPLE / "train"
    index = scan_image_folder(root)
    info = machine()
    print(machine_line(info), flush=True)
    print(f"data: {root} ({len(index.samples)} images, {len(index.classes)} classes); "
          f"device {device}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tl-gpu-bench-") as cache:
        for name in args.models.split(","):
            rows.append(run_model(name, index.samples, len(index.classes), args, device,
                                  Path(cache)))
    cols = [("model", "model"), ("precision", "precision"), ("batch", "batch"),
            ("size", "px"), ("synthetic_fwd", "synthetic fwd img/s"),
            ("data_fwd", "feature extraction img/s"), ("fwd_fraction", "fraction"),
            ("extract_call", "cached_activations() img/s"), ("extract_call_fraction", "fraction"),
            ("synthetic_fwdbwd", "synthetic fwd+bwd img/s"),
            ("data_fwdbwd", "decode-once fine-tuning img/s"), ("fwdbwd_fraction", "fraction"),
            ("decode_s", "first decode s")]
    if args.naive:
        cols += [("naive_fwdbwd", "PIL loader img/s"), ("naive_fraction", "fraction")]
    text = (f"{machine_line(info)}; load average at end {machine()['load']}.\n\n"
            f"Data: {root} ({len(index.samples)} images). Command: `.venv/bin/python "
            f"benchmarks/gpu_throughput.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
            f"\n\n{markdown_table(rows, cols)}")
    print()
    print(text)
    record(args.record, f"Throughput vs synthetic limit ({device.type}) — {info['date']}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
