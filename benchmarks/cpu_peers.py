"""CPU benchmark against peers, in one process, on the same images and the same weights.

Methods (each starts from the offline ImageNet weights of tf_efficientnet_lite0):

* this project, ``fine_tune`` with each strategy at its defaults, every strategy with an empty
  cache (cold: decoding and extraction included); feature extraction again with the cache
  it left (warm);
* a naive torchvision-tutorial loop: ImageFolder + PIL transforms + fp32 NCHW, all layers
  fine-tuned with SGD (as in the PyTorch transfer-learning tutorial), ``--naive-epochs``;
* fastai: ``vision_learner(...).fine_tune(3)`` with the same timm model and weights, its
  presizing recipe (``Resize(256)`` + ``aug_transforms(size=224, min_scale=0.75)``) and the
  model's own normalisation (what ``vision_learner`` does for a timm architecture).

Prints wall time, time to reach ``--target`` validation accuracy, final accuracy, training
images per second, and ratios against fastai (and the naive loop). Run::

    .venv/bin/python benchmarks/cpu_peers.py            # 2 classes x 200 images of food10
    .venv/bin/python benchmarks/cpu_peers.py --classes all --strategies feature-extraction
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    SHARED_DATA,
    machine,
    machine_line,
    markdown_table,
    record,
    subset_folder,
    warm_page_cache,
)

MODEL = "tf_efficientnet_lite0"


class Timeline:
    """(seconds since the method started, validation accuracy) at each epoch end."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.points: list[tuple[float, float]] = []
        self.fits: list[tuple[str, float]] = []

    def add(self, acc: float) -> None:
        self.points.append((time.perf_counter() - self.t0, float(acc)))

    def time_to(self, target: float) -> float | None:
        return next((t for t, acc in self.points if acc >= target), None)


def _summary(name: str, tl: Timeline, wall: float, acc: float, images: int, target: float,
             **extra) -> dict:
    reached = tl.time_to(target)
    row = {"method": name, "wall_s": wall, "final_acc": acc,
           f"time_to_{target:.2f}": reached if reached is not None else "not reached",
           "train_images": images, "img_per_s": images / wall, **extra}
    print(json.dumps(row), flush=True)
    return row


# -- this project ----------------------------------------------------------------------------
def run_project(data: Path, strategy: str, cache_dir: Path, out: Path, target: float,
                label: str, **overrides) -> dict:
    from transferlab.api import fine_tune
    from transferlab.config import TrainConfig
    from transferlab.training.loop import Callback

    tl = Timeline()

    class Listen(Callback):
        def on_fit_start(self, trainer):
            self.start = time.perf_counter()

        def on_epoch_end(self, trainer, record):
            tl.add(record.val_acc)

        def on_fit_end(self, trainer):
            tl.fits.append((trainer.phase, time.perf_counter() - self.start))
            epochs = sum(r.seconds for r in trainer.history)  # training + validation only
            tl.fits.append((f"{trainer.phase}_epochs", epochs))

    cfg = TrainConfig(data=str(data), model=MODEL, strategy=strategy, cache_dir=str(cache_dir),
                      out=str(out), **overrides)
    t0 = time.perf_counter()
    result = fine_tune(cfg, progress=False, callbacks=[Listen()])
    wall = time.perf_counter() - t0
    n_train = json.loads((result.run_dir / "data.json").read_text())["train"]
    images = n_train * len(result.history)
    fits = {f"fit_{phase}_s": round(s, 2) for phase, s in tl.fits}
    return _summary(label, tl, wall, result.accuracy, images, target,
                    balanced_acc=result.evaluation.balanced_accuracy, **fits)


# -- the naive tutorial loop ----------------------------------------------------------------
def pretrained_timm(num_classes: int) -> torch.nn.Module:
    """timm's Lite0 with the same offline weights this project loads."""
    import timm

    from transferlab.models.factory import create_model

    source = create_model(MODEL)  # keeps the ImageNet classifier: body + head = full model
    net = timm.create_model(MODEL, pretrained=False, num_classes=0)
    net.load_state_dict(source.body.state_dict())
    if num_classes:
        net.reset_classifier(num_classes)
    return net


