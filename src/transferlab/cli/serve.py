"""``transferlab serve``: the web playground (FastAPI + uvicorn) on this machine."""

from __future__ import annotations

import argparse
import getpass
import os
import socket
from pathlib import Path

from ..catalog import ENGINES


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..web.app import create_app
        from ..web.security import LOOPBACK_NAMES, check_bind, is_loopback
    except ImportError as exc:  # the web extra is optional
        raise ValueError(f"the web playground needs the web extra: pip install "
                         f"'transferlab[web]' ({exc})") from exc

    token = args.token or os.environ.get("TRANSFERLAB_TOKEN") or None
    check_bind(args.host, token)
    data_root = Path(args.data_root).expanduser()
    if not data_root.is_dir():
        raise FileNotFoundError(f"data root {data_root} is not a folder (--data-root)")
    allowed = tuple(LOOPBACK_NAMES) if is_loopback(args.host) else None
    app = create_app(data_root=data_root, runs_root=args.runs_root, token=token,
                     allowed_hosts=allowed, max_upload_bytes=args.max_upload_mb * 2**20,
                     device=args.device, allow_code=True if args.allow_code else None,
                     lab_limits=_lab_limits(args), engine=args.engine)
    # Bind here, so that --port 0 takes a free port and the address printed is the real one
    # (no window between choosing a port and listening on it).
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else host}:{port}/"
    print(f"transferlab playground: {url}{'?token=' + token if token else ''}", flush=True)
    print(f"  data root {data_root.resolve()}  runs root {Path(args.runs_root).resolve()}",
          flush=True)
    lab = app.state.lab
    print(f"  Lab (Python code in the page, run as {getpass.getuser()} on this "
          f"machine): {'on' if lab['enabled'] else 'off'}"
          + ("" if lab["enabled"] or not token else " (add --allow-code to turn it on)"),
          flush=True)
    config = uvicorn.Config(app, host=args.host, port=port, log_level=args.log_level)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _lab_limits(args: argparse.Namespace):
    from ..web.lab.kernels import LabLimits

    for name in ("lab_run_seconds", "lab_memory_gb", "lab_max_kernels", "lab_output_kb"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got "
                             f"{getattr(args, name)}")
    return LabLimits(run_seconds=args.lab_run_seconds,
                     memory_bytes=int(args.lab_memory_gb * 2**30),
                     max_kernels=args.lab_max_kernels, output_bytes=args.lab_output_kb * 1024)


def register(sub) -> None:
    p = sub.add_parser("serve", help="the web playground in your browser",
                       description="Serve the web playground: pick data, freeze layers, train "
                       "and watch live, inspect and predict. Binds 127.0.0.1 by default; any "
                       "other address needs --token.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, "
                   "printed at start)")
    p.add_argument("--data-root", default=".",
                   help="only dataset folders under this folder can be read (default: .)")
    p.add_argument("--runs-root", default="runs",
                   help="run folders and the run registry (default: runs/)")
    p.add_argument("--token", help="required on every request; mandatory off loopback "
                   "(or set TRANSFERLAB_TOKEN)")
    p.add_argument("--max-upload-mb", type=int, default=512, help="dataset zip size limit")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N for training")
    p.add_argument("--engine", default="auto", choices=ENGINES,
                   help="inference engine of predictions (default auto)")
    p.add_argument("--allow-code", action="store_true",
                   help="turn the Lab on off loopback too (needs --token): anyone with the "
                   "token can then run Python as this user on this machine")
    p.add_argument("--lab-run-seconds", type=float, default=300.0,
                   help="Lab: wall time per run before it is interrupted (default 300)")
    p.add_argument("--lab-memory-gb", type=float, default=8.0,
                   help="Lab: address-space limit of each kernel (default 8; torch maps ~3.6)")
    p.add_argument("--lab-max-kernels", type=int, default=4,
                   help="Lab: kernels at once, one per browser session (default 4)")
    p.add_argument("--lab-output-kb", type=int, default=1024,
                   help="Lab: output kept per run; the rest is cut with a note (default 1024)")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)
