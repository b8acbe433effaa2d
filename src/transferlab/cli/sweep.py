"""``transferlab sweep data-size|freeze-depth|resume``, ``compare`` and ``lr-find``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..options import SWEEP_KINDS, check_sweep
from ._signals import interruptible
from .train import add_train_arguments, config_from_args


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _seeds(text: str) -> int | list[int]:
    """``3`` means seeds 0,1,2; ``0,5,7`` names them."""
    values = _ints(text)
    return values[0] if "," not in text and len(values) == 1 else values


def _add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p)
    p.set_defaults(out="sweeps")
    p.add_argument("--seeds", type=_seeds, default=None,
                   help="number of seeds (3 = seeds 0,1,2) or a list like 0,5,7")
    p.add_argument("--name", help="sweep folder name under --out (default: time-kind); "
                   "rerunning with the same name resumes")
    p.add_argument("--metric", default="accuracy",
                   choices=["accuracy", "balanced_accuracy", "test_accuracy",
                            "test_balanced_accuracy"],
                   help="metric for the plot and the noise verdicts (balanced_accuracy for "
                   "imbalanced data; test_* needs a test split: a test folder or "
                   "--holdout-test)")
    _add_ray_arguments(p)


def _add_ray_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run trials in parallel on Ray: 'local' starts a private instance, "
                   "or a cluster address (ray://host:10001, auto); default: sequential here")
    p.add_argument("--ray-cpus", type=float, default=1.0,
                   help="CPUs (and torch threads) per trial on Ray (default 1)")


def _backend(args: argparse.Namespace):
    if not getattr(args, "ray", None):
        return None
    from ..experiments.ray_backend import RayBackend

    return RayBackend(args.ray, cpus_per_trial=args.ray_cpus)


def _on_row(row: dict, done: int, total: int) -> None:
    print(f"[{done}/{total}] {row['key']}: accuracy {row['accuracy']:.4f} "
          f"(balanced {row['balanced_accuracy']:.4f}) in {row['seconds']:.1f} s", flush=True)


def _log(message: str) -> None:
    print(message, flush=True)


def _run(args: argparse.Namespace, start) -> int:
    """Run ``start(backend)``; print the table, the files and how to resume if cut short."""
    interruptible()
    backend = _backend(args)
    try:
        result = start(backend)
    except KeyboardInterrupt:
        print("interrupted: finished trials are kept in trials.jsonl; continue with "
              "`transferlab sweep resume SWEEP_DIR` (the folder printed above)", file=sys.stderr)
        return 130
    finally:
        if backend is not None:
            backend.shutdown()
    print()
    print(result)
    for label, path in result.files.items():
        print(f"{label}: {path}")
    return 0


def _base(args: argparse.Namespace, data: str):
    return config_from_args(args, data)


def cmd_data_size(args: argparse.Namespace) -> int:
    from ..experiments.sweeps import ScratchRecipe, data_size_sweep

    scratch = ScratchRecipe(epochs=args.scratch_epochs, lr=args.scratch_lr,
                            image_size=args.scratch_image_size)
    base = _base(args, args.data)
    return _run(args, lambda backend: data_size_sweep(
        args.data, args.sizes, compare=args.compare, seeds=args.seeds or SWEEP_KINDS["data-size"].default_seeds,
        strategy=args.strategy, scratch=scratch, base=base, metric=args.metric,
        out=args.out, name=args.name, backend=backend, on_row=_on_row, log=_log))


def cmd_freeze_depth(args: argparse.Namespace) -> int:
    from ..experiments.sweeps import freeze_depth_sweep

    check_sweep("freeze-depth", args.depths, args.strategy)
    base = _base(args, args.data)
    return _run(args, lambda backend: freeze_depth_sweep(
        args.data, mode=args.mode, depths=args.depths, groups=args.groups,
        seeds=args.seeds or SWEEP_KINDS["freeze-depth"].default_seeds,
        strategy=args.strategy, base=base, metric=args.metric,
        out=args.out, name=args.name, backend=backend, on_row=_on_row, log=_log))


def cmd_compare(args: argparse.Namespace) -> int:
    from ..experiments.sweeps import compare_strategies

    base = _base(args, args.data)
    return _run(args, lambda backend: compare_strategies(
        args.data, args.strategies,
        seeds=args.seeds or SWEEP_KINDS["compare"].default_seeds, base=base, metric=args.metric,
        out=args.out, name=args.name, backend=backend, on_row=_on_row, log=_log))


def cmd_resume(args: argparse.Namespace) -> int:
    from ..experiments.sweeps import resume_sweep

    return _run(args, lambda backend: resume_sweep(args.sweep_dir, backend=backend,
                                                    on_row=_on_row, log=_log))


def cmd_lr_find(args: argparse.Namespace) -> int:
    from ..experiments.lr_find import lr_find

    cfg = _base(args, args.data)
    result = lr_find(cfg, phase=args.phase, start_lr=args.start_lr, end_lr=args.end_lr,
                     num_steps=args.steps, plot_path=args.plot)
    print(f"phase {result.phase!r}, trainable groups: {', '.join(result.groups)}")
    print(f"{len(result.lrs)} steps, {result.stopped}")
    def fmt(v):
        return ("none" if v is None else f"{v:.2e}")
    print(f"steepest descent: {fmt(result.steepest)}   minimum/10: {fmt(result.min_over_10)}")
    print(f"suggested head LR: {fmt(result.suggestion)}")
    lrs = result.suggested_lrs()
    if len(lrs) > 1:
        print("per group: " + ", ".join(f"{g} {v:.2e}" for g, v in lrs.items()))
    print(f"plot: {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=1), encoding="utf-8")
        print(f"curve: {args.json}")
    return 0


def register(sub) -> None:
    sweep = sub.add_parser("sweep", help="data-size and freeze-depth sweeps with error bars",
                           description="Run many trials of one question and summarise them "
                           "with 95 %% intervals over seeds.")
    kinds = sweep.add_subparsers(dest="sweep_kind", metavar="KIND", required=True)

    p = kinds.add_parser("data-size", help="accuracy vs images per class, transfer vs scratch",
                         description="Nested per-class subsets, one validation set; transfer "
                         "(--strategy, default feature-extraction, pretrained) against scratch "
                         "(same architecture, random weights, its own recipe).")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--sizes", type=_ints, default=[10, 50, 100, 500],
                   help="images per class, e.g. 10,50,100,500 (clipped to what classes have)")
    p.add_argument("--compare", type=_names, default=["transfer", "scratch"],
                   help="arms: transfer,scratch (default both)")
    p.add_argument("--scratch-epochs", type=int, default=30, help="scratch arm epochs")
    p.add_argument("--scratch-lr", type=float, default=1e-3, help="scratch arm LR (all groups)")
    p.add_argument("--scratch-image-size", type=int,
                   help="scratch arm resolution (default: as --image-size)")
    _add_sweep_arguments(p)
    p.set_defaults(func=cmd_data_size, strategy="feature-extraction")

    p = kinds.add_parser("freeze-depth", help="accuracy and cost vs number of tuned groups",
                         description="Train the head plus the top 0..all groups (--mode depth), "
                         "or the head plus one group at a time (--mode position).")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--mode", default="depth", choices=["depth", "position"])
    p.add_argument("--depths", type=_ints, help="depths to try (default 0..all)")
    p.add_argument("--groups", type=_names, help="position mode: groups to try (default all)")
    _add_sweep_arguments(p)
    p.set_defaults(func=cmd_freeze_depth)

    p = kinds.add_parser("resume", help="finish an interrupted sweep",
                         description="Run the trials of SWEEP_DIR that have no result yet.")
    p.add_argument("sweep_dir", help="sweep folder (holds sweep.json)")
    _add_ray_arguments(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("compare", help="strategies side by side, same data and seeds",
                       description="Train each strategy on the same data and seeds; one table "
                       "and one plot with 95 %% intervals.")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--strategies", type=_names,
                   default=["feature-extraction", "two-phase", "full", "gradual"],
                   help="comma-separated, e.g. feature-extraction,two-phase,full,gradual,auto")
    _add_sweep_arguments(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("lr-find", help="learning-rate range test with a plot",
                       description="Exponential LR range test over the groups a strategy "
                       "trains; suggests the LR at the steepest loss descent.")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--phase", type=int, default=-1,
                   help="which phase of the strategy (default -1: the last, main one)")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=100, help="number of steps (default 100)")
    p.add_argument("--plot", default="lr_find.png", help="PNG to write (default lr_find.png)")
    p.add_argument("--json", help="also write the curve and suggestions as JSON")
    add_train_arguments(p)
    p.set_defaults(func=cmd_lr_find)
