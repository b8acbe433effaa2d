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
    load_average,
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



# -- fair peers: every method a cold process, alternating order, repeated --------------------
# Each method runs in its own Python process (start-up and imports included, as a user pays
# them): ``cpu_peers.py --one METHOD --data DIR`` prints one JSON line.
FAIR_METHODS = ("ours-fe", "ours-fe-same-epochs", "sklearn-lr", "fastai-frozen",
                "fastai-fine_tune")
SAME_EPOCHS = 5  # epochs of the frozen-body peers that train a head for a fixed count


def _one_ours(data: Path, cache: Path, out: Path, epochs: int | None, engine: str) -> dict:
    from transferlab.api import fine_tune

    options = {"epochs": epochs, "patience": epochs} if epochs else {}
    result = fine_tune(data=str(data), model=MODEL, strategy="feature-extraction",
                       cache_dir=str(cache), out=str(out), engine=engine, progress=False,
                       **options)
    accs = [r["val_acc"] for r in result.history]
    return {"acc": result.accuracy, "final_epoch_acc": accs[-1], "best_epoch_acc": max(accs),
            "epochs": len(accs), "reported": "best epoch (early stopping restores it)",
            "notes": result.notes}


def _one_sklearn(data: Path) -> dict:
    """Extract pooled features once (PyTorch fp32, the model's own eval preprocessing), then
    scikit-learn's LogisticRegression: the same work as feature extraction, done plainly."""
    import timm
    import torchvision.transforms as T
    from sklearn.linear_model import LogisticRegression
    from torchvision.datasets import ImageFolder

    net = pretrained_timm(0).eval().to(memory_format=torch.channels_last)
    cfg = timm.data.resolve_data_config(model=net)
    tf = timm.data.create_transform(**cfg)
    assert isinstance(tf, T.Compose)

    def features(split: str):
        ds = ImageFolder(str(data / split), tf)
        dl = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=2)
        xs, ys = [], []
        with torch.inference_mode():
            for x, y in dl:
                xs.append(net(x.contiguous(memory_format=torch.channels_last)))
                ys.append(y)
        return torch.cat(xs).numpy(), torch.cat(ys).numpy()

    xt, yt = features("train")
    xv, yv = features("val")
    clf = LogisticRegression(max_iter=2000).fit(xt, yt)
    acc = float((clf.predict(xv) == yv).mean())
    return {"acc": acc, "final_epoch_acc": acc, "best_epoch_acc": acc, "epochs": 1,
            "reported": "final (one fit)"}


def _one_fastai(data: Path, mode: str, epochs: int) -> dict:
    import timm
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

    cfg = timm.data.resolve_data_config(model=timm.create_model(MODEL, pretrained=False))
    accs: list[float] = []

    class Record(Callback):
        order = Recorder.order + 1

        def after_epoch(self):
            accs.append(float(self.learn.recorder.values[-1][-1]))

    def arch(pretrained: bool = True, **_):
        return pretrained_timm(0)

    batch_tfms = [Normalize.from_stats(cfg["mean"], cfg["std"])]
    if mode == "fine_tune":  # fastai's own recipe: presizing + augmentation
        batch_tfms = [*aug_transforms(size=224, min_scale=0.75), *batch_tfms]
        item = Resize(256)
    else:  # frozen body, head only, no augmentation: what feature extraction does
        item = Resize(224)
    dls = ImageDataLoaders.from_folder(data, train="train", valid="val", item_tfms=item,
                                       bs=64, batch_tfms=batch_tfms)
    learn = vision_learner(dls, arch, normalize=False, metrics=accuracy, cbs=[Record()])
    with learn.no_bar(), learn.no_logging():
        if mode == "fine_tune":
            learn.fine_tune(epochs)
        else:
            learn.fit_one_cycle(epochs)  # vision_learner starts frozen: the head trains
        acc = float(learn.validate()[1])
    return {"acc": acc, "final_epoch_acc": accs[-1] if accs else acc,
            "best_epoch_acc": max(accs) if accs else acc, "epochs": len(accs),
            "reported": "final epoch"}


def run_one(method: str, data: Path, work: Path, engine: str) -> dict:
    """Run ``method`` in this (fresh) process; wall time from process start."""
    import os

    if method == "ours-fe":
        row = _one_ours(data, work / "cache", work / "runs", None, engine)
    elif method == "ours-fe-same-epochs":
        row = _one_ours(data, work / "cache", work / "runs", SAME_EPOCHS, engine)
    elif method == "sklearn-lr":
        row = _one_sklearn(data)
    elif method == "fastai-frozen":
        row = _one_fastai(data, "frozen", SAME_EPOCHS)
    elif method == "fastai-fine_tune":
        row = _one_fastai(data, "fine_tune", 3)
    else:
        raise ValueError(f"unknown method {method}")
    started = float(os.environ.get("TL_BENCH_T0", "nan"))
    row["wall_s"] = time.time() - started
    row["method"] = method
    return row


