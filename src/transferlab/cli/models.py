"""``transferlab summary`` and ``transferlab models``."""

from __future__ import annotations

import argparse
import json


def cmd_summary(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..finetune.freeze import train_top
    from ..models.factory import create_model
    from ..models.summary import format_count, summarize

    model = create_model(args.model, num_classes=args.classes, weights=args.weights,
                         hidden=args.hidden, dropout=args.dropout)
    train_top(model, args.train_top)
    s = summarize(model)
    if args.json:
        print(json.dumps(s.to_dict(), indent=1))
        return 0
    console = Console()
    table = Table(title=f"{s.model_name}  input {tuple(s.input_size)}  "
                        f"weights: {s.weights['source']}")
    for col in ("#", "group", "layers", "output shape", "params", "state"):
        table.add_column(col, justify="right" if col in {"#", "params"} else "left")
    for i, g in enumerate(s.groups):
        layers = ", ".join(f"{n}x{t}" for t, n in g.layer_types.items())
        shape = "x".join(map(str, g.output_shape)) if g.output_shape else "-"
        style = "green" if g.trainable else "dim"
        table.add_row(str(i), g.name, layers, shape, f"{g.params:,}", g.state, style=style)
    console.print(table)
    console.print(
        f"total {s.total_params:,} ({format_count(s.total_params)})  "
        f"trainable {s.trainable_params:,}  frozen {s.frozen_params:,}"
    )
    console.print(f"head: Linear in_features={s.head_in_features} "
                  f"out_features={s.head_out_features}")
    return 0


def _availability(name: str) -> str:
    """'package', 'hub-cache' or 'download', without importing timm (``models`` starts in
    well under a second); a ``--filter`` listing asks timm, which knows every name."""
    from ..catalog import hub_cached, packaged_weights_path

    if packaged_weights_path(name) is not None:
        return "package"
    return "hub-cache" if hub_cached(name) else "download"


def cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..catalog import KNOWN_BACKBONES, packaged_weights_hint

    if args.filter:
        import timm

        from ..models.factory import offline_availability

        names, where_is = timm.list_models(args.filter), offline_availability
    else:
        names, where_is = KNOWN_BACKBONES, _availability
    table = Table(title="backbones (any timm model name works)")
    table.add_column("model")
    table.add_column("weights now")
    table.add_column("how to get them")
    for name in names:
        where = where_is(name)
        hint = {"package": "installed (offline)", "hub-cache": "in the hub cache (offline)"}.get(
            where, packaged_weights_hint(name) or "download from the hub (needs internet)")
        table.add_row(name, "offline" if where != "download" else "needs download", hint)
    Console().print(table)
    return 0


def register(sub) -> None:
    p = sub.add_parser("summary", help="layer groups, shapes, parameters, trainable/frozen",
                       description="Show a backbone as layer groups (stem, stages, head) with "
                       "output shapes, parameter counts and what --train-top K would train.")
    p.add_argument("model", help="timm model name, e.g. resnet50")
    p.add_argument("--classes", type=int, help="number of classes of the new head "
                   "(default: keep the 1000-class ImageNet head)")
    p.add_argument("--train-top", type=int, default=None, metavar="K",
                   help="trainable: head plus top K groups (default: everything)")
    p.add_argument("--weights", default="random",
                   help="weights to load (default random: the architecture is enough)")
    p.add_argument("--hidden", type=int)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("models", help="known backbones and whether weights are available offline")
    p.add_argument("--filter", help="timm wildcard, e.g. 'resnet*'")
    p.set_defaults(func=cmd_models)
