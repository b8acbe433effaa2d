"""One trial of a sweep: a TrainConfig plus the labels that place it in the table.

:func:`run_trial` trains it with :func:`transferlab.api.fine_tune` and returns a flat result
row (JSON-able): the row is what ``trials.jsonl`` stores and what the statistics aggregate.
Trials are plain data, so a Ray worker can run one from its dict alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..config import TrainConfig

ROW_FIELDS = (
    "key", "arm", "size", "depth", "group", "seed", "strategy", "accuracy",
    "balanced_accuracy", "test_accuracy", "test_balanced_accuracy", "test_images", "val_loss", "trainable_params", "total_params", "epochs",
    "seconds", "seconds_per_epoch", "images_per_s", "train_images", "per_class_used",
    "val_images", "run_dir", "notes",
)


@dataclass
class Trial:
    """A run to make, labelled by arm (e.g. transfer/scratch/strategy), size, depth and seed."""

    config: TrainConfig
    arm: str
    seed: int = 0
    size: int | None = None  # requested images per class (data-size sweeps)
    depth: int | None = None  # trained body groups from the top (freeze-depth sweeps)
    group: str | None = None  # the one tuned group (position sweeps)
    labels: dict = field(default_factory=dict)  # anything else worth a column

    @property
    def key(self) -> str:
        """Unique within a sweep; also the trial's run folder name."""
        parts = [self.arm]
        if self.size is not None:
            parts.append(f"n{self.size}")
        if self.depth is not None:
            parts.append(f"d{self.depth}")
        if self.group is not None:
            parts.append(f"g-{self.group}")
        parts.append(f"s{self.seed}")
        return "_".join(parts)

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "arm": self.arm, "seed": self.seed,
                "size": self.size, "depth": self.depth, "group": self.group,
                "labels": dict(self.labels)}

    @classmethod
    def from_dict(cls, doc: dict) -> Trial:
        return cls(TrainConfig.from_dict(doc["config"]), doc["arm"], doc.get("seed", 0),
                   doc.get("size"), doc.get("depth"), doc.get("group"),
                   dict(doc.get("labels") or {}))


def _last_phase_rows(history: list[dict]) -> list[dict]:
    if not history:
        return []
    last = history[-1]["phase"]
    return [r for r in history if r["phase"] == last]


def prune_trial(run_dir: Path) -> None:
    """Keep a finished trial's metrics and best head: its checkpoints go, and so do best
    weights that hold a whole network (random-weight "scratch" trials cannot refer to
    pretrained ones). A sweep run with ``--save full`` keeps everything."""
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    sidecar = run_dir / "best.json"
    if sidecar.is_file() and "frozen" not in json.loads(sidecar.read_text(encoding="utf-8")):
        (run_dir / "best.safetensors").unlink(missing_ok=True)


def run_trial(trial: Trial, runs_dir: str | Path) -> dict:
    """Train ``trial`` into ``runs_dir/<key>`` and return its result row.

    A folder left by an interrupted attempt is resumed from its last epoch checkpoint when
    it has one (``fine_tune(resume=...)``), otherwise started afresh.
    """
    from ..api import fine_tune
    from ..finetune.freeze import count_parameters

    run_dir = Path(runs_dir) / trial.key
    result = None
    if run_dir.exists():
        if (run_dir / "config.json").is_file() and (run_dir / "checkpoints").is_dir():
            result = fine_tune(resume=run_dir, progress=False)
        else:  # killed before its first checkpoint: nothing worth keeping
            shutil.rmtree(run_dir)
    if result is None:
        cfg = TrainConfig.from_dict({**trial.config.to_dict(), "out": str(runs_dir),
                                     "name": trial.key})
        result = fine_tune(cfg, progress=False)
    if result.run_dir and TrainConfig.load(result.run_dir / "config.json").save_mode == "lean":
        prune_trial(result.run_dir)
    ev, test = result.evaluation, result.test_evaluation
    params = count_parameters(result.model)
    data = json.loads((result.run_dir / "data.json").read_text(encoding="utf-8"))
    resolved = json.loads((result.run_dir / "config.json").read_text(encoding="utf-8"))
    # time per epoch of the last (main) phase: a cached-feature probe before it would
    # otherwise dilute the cost of fine-tuning
    last = _last_phase_rows(result.history)
    seconds_per_epoch = (sum(r["seconds"] for r in last) / len(last)) if last else None
    images_per_s = (sum(r["images_per_s"] for r in last) / len(last)) if last else None
    clipped = [n for n in data["notes"] if "training images; using" in n]
    row = {
        "key": trial.key, "arm": trial.arm, "size": trial.size, "depth": trial.depth,
        "group": trial.group, "seed": trial.seed, "strategy": resolved["strategy"],
        "accuracy": ev.accuracy, "balanced_accuracy": ev.balanced_accuracy,
        # the untouched figure (None without a test split)
        "test_accuracy": None if test is None else test.accuracy,
        "test_balanced_accuracy": None if test is None else test.balanced_accuracy,
        "test_images": None if test is None else len(test.labels),
        "val_loss": ev.loss, "trainable_params": params["trainable"],
        "total_params": params["total"], "epochs": len(result.history),
        "seconds": result.seconds,
        "seconds_per_epoch": seconds_per_epoch, "images_per_s": images_per_s,
        "train_images": data["train"],
        "per_class_used": data["train"] / max(len(data["classes"]), 1),
        "val_images": data["val"], "run_dir": str(result.run_dir),
        "notes": [*clipped, *(n for n in resolved.get("notes", []) if n.startswith("auto: "))
                  ][:12],
        **{k: v for k, v in trial.labels.items() if k not in ROW_FIELDS},
    }
    return row

