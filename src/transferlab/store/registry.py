"""The run registry: every run and sweep in one SQLite file, so history survives restarts.

The run folder stays the source of truth for what a run produced (see :mod:`transferlab.runs`);
the registry indexes them: state (queued, running, done, failed, stopped, interrupted), the
resolved config, a result summary and timestamps. It uses only the standard library's
``sqlite3``, one short-lived connection per call (safe across threads and processes), WAL
journaling so readers never block the writer.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATES = ("queued", "running", "done", "failed", "stopped", "interrupted")
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'train',
    state TEXT NOT NULL,
    run_dir TEXT,
    dataset TEXT,
    model TEXT,
    strategy TEXT,
    sweep_id TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    config TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs(sweep_id);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    out_dir TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    params TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
"""

_RUN_FIELDS = ("kind", "state", "run_dir", "dataset", "model", "strategy", "sweep_id", "started",
               "finished", "config", "result", "error")
_SWEEP_FIELDS = ("kind", "state", "out_dir", "started", "finished", "params", "result", "error")
_JSON_FIELDS = ("config", "result", "params")


class RegistryError(KeyError):
    """An unknown run or sweep id, or a value the registry cannot store."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


@dataclass
class RunRecord:
    id: str
    kind: str
    state: str
    created: float
    run_dir: str | None = None
    dataset: str | None = None
    model: str | None = None
    strategy: str | None = None
    sweep_id: str | None = None
    started: float | None = None
    finished: float | None = None
    config: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SweepRecord:
    id: str
    kind: str
    state: str
    created: float
    out_dir: str | None = None
    started: float | None = None
    finished: float | None = None
    params: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _clean(value):
    """JSON cannot hold NaN/inf (per-class accuracy of an empty class is NaN): store null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class RunRegistry:
    """Runs and sweeps in SQLite at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:  # commit on success, roll back on error
                yield db
        finally:
            db.close()

    # -- runs ------------------------------------------------------------------------------
    def add_run(self, run_id: str, *, state: str = "queued", kind: str = "train",
                config: dict | None = None, run_dir: str | Path | None = None,
                sweep_id: str | None = None, created: float | None = None) -> RunRecord:
        """Register a new run; ``dataset``/``model``/``strategy`` are read from ``config``."""
        _check_state(state)
        config = dict(config or {})
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO runs (id, kind, state, run_dir, dataset, model, strategy, "
                    "sweep_id, created, config) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (run_id, kind, state, None if run_dir is None else str(run_dir),
                     config.get("data"), config.get("model"), config.get("strategy"), sweep_id,
                     time.time() if created is None else created,
                     json.dumps(_clean(config))),
                )
        except sqlite3.IntegrityError as exc:
            raise RegistryError(f"run {run_id!r} is already registered") from exc
        return self.get_run(run_id)

    def update_run(self, run_id: str, **values) -> RunRecord:
        """Change fields of a run (``state``, ``result``, ``error``, ``started``, ...)."""
        self._update("runs", _RUN_FIELDS, run_id, values)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no run {run_id!r} in the registry")
        return RunRecord(**_decode(row))

    def list_runs(self, *, state: str | None = None, sweep_id: str | None = None,
                  limit: int | None = None) -> list[RunRecord]:
        """Newest first."""
        query, args = "SELECT * FROM runs", []
        where = []
        if state is not None:
            _check_state(state)
            where.append("state = ?")
            args.append(state)
        if sweep_id is not None:
            where.append("sweep_id = ?")
            args.append(sweep_id)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(int(limit))
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
        return [RunRecord(**_decode(r)) for r in rows]

    def delete_run(self, run_id: str) -> None:
        """Forget a run (its folder is left alone)."""
        with self._connect() as db:
            if db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise RegistryError(f"no run {run_id!r} in the registry")

    # -- sweeps ----------------------------------------------------------------------------
    def add_sweep(self, sweep_id: str, *, kind: str, params: dict | None = None,
                  state: str = "queued", out_dir: str | Path | None = None) -> SweepRecord:
        _check_state(state)
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO sweeps (id, kind, state, out_dir, created, params) "
                    "VALUES (?,?,?,?,?,?)",
                    (sweep_id, kind, state, None if out_dir is None else str(out_dir),
                     time.time(), json.dumps(_clean(params or {}))),
                )
        except sqlite3.IntegrityError as exc:
            raise RegistryError(f"sweep {sweep_id!r} is already registered") from exc
        return self.get_sweep(sweep_id)

    def update_sweep(self, sweep_id: str, **values) -> SweepRecord:
        self._update("sweeps", _SWEEP_FIELDS, sweep_id, values)
        return self.get_sweep(sweep_id)

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no sweep {sweep_id!r} in the registry")
        return SweepRecord(**_decode(row))

    def list_sweeps(self, *, limit: int | None = None) -> list[SweepRecord]:
        query, args = "SELECT * FROM sweeps ORDER BY created DESC, id DESC", []
        if limit is not None:
            query += " LIMIT ?"
            args.append(int(limit))
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
        return [SweepRecord(**_decode(r)) for r in rows]

    # -- lifecycle -------------------------------------------------------------------------
    def mark_interrupted(self) -> list[str]:
        """After a restart nothing is running: queued/running entries become ``interrupted``.

        Returns the ids changed (runs and sweeps).
        """
        changed = []
        now = time.time()
        with self._connect() as db:
            for table in ("runs", "sweeps"):
                rows = db.execute(
                    f"SELECT id FROM {table} WHERE state IN ('queued', 'running')"
                ).fetchall()
                changed += [r["id"] for r in rows]
                db.execute(
                    f"UPDATE {table} SET state = 'interrupted', finished = ?, "
                    "error = COALESCE(error, 'the server stopped while this was active') "
                    "WHERE state IN ('queued', 'running')", (now,)
                )
        return changed

    def sync_folder(self, runs_root: str | Path) -> list[str]:
        """Register run folders under ``runs_root`` that the registry does not know yet.

        Runs trained with the command line then show up beside the web's. A folder counts as
        a run when it holds ``config.json``; it is ``done`` when it also holds
        ``evaluation.json`` and ``best.json``, else ``interrupted``.
        """
        root = Path(runs_root)
        if not root.is_dir():
            return []
        with self._connect() as db:
            known = {r["id"] for r in db.execute("SELECT id FROM runs")}
        added = []
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or entry.name in known or not entry.is_dir():
                continue
            config_path = entry / "config.json"
            if not config_path.is_file():
                continue
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            done = (entry / "evaluation.json").is_file() and (entry / "best.json").is_file()
            created = config_path.stat().st_mtime
            self.add_run(entry.name, state="done" if done else "interrupted", config=config,
                         run_dir=entry, created=created)
            self.update_run(entry.name, result=run_result(entry) if done else {},
                            finished=(entry / "evaluation.json").stat().st_mtime if done else None,
                            error=None if done else "run folder without a final evaluation")
            added.append(entry.name)
        return added

    def compare_runs(self, a: str, b: str) -> dict:
        """Two runs side by side: differing config values, metrics and per-class accuracy."""
        ra, rb = self.get_run(a), self.get_run(b)
        keys = sorted(set(ra.config) | set(rb.config))
        config_diff = {k: [ra.config.get(k), rb.config.get(k)] for k in keys
                       if ra.config.get(k) != rb.config.get(k)}
        metrics = {}
        for key in ("accuracy", "balanced_accuracy", "test_accuracy", "test_balanced_accuracy",
                    "ece_after", "loss", "epochs", "train_seconds",
                    "wall_seconds", "trainable_params", "total_params"):
            va, vb = ra.result.get(key), rb.result.get(key)
            if va is None and vb is None:
                continue
            delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) \
                else None
            metrics[key] = {"a": va, "b": vb, "delta": delta}
        pa = ra.result.get("per_class_accuracy") or {}
        pb = rb.result.get("per_class_accuracy") or {}
        per_class = {c: {"a": pa.get(c), "b": pb.get(c)} for c in sorted(set(pa) | set(pb))}
        return {"a": ra.to_dict(), "b": rb.to_dict(), "config_diff": config_diff,
                "metrics": metrics, "per_class_accuracy": per_class,
                "paired": paired_test(ra.run_dir, rb.run_dir)}

    # -- internals -------------------------------------------------------------------------
    def _update(self, table: str, allowed: tuple[str, ...], key: str, values: dict) -> None:
        unknown = set(values) - set(allowed)
        if unknown:
            raise RegistryError(f"cannot set {sorted(unknown)} on {table}; "
                                f"fields are {', '.join(allowed)}")
        if "state" in values:
            _check_state(values["state"])
        if not values:
            return
        cols = ", ".join(f"{k} = ?" for k in values)
        args = [json.dumps(_clean(v)) if k in _JSON_FIELDS else
                (str(v) if k in ("run_dir", "out_dir") and v is not None else v)
                for k, v in values.items()]
        with self._connect() as db:
            cur = db.execute(f"UPDATE {table} SET {cols} WHERE id = ?", [*args, key])
            if cur.rowcount == 0:
                raise RegistryError(f"no {table[:-1]} {key!r} in the registry")


def _check_state(state: str) -> None:
    if state not in STATES:
        raise RegistryError(f"unknown state {state!r}; states are {', '.join(STATES)}")


def _decode(row: sqlite3.Row) -> dict:
    doc = dict(row)
    for key in _JSON_FIELDS:
        if key in doc:
            doc[key] = json.loads(doc[key] or "{}")
    return doc


def paired_test(run_a: str | Path | None, run_b: str | Path | None) -> dict | None:
    """Exact McNemar test of two finished runs on the images both were measured on (test
    split when both have one, else validation); None when they share no labelled images.

    Two accuracies on the same images are not independent: whether their intervals overlap
    says little, the images on which exactly one run is right say it all.
    """
    from ..inspect.intervals import mcnemar_test

    docs = []
    for run in (run_a, run_b):
        path = Path(run) / "predictions.json" if run else None
        if path is None or not path.is_file():
            return None
        try:
            docs.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            return None
    for split in ("test", "val"):
        a, b = docs[0].get(split), docs[1].get(split)
        if not a or not b:
            continue
        right_a = {p: (y == q) for p, y, q in zip(a["paths"], a["labels"], a["preds"],
                                                   strict=True)}
        right_b = {p: (y == q) for p, y, q in zip(b["paths"], b["labels"], b["preds"],
                                                   strict=True)}
        common = sorted(set(right_a) & set(right_b))
        if not common:
            continue
        result = mcnemar_test([right_a[p] for p in common], [right_b[p] for p in common])
        result["split"] = split
        if len(common) < max(len(right_a), len(right_b)):
            result["note"] = (f"on the {len(common)} images both runs were measured on "
                              f"({len(right_a)} and {len(right_b)} in all)")
        return result
    return None


def run_result(run_dir: str | Path) -> dict:
    """The summary the registry keeps for a finished run folder (read from its files)."""
    run_dir = Path(run_dir)
    out: dict = {}
    ev_path = run_dir / "evaluation.json"
    if ev_path.is_file():
        ev = json.loads(ev_path.read_text(encoding="utf-8"))
        for key in ("accuracy", "accuracy_interval", "balanced_accuracy", "loss", "num_images",
                    "per_class_accuracy", "classes"):
            if key in ev:
                out[key] = ev[key]
        test = ev.get("test") or {}
        for key in ("accuracy", "accuracy_interval", "balanced_accuracy", "num_images"):
            if key in test:
                out[f"test_{key}"] = test[key]
        cal = ev.get("calibration") or {}
        for key in ("temperature", "ece_before", "ece_after"):
            if key in cal:
                out[key] = cal[key]
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        rows = json.loads(metrics_path.read_text(encoding="utf-8"))
        out["epochs"] = len(rows)
        out["train_seconds"] = sum(r.get("seconds", 0.0) for r in rows)
    best_path = run_dir / "best.json"
    if best_path.is_file():
        best = json.loads(best_path.read_text(encoding="utf-8"))
        params = best.get("parameters") or {}
        if params:
            out["trainable_params"] = params.get("trainable")
            out["total_params"] = params.get("total")
    return _clean(out)
