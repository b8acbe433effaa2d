"""The run folder: everything a run produced, enough to reproduce it from the folder alone.

```
runs/<time>-<model>-<strategy>/
  config.json            resolved TrainConfig
  data.json              classes, split sizes, notes, bad files
  bad_files.txt          skipped files with reasons (if any)
  metrics.csv / .json    one row per epoch
  events.jsonl           live event feed
  checkpoints/last.*     resumable state (safetensors + json)
  best.safetensors/.json best weights + sidecar (backbone, weights, classes, preprocessing)
  evaluation.json        val (and test) accuracy with 95 % Wilson intervals, per-class
                         accuracy, confusion, worst errors, ECE before/after temperature
  curves.png, confusion.png, reliability.png, report.md
```
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from safetensors.torch import load_file, save_file

from .models.factory import TransferModel, model_from_description
from .models.reference import FrozenReference, resolve_reference
from .models.weights import WeightsUnavailableError
from .utils import atomic_write, atomic_write_text

BEST = "best.safetensors"


class RunError(RuntimeError):
    pass


def run_folder(out: str | Path, model: str, strategy: str, name: str | None = None) -> Path:
    """Where a run is written: ``OUT/NAME``, or ``OUT/<time>-<model>-<strategy>`` without a
    name. The one place a run folder is named (the web names its jobs' runs here too)."""
    return Path(out) / (name or f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{strategy}")


def new_run_dir(out: str | Path, model: str, strategy: str, name: str | None = None) -> Path:
    """Create the run folder (:func:`run_folder`; ``-2``, ``-3``... if it exists)."""
    base = run_folder(out, model, strategy, name)
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def save_model(model: TransferModel, path: str | Path, extra: dict | None = None, *,
               reference: FrozenReference | None = None) -> Path:
    """Weights as safetensors plus a JSON sidecar that can rebuild the model offline.

    With a ``reference`` (lean runs) the tensors equal to the pretrained weights are not
    written: the sidecar's ``frozen`` entry names them (model, weights source, SHA-256) and
    :func:`load_model` finds them again offline. Without one the file is self-contained.
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    frozen = None
    if reference is not None:
        state, frozen = reference.split(state)
    atomic_write(path, lambda tmp: save_file(state, tmp))
    sidecar = {"format": "transferlab-model/1", **model.describe(), **(extra or {})}
    if frozen is not None:
        sidecar["frozen"] = frozen
    atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar, indent=1))
    return path


def load_model(path: str | Path) -> TransferModel:
    """Load a model saved by :func:`save_model` (a run folder or its best.safetensors)."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise RunError(f"no trained model at {path} (needs {path.name} and {sidecar.name}); "
                       "is this a finished run folder?")
    desc = json.loads(sidecar.read_text(encoding="utf-8"))
    if desc.get("format") != "transferlab-model/1":
        raise RunError(f"{sidecar} is not a transferlab model sidecar")
    model = model_from_description(desc)
    try:
        state = load_file(str(path))
    except Exception as exc:  # SafetensorError: not a safetensors file, truncated, ...
        raise RunError(f"cannot read the weights in {path}: {exc}") from exc
    if desc.get("frozen"):  # a lean run: the frozen weights are found again and checked
        try:
            state = resolve_reference(desc["frozen"]).merge(state, desc["frozen"])
        except WeightsUnavailableError as exc:
            raise RunError(f"cannot load {path}: {exc}") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunError(f"the weights in {path} do not fit the model its sidecar describes: "
                       f"{str(exc).splitlines()[0]}") from exc
    model.eval()
    return model


def plot_curves(rows: list[dict], path: str | Path) -> Path | None:
    """Loss and accuracy per epoch (phases concatenated, boundaries marked)."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(1, len(rows) + 1))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(x, [r["train_loss"] for r in rows], label="train")
    ax1.plot(x, [r["val_loss"] for r in rows], label="val")
    ax1.set_title("loss")
    ax2.plot(x, [r["train_acc"] for r in rows], label="train")
    ax2.plot(x, [r["val_acc"] for r in rows], label="val")
    ax2.set_title("accuracy")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch (all phases)")
        ax.grid(alpha=0.3)
        for i in range(1, len(rows)):
            if rows[i]["phase"] != rows[i - 1]["phase"]:
                ax.axvline(i + 0.5, color="grey", ls="--", lw=1)
                ax.text(i + 0.6, ax.get_ylim()[1], rows[i]["phase"], va="top", fontsize=8)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _figure(name: str, doc: dict) -> str:
    lo, hi = doc.get("accuracy_interval") or (float("nan"), float("nan"))
    return (f"{name} accuracy **{doc['accuracy']:.4f}** [{lo:.3f}, {hi:.3f}] (balanced "
            f"{doc['balanced_accuracy']:.4f}), loss {doc['loss']:.4f} on "
            f"{doc['num_images']} images")


def result_lines(evaluation: dict) -> list[str]:
    """The headline of evaluation.json in words: test (untouched) first when there is one,
    every accuracy with its 95 % interval, and which figure chose the epoch."""
    test = evaluation.get("test")
    lines = []
    if test:
        lines += [f"- {_figure('test', test)} — untouched: used for nothing else."]
    lines += [f"- {_figure('validation', evaluation)} — "
              + ("chose the epoch and the temperature." if test else
                 "**optimistic**: these images also chose the epoch and the temperature "
                 "(no test split; `--holdout-test FRACTION` sets one aside).")]
    lines += [f"- intervals: {evaluation.get('interval', '95 % interval')} on the number of "
              "images; compare two runs on the same images with a paired test "
              "(McNemar), not by overlapping intervals."]
    return lines


def write_report(run_dir: Path, *, config: dict, data: dict, rows: list[dict], evaluation: dict,
                 model_info: dict, seconds: float) -> Path:
    lines = [
        f"# Run {run_dir.name}",
        "",
        f"- backbone: `{config['model']}` (weights: {model_info['weights']['source']} — "
        f"{model_info['weights']['detail']})",
        f"- strategy: `{config['strategy']}`; data: `{config['data']}`",
        f"- classes ({len(data['classes'])}): {', '.join(data['classes'])}",
        f"- images: {data['train']} train, {data['val']} val"
        + (f", {data['test']} test" if data.get("test") else "")
        + (f"; {len(data['bad_files'])} bad files skipped (see bad_files.txt)"
           if data["bad_files"] else ""),
        f"- wall time: {seconds:.1f} s",
        "",
        "## Result",
        "",
        *result_lines(evaluation),
        "",
    ]
    test = evaluation.get("test")
    per_class = evaluation["per_class_accuracy"]
    if test:
        lines += ["| class | val accuracy | test accuracy | test images |", "|---|---|---|---|"]
        lines += [f"| {c} | {a:.3f} | {test['per_class_accuracy'].get(c, float('nan')):.3f} | "
                  f"{(test.get('per_class_images') or {}).get(c, '')} |"
                  for c, a in per_class.items()]
    else:
        lines += ["| class | val accuracy |", "|---|---|"]
        lines += [f"| {c} | {a:.3f} |" for c, a in per_class.items()]
    cal = evaluation.get("calibration")
    if cal:
        lines += ["", "## Calibration", "",
                  f"Temperature scaling fitted on {cal['fitted_on']}: T = "
                  f"{cal['temperature']:.3f}. Expected calibration error on "
                  f"{cal['measured_on']} ({cal['images']} images; {cal['binning']}): "
                  f"{cal['ece_before']:.4f} before, {cal['ece_after']:.4f} after."
                  + (f" {cal['note']}." if cal.get("note") else ""),
                  "", "![reliability](reliability.png)"]
    lines += ["", "## Epochs", "",
              "| phase | epoch | train loss | val loss | val acc | img/s | s |",
              "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {r['phase']} | {r['epoch']} | {r['train_loss']:.4f} | {r['val_loss']:.4f} | "
        f"{r['val_acc']:.4f} | {r['images_per_s']:.0f} | {r['seconds']:.1f} |"
        for r in rows
    ]
    if data.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in data["notes"]]
    lines += ["", "![curves](curves.png)", "", "![confusion](confusion.png)", ""]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
