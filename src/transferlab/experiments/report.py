"""Tables, plots and a short markdown report for a sweep, with intervals over seeds.

Every number in a table is a mean over seeds with its 95 % Student-t interval and min/max;
every comparison says whether the difference is larger than seed noise (Welch's t-test), so
a reader does not mistake a 1-point wobble for a finding.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..training.checkpoint import atomic_write_text
from .stats import compare, summarize

METRICS = ("accuracy", "balanced_accuracy")
# on the untouched test split, when the data has one (--holdout-test or a test folder)
TEST_METRICS = ("test_accuracy", "test_balanced_accuracy")
_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
           "test_accuracy": "test accuracy", "test_balanced_accuracy": "test balanced accuracy"}
_GROUP_BY = {"data-size": ("arm", "size"), "freeze-depth": ("arm", "depth"),
             "position": ("arm", "group"), "compare": ("arm",)}
_TITLES = {"data-size": "Data size: transfer against scratch",
           "freeze-depth": "Freeze depth: how many groups to fine-tune",
           "position": "Position: which single group to fine-tune (surgical fine-tuning)",
           "compare": "Strategy comparison"}


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return math.fsum(vals) / len(vals) if vals else None


def aggregate(rows: list[dict], kind: str) -> list[dict]:
    """One entry per arm/size/depth/group: metric summaries over seeds, mean costs."""
    keys = _GROUP_BY[kind]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    table = []
    for key, rs in groups.items():
        entry = dict(zip(keys, key, strict=True))
        if kind == "position":
            entry["depth"] = rs[0].get("depth")
        entry["n"] = len(rs)
        entry["seeds"] = sorted(r["seed"] for r in rs)
        tested = all(r.get("test_accuracy") is not None for r in rs)
        for m in METRICS + (TEST_METRICS if tested else ()):
            s = summarize([r[m] for r in rs])
            entry.update({f"{m}_mean": s.mean, f"{m}_ci_low": s.ci_low,
                          f"{m}_ci_high": s.ci_high, f"{m}_min": s.min, f"{m}_max": s.max,
                          f"{m}_std": s.std})
        for col in ("val_loss", "trainable_params", "total_params", "seconds",
                    "seconds_per_epoch", "images_per_s", "per_class_used", "epochs"):
            entry[f"{col}_mean"] = _mean(r.get(col) for r in rs)
        entry["strategy"] = rs[0].get("strategy")
        table.append(entry)
    if kind == "data-size":
        table.sort(key=lambda e: (e["size"], e["arm"] != "transfer"))
    elif kind == "freeze-depth":
        table.sort(key=lambda e: e["depth"])
    return table


def _label(entry: dict, kind: str) -> str:
    if kind == "data-size":
        return f"{entry['arm']} n={entry['size']}"
    if kind == "freeze-depth":
        return f"depth {entry['depth']}"
    if kind == "position":
        return str(entry["group"])
    return str(entry["arm"])


def comparisons(rows: list[dict], table: list[dict], kind: str, metric: str) -> list[dict]:
    """The comparisons worth reading for each kind of sweep, with a noise verdict each."""
    keys = _GROUP_BY[kind]
    if any(f"{metric}_mean" not in e for e in table):
        raise ValueError(f"metric {metric!r} needs a test split in every trial: give the data "
                         "a test folder or use --holdout-test FRACTION")

    def values(entry: dict) -> list[float]:
        return [r[metric] for r in rows if all(r.get(k) == entry[k] for k in keys)]

    out = []

    def add(what: str, a: dict, b: dict) -> None:
        name = (lambda e: e["arm"]) if kind == "data-size" else (lambda e: _label(e, kind))
        c = compare(values(a), values(b), names=(name(a), name(b)))
        out.append({"what": what, **c.as_dict()})

    if kind == "data-size":
        by_size: dict[int, dict[str, dict]] = {}
        for e in table:
            by_size.setdefault(e["size"], {})[e["arm"]] = e
        for size, arms in by_size.items():
            if "transfer" in arms and "scratch" in arms:
                add(f"transfer - scratch at {size} per class", arms["transfer"], arms["scratch"])
        return out
    if not table:
        return out
    best = max(table, key=lambda e: e[f"{metric}_mean"])
    skip = {id(best)}
    if kind == "compare":
        fixed = [e for e in table if e["arm"] != "auto"]
        auto = next((e for e in table if e["arm"] == "auto"), None)
        if auto is not None and fixed:
            best_fixed = max(fixed, key=lambda e: e[f"{metric}_mean"])
            add("auto - best fixed preset", auto, best_fixed)
            skip.add(id(auto) if best_fixed is best else id(best_fixed))  # said just above
    if kind == "position":
        head = next((e for e in table if e["group"] == "head-only"), None)
        if head is not None:
            for e in table:
                if e is not head:
                    add(f"{e['group']} - head only", e, head)
    for e in table:
        if id(e) not in skip:
            add(f"{_label(e, kind)} - best ({_label(best, kind)})", e, best)
    return out


# ----------------------------------------------------------------------------- files

_TABLE_COLUMNS = ("arm", "size", "depth", "group", "strategy", "n", "accuracy_mean",
                  "accuracy_ci_low", "accuracy_ci_high", "accuracy_min", "accuracy_max",
                  "balanced_accuracy_mean", "balanced_accuracy_ci_low",
                  "balanced_accuracy_ci_high", "balanced_accuracy_min",
                  "balanced_accuracy_max", "test_accuracy_mean", "test_accuracy_ci_low",
                  "test_accuracy_ci_high", "test_balanced_accuracy_mean", "val_loss_mean", "trainable_params_mean",
                  "seconds_per_epoch_mean", "images_per_s_mean", "seconds_mean",
                  "per_class_used_mean", "epochs_mean")
_ROW_COLUMNS = ("key", "arm", "size", "depth", "group", "seed", "strategy", "accuracy",
                "balanced_accuracy", "test_accuracy", "test_balanced_accuracy", "val_loss", "trainable_params", "total_params", "epochs",
                "seconds", "seconds_per_epoch", "images_per_s", "train_images",
                "per_class_used", "val_images", "run_dir")


def _csv(records: list[dict], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("" if r.get(k) is None else
                             f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k))
                         for k in columns})
    return buf.getvalue()


def write_outputs(result, params: dict) -> None:
    """Fill ``result.table``/``comparisons`` and write CSV, JSON, the plot and report.md."""
    d = Path(result.sweep_dir)
    result.table = aggregate(result.rows, result.kind)
    result.comparisons = comparisons(result.rows, result.table, result.kind, result.metric)
    files = {"trials_csv": d / "trials.csv", "table_csv": d / "table.csv",
             "table_json": d / "table.json", "plot": d / f"{result.kind}.png",
             "report": d / "report.md"}
    atomic_write_text(files["trials_csv"], _csv(result.rows, _ROW_COLUMNS))
    atomic_write_text(files["table_csv"], _csv(result.table, _TABLE_COLUMNS))
    atomic_write_text(files["table_json"], json.dumps(
        {"kind": result.kind, "metric": result.metric, "params": params,
         "table": result.table, "comparisons": result.comparisons, "notes": result.notes},
        indent=1))
    if result.table:
        plot(result.kind, result.table, files["plot"], result.metric, rows=result.rows)
    else:
        files.pop("plot")
    atomic_write_text(files["report"], markdown(result, params, plot_name=files.get("plot")))
    result.files = files


# ----------------------------------------------------------------------------- plots

def _errs(table: list[dict], metric: str) -> tuple[list[float], list[list[float]]]:
    means = [e[f"{metric}_mean"] for e in table]
    lo = [m - (e[f"{metric}_ci_low"] if e[f"{metric}_ci_low"] is not None else m)
          for m, e in zip(means, table, strict=True)]
    hi = [(e[f"{metric}_ci_high"] if e[f"{metric}_ci_high"] is not None else m) - m
          for m, e in zip(means, table, strict=True)]
    return means, [lo, hi]


def _ylim(table: list[dict], metric: str) -> tuple[float, float]:
    """Around the seeds' range (not the intervals, which can be wide), inside 0..1."""
    low = min(e[f"{metric}_min"] for e in table)
    high = max(e[f"{metric}_max"] for e in table)
    pad = max(0.05, 0.15 * (high - low))
    return max(0.0, low - pad), min(1.0, high + pad)