def run_naive(data: Path, epochs: int, target: float, workers: int) -> dict:
    import timm
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    tl = Timeline()
    t0 = time.perf_counter()
    net = pretrained_timm(0)
    cfg = timm.data.resolve_data_config(model=net)
    norm = T.Normalize(cfg["mean"], cfg["std"])
    train = ImageFolder(str(data / "train"), T.Compose([
        T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), norm]))
    val = ImageFolder(str(data / "val"), T.Compose([
        T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm]))
    net.reset_classifier(len(train.classes))
    train_dl = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True,
                                           num_workers=workers)
    val_dl = torch.utils.data.DataLoader(val, batch_size=32, num_workers=workers)
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    acc = 0.0
    for _ in range(epochs):
        net.train()
        for x, y in train_dl:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        sched.step()
        net.eval()
        correct = seen = 0
        with torch.no_grad():
            for x, y in val_dl:
                correct += int((net(x).argmax(1) == y).sum())
                seen += len(y)
        acc = correct / seen
        tl.add(acc)
    wall = time.perf_counter() - t0
    return _summary(f"naive tutorial loop ({epochs} epochs)", tl, wall, acc,
                    len(train) * epochs, target)


# -- fastai ------------------------------------------------------------------------------
def run_fastai(data: Path, epochs: int, target: float) -> dict:
    from fastai.vision.all import (
        Callback,
        ImageDataLoaders,
        Normalize,
        Recorder,
        Resize,
        accuracy,
        aug_transforms,
        vision_learner,
    )

    tl = Timeline()
    t0 = time.perf_counter()
    import timm

    cfg = timm.data.resolve_data_config(model=timm.create_model(MODEL, pretrained=False))

    class Record(Callback):
        order = Recorder.order + 1

        def after_epoch(self):
            tl.add(self.learn.recorder.values[-1][-1])

    def arch(pretrained: bool = True, **_):
        return pretrained_timm(0)

    dls = ImageDataLoaders.from_folder(
        data, train="train", valid="val", item_tfms=Resize(256), bs=64,
        batch_tfms=[*aug_transforms(size=224, min_scale=0.75),
                    Normalize.from_stats(cfg["mean"], cfg["std"])])
    learn = vision_learner(dls, arch, normalize=False, metrics=accuracy, cbs=[Record()])
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
        acc = float(learn.validate()[1])
    wall = time.perf_counter() - t0
    n_train = len(dls.train_ds)
    return _summary(f"fastai fine_tune({epochs})", tl, wall, acc, n_train * (epochs + 1),
                    target)


