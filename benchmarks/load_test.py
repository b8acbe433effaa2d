"""Bounded load test of the web playground on 127.0.0.1: many predictions, many at a time.

Trains a small run (feature extraction on the shipped food4 sample), starts
``transferlab serve`` on a free loopback port in its own process, then sends ``--requests``
prediction requests (each uploads a real photo) with ``--concurrency`` in flight, and
reports throughput, latency percentiles and every error. The peer, measured in the same run
on the same model and photos: ``predict_images`` called in-process one photo at a time (the
library without HTTP, uploads or the server's threads); the ratio shows what the web layer
costs. Run::

    .venv/bin/python benchmarks/load_test.py                      # 500 requests, 16 at a time
    .venv/bin/python benchmarks/load_test.py --requests 2000 --concurrency 32
    .venv/bin/python benchmarks/load_test.py --record benchmarks/RESULTS.md

Exits with status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SAMPLE, machine, machine_line, markdown_table, record  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_run(runs: Path, epochs: int) -> Path:
    from transferlab.api import fine_tune

    result = fine_tune(
        data=str(SAMPLE),
        strategy="feature-extraction",
        epochs=epochs,
        out=str(runs),
        name="load",
        progress=False,
        device="cpu",
    )
    print(
        f"trained {result.run_dir.name}: val accuracy {result.evaluation.accuracy:.3f} "
        f"in {result.seconds:.1f} s"
    )
    return result.run_dir


def start_server(data_root: Path, runs: Path, port: int, engine: str = "auto"
                 ) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "transferlab.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-root",
            str(data_root),
            "--runs-root",
            str(runs),
            "--device",
            "cpu",
            "--engine",
            engine,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not answer within 180 s")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def load(url: str, photos: list[tuple[str, bytes]], requests: int, concurrency: int) -> dict:
    """``requests`` uploads to ``url``, at most ``concurrency`` in flight."""
    latencies: list[float] = []
    errors: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(i: int) -> None:
            name, data = photos[i % len(photos)]
            async with sem:
                t = time.perf_counter()
                try:
                    r = await client.post(
                        url, files={"file": (name, data, "image/jpeg")}, data={"topk": "3"}
                    )
                    ok = r.status_code == 200 and len(r.json()["top"]) == 3
                    if not ok:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        wall = time.perf_counter() - start
    return {
        "requests": requests,
        "concurrency": concurrency,
        "errors": errors,
        "wall_s": wall,
        "throughput": requests / wall,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p95_ms": 1000 * percentile(latencies, 95),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies),
    }


_PEER = r"""
import json, sys, time
from pathlib import Path
from transferlab.export.predict import predict_images
from transferlab.runs import load_model

run_dir, n = Path(sys.argv[1]), int(sys.argv[2])
paths = [Path(p) for p in json.loads(sys.argv[3])]
model = load_model(run_dir)
for path in paths[:16]:  # warm-up, as the server gets 16 warm-up requests
    predict_images(model, [path], topk=3)
latencies = []
start = time.perf_counter()
for i in range(n):
    t = time.perf_counter()
    out = predict_images(model, [paths[i % len(paths)]], topk=3)
    assert "top" in out[0], out
    latencies.append(time.perf_counter() - t)