def balanced_subset(root: Path, dest: Path, classes: list[str], per_class: int) -> Path:
    """``dest/class/*``: the first ``per_class`` files of each class (sorted), hard-linked."""
    import shutil

    from _common import link_or_copy

    if dest.exists():
        shutil.rmtree(dest)
    for cls in classes:
        files = sorted(p for p in (root / cls).iterdir() if p.is_file())[:per_class]
        (dest / cls).mkdir(parents=True)
        for f in files:
            link_or_copy(f.resolve(), dest / cls / f.name)
    return dest


def fair_main(args) -> int:
    import os
    import resource
    import shutil
    import statistics
    import subprocess

    info = machine()
    print(machine_line(info), flush=True)
    work = Path(tempfile.mkdtemp(prefix="tl-fair-"))
    datasets = []
    for spec in args.fair_data.split(";"):
        name, _, rest = spec.partition(":")
        if name == "food10":
            classes = rest.split(",") if rest else ["apple_pie", "baby_back_ribs"]
            d = subset_folder(SHARED_DATA / "food10", work / "food10", classes)
            label = f"food10 {'+'.join(classes)}"
        elif name == "magnetic_tile":
            cls_part, _, n = rest.partition("x")
            classes = cls_part.split(",") if cls_part else ["blowhole", "break", "crack",
                                                             "free", "uneven"]
            per = int(n or 57)
            flat = balanced_subset(SHARED_DATA / "magnetic_tile", work / "mt-flat", classes,
                                   per)
            d = subset_folder(flat, work / "magnetic_tile", None)
            label = f"magnetic_tile {len(classes)} classes x {per} (balanced, seeded 80/20)"
        else:
            raise SystemExit(f"unknown dataset {name}")
        warm_page_cache(d)
        n_train = sum(1 for p in (d / "train").rglob("*") if p.is_file())
        n_val = sum(1 for p in (d / "val").rglob("*") if p.is_file())
        datasets.append((label, d, n_train, n_val))
    methods = [m for m in args.methods.split(",") if m]
    rows: list[dict] = []
    for label, d, _n_train, _n_val in datasets:
        for rep in range(args.repeats):
            order = methods if rep % 2 == 0 else methods[::-1]
            for method in order:
                run_dir = work / f"run-{len(rows)}"
                run_dir.mkdir()
                env = {**os.environ, "TL_BENCH_T0": repr(time.time())}
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", method, "--data", str(d),
                     "--work", str(run_dir), "--engine", args.engine],
                    env=env, capture_output=True, text=True)
                line = next((x for x in reversed(proc.stdout.splitlines())
                             if x.startswith("{")), None)
                if proc.returncode or line is None:
                    print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                    raise SystemExit(f"{method} failed on {label}")
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                row = json.loads(line)
                row["cpu_s"] = (after.ru_utime + after.ru_stime
                                - before.ru_utime - before.ru_stime)
                row.update(dataset=label, repeat=rep, load=load_average())
                print(json.dumps(row), flush=True)
                rows.append(row)
                shutil.rmtree(run_dir, ignore_errors=True)  # cold: nothing carries over
    info["load_end"] = machine()["load"]
    text = fair_report(rows, datasets, methods, args, info, statistics)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    record(args.record, f"Fair CPU peers — {info['date']}", text)
    return 0


