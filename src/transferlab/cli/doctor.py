"""``transferlab doctor``: check a photo folder before training (thin over transferlab.doctor)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

TOP = {"label": "likely label errors", "leak": "leaks across splits",
       "duplicate": "duplicates within a split", "outlier": "outliers",
       "other-class": "in another class's cluster"}


def _print(report, console: Console, top: int) -> None:
    summary = Table(title=f"data doctor: {report.root}  ({', '.join(f'{n} {s}' for n, s in report.sizes.items())} "
                          f"images, {report.seconds.get('total', 0):.1f} s)")
    summary.add_column("check")
    summary.add_column("findings", justify="right")
    for kind, title in TOP.items():
        n = len(report.of_kind(kind))
        summary.add_row(title, str(n), style="yellow" if n else "green")
    console.print(summary)
    for kind, title in TOP.items():
        found = report.of_kind(kind)
        if not found:
            continue
        table = Table(title=f"{title} (top {min(top, len(found))} of {len(found)})")
        for col in ("image(s)", "label", "score", "detail", "suggested"):
            table.add_column(col, overflow="fold")
        for f in found[:top]:
            acts = "; ".join(f"{a['action']}" + (f" → {a['label']}" if a.get("label") else "")
                             for a in f.actions) or "review"
            table.add_row("\n".join(f.paths[:3]), ", ".join(sorted(set(f.labels))),
                          f"{f.score:.3f}", f.detail, acts)
        console.print(table)
    if report.balance.get("suggestion"):
        console.print(f"[bold]class balance:[/] {report.balance['suggestion']}")


def _review(report, fixes, console: Console):
    """Ask about each suggested action: accept it, keep the image as it is, or skip."""
    from ..doctor import FixList

    reviewed = FixList(dataset=fixes.dataset)
    for n, a in enumerate(sorted(fixes.actions.values(), key=lambda a: a.path), 1):
        what = a.action + (f" → {a.label}" if a.label else "")
        console.print(f"[{n}/{len(fixes.actions)}] {a.path}: {a.reason}")
        answer = input(f"  {what}? [Y]es / [k]eep as is / [s]kip / [q]uit: ").strip().lower()
        if answer in {"q", "quit"}:
            break
        if answer in {"", "y", "yes"}:
            reviewed.set(a.path, a.action, a.label, a.reason)
        elif answer in {"k", "keep"}:
            reviewed.set(a.path, "keep", None, a.reason)
    return reviewed


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import diagnose, write_report

    console = Console(stderr=False)
    err = Console(stderr=True)
    data = Path(args.data)
    out = Path(args.out) if args.out else Path("doctor") / data.absolute().name
    if out.absolute().is_relative_to(data.absolute()):
        raise ValueError(f"--out {out} is inside the dataset folder; the doctor never writes "
                         "there: choose another folder")
    with err.status("data doctor: reading features (extracted once, then cached)") as status:
        def progress(split: str, done: int, total: int) -> None:
            status.update(f"data doctor: features of {split} images {done}/{total}")

        report = diagnose(data, model=args.model, weights=args.weights,
                          cache_dir=args.cache_dir, device=args.device, seed=args.seed,
                          val_fraction=args.val_fraction, near_threshold=args.near_threshold,
                          outlier_mads=args.outlier_mads, progress=progress)
    json_path, md_path = write_report(report, out)
    _print(report, console, args.top)
    console.print(f"report: {md_path}  (all findings: {json_path})")
    if args.fix:
        fixes = report.suggested_fixes()
        if args.review:
            if not sys.stdin.isatty():
                raise ValueError("--review asks about each action and needs a terminal")
            fixes = _review(report, fixes, console)
        path = fixes.save(args.fix)
        c = fixes.counts()
        console.print(f"action list: {path}  ({c['relabel']} relabel, {c['remove']} remove, "
                      f"{c['keep']} keep{'' if args.review else '; suggestions, not reviewed: '}"
                      f"{'' if args.review else 'edit it or use --review'})")
        console.print(f"train with it: transferlab train {args.data} --apply-fixes {path}")
    return 0


def register(sub) -> None:
    from ..catalog import DEFAULT_MODEL, NEAR_THRESHOLD, OUTLIER_MADS

    p = sub.add_parser("doctor", help="find label errors, duplicates, leaks and outliers",
                       description="Check DATA before training: likely label errors (k-fold "
                       "probes + confident learning), exact and near duplicates, train/val "
                       "leaks, outliers, class balance and image statistics, from the "
                       "pretrained backbone's cached features. Writes doctor.json and "
                       "doctor.md; never changes the dataset.")
    p.add_argument("data", help="dataset folder (as for train)")
    p.add_argument("--out", help="report folder (default doctor/<dataset name>)")
    p.add_argument("--fix", metavar="FILE", help="write the suggested actions (relabel, remove, "
                   "keep) to FILE for `transferlab train --apply-fixes FILE`")
    p.add_argument("--review", action="store_true",
                   help="with --fix: ask about each suggested action in the terminal")
    p.add_argument("--top", type=int, default=10, help="rows per check in the terminal")
    p.add_argument("--model", default=DEFAULT_MODEL, help="backbone whose features are used")
    p.add_argument("--weights", default="auto")
    p.add_argument("--near-threshold", type=float, default=NEAR_THRESHOLD,
                   help=f"cosine similarity for near duplicates (default {NEAR_THRESHOLD})")
    p.add_argument("--outlier-mads", type=float, default=OUTLIER_MADS,
                   help="outlier: this many robust standard deviations below the median "
                   f"class affinity (default {OUTLIER_MADS})")
    p.add_argument("--seed", type=int, default=0, help="split seed (as for train) and folds")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", help="feature cache folder (default ~/.cache/transferlab)")
    p.set_defaults(func=cmd_doctor)
