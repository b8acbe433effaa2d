"""One Jupyter kernel per browser session, with limits, streamed output and inspection.

:class:`KernelPool` starts an ``ipykernel`` (through ``jupyter_client``'s
``AsyncKernelManager``) the first time a session runs code, in this interpreter's environment,
with ``transferlab`` importable and ``SAMPLE_DATA`` pointing at the shipped food photos. State
persists between runs like a notebook; kernels idle longer than ``idle_seconds`` are shut down.

Limits (:class:`LabLimits`): a run longer than ``run_seconds`` is interrupted (SIGINT, a
``KeyboardInterrupt`` in the learner's code) and, if it does not stop within
``kill_grace_seconds``, the kernel is killed and restarted; the kernel's address space is capped
(``RLIMIT_AS``, set by :mod:`.kernel` in the kernel process itself); output beyond
``output_bytes`` per run is dropped with a note; at most ``max_kernels`` run at once. A kernel
that dies (killed by the OS, ``os._exit``, a segfault) is noticed, reported with its exit code
and restarted; the server carries on.

Every session has an event log (output, inspector snapshots, limits, run ends) that the web
layer streams as server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data" / "food4"
PACKAGE_PARENT = Path(__file__).resolve().parents[3]  # the folder that holds transferlab/
KERNEL_NAME = "transferlab-lab"
MAX_EVENTS = 4000


@dataclass
class LabLimits:
    run_seconds: float = 300.0  # wall time per run, then interrupt
    kill_grace_seconds: float = 10.0  # after the interrupt, then kill and restart
    memory_bytes: int = 8 * 2**30  # RLIMIT_AS of the kernel process (torch alone maps ~3.6 GB)
    output_bytes: int = 1 * 2**20  # stdout + stderr + results per run
    max_kernels: int = 4
    idle_seconds: float = 20 * 60.0
    inspect_every: float = 2.0  # snapshots while a run is going
    start_timeout: float = 180.0  # importing torch on a loaded machine takes a while


class LabError(RuntimeError):
    """A Lab request that cannot be served now; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


