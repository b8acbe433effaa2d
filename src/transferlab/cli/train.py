"""``transferlab train``, ``evaluate`` and ``predict``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..catalog import ENGINES
from ..config import TrainConfig
from ..options import BY_NAME, CLI, Option, check, options_for, parse
from ._signals import interruptible


def _converter(o: Option):
    """argparse ``type=`` for option ``o``: parse the text, then the table's one check."""

    def convert(text: str):
        try:
            return check(o.name, parse(o, text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = o.kind  # argparse names the type in its own messages
    return convert


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of every option the CLI shows (:data:`transferlab.options.OPTIONS`)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for o in options_for(CLI):
        g = groups.get(o.group) or groups.setdefault(
            o.group, p.add_argument_group(f"training options: {o.group}"))
        if o.name == "name":  # ``train --name`` names the run, a sweep's names the sweep
            continue
        flags = [o.flag, *(a for a in o.cli_aliases if not a.startswith("--no-"))]
        if o.kind == "bool":
            g.add_argument(*flags, dest=o.name, default=o.default, help=o.help,
                           action=argparse.BooleanOptionalAction)
            for alias in (a for a in o.cli_aliases if a.startswith("--no-")):
                g.add_argument(alias, dest=o.name, action="store_false", help=argparse.SUPPRESS)
            continue
        shown = f" (default {o.default})" if o.default is not None and "default" not in o.help \
            else ""
        metavar = o.metavar or ("{" + ",".join(o.choices) + "}" if o.choices else None)
        g.add_argument(*flags, dest=o.name, default=o.default, type=_converter(o),
                       metavar=metavar, help=o.help.replace("%", "%%") + shown)


def config_from_args(args: argparse.Namespace, data: str | None) -> TrainConfig:
    """TrainConfig from the flags; ``--config FILE`` (YAML or JSON) fills what was not given."""
    keys = TrainConfig.__dataclass_fields__.keys()
    values = {k: getattr(args, k) for k in keys if hasattr(args, k) and k != "data"}
    config_file = getattr(args, "config", None)
    if config_file:
        doc = _read_config_file(Path(config_file))
        unknown = sorted(set(doc) - set(keys))
        if unknown:
            raise ValueError(f"{config_file}: unknown settings {unknown}")
        defaults = getattr(args, "_defaults", {})
        for key, value in doc.items():
            if key == "data":
                data = data or value
            elif key not in values or values[key] == defaults.get(key):
                # YAML reads 1e-3 as text: parse it as the flag would
                o = BY_NAME.get(key)
                values[key] = parse(o, value) if o and isinstance(value, str) else value
    if not data:
        raise ValueError("give a DATA folder (or --resume RUN_DIR)")
    return TrainConfig(data=str(data), **values)


def _read_config_file(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml

        doc = yaml.safe_load(text)
    else:
        doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(doc).__name__}")
    return doc


def cmd_train(args: argparse.Namespace) -> int:
    from ..api import fine_tune

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.json").is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder (no config.json)")
        print(f"resuming {run_dir}", file=sys.stderr)
        kwargs = {"resume": run_dir}
    else:
        cfg = config_from_args(args, args.data)
        if args.name:
            cfg.name = args.name
        if args.dry_run:  # the plan POST /api/train/plan returns, as JSON; nothing trains
            from ..session import dry_run

            print(json.dumps(dry_run(cfg), indent=1))
            return 0
        kwargs = {"cfg": cfg}
    # SIGINT and SIGTERM stop at the last completed epoch, even when SIGINT came in ignored.
    interruptible()
    started: list[Path] = []

    def announce(run_dir: Path) -> None:
        started.append(run_dir)
        print(f"run folder: {run_dir}", file=sys.stderr)

    try:
        result = fine_tune(**kwargs, on_start=announce,
                           log=lambda message: print(message, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        if not started:
            raise
        saved = (started[0] / "checkpoints" / "last.safetensors").is_file()
        print(f"interrupted: {'the last completed epoch is saved in' if saved else 'no epoch had ended yet in'}"
              f" {started[0]}; continue with `transferlab train --resume {started[0]}`",
              file=sys.stderr)
        return 130
    from ..training.distributed import is_main

    if not is_main():  # torchrun: rank 0 reports
        return 0
    for note in result.notes:
        print(f"note: {note}")
    for line in summary_lines(result):
        print(line)
    print(f"run folder: {result.run_dir}")
    return 0


def summary_lines(result) -> list[str]:
    """``test accuracy 0.901 [0.868, 0.927] on 372 images``: every figure with its interval,
    and the validation one marked for what it is."""
    from ..inspect.intervals import format_accuracy

    ev, test = result.evaluation, result.test_evaluation
    lines = []
    if test is not None:
        figure = format_accuracy(test.accuracy, test.accuracy_interval(), len(test.labels))
        lines.append(f"test accuracy {figure} "
                     f"(balanced {test.balanced_accuracy:.3f}; untouched)")
    val = format_accuracy(ev.accuracy, ev.accuracy_interval(), len(ev.labels))
    lines.append(f"validation accuracy {val} (balanced {ev.balanced_accuracy:.3f}; "
                 + ("chose the epoch)" if test is not None else
                    "optimistic: it also chose the epoch; --holdout-test 0.2 sets a test "
                    "split aside)"))
    cal = result.calibration
    if cal:
        lines.append(f"calibration on {cal['measured_on']}: ECE {cal['ece_before']:.3f} -> "
                     f"{cal['ece_after']:.3f} with temperature {cal['temperature']:.2f}")
    lines.append(f"wall time {result.seconds:.1f} s")
    return lines


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..data import build_transforms, scan_image_folder
    from ..inspect.interpret import evaluate_model, plot_confusion
    from ..runs import load_model

    model = load_model(args.run)
    root = Path(args.data)
    folder = root / args.split if (root / args.split).is_dir() else root
    index = scan_image_folder(folder, classes=model.classes)
    for bad in index.bad_files:
        print(f"skipped {bad.path}: {bad.reason}", file=sys.stderr)
    samples = index.samples
    ev = evaluate_model(model, samples, build_transforms(model.data_config, train=False),
                        engine=args.engine, log=lambda m: print(m, file=sys.stderr))
    summary = ev.summary()
    from ..inspect.intervals import format_accuracy

    print(f"accuracy {format_accuracy(ev.accuracy, ev.accuracy_interval(), len(samples))}  "
          f"balanced {ev.balanced_accuracy:.4f}  loss {ev.loss:.4f}  "
          f"ECE {ev.ece():.4f} (temperature {ev.temperature:.2f})")
    width = max(len(c) for c in ev.classes)
    print("per-class accuracy:")
    for c, a in summary["per_class_accuracy"].items():
        print(f"  {c:<{width}}  {a:.3f}")
    print("confusion matrix (rows: true, columns: predicted):")
    for c, row in zip(ev.classes, summary["confusion"], strict=True):
        print(f"  {c:<{width}}  " + " ".join(f"{v:4d}" for v in row))
    out = Path(args.out) if args.out else Path(args.run)
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion(ev, out / "confusion_eval.png")
    (out / "evaluation_eval.json").write_text(json.dumps(summary, indent=1))
    print(f"confusion matrix plot: {out / 'confusion_eval.png'}")
    return 0


def cmd_predict_folder(args: argparse.Namespace, model) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..export.predict import predict_folder

    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]predict"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("predict", total=None)
        result = predict_folder(model, args.images[0], topk=args.topk,
                                batch_size=args.batch_size, num_workers=args.workers,
                                device=device, fast_decode=args.fast_decode,
                                engine=args.engine,
                                progress=lambda done, total: bar.update(task, completed=done,
                                                                        total=total))
    out = result.write_csv(args.out or "predictions.csv")
    s = result.summary()
    for path, err in zip(result.paths, result.errors, strict=True):
        if err:
            print(f"{path}: {err}", file=sys.stderr)
    acc = (f"accuracy {s['accuracy']:.4f} on {s['labelled']} labelled images, "
           if s["accuracy"] is not None else "no class-folder labels, ")
    print(f"{s['images']} images, {s['failures']} failed, {acc}"
          f"{s['images_per_s']:.1f} images/s ({s['seconds']:.1f} s)")
    print(f"predictions: {out}")
    return 1 if s["failures"] == s["images"] else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..export.predict import predict_images
    from ..runs import load_model

    folders = [p for p in args.images if Path(p).is_dir()]
    if folders and len(args.images) > 1:
        raise ValueError("give either one FOLDER or image files, not both")
    model = load_model(args.run)
    if folders:
        return cmd_predict_folder(args, model)
    if args.out:
        raise ValueError("--out writes the CSV of a folder prediction; give a FOLDER")
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    results = predict_images(model, args.images, topk=args.topk, device=device,
                             engine=args.engine)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    failed = 0
    for r in results:
        if "error" in r:
            failed += 1
            print(f"{r['path']}: {r['error']}", file=sys.stderr)
            continue
        tops = ", ".join(f"{t['class']} {t['prob']:.3f}" for t in r["top"])
        print(f"{r['path']}: {tops}")
    return 1 if failed == len(results) else 0


def register(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a pretrained backbone on an image folder",
                       description="Fine-tune a pretrained backbone on DATA (root/class/*.jpg "
                       "or root/{train,val,test}/class/*). Writes a run folder.")
    p.add_argument("data", nargs="?", help="dataset folder")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--config", metavar="FILE",
                   help="settings from a YAML/JSON file (e.g. a run's config.json); flags win")
    p.add_argument("--name", help="run folder name (default: time-model-strategy)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved plan (phases, groups, learning rates, epochs, "
                   "auto's reasons) as JSON and stop; the web's plan is the same")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train, _defaults={a.dest: a.default for a in p._actions})

    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix",
                       description="Evaluate a finished run on a dataset folder.")
    p.add_argument("run", help="run folder (or its best.safetensors)")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--split", default="val", choices=["val", "test", "train"],
                   help="which split of a split-folder dataset (default val)")
    p.add_argument("--out", help="where to write confusion_eval.png (default: the run folder)")
    p.add_argument("--engine", default="auto", choices=ENGINES, help="inference engine")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="top-k classes for images or a whole folder (CSV)",
                       description="Predict the classes of IMAGE files, or of every image "
                       "under FOLDER (recursively) into a CSV with a summary; in class-folder "
                       "layout (FOLDER/<class>/...) the CSV also gets the true class and "
                       "whether the prediction is correct.")
    p.add_argument("run", help="run folder (or its best.safetensors)")
    p.add_argument("images", nargs="+", metavar="IMAGE|FOLDER", help="image files or a folder")
    p.add_argument("--topk", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON (image files)")
    p.add_argument("--out", help="FOLDER: CSV file to write (default predictions.csv)")
    p.add_argument("--batch-size", type=int, default=64, help="FOLDER: images per batch")
    p.add_argument("--workers", type=int, default=0,
                   help="FOLDER: DataLoader processes decoding images (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--fast-decode", action="store_true",
                   help="FOLDER: decode big JPEGs at reduced scale (faster; pixels differ "
                   "slightly from training's full decode)")
    p.add_argument("--engine", default="auto", choices=ENGINES, help="inference engine")
    p.set_defaults(func=cmd_predict)
