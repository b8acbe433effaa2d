"""Sweeps: many trials of one question, run (and resumed) together, summarised with intervals.

* :func:`data_size_sweep` — accuracy against images per class, transfer against scratch.
* :func:`freeze_depth_sweep` — train the top 0..all groups (``mode="depth"``) or one group
  at a time plus the head (``mode="position"``, surgical fine-tuning).
* :func:`compare_strategies` — the recipes side by side on the same data and seeds.

A sweep folder holds ``sweep.json`` (the plan: every trial's config), ``trials.jsonl`` (one
result row per finished trial, appended as each finishes), the trials' run folders under
``runs/``, one feature cache under ``cache/`` shared by all trials, and the outputs
(``table.csv``/``.json``, ``trials.csv``, a PNG plot, ``report.md``). Calling a sweep again
with the same folder, or :func:`resume_sweep`, runs only the trials without a row.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import STRATEGIES, TrainConfig
from ..training.checkpoint import atomic_write_text
from .trials import Trial, run_trial

KINDS = ("data-size", "freeze-depth", "position", "compare")
PLAN = "sweep.json"
ROWS = "trials.jsonl"


@dataclass
class ScratchRecipe:
    """Training from random weights: every group at one high LR, augmented, longer.

    Defaults follow common from-scratch practice for small convnets (AdamW 1e-3, warmup,
    cosine); ``image_size`` lets CPU-bound sweeps train scratch at a lower resolution.
    """

    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    augment: str = "standard"
    image_size: int | None = None

    def config(self, base: TrainConfig, **changes) -> TrainConfig:
        doc = {**base.to_dict(), "strategy": "full", "weights": "random", "lrs": [self.lr],
               "head_lr": None, "body_lr": None, "lr_decay": None, "epochs": self.epochs,
               "probe_epochs": None, "train_top": None, "train_groups": None,
               "weight_decay": self.weight_decay, "warmup_epochs": self.warmup_epochs,
               "augment": self.augment, "bn_policy": "train", "l2sp": 0.0,
               # no early stop: a scratch net's val loss is noisy for many epochs; the
               # best-validation weights are still the ones kept, as for every arm
               "patience": self.epochs,
               "image_size": self.image_size or base.image_size, **changes}
        return TrainConfig.from_dict(doc)


@dataclass
class SweepResult:
    kind: str
    sweep_dir: Path
    rows: list[dict]
    table: list[dict]
    comparisons: list[dict]
    metric: str
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    ran: int = 0  # trials run by this call (the rest were already in trials.jsonl)
    skipped: int = 0

    def __str__(self) -> str:
        from .report import format_table

        return format_table(self)


# ----------------------------------------------------------------------------- the runner

def _seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds must be a non-empty list without repeats, got {out}")
    return out


def sweep_folder(out: str | Path, kind: str, name: str | None = None) -> Path:
    """``out/name`` (or ``out/<time>-<kind>``); an existing sweep folder is reused (resume)."""
    return Path(out) / (name or f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}")


def read_rows(sweep_dir: str | Path) -> list[dict]:
    """Finished trials' rows; a torn last line (killed while writing) is ignored."""
    path = Path(sweep_dir) / ROWS
    rows: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "key" in row:
                rows[row["key"]] = row
    return list(rows.values())


def _append_row(sweep_dir: Path, row: dict) -> None:
    path = sweep_dir / ROWS
    torn = False
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"  # killed mid-line: start a fresh line
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(("\n" if torn else "") + json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _write_plan(sweep_dir: Path, kind: str, params: dict, trials: list[Trial]) -> None:
    plan = {"format": "transferlab-sweep/1", "kind": kind, "params": params,
            "trials": [t.to_dict() for t in trials]}
    path = sweep_dir / PLAN
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("kind") != kind or old.get("trials") != plan["trials"]:
            raise ValueError(
                f"{sweep_dir} already holds a different {old.get('kind', '?')} sweep; "
                "use another --name/--out, or resume it with `transferlab sweep resume "
                f"{sweep_dir}`")
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(plan, indent=1))