# -- main ------------------------------------------------------------------------------------
def parse_variant(spec: str) -> tuple[str, dict]:
    """``two-phase+train_top=2+feature_views=4`` -> ("two-phase", {"train_top": 2, ...})."""
    strategy, *pairs = spec.split("+")
    options: dict = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        value: object = text
        for cast in (int, float):
            try:
                value = cast(text)
                break
            except ValueError:
                continue
        if text in {"true", "false"}:
            value = text == "true"
        options[key] = value
    return strategy, options


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SHARED_DATA / "food10",
                   help="ImageFolder with train/ and val/, or one folder per class (split "
                   "80/20 as `transferlab train` does, seed 0) (default ../shared/data/food10)")
    p.add_argument("--classes", default="apple_pie,baby_back_ribs",
                   help="comma-separated classes, or 'all' (default: 2 classes, 400 images)")
    p.add_argument("--strategies",
                   default="feature-extraction,two-phase,two-phase+train_top=2,finetune",
                   help="this project's strategies, each optionally with TrainConfig options "
                   "as +key=value ('all': every strategy at its defaults)")
    p.add_argument("--peers", default="fastai,naive", help="fastai,naive or a subset or none")
    p.add_argument("--fastai-epochs", type=int, default=3)
    p.add_argument("--naive-epochs", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the naive loop")
    p.add_argument("--epochs", type=int, help="this project's main-phase epochs (default: "
                   "the strategy's)")
    p.add_argument("--probe-epochs", type=int,
                   help="two-phase probe epochs (default: the strategy's, 50)")
    p.add_argument("--target", type=float, default=0.90, help="accuracy for time-to-accuracy")
    p.add_argument("--record", help="append the result table to this markdown file")
    p.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = p.parse_args(argv)

    if not args.data.is_dir():
        print(f"no dataset at {args.data}", file=sys.stderr)
        return 2
    info = machine()
    print(machine_line(info), flush=True)
    work = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    classes = None if args.classes == "all" else args.classes.split(",")
    data = subset_folder(args.data, work / "data", classes)
    print(f"data: {data} ({warm_page_cache(data) / 1e6:.1f} MB read into the page cache)")
    strategies = (["feature-extraction", "two-phase", "finetune", "full", "gradual"]
                  if args.strategies == "all" else [s for s in args.strategies.split(",") if s])
    peers = [] if args.peers == "none" else args.peers.split(",")

    overrides = {k: v for k, v in (("epochs", args.epochs), ("probe_epochs", args.probe_epochs))
                 if v is not None}
    rows: list[dict] = []
    if "fastai" in peers:
        rows.append(run_fastai(data, args.fastai_epochs, args.target))
    if "naive" in peers:
        rows.append(run_naive(data, args.naive_epochs, args.target, args.workers))
    for index, spec in enumerate(strategies):
        strategy, options = parse_variant(spec)
        cache = work / f"cache-{index}"
        label = f"transferlab {spec.replace('+', ' ')}"
        rows.append(run_project(data, strategy, cache, work / "runs", args.target,
                                f"{label} (cold cache)", **{**overrides, **options}))
        if strategy == "feature-extraction":
            rows.append(run_project(data, strategy, cache, work / "runs", args.target,
                                    f"{label} (warm cache)", **{**overrides, **options}))
    info["load_end"] = machine()["load"]

    ref = {r["method"].split(" ")[0]: r for r in rows}
    for row in rows:
        for peer in ("fastai", "naive"):
            if peer in ref and row is not ref[peer]:
                row[f"x_faster_than_{peer}"] = ref[peer]["wall_s"] / row["wall_s"]
                row[f"acc_vs_{peer}"] = row["final_acc"] - ref[peer]["final_acc"]
    cols = [("method", "method"), ("wall_s", "wall s"), (f"time_to_{args.target:.2f}",
            f"s to {args.target:.0%}"), ("final_acc", "final val acc"), ("balanced_acc", "balanced acc"),
            ("img_per_s", "epoch-images/s"), ("x_faster_than_fastai", "x faster than fastai"),
            ("acc_vs_fastai", "acc - fastai"), ("x_faster_than_naive", "x faster than naive")]
    table = markdown_table(rows, cols)
    fits = [f"- {r['method']}: " + ", ".join(f"{k} {v}" for k, v in r.items()
                                              if k.startswith("fit_"))
            for r in rows if any(k.startswith("fit_") for k in r)]
    n_train = sum(1 for _ in (data / "train").rglob("*") if _.is_file())
    n_val = sum(1 for _ in (data / "val").rglob("*") if _.is_file())
    text = (f"{machine_line(info)}; load average at end {info['load_end']}.\n\n"
            f"Data: {args.data.name}, classes {args.classes} ({n_train} train / {n_val} val "
            f"images); model {MODEL}, offline ImageNet weights for every method.\n"
            f"Command: `.venv/bin/python benchmarks/cpu_peers.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{table}\n\n"
            "Training-loop time per phase: fit_* from fit start to end (per-epoch validation "
            "and checkpoints included), *_epochs_s the epochs alone (training + validation). "
            "epoch-images/s = training images x epochs / wall s.\n" + "\n".join(fits))
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    record(args.record, f"CPU peers — {info['date']}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