class LabKernel:
    """One session's kernel, its event log and its current run."""

    def __init__(self, session: str, limits: LabLimits, root: Path) -> None:
        self.session = session
        self.limits = limits
        self.dir = Path(tempfile.mkdtemp(prefix="k-", dir=root))
        os.chmod(self.dir, 0o700)
        self.work = self.dir / "work"
        self.work.mkdir()
        self.socket = str(self.dir / "inspect.sock")
        self.km = None
        self.kc = None
        self.last_used = time.monotonic()
        self.events: list[dict] = []
        self.seq = 0
        self.changed = asyncio.Event()
        self.run_task: asyncio.Task | None = None
        self.run_no = 0
        self.start_lock = asyncio.Lock()
        self.restarts = 0
        self.may_start = lambda: None  # the pool's kernel limit (KernelPool.session sets it)

    # -- events ----------------------------------------------------------------------------
    def emit(self, event: dict) -> dict:
        self.seq += 1
        event = {"seq": self.seq, "time": time.time(), **event}
        self.events.append(event)
        if len(self.events) > MAX_EVENTS:
            del self.events[: len(self.events) - MAX_EVENTS]
        self.changed.set()
        self.changed = asyncio.Event()
        return event

    def events_after(self, seq: int) -> list[dict]:
        return [e for e in self.events if e["seq"] > seq]

    # -- life cycle ------------------------------------------------------------------------
    def _write_spec(self) -> Path:
        spec_dir = self.dir / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "transferlab.web.lab.kernel", "-f", "{connection_file}",
                "--socket", self.socket, "--mem-bytes", str(int(self.limits.memory_bytes))]
        (spec_dir / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "transferlab Lab", "language": "python",
             "interrupt_mode": "signal"}))
        return spec_dir.parent

    def _env(self) -> dict:
        env = dict(os.environ)
        path = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_PARENT), path) if p)
        env["TRANSFERLAB_SAMPLE_DATA"] = str(SAMPLE_DATA)
        env["MPLBACKEND"] = "Agg"
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("TRANSFERLAB_TOKEN", None)  # the learner's code has no use for the server's token
        return env

    async def ensure_started(self) -> None:
        async with self.start_lock:
            if self.km is not None and await self.km.is_alive():
                return
            if self.km is not None:  # died between runs
                await self._restart("died")
                return
            self.may_start()
            from jupyter_client import AsyncKernelManager
            from jupyter_client.kernelspec import KernelSpecManager

            self.emit({"type": "kernel", "state": "starting"})
            ksm = KernelSpecManager(kernel_dirs=[str(self._write_spec())])
            # IPC sockets in the session's private folder (mode 0700), not TCP ports.
            self.km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm,
                                         transport="ipc", ip=str(self.dir / "ipc"))
            await self.km.start_kernel(env=self._env(), cwd=str(self.work))
            await self._connect()
            self.emit({"type": "kernel", "state": "ready"})

    async def _connect(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            await self.kc.wait_for_ready(timeout=self.limits.start_timeout)
        except RuntimeError as exc:
            raise LabError(f"the Python kernel did not start: {exc}", 503) from exc

    async def _restart(self, why: str) -> None:
        """Kill the kernel process and start a fresh one (its variables are lost)."""
        self.emit({"type": "kernel", "state": "restarting", "reason": why})
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        await self.km.restart_kernel(now=True)
        await self._connect()
        self.restarts += 1
        self.emit({"type": "kernel", "state": "ready", "reason": why})

    async def restart(self) -> None:
        if self.run_task is not None and not self.run_task.done():
            self.run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.run_task
        if self.km is None:
            await self.ensure_started()
        else:
            async with self.start_lock:
                await self._restart("requested")

    async def interrupt(self) -> bool:
        if self.km is None or not self.running:
            return False
        await self.km.interrupt_kernel()
        self.emit({"type": "interrupt", "run": self.run_no, "reason": "requested"})
        return True

    async def shutdown(self) -> None:
        if self.run_task is not None and not self.run_task.done():
            self.run_task.cancel()
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            with contextlib.suppress(Exception):
                await self.km.shutdown_kernel(now=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.run_task is not None and not self.run_task.done()

    # -- inspector -------------------------------------------------------------------------
    async def ask(self, request: dict, timeout: float = 30.0) -> dict:
        """One request to the inspector thread inside the kernel (works while a cell runs)."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket, limit=64 * 2**20), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise LabError("the kernel's inspector is not reachable (is the kernel running?)",
                           503) from exc
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
        except asyncio.TimeoutError as exc:
            raise LabError(f"the inspector did not answer within {timeout:.0f} s", 504) from exc
        finally:
            writer.close()
        if not line:
            raise LabError("the kernel closed the inspector connection (did it die?)", 503)
        return json.loads(line)

    async def _snapshot(self, commit: bool) -> None:
        try:
            snap = await self.ask({"op": "snapshot", "commit": commit})
        except LabError:
            return
        self.emit({"type": "inspect", "run": self.run_no, "final": commit, **snap})

    # -- running code ----------------------------------------------------------------------
    async def start_run(self, code: str) -> int:
        if self.running:
            raise LabError("code is already running in this session: wait, or interrupt it")
        self.last_used = time.monotonic()
        await self.ensure_started()
        self.run_no += 1
        self.emit({"type": "run", "run": self.run_no, "state": "started"})
        self.run_task = asyncio.create_task(self._run(code, self.run_no))
        return self.run_no

    async def wait_run(self) -> dict:
        task = self.run_task
        if task is None:
            raise LabError("nothing has run yet")
        return await asyncio.shield(task)

    async def _run(self, code: str, run: int) -> dict:
        lim = self.limits
        kc, km = self.kc, self.km
        msg_id = kc.execute(code, store_history=True, allow_stdin=False)
        started = time.monotonic()
        next_snapshot = started + lim.inspect_every
        out_bytes, truncated, status = 0, False, "ok"
        interrupted_at: float | None = None
        errors: list[dict] = []
        text: list[str] = []
        while True:
            now = time.monotonic()
            if interrupted_at is None and now - started > lim.run_seconds:
                interrupted_at = now
                await km.interrupt_kernel()
                self.emit({"type": "limit", "run": run, "what": "time",
                           "limit": lim.run_seconds})
                status = "timeout"
            elif interrupted_at is not None and now - interrupted_at > lim.kill_grace_seconds:
                self.emit({"type": "limit", "run": run, "what": "kill",
                           "limit": lim.kill_grace_seconds})
                await self._restart("timeout")
                status = "killed"
                break
            if now >= next_snapshot:
                next_snapshot = now + lim.inspect_every
                await self._snapshot(commit=False)
            try:
                msg = await kc.get_iopub_msg(timeout=0.25)
            except Exception:  # queue.Empty: nothing new; is the kernel still there?
                if not await km.is_alive():
                    code_ = await _exit_code(km)
                    self.emit({"type": "died", "run": run, "exit_code": code_,
                               "memory_limit": lim.memory_bytes})
                    await self._restart("died")
                    status = "died"
                    break
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            event = _output_event(kind, content)
            if event is None:
                continue
            if event["type"] == "error":
                errors.append(event)
                if status == "ok":
                    status = "interrupted" if event["ename"] == "KeyboardInterrupt" else "error"
                if _is_memory_error(event):
                    self.emit({"type": "limit", "run": run, "what": "memory",
                               "limit": lim.memory_bytes})
            size = _size(event)
            if out_bytes + size > lim.output_bytes and event["type"] != "error":
                room = lim.output_bytes - out_bytes
                if not truncated and event["type"] == "stream" and room > 0:
                    event["text"] = event["text"].encode()[:room].decode("utf-8", "ignore")
                    out_bytes += _size(event)
                    text.append(event["text"])
                    self.emit({**event, "run": run})
                if not truncated:
                    truncated = True
                    self.emit({"type": "truncated", "run": run, "limit": lim.output_bytes})
                continue
            out_bytes += size
            if event["type"] == "stream":
                text.append(event["text"])
            self.emit({**event, "run": run})
        elapsed = time.monotonic() - started
        if status not in ("died", "killed"):
            await self._snapshot(commit=True)
        self.last_used = time.monotonic()
        summary = {"run": run, "status": status, "elapsed": round(elapsed, 3),
                   "truncated": truncated, "output_bytes": out_bytes,
                   "errors": [{"ename": e["ename"], "evalue": e["evalue"]} for e in errors]}
        self.emit({"type": "done", **summary})
        return {**summary, "text": "".join(text)}


async def _exit_code(km) -> int | None:
    """The dead kernel process's exit status (negative: killed by that signal)."""
    with contextlib.suppress(Exception):
        return await km.provisioner.poll()
    return None


def _output_event(kind: str, content: dict) -> dict | None:
    if kind == "stream":
        return {"type": "stream", "name": content.get("name", "stdout"),
                "text": content.get("text", "")}
    if kind == "error":
        return {"type": "error", "ename": content.get("ename", ""),
                "evalue": content.get("evalue", ""),
                "traceback": "\n".join(content.get("traceback", []))}
    if kind in ("execute_result", "display_data"):
        data = content.get("data", {})
        if "image/png" in data:
            return {"type": "image", "png": data["image/png"]}
        if "text/plain" in data:
            return {"type": "stream", "name": "stdout", "text": data["text/plain"] + "\n"}
    return None


def _size(event: dict) -> int:
    if event["type"] == "stream":
        return len(event["text"].encode())
    if event["type"] == "image":
        return len(event["png"])
    return len(event.get("traceback", "").encode())


def _is_memory_error(event: dict) -> bool:
    return event["ename"] == "MemoryError" or "can't allocate memory" in event["evalue"] or (
        "Cannot allocate memory" in event["evalue"])


class KernelPool:
    """The sessions' kernels, at most ``limits.max_kernels`` at once."""

    def __init__(self, limits: LabLimits | None = None) -> None:
        self.limits = limits or LabLimits()
        self.kernels: dict[str, LabKernel] = {}
        self.root = Path(tempfile.mkdtemp(prefix="transferlab-lab-"))
        os.chmod(self.root, 0o700)
        self._reaper: asyncio.Task | None = None

    def get(self, session: str) -> LabKernel | None:
        return self.kernels.get(session)

    def session(self, session: str) -> LabKernel:
        """The session's kernel object (its process starts on the first run)."""
        kernel = self.kernels.get(session)
        if kernel is None:
            kernel = self.kernels[session] = LabKernel(session, self.limits, self.root)
            kernel.may_start = self._may_start
        kernel.last_used = time.monotonic()
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_loop())
        return kernel

    def _may_start(self) -> None:
        """Refuse a new kernel process beyond ``max_kernels`` (sessions that never ran code
        hold no process and do not count)."""
        running = sum(1 for k in self.kernels.values() if k.km is not None)
        if running >= self.limits.max_kernels:
            raise LabError(f"the Lab already runs {running} kernels, the limit "
                           f"(--lab-max-kernels): close another Lab tab or wait until an "
                           f"idle one is shut down (after "
                           f"{self.limits.idle_seconds / 60:.0f} min)", 429)

    async def reap(self) -> list[str]:
        """Shut down kernels idle for longer than ``idle_seconds``; returns their sessions."""
        now = time.monotonic()
        idle = [s for s, k in self.kernels.items()
                if not k.running and now - k.last_used > self.limits.idle_seconds]
        for s in idle:
            kernel = self.kernels.pop(s)
            await kernel.shutdown()
        return idle

    async def _reap_loop(self) -> None:
        while self.kernels:
            await asyncio.sleep(min(30.0, max(self.limits.idle_seconds / 4, 0.5)))
            await self.reap()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for kernel in list(self.kernels.values()):
            await kernel.shutdown()
        self.kernels.clear()
        shutil.rmtree(self.root, ignore_errors=True)