print(json.dumps({"wall": time.perf_counter() - start, "latencies": latencies}))
"""


def peer_in_process(run_dir: Path, paths: list[Path], n: int) -> dict:
    """The library alone, in a fresh process: ``predict_images`` on one photo at a time, same
    model and photos, no HTTP."""
    import json

    out = subprocess.run(
        [sys.executable, "-c", _PEER, str(run_dir), str(n), json.dumps([str(p) for p in paths])],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    lat = doc["latencies"]
    return {
        "requests": n,
        "wall_s": doc["wall"],
        "throughput": n / doc["wall"],
        "p50_ms": 1000 * percentile(lat, 50),
        "p99_ms": 1000 * percentile(lat, 99),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument(
        "--peer-requests",
        type=int,
        default=50,
        help="in-process predictions for the peer, before and after the load",
    )
    p.add_argument("--epochs", type=int, default=2, help="epochs of the small training run")
    p.add_argument("--record", help="append the result table to this markdown file")
    p.add_argument("--engines", default="torch,auto",
                   help="server engines to compare in this run: torch (PyTorch eager fp32, "
                   "what predictions used before engines existed) and auto")
    p.add_argument("--rounds", type=int, default=2,
                   help="rounds over the engines, alternating their order")
    args = p.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]

    info = machine()
    print(machine_line(info))
    with tempfile.TemporaryDirectory(prefix="tl-load-") as tmp:
        runs = Path(tmp) / "runs"
        run_dir = train_run(runs, args.epochs)
        paths = sorted((SAMPLE / "val").glob("*/*.jpg"))
        photos = [(f.name, f.read_bytes()) for f in paths]
        before = peer_in_process(run_dir, paths, args.peer_requests)
        results: dict[str, list[dict]] = {e: [] for e in engines}
        for rnd in range(args.rounds):
            for engine in (engines if rnd % 2 == 0 else engines[::-1]):
                port = free_port()
                server = start_server(SAMPLE.parent, runs, port, engine)
                try:
                    url = f"http://127.0.0.1:{port}/api/runs/{run_dir.name}/predict"
                    asyncio.run(load(url, photos, args.concurrency, args.concurrency))  # warm
                    one = asyncio.run(load(url, photos, args.requests, args.concurrency))
                    one["load"] = machine()["load"]
                    results[engine].append(one)
                    print(f"engine {engine}: {one['throughput']:.1f} requests/s, "
                          f"{len(one['errors'])} errors (load {one['load']})", flush=True)
                finally:
                    server.terminate()
                    try:
                        server.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        server.kill()
        after = peer_in_process(run_dir, paths, args.peer_requests)
    # the peer ran before and after the load (the machine may be shared): pool the two
    n = before["requests"] + after["requests"]
    peer = {
        "requests": n,
        "throughput": n / (before["wall_s"] + after["wall_s"]),
        "p50_ms": (before["p50_ms"] + after["p50_ms"]) / 2,
        "p99_ms": max(before["p99_ms"], after["p99_ms"]),
    }
    print(f"peer before the load: {before['throughput']:.1f}/s, after: {after['throughput']:.1f}/s")

    rows = [
        {
            "method": f"HTTP upload + predict, {args.concurrency} in flight, engine {engine}, "
                      f"round {i + 1}",
            "requests": result["requests"],
            "errors": len(result["errors"]),
            "req_s": f"{result['throughput']:.1f}",
            "p50": f"{result['p50_ms']:.0f}",
            "p95": f"{result['p95_ms']:.0f}",
            "p99": f"{result['p99_ms']:.0f}",
            "max": f"{result['max_ms']:.0f}",
        }
        for engine in engines for i, result in enumerate(results[engine])
    ] + [
        {
            "method": "peer: predict_images in-process, 1 at a time",
            "requests": peer["requests"],
            "errors": 0,
            "req_s": f"{peer['throughput']:.1f}",
            "p50": f"{peer['p50_ms']:.0f}",
            "p95": "",
            "p99": f"{peer['p99_ms']:.0f}",
            "max": "",
        },
    ]
    table = markdown_table(
        rows,
        [
            ("method", "method"),
            ("requests", "requests"),
            ("errors", "errors"),
            ("req_s", "requests/s"),
            ("p50", "p50 ms"),
            ("p95", "p95 ms"),
            ("p99", "p99 ms"),
            ("max", "max ms"),
        ],
    )
    import statistics

    med = {e: statistics.median(r["throughput"] for r in results[e]) for e in engines}
    errors = [err for e in engines for r in results[e] for err in r["errors"]]
    summary = (
        f"{args.requests} requests per round, {args.concurrency} concurrent, {args.rounds} "
        f"rounds alternating the engines' order, {len(errors)} errors in all; median "
        + ", ".join(f"engine {e} {med[e]:.1f} requests/s" for e in engines)
        + (f"; {engines[-1]} / {engines[0]} = {med[engines[-1]] / med[engines[0]]:.2f}x"
           if len(engines) > 1 else "")
        + f". The in-process peer (predict_images one photo at a time, engine auto) "
        f"{peer['throughput']:.1f}/s is sequential, the server has {args.concurrency} in "
        "flight: that ratio is not like for like."
    )
    print(table)
    print(summary)
    for err in errors[:10]:
        print("error:", err)
    record(
        args.record,
        "Web load test (benchmarks/load_test.py)",
        f"{machine_line(info)}\n\n{table}\n\n{summary}\n",
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