def plot(kind: str, table: list[dict], path: str | Path, metric: str,
         rows: list[dict] | None = None) -> Path:
    """The sweep's plot as PNG; error bars are 95 % t-intervals over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = _LABELS[metric]
    if kind == "data-size":
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        arms = list(dict.fromkeys(e["arm"] for e in table))
        for arm, style in zip(arms, ("o-", "s--", "^-."), strict=False):
            es = [e for e in table if e["arm"] == arm]
            means, err = _errs(es, metric)
            ax.errorbar([e["size"] for e in es], means, yerr=err, fmt=style, capsize=4,
                        label=arm)
        sizes = sorted({e["size"] for e in table})
        ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_ylim(0.0, 1.0)  # accuracy; an interval past the ends says "too few seeds"
        ax.set_xlabel("training images per class (log scale)")
        ax.set_ylabel(f"validation {label}")
        ax.set_title("Data size: transfer vs scratch (95 % CI over seeds)")
        ax.legend()
    elif kind == "freeze-depth":
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        depths = [e["depth"] for e in table]
        means, err = _errs(table, metric)
        ax.errorbar(depths, means, yerr=err, fmt="o-", capsize=4)
        ax.set_ylim(*_ylim(table, metric))
        ax.set_xlabel("body groups fine-tuned from the top (0 = head only)")
        ax.set_ylabel(f"validation {label}")
        ax.set_title("Accuracy vs depth (95 % CI)")
        ax.set_xticks(depths)
        ax2.bar(depths, [e["seconds_per_epoch_mean"] or 0 for e in table], color="#9ab")
        ax2.set_xlabel("body groups fine-tuned")
        ax2.set_ylabel("seconds per epoch (fine-tuning phase)")
        ax2.set_xticks(depths)
        tw = ax2.twinx()
        tw.plot(depths, [(e["trainable_params_mean"] or 0) / 1e6 for e in table], "k.-")
        tw.set_ylabel("trainable parameters (millions)")
        ax2.set_title("Cost vs depth")
    else:
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(table) + 2), 4.2))
        names = [_label(e, kind) for e in table]
        means, err = _errs(table, metric)
        xs = list(range(len(table)))
        ax.bar(xs, means, yerr=err, capsize=4, color="#7a9cc6")
        if rows is not None:
            keys = _GROUP_BY[kind]
            for x, e in zip(xs, table, strict=True):
                vals = [r[metric] for r in rows if all(r.get(k) == e[k] for k in keys)]
                ax.plot([x] * len(vals), vals, "k.", alpha=0.6)
        ax.set_ylim(*_ylim(table, metric))
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_ylabel(f"validation {label}")
        ax.set_title(("Surgical fine-tuning: one group + head" if kind == "position"
                      else "Strategies") + " (95 % CI, dots: seeds)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- text

def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _cell(e: dict, m: str) -> str:
    mean, lo, hi = e[f"{m}_mean"], e[f"{m}_ci_low"], e[f"{m}_ci_high"]
    ci = f" [{_pct(lo)}, {_pct(hi)}]" if lo is not None else ""
    return f"{_pct(mean)}{ci}"


def _first_column(kind: str) -> str:
    return {"data-size": "arm | per class", "freeze-depth": "depth",
            "position": "group tuned", "compare": "strategy"}[kind]


def _first_cells(e: dict, kind: str) -> str:
    if kind == "data-size":
        return f"{e['arm']} | {e['size']}"
    if kind == "freeze-depth":
        return str(e["depth"])
    if kind == "position":
        return str(e["group"])
    return str(e["arm"]) + (f" → {e['strategy']}" if e["arm"] == "auto" else "")


def markdown_table(table: list[dict], kind: str, metric: str) -> str:
    other = "balanced_accuracy" if metric == "accuracy" else "accuracy"
    head = (f"| {_first_column(kind)} | seeds | {_LABELS[metric]} % (95 % CI) | min–max | "
            f"{_LABELS[other]} % | trainable params | s / epoch | total s |")
    sep = "|" + "---|" * (head.count("|") - 1)
    lines = [head, sep]
    for e in table:
        params = e["trainable_params_mean"]
        spe = e["seconds_per_epoch_mean"]
        lines.append(
            f"| {_first_cells(e, kind)} | {e['n']} | {_cell(e, metric)} | "
            f"{_pct(e[f'{metric}_min'])}–{_pct(e[f'{metric}_max'])} | "
            f"{_pct(e[f'{other}_mean'])} | "
            f"{'–' if params is None else f'{params / 1e6:.2f} M'} | "
            f"{'–' if spe is None else f'{spe:.2f}'} | {e['seconds_mean']:.0f} |")
    return "\n".join(lines)


def markdown(result, params: dict, plot_name: Path | None = None) -> str:
    kind, metric = result.kind, result.metric
    lines = [f"# {_TITLES[kind]}", "",
             f"Data: `{params.get('data')}`; metric: {_LABELS[metric]} on the validation "
             f"split; {len(result.rows)} trials; seeds {params.get('seeds')}.", ""]
    described = {k: v for k, v in params.items()
                 if k not in ("data", "notes", "metric", "seeds") and v is not None}
    if described:
        lines += ["Settings: " + "; ".join(f"{k} = {v}" for k, v in described.items()), ""]
    if result.notes:
        lines += ["Notes:", *(f"- {n}" for n in result.notes), ""]
    if plot_name is not None:
        lines += [f"![{kind}]({Path(plot_name).name})", ""]
    lines += [markdown_table(result.table, kind, metric), ""]
    lines += ["Intervals are 95 % Student-t intervals of the mean over seeds (none with one "
              "seed); \"within noise\" means Welch's t-test finds no difference at p < 0.05.",
              ""]
    if result.comparisons:
        lines.append("Comparisons:")
        for c in result.comparisons:
            overlap = ("" if c["intervals_overlap"] is None else
                       "; intervals overlap" if c["intervals_overlap"] else
                       "; intervals do not overlap")
            lines.append(f"- {c['what']}: {100 * c['diff']:+.1f} points — {c['verdict']}"
                         f"{overlap}")
        noise = [c for c in result.comparisons if c["within_noise"]]
        if noise:
            lines += ["", f"{len(noise)} of {len(result.comparisons)} differences are within "
                      "seed noise: do not read an order into them."]
        lines.append("")
    auto_notes = list(dict.fromkeys(n for r in result.rows for n in r.get("notes", [])
                                    if n.startswith("auto: ")))
    if auto_notes:
        lines += ["What auto chose (per seed the data statistics may differ slightly):",
                  *(f"- {n[6:]}" for n in auto_notes), ""]
    return "\n".join(lines)


def format_table(result) -> str:
    """A plain-text version of the table and verdicts for the terminal."""
    metric = result.metric
    lines = []
    for e in result.table:
        lines.append(f"{_first_cells(e, result.kind).replace(' | ', ' n='):<28} "
                     f"{_LABELS[metric]} {_cell(e, metric):<22} "
                     f"min–max {_pct(e[f'{metric}_min'])}–{_pct(e[f'{metric}_max'])}  "
                     f"seeds {e['n']}")
    for c in result.comparisons:
        lines.append(f"{c['what']}: {100 * c['diff']:+.1f} points, {c['verdict']}")
    return "\n".join(lines)
