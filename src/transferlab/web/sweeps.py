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

# kind -> (function in transferlab.experiments, what ``values`` mean)
SWEEP_FUNCTIONS: dict[str, tuple[str, str]] = {
    "data-size": ("data_size_sweep", "training images per class"),
    "freeze-depth": ("freeze_depth_sweep", "trained top groups K"),
    "strategy": ("compare_strategies", "strategies"),
}
PROGRESS = "progress.jsonl"


def _function(kind: str):
    try:
        mod = importlib.import_module("transferlab.experiments")
    except ImportError:
        return None
    fn = getattr(mod, SWEEP_FUNCTIONS[kind][0], None)
    return fn if callable(fn) else None


def available_sweeps() -> list[dict]:
    out = []
    for kind, (name, meaning) in SWEEP_FUNCTIONS.items():
        ok = _function(kind) is not None
        out.append({"kind": kind, "values_meaning": meaning, "function": name, "available": ok,
                    "reason": None if ok else
                    f"not available yet: transferlab.experiments has no {name}()"})
    return out


def check_values(kind: str, values: list | None) -> list | None:
    """Validate the values of a sweep at the edge (the library checks them again)."""
    if values is None:
        return None
    if not values:
        raise ValueError("give at least one value, or none for the sweep's defaults")
    if kind == "data-size" and any(not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"data-size values are images per class (integers >= 1), got {values}")
    if kind == "freeze-depth" and any(not isinstance(v, int) or v < 0 for v in values):
        raise ValueError(f"freeze-depth values are numbers of top groups K >= 0, got {values}")
    if kind == "strategy":
        from ..config import STRATEGIES

        bad = [v for v in values if v not in STRATEGIES]
        if bad:
            raise ValueError(f"unknown strategies {bad}; choose from {', '.join(STRATEGIES)}")
    return list(values)


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

    common = {"seeds": spec.get("seeds", 1), "base": base, "out": sweep_dir.parent,
              "name": sweep_dir.name, "on_row": on_row, "log": log}
    fn = _function(kind)
    if fn is None:
        raise RuntimeError(f"{kind} sweeps are not available in this installation")
    if kind == "data-size":
        from ..config import STRATEGIES

        kwargs = {"compare": ("transfer", "scratch") if spec.get("scratch") else ("transfer",),
                  "strategy": base.strategy if base.strategy in STRATEGIES else
                  "feature-extraction"}
        if values:
            kwargs["sizes"] = values
        result = fn(base.data, **kwargs, **common)
    elif kind == "freeze-depth":
        strategy = base.strategy if base.strategy in ("two-phase", "finetune") else "two-phase"
        result = fn(base.data, mode="depth", depths=values, strategy=strategy, **common)
    else:
        result = fn(base.data, **({"strategies": values} if values else {}), **common)
    _progress(sweep_dir, {"event": "sweep_done", "trials": len(result.rows)})
    return {"kind": result.kind, "metric": result.metric, "table": result.table,
            "comparisons": result.comparisons, "notes": result.notes,
            "trials": len(result.rows), "ran": result.ran,
            "files": {k: Path(v).name for k, v in result.files.items()},
            "sweep_dir": str(result.sweep_dir)}