def run_trials(trials: Sequence[Trial], sweep_dir: str | Path, *, backend=None,
               on_row: Callable[[dict, int, int], None] | None = None,
               runner: Callable[[Trial, Path], dict] | None = None
               ) -> tuple[list[dict], int]:
    """Run the trials of ``trials`` that have no row in ``trials.jsonl`` yet.

    Rows are appended (and fsynced) as each trial finishes, so a sweep killed at any point
    loses at most the trial in progress — which resumes from its own epoch checkpoint.
    Returns (all rows in plan order, number of trials run now).
    """
    sweep_dir = Path(sweep_dir)
    runs_dir = sweep_dir / "runs"
    done = {r["key"]: r for r in read_rows(sweep_dir)}
    todo = [t for t in trials if t.key not in done]
    total = len(trials)
    if backend is None:
        runner = runner or run_trial
        results: Iterable[tuple[Trial, dict]] = ((t, runner(t, runs_dir)) for t in todo)
    else:
        results = backend.run(todo, runs_dir)
    ran = 0
    for _trial, row in results:
        _append_row(sweep_dir, row)
        done[row["key"]] = row
        ran += 1
        if on_row is not None:
            on_row(row, len(done), total)
    return [done[t.key] for t in trials if t.key in done], ran


def _run_sweep(kind: str, trials: list[Trial], params: dict, sweep_dir: Path, *,
               metric: str, notes: list[str], backend, on_row, log=None) -> SweepResult:
    from .report import write_outputs

    _write_plan(sweep_dir, kind, params, trials)
    skipped = len({r["key"] for r in read_rows(sweep_dir)} & {t.key for t in trials})
    if log is not None:
        log(f"{kind} sweep in {sweep_dir}: {len(trials)} trials")
        for note in notes:
            log(f"note: {note}")
        if skipped:
            log(f"resuming: {skipped} of {len(trials)} trials already finished, running "
                f"the other {len(trials) - skipped}")
    rows, ran = run_trials(trials, sweep_dir, backend=backend, on_row=on_row)
    result = SweepResult(kind, sweep_dir, rows, [], [], metric, notes=notes, ran=ran,
                         skipped=skipped)
    write_outputs(result, params)
    _drop_own_cache(trials, sweep_dir, finished=len(rows) == len(trials))
    return result


def _drop_own_cache(trials: Sequence[Trial], sweep_dir: Path, *, finished: bool) -> None:
    """A finished lean sweep keeps metrics and best heads: its own feature/activation cache
    (rebuilt on demand) goes; ``--save full`` keeps it, with every trial's checkpoints."""
    own = (sweep_dir / "cache").absolute()
    if finished and trials and all(t.config.save_mode == "lean" for t in trials) and \
            all(Path(t.config.cache_dir or "").absolute() == own for t in trials):
        shutil.rmtree(own, ignore_errors=True)


