"""The Lab's kernel process: an ``ipykernel`` with limits and a live tensor inspector.

Started by :class:`~.kernels.KernelPool` as
``python -m transferlab.web.lab.kernel -f CONNECTION_FILE --socket PATH --mem-bytes N``.
Before the kernel starts it caps its own address space (``RLIMIT_AS``), so an allocation
beyond the limit fails inside the learner's code (``RuntimeError: ... can't allocate memory``)
instead of taking the machine down.

The inspector answers on a Unix socket from a thread of this process, so the server can look
at the namespace *while* a cell runs (the kernel's shell channel is busy then). Requests and
answers are one JSON line each: ``snapshot``, ``module``, ``image``, ``check``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import socketserver
import sys
import threading
from typing import Any

HIDDEN = {"In", "Out", "exit", "quit", "get_ipython", "open"}
MAX_TENSORS = 400  # entries in one snapshot (a ResNet-50 has 161 parameter tensors)
MAX_STAT_ELEMENTS = 2_000_000  # larger tensors are summarised on an even subsample
HIST_BINS = 16


# --------------------------------------------------------------------------- summaries


def _lovely(t) -> str:
    try:
        import lovely_tensors

        lovely_tensors.set_config(color=False)
        return str(lovely_tensors.lovely(t))
    except Exception:  # lovely-tensors is optional; the structured fields below suffice
        return ""


def tensor_summary(t) -> dict:
    """Shape, dtype, device, grad state and value statistics of one tensor."""
    import torch

    info: dict[str, Any] = {
        "kind": "Parameter" if isinstance(t, torch.nn.Parameter) else "Tensor",
        "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
        "device": str(t.device), "requires_grad": bool(t.requires_grad),
        "has_grad": t.grad is not None if t.is_leaf else False, "numel": int(t.numel()),
    }
    if t.is_sparse or t.is_complex() or t.device.type == "meta" or t.numel() == 0:
        return info
    with torch.no_grad():
        flat = t.detach().reshape(-1)
        if flat.numel() > MAX_STAT_ELEMENTS:
            flat = flat[:: math.ceil(flat.numel() / MAX_STAT_ELEMENTS)]
            info["sampled"] = int(flat.numel())
        x = flat.to(torch.float64)
        finite = torch.isfinite(x)
        info["nan"] = int(torch.isnan(x).sum())
        info["inf"] = int(torch.isinf(x).sum())
        info["zeros"] = float((x == 0).double().mean())
        xf = x[finite]
        if xf.numel():
            lo, hi = float(xf.min()), float(xf.max())
            info.update(min=_finite(lo), max=_finite(hi), mean=_finite(float(xf.mean())),
                        std=_finite(float(xf.std())) if xf.numel() > 1 else 0.0)
            info["hist"] = torch.histc(xf, bins=HIST_BINS, min=lo, max=hi if hi > lo else lo + 1
                                       ).to(torch.int64).tolist()
    info["lovely"] = _lovely(t)
    if t.dim() == 2 and min(t.shape) > 1:
        info["image"] = "heatmap"
    elif t.dim() == 4 or (t.dim() == 3 and t.shape[0] > 1):
        info["image"] = "featuremaps"
    return info


def module_summary(m) -> dict:
    params = list(m.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    return {"class": type(m).__name__, "params": total, "trainable": trainable,
            "frozen": total - trainable, "children": len(m._modules)}


def _fingerprint(t) -> tuple:
    # The version counter grows with every in-place change (optimizer steps included).
    return (id(t), t.data_ptr() if t.device.type != "meta" else 0, t._version, tuple(t.shape))


class Inspector:
    """Lists the live tensors and modules of a namespace; remembers the last run's state."""

    def __init__(self, ns: dict) -> None:
        self.ns = ns
        self.baseline: dict[str, tuple] = {}
        self.lock = threading.Lock()

    def _items(self) -> list[tuple[str, Any]]:
        for _ in range(5):  # the namespace may change size while we copy it
            try:
                return [(k, v) for k, v in list(self.ns.items())
                        if not k.startswith("_") and k not in HIDDEN]
            except RuntimeError:
                continue
        return []

    def walk(self):
        """(kind, name, object) for tensors and modules, one level into lists/dicts."""
        import torch

        for name, obj in self._items():
            if isinstance(obj, torch.Tensor):
                yield "tensor", name, obj
            elif isinstance(obj, torch.nn.Module):
                yield "module", name, obj
                for pname, p in obj.named_parameters():
                    yield "tensor", f"{name}.{pname}", p
            elif isinstance(obj, (list, tuple)) and 0 < len(obj) <= 64:
                for i, v in enumerate(obj):
                    if isinstance(v, torch.Tensor):
                        yield "tensor", f"{name}[{i}]", v
            elif isinstance(obj, dict) and 0 < len(obj) <= 64:
                for k, v in list(obj.items()):
                    if isinstance(v, torch.Tensor) and isinstance(k, (str, int)):
                        yield "tensor", f"{name}[{k!r}]", v

    def snapshot(self, commit: bool = False) -> dict:
        with self.lock:
            tensors, modules, seen, prints = [], [], {}, {}
            truncated = False
            for kind, name, obj in self.walk():
                if kind == "module":
                    modules.append({"name": name, **module_summary(obj)})
                    continue
                if id(obj) in seen:
                    seen[id(obj)].setdefault("aliases", []).append(name)
                    continue
                if len(tensors) >= MAX_TENSORS:
                    truncated = True
                    continue
                try:
                    entry = {"name": name, **tensor_summary(obj)}
                except Exception as exc:  # a tensor being resized by the running cell
                    entry = {"name": name, "error": f"{type(exc).__name__}: {exc}"}
                fp = _fingerprint(obj)
                prints[name] = fp
                old = self.baseline.get(name)
                entry["new"] = old is None
                entry["changed"] = old is not None and old != fp
                seen[id(obj)] = entry
                tensors.append(entry)
            if commit:
                self.baseline = prints
            return {"tensors": tensors, "modules": modules, "truncated": truncated,
                    "max_tensors": MAX_TENSORS}

    def resolve(self, name: str):
        """The object a dotted name (``model.body.blocks.0``) or ``x[0]`` refers to."""
        head, _, rest = name.partition(".")
        if "[" in head:
            base, _, key = head.partition("[")
            obj = self.ns[base]
            key = key.rstrip("]")
            obj = obj[int(key)] if key.isdigit() else obj[key.strip("'\"")]
        else:
            obj = self.ns[head]
        for part in rest.split(".") if rest else []:
            obj = getattr(obj, part)
        return obj

    def module(self, name: str) -> dict:
        import torch

        m = self.resolve(name)
        if not isinstance(m, torch.nn.Module):
            raise TypeError(f"{name} is a {type(m).__name__}, not a torch.nn.Module")
        children = [{"name": f"{name}.{cname}", **module_summary(c)}
                    for cname, c in m.named_children()]
        params = [{"name": f"{name}.{pname}", **tensor_summary(p)}
                  for pname, p in m.named_parameters(recurse=False)]
        return {"name": name, **module_summary(m), "children_list": children, "params": params}

    def image(self, name: str) -> dict:
        import torch

        t = self.resolve(name)
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} is a {type(t).__name__}, not a tensor")
        with torch.no_grad():
            t = t.detach().to("cpu", torch.float32)
            if t.dim() == 2:
                return {"kind": "heatmap", "png": _heatmap_png(t), "shape": list(t.shape)}
            if t.dim() == 4:
                t = t[0]
            if t.dim() == 3:
                shown = min(t.shape[0], 64)
                return {"kind": "featuremaps", "png": _grid_png(t[:shown]),
                        "shape": list(t.shape), "shown": shown}
        raise ValueError(f"{name} has {t.dim()} dimensions: images are drawn for 2-D weights "
                         "(heat map) and 3-D/4-D activations (feature maps)")


