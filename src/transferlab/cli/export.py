"""``transferlab export``: a finished run as ONNX, TorchScript or safetensors."""

from __future__ import annotations

import argparse


def cmd_export(args: argparse.Namespace) -> int:
    from ..export.exporters import export_model

    result = export_model(args.run, args.format, args.out, opset=args.opset,
                          exporter=args.exporter)
    for path in result.files:
        print(path)
    return 0


def register(sub) -> None:
    from ..catalog import DEFAULT_OPSET
    from ..catalog import EXPORT_FORMATS as FORMATS

    p = sub.add_parser("export", help="write a run's model as ONNX, TorchScript or safetensors",
                       description="Export the model of a finished run, with "
                       "preprocessing.json (input size, resize, crop, mean/std, class names) "
                       "beside it.")
    p.add_argument("run", help="run folder (or its best.safetensors)")
    p.add_argument("--format", default="onnx", choices=FORMATS)
    p.add_argument("--out", help="output folder (default RUN/export)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    p.add_argument("--exporter", default="dynamo", choices=["dynamo", "legacy"],
                   help="ONNX: torch.export-based exporter (default, needs onnxscript) or the "
                   "deprecated TorchScript-based one")
    p.set_defaults(func=cmd_export)