def resume_sweep(sweep_dir: str | Path, *, backend=None, on_row=None, log=None
                 ) -> SweepResult:
    """Finish the sweep in ``sweep_dir`` from its plan, running only the missing trials."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / PLAN
    if not path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep folder (no {PLAN})")
    plan = json.loads(path.read_text(encoding="utf-8"))
    trials = [Trial.from_dict(t) for t in plan["trials"]]
    params = plan["params"]
    return _run_sweep(plan["kind"], trials, params, sweep_dir, metric=params["metric"],
                      notes=list(params.get("notes", [])), backend=backend, on_row=on_row,
                      log=log)


# ----------------------------------------------------------------------------- helpers

def _base(data: str | Path, base: TrainConfig | None, overrides: dict) -> TrainConfig:
    doc = {**(base.to_dict() if base else {}), **overrides, "data": str(data)}
    return TrainConfig.from_dict(doc)


def _prepared(base: TrainConfig, sweep_dir: Path) -> TrainConfig:
    """One feature cache per sweep, shared by all its trials."""
    cache = base.cache_dir or str((sweep_dir / "cache").absolute())
    return TrainConfig.from_dict({**base.to_dict(), "cache_dir": cache, "name": None,
                                  "notes": []})


def _class_counts(base: TrainConfig) -> tuple[list[str], list[int]]:
    from ..data import load_splits

    splits = load_splits(base.data, val_fraction=base.val_fraction, seed=base.seed,
                         test_fraction=base.test_fraction)
    counts = [0] * len(splits.classes)
    for _, label in splits.train:
        counts[label] += 1
    return splits.classes, counts


def effective_sizes(sizes: Sequence[int], counts: Sequence[int],
                    classes: Sequence[str]) -> tuple[list[int], list[str]]:
    """Clip requested per-class sizes to what the classes have; drop duplicates; say so.

    A request above the largest class gives the same subset as the largest class itself
    (each class keeps all it has), so it is run once, at the largest class's size.
    """
    if not sizes:
        raise ValueError("give at least one size")
    if any(s < 1 for s in sizes):
        raise ValueError(f"sizes must be at least 1, got {list(sizes)}")
    largest = max(counts)
    out, notes = [], []
    for s in sizes:
        eff = min(s, largest)
        if eff != s:
            notes.append(f"size {s} exceeds the largest class ({largest} training images): "
                         f"clipped to {largest}")
        short = [f"{c} ({n})" for c, n in zip(classes, counts, strict=True) if n < eff]
        if short:
            notes.append(f"size {eff}: classes with fewer training images use all they "
                         f"have: {', '.join(short)}")
        if eff in out:
            notes.append(f"size {s} gives the same subset as size {eff}: run once")
            continue
        out.append(eff)
    return sorted(out), notes


# ----------------------------------------------------------------------------- plans

def data_size_trials(cfg: TrainConfig, sizes: Sequence[int],
                     compare: Sequence[str] = ("transfer", "scratch"),
                     seeds: int | Sequence[int] = 3, strategy: str = "feature-extraction",
                     scratch: ScratchRecipe | None = None
                     ) -> tuple[list[Trial], list[int], list[str]]:
    """The trials of a data-size sweep: (trials, effective sizes, notes on clipping)."""
    arms = list(compare)
    unknown = [a for a in arms if a not in ("transfer", "scratch")]
    if unknown or not arms:
        raise ValueError(f"compare takes transfer and/or scratch, got {arms}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    scratch = scratch or ScratchRecipe()
    classes, counts = _class_counts(cfg)
    effective, notes = effective_sizes(sizes, counts, classes)
    trials = []
    for size in effective:
        for seed in _seeds(seeds):
            for arm in arms:
                if arm == "transfer":
                    c = TrainConfig.from_dict({**cfg.to_dict(), "strategy": strategy,
                                               "per_class": size, "seed": seed})
                else:
                    c = scratch.config(cfg, per_class=size, seed=seed)
                trials.append(Trial(c, arm, seed=seed, size=size))
    return trials, effective, notes


def body_group_names(model: str) -> list[str]:
    """The body layer groups of ``model`` (architecture only: no weights are loaded)."""
    from ..models.factory import create_model

    return create_model(model, num_classes=2, weights="random").group_names[:-1]


def freeze_depth_trials(cfg: TrainConfig, body: list[str], *, mode: str = "depth",
                        depths: Sequence[int] | None = None,
                        groups: Sequence[str] | None = None,
                        seeds: int | Sequence[int] = 1, strategy: str = "two-phase"
                        ) -> list[Trial]:
    """The trials of a freeze-depth (``mode="depth"``) or position sweep over ``body``."""
    if mode not in ("depth", "position"):
        raise ValueError(f"mode must be depth or position, got {mode!r}")
    if strategy not in ("two-phase", "finetune"):
        raise ValueError(f"freeze-depth sweeps use two-phase or finetune, got {strategy!r}")
    augment = cfg.augment if cfg.augment != "auto" else "standard"
    common = {**cfg.to_dict(), "strategy": strategy, "augment": augment}
    seed_list = _seeds(seeds)
    trials = []
    if mode == "depth":
        chosen = list(depths) if depths is not None else list(range(len(body) + 1))
        bad = [d for d in chosen if not 0 <= d <= len(body)]
        if bad:
            raise ValueError(f"depths must be within 0..{len(body)} ({len(body)} body groups: "
                             f"{', '.join(body)}), got {bad}")
        for d in chosen:
            for seed in seed_list:
                c = TrainConfig.from_dict({**common, "train_top": d, "train_groups": None,
                                           "seed": seed})
                trials.append(Trial(c, "depth", seed=seed, depth=d,
                                    labels={"groups": ",".join(body[len(body) - d:])}))
        return trials
    chosen = list(groups) if groups is not None else list(body)
    bad = [g for g in chosen if g not in body]
    if bad:
        raise ValueError(f"unknown body groups {bad}; groups are {', '.join(body)}")
    for seed in seed_list:
        trials.append(Trial(TrainConfig.from_dict({**common, "train_groups": [], "seed": seed}),
                            "reference", seed=seed, group="head-only"))
        for g in chosen:
            c = TrainConfig.from_dict({**common, "train_groups": [g], "seed": seed})
            trials.append(Trial(c, "position", seed=seed, group=g,
                                depth=len(body) - body.index(g)))
        trials.append(Trial(TrainConfig.from_dict({**common, "train_top": None,
                                                   "train_groups": None, "seed": seed}),
                            "reference", seed=seed, group="all"))
    return trials


def compare_trials(cfg: TrainConfig, strategies: Sequence[str],
                   seeds: int | Sequence[int] = 3) -> list[Trial]:
    """One trial per (seed, strategy), seed-major so a partial sweep covers every strategy."""
    strategies = list(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies repeat: {strategies}")
    return [Trial(TrainConfig.from_dict({**cfg.to_dict(), "strategy": s, "seed": seed}),
                  s, seed=seed)
            for seed in _seeds(seeds) for s in strategies]


# ----------------------------------------------------------------------------- sweeps

def data_size_sweep(data: str | Path, sizes: Sequence[int] = (10, 50, 100, 500), *,
                    compare: Sequence[str] = ("transfer", "scratch"),
                    seeds: int | Sequence[int] = 3, strategy: str = "feature-extraction",
                    scratch: ScratchRecipe | None = None, base: TrainConfig | None = None,
                    metric: str = "accuracy", out: str | Path = "sweeps",
                    name: str | None = None, backend=None, on_row=None,
                    log=None, **overrides) -> SweepResult:
    """Accuracy against training images per class: transfer (``strategy`` from pretrained
    weights) against scratch (same architecture, random weights, :class:`ScratchRecipe`).

    Subsets are nested for each seed (the 10 lie inside the 50) and every point of a seed is
    scored on the same validation split, which never depends on the size.
    """
    scratch = scratch or ScratchRecipe()
    sweep_dir = sweep_folder(out, "data-size", name)
    cfg = _prepared(_base(data, base, overrides), sweep_dir)
    trials, effective, notes = data_size_trials(cfg, sizes, compare, seeds, strategy, scratch)
    params = {"data": str(data), "sizes": list(sizes), "effective_sizes": effective,
              "compare": list(compare), "seeds": _seeds(seeds), "strategy": strategy,
              "metric": metric, "scratch": vars(scratch), "notes": notes}
    return _run_sweep("data-size", trials, params, sweep_dir, metric=metric, notes=notes,
                      backend=backend, on_row=on_row, log=log)


def freeze_depth_sweep(data: str | Path, *, mode: str = "depth",
                       depths: Sequence[int] | None = None,
                       groups: Sequence[str] | None = None,
                       seeds: int | Sequence[int] = 1, strategy: str = "two-phase",
                       base: TrainConfig | None = None, metric: str = "accuracy",
                       out: str | Path = "sweeps", name: str | None = None, backend=None,
                       on_row=None, log=None, **overrides) -> SweepResult:
    """Train the head plus the top 0..all body groups (``mode="depth"``), or the head plus one
    body group at a time (``mode="position"``, with head-only and all-groups references).

    ``strategy`` is ``two-phase`` (default: every trial starts from the same linear probe, so
    depth is the only difference) or ``finetune``. Augmentation is the same for every trial
    (``standard`` unless set), so time per epoch compares like with like.
    """
    kind = "freeze-depth" if mode == "depth" else "position"
    sweep_dir = sweep_folder(out, kind, name)
    cfg = _prepared(_base(data, base, overrides), sweep_dir)
    body = body_group_names(cfg.model)
    trials = freeze_depth_trials(cfg, body, mode=mode, depths=depths, groups=groups,
                                 seeds=seeds, strategy=strategy)
    params = {"data": str(data), "mode": mode, "body_groups": body, "seeds": _seeds(seeds),
              "strategy": strategy, "augment": trials[0].config.augment, "metric": metric,
              "depths": list(depths) if depths is not None else None,
              "groups": list(groups) if groups is not None else None, "notes": []}
    return _run_sweep(kind, trials, params, sweep_dir, metric=metric, notes=[],
                      backend=backend, on_row=on_row, log=log)


def compare_strategies(data: str | Path,
                       strategies: Sequence[str] = ("feature-extraction", "two-phase", "full",
                                                    "gradual"), *,
                       seeds: int | Sequence[int] = 3, base: TrainConfig | None = None,
                       metric: str = "accuracy", out: str | Path = "sweeps",
                       name: str | None = None, backend=None, on_row=None, log=None,
                       **overrides) -> SweepResult:
    """The strategies on the same data, splits and seeds: one table, one plot, and for each
    strategy whether it differs from the best beyond seed noise."""
    sweep_dir = sweep_folder(out, "compare", name)
    cfg = _prepared(_base(data, base, overrides), sweep_dir)
    trials = compare_trials(cfg, strategies, seeds)
    params = {"data": str(data), "strategies": list(strategies), "seeds": _seeds(seeds),
              "metric": metric, "per_class": cfg.per_class, "image_size": cfg.image_size,
              "notes": []}
    return _run_sweep("compare", trials, params, sweep_dir, metric=metric, notes=[],
                      backend=backend, on_row=on_row, log=log)