def render_logs(args) -> int:
    """The report of ``--fair`` from the rows its processes printed (one JSON per line)."""
    import statistics

    rows, head = [], []
    for log in args.render:
        for line in log.read_text().splitlines():
            if line.startswith("{") and '"method"' in line:
                rows.append(json.loads(line))
            elif " — " in line and "load average at start" in line:
                head.append(line)
    labels = list(dict.fromkeys(r["dataset"] for r in rows))
    datasets = []
    for label in labels:
        n = {"food10": (300, 100)}.get(label.split()[0])
        if n is None:  # magnetic_tile NxM: 80/20 of classes x per-class
            classes, per = label.split()[1], label.split()[4]
            total = int(classes) * int(per)
            n = (total - total // 5, total // 5)
        datasets.append((label, None, *n))
    methods = [m for m in args.methods.split(",") if m]
    info = {"load_end": load_average(), "line": "; ".join(head)}
    done = {label: sorted({r["repeat"] for r in rows if r["dataset"] == label})
            for label in labels}
    text = fair_report(rows, datasets, methods, args, info, statistics)
    text += ("\n\nRepeats completed per dataset: " + "; ".join(
        f"{k}: {len(v)}" for k, v in done.items()) + ". Started: " + info["line"])
    print(text)
    record(args.record, "Fair CPU peers", text)
    return 0


def fair_report(rows, datasets, methods, args, info, statistics) -> str:
    def med(v):
        return statistics.median(v)

    out = [f"{info.get('line') or machine_line(info)}; load average at end {info['load_end']} (the machine is "
           "shared by 6 engineers: every figure is under their load).", "",
           f"Command: `.venv/bin/python benchmarks/cpu_peers.py --fair --repeats "
           f"{args.repeats} --engine {args.engine}`. Every method is a cold process (imports, "
           "model creation, decoding and the forward passes included; our feature cache "
           "and ONNX export start empty), methods alternate order between repeats "
           "(forward, reversed, forward), figures are median [min-max] over "
           f"{args.repeats} repeats. Same offline Lite0 ImageNet weights everywhere.", "",
           "Methods: `ours-fe` = `fine_tune(strategy='feature-extraction')` at its defaults "
           "(up to 50 epochs on cached features, early stopping, reports the best epoch); "
           f"`ours-fe-same-epochs` = the same with exactly {SAME_EPOCHS} epochs; `sklearn-lr` "
           "= features extracted once with plain PyTorch fp32 + scikit-learn "
           f"LogisticRegression; `fastai-frozen` = `vision_learner` (body frozen) "
           f"`fit_one_cycle({SAME_EPOCHS})`, head only, no augmentation (the body runs every "
           "epoch); `fastai-fine_tune` = `fine_tune(3)` with its presizing and augmentation. "
           "CPU s = user + system time of the method's process and its children (its "
           "share of the machine, less sensitive to the other engineers' load than wall "
           "time).", ""]
    for label, _, n_train, n_val in datasets:
        mine = [r for r in rows if r["dataset"] == label]
        out += [f"**{label}** ({n_train} train / {n_val} val images; one val image = "
                f"{100 / n_val:.1f} points)", "",
                "| method | wall s | CPU s | reported acc | final-epoch acc | best-epoch acc "
                "| epochs | fastai fine_tune(3) / this: wall (median of per-repeat ratios) "
                "| same, CPU time |",
                "|---|---|---|---|---|---|---|---|---|"]
        for m in methods:
            rs = [r for r in mine if r["method"] == m]
            if not rs:
                continue

            def span(key, fmt="{:.3f}", rs=rs):
                v = [r[key] for r in rs]
                return f"{fmt.format(med(v))} [{fmt.format(min(v))}-{fmt.format(max(v))}]"

            def ratio(key, rs=rs, m=m, mine=mine):
                ratios = []
                for r in rs:
                    peer = [x[key] for x in mine if x["method"] == "fastai-fine_tune"
                            and x["repeat"] == r["repeat"]]
                    if peer:
                        ratios.append(peer[0] / r[key])
                return (f"{med(ratios):.1f}x [{min(ratios):.1f}-{max(ratios):.1f}]"
                        if ratios and m != "fastai-fine_tune" else "")

            out.append(f"| {m} | {span('wall_s', '{:.1f}')} | {span('cpu_s', '{:.1f}')} | "
                       f"{span('acc')} | {span('final_epoch_acc')} | "
                       f"{span('best_epoch_acc')} | {span('epochs', '{:.0f}')} | "
                       f"{ratio('wall_s')} | {ratio('cpu_s')} |")
        out.append("")
    notes = sorted({n for r in rows for n in r.get("notes", []) if "engine" in n})
    if notes:
        out.append("Engine notes from our runs: " + "; ".join(notes))
    return "\n".join(out)


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
    p.add_argument("--fair", action="store_true",
                   help="fair peers: every method a cold process, --repeats, alternating order")
    p.add_argument("--fair-data", default="food10;magnetic_tile",
                   help="';'-separated: food10[:class,class] and magnetic_tile[:classes xN]")
    p.add_argument("--methods", default=",".join(FAIR_METHODS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--engine", default="auto", help="our engine (--fair)")
    p.add_argument("--render", nargs="+", type=Path, metavar="LOG",
                   help="--fair: build the report from the JSON rows printed in these logs "
                   "(e.g. runs split over two processes, or stopped before the end)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.data, args.work, args.engine)), flush=True)
        return 0
    if args.render:
        return render_logs(args)
    if args.fair:
        return fair_main(args)

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