def _png(rgb) -> str:
    import base64

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _heatmap_png(t) -> str:
    """A 2-D weight as a diverging heat map (blue negative, red positive), at most 512 px."""
    import matplotlib
    import numpy as np
    import torch

    h, w = t.shape
    if h > 512 or w > 512:  # average pool down to at most 512 on each side
        t = torch.nn.functional.adaptive_avg_pool2d(t[None, None], (min(h, 512), min(w, 512)))[0, 0]
    t = torch.nan_to_num(t)
    scale = float(t.abs().max()) or 1.0
    rgba = matplotlib.colormaps["RdBu_r"](((t / scale + 1) / 2).numpy())
    img = (rgba[..., :3] * 255).astype(np.uint8)
    rep = max(1, min(8, 256 // max(img.shape[:2])))
    return _png(np.kron(img, np.ones((rep, rep, 1), dtype=np.uint8)))


def _grid_png(maps) -> str:
    """Feature maps (C, H, W) as a grid of viridis tiles, each scaled to its own range."""
    import matplotlib
    import numpy as np
    import torch

    c, h, w = maps.shape
    side = max(h, w)
    if side < 32:
        maps = torch.nn.functional.interpolate(maps[None], scale_factor=32 // side + 1,
                                               mode="nearest")[0]
    elif side > 96:
        maps = torch.nn.functional.adaptive_avg_pool2d(maps, (96 * h // side, 96 * w // side))
    c, h, w = maps.shape
    cols = min(8, c)
    rows = math.ceil(c / cols)
    grid = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    maps = torch.nan_to_num(maps)
    for i in range(c):
        m = maps[i]
        lo, hi = float(m.min()), float(m.max())
        norm = ((m - lo) / (hi - lo if hi > lo else 1.0)).numpy()
        tile = (matplotlib.colormaps["viridis"](norm)[..., :3] * 255).astype(np.uint8)
        r, q = divmod(i, cols)
        grid[r * (h + 2) + 1: r * (h + 2) + 1 + h, q * (w + 2) + 1: q * (w + 2) + 1 + w] = tile
    return _png(grid)


# --------------------------------------------------------------------------- socket server


def serve_inspector(inspector: Inspector, path: str) -> socketserver.BaseServer:
    """Answer inspector requests on the Unix socket ``path`` from a daemon thread."""
    from . import checks

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                req = json.loads(self.rfile.readline(1 << 20))
                op = req.get("op")
                if op == "snapshot":
                    out = inspector.snapshot(commit=bool(req.get("commit")))
                elif op == "module":
                    out = inspector.module(str(req["name"]))
                elif op == "image":
                    out = inspector.image(str(req["name"]))
                elif op == "check":
                    out = checks.run_check(str(req["check"]), inspector.ns)
                else:
                    out = {"error": f"unknown inspector op {op!r}"}
            except Exception as exc:
                out = {"error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(out, allow_nan=False, default=_json_default).encode()
                             + b"\n")

    server = socketserver.ThreadingUnixStreamServer(path, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="lab-inspector", daemon=True).start()
    return server


def _json_default(o):
    return str(o)


def _finite(x):
    return x if not isinstance(x, float) or math.isfinite(x) else None


# --------------------------------------------------------------------------- entry point


def set_memory_limit(nbytes: int) -> None:
    """Cap this process's address space; only lowers limits."""
    if nbytes <= 0:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    new_hard = nbytes if hard == resource.RLIM_INFINITY else min(hard, nbytes)
    resource.setrlimit(resource.RLIMIT_AS, (min(nbytes, new_hard), new_hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-f", dest="connection_file", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--mem-bytes", type=int, default=0)
    args = parser.parse_args(argv)
    set_memory_limit(args.mem_bytes)
    if os.path.exists(args.socket):  # left by a kernel that was killed
        os.unlink(args.socket)

    import torch  # the inspector and nearly every cell need it
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(["-f", args.connection_file, "--IPKernelApp.quiet=True",
                    "--HistoryManager.enabled=False"])
    ns = app.shell.user_ns
    ns["torch"] = torch  # like the lesson's notebook: torch is there from the first line
    sample = os.environ.get("TRANSFERLAB_SAMPLE_DATA")
    if sample:
        from pathlib import Path

        ns["SAMPLE_DATA"] = Path(sample)
    serve_inspector(Inspector(ns), args.socket)
    app.start()


if __name__ == "__main__":  # pragma: no cover - run as the kernel process
    sys.exit(main())
