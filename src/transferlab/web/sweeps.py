"""Sweeps for the Experiments page, run by :mod:`transferlab.experiments` in a job process.

The page offers a sweep only when the library has its function; otherwise the API says
"not available yet" and why. Progress goes to ``progress.jsonl`` in the sweep folder (one
line per finished trial), which the page streams like a run's ``events.jsonl``; each trial's
run folder is registered in the run registry, so trials show up on the Runs page.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from ..options import SWEEP_KINDS, check_sweep

PROGRESS = "progress.jsonl"


def _function(kind: str):
    try:
        mod = importlib.import_module("transferlab.experiments")
    except ImportError:
        return None
    fn = getattr(mod, SWEEP_KINDS[kind].function, None)
    return fn if callable(fn) else None


def available_sweeps() -> list[dict]:
    """The kinds of :data:`transferlab.options.SWEEP_KINDS`, with their defaults."""
    out = []
    for kind, spec in SWEEP_KINDS.items():
        ok = _function(kind) is not None
        out.append({"kind": kind, "values_meaning": spec.values_meaning,
                    "function": spec.function, "default_seeds": spec.default_seeds,
                    "strategies": spec.strategies, "available": ok,
                    "reason": None if ok else
                    f"not available yet: transferlab.experiments has no {spec.function}()"})
    return out


def check_values(kind: str, values: list | None, strategy: str | None = None) -> list | None:
    """Validate a sweep at the edge: the same check (and message) as the CLI's."""
    return check_sweep(kind, values, strategy)


def _progress(sweep_dir: Path, doc: dict) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / PROGRESS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(doc) + "\n")


def run_sweep(spec: dict, stop_flag) -> dict:
    """Worker side: call the library's sweep function with the page's settings."""
    from ..config import TrainConfig
    from ..store.registry import RegistryError, RunRegistry, run_result

    kind, values = spec["kind"], spec["values"]
    base = TrainConfig.from_dict(spec["config"])
    sweep_dir = Path(spec["out_dir"])
    registry = RunRegistry(spec["db_path"]) if spec.get("db_path") else None
    job_id = sweep_dir.name

    def on_row(row: dict, done: int, total: int) -> None:
        _progress(sweep_dir, {"event": "sweep_row", "done": done, "total": total,
                              "row": {k: v for k, v in row.items() if k != "notes"}})
        if registry is not None and row.get("run_dir"):
            run_id = f"{job_id}--{row['key']}"
            cfg = json.loads((Path(row["run_dir"]) / "config.json").read_text("utf-8"))
            try:
                registry.add_run(run_id, state="done", config=cfg, run_dir=row["run_dir"],
                                 sweep_id=job_id)
                registry.update_run(run_id, result=run_result(row["run_dir"]))
            except RegistryError:
                pass  # registered by an earlier, resumed attempt
        if stop_flag():
            raise KeyboardInterrupt("stop requested")

    def log(message: str) -> None:
        _progress(sweep_dir, {"event": "log", "message": message})

    seeds = spec.get("seeds") or SWEEP_KINDS[kind].default_seeds
    common = {"seeds": seeds, "base": base, "out": sweep_dir.parent,
              "name": sweep_dir.name, "on_row": on_row, "log": log}
    fn = _function(kind)
    if fn is None:
        raise RuntimeError(f"{kind} sweeps are not available in this installation")
    if kind == "data-size":
        kwargs = {"compare": ("transfer", "scratch") if spec.get("scratch") else ("transfer",),
                  "strategy": base.strategy}
        if values:
            kwargs["sizes"] = values
        result = fn(base.data, **kwargs, **common)
    elif kind == "freeze-depth":  # the strategy was checked when the sweep was submitted
        result = fn(base.data, mode="depth", depths=values, strategy=base.strategy, **common)
    else:
        result = fn(base.data, **({"strategies": values} if values else {}), **common)
    _progress(sweep_dir, {"event": "sweep_done", "trials": len(result.rows)})
    return {"kind": result.kind, "metric": result.metric, "table": result.table,
            "comparisons": result.comparisons, "notes": result.notes,
            "trials": len(result.rows), "ran": result.ran,
            "files": {k: Path(v).name for k, v in result.files.items()},
            "sweep_dir": str(result.sweep_dir)}
