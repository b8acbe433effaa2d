"""The job runner: heavy work (training, sweeps, export) in a worker process, one at a time.

Requests only enqueue. A dispatcher thread starts the next queued job in a fresh process of
the ``spawn`` context (no forked copies of the server's threads or CUDA state), reads the
worker's status messages from a queue, and writes every state change to the run registry.
The rest wait visibly (``position`` in the queue). Stop: a queued job is cancelled; a running
one gets its stop event set (the :class:`~transferlab.training.callbacks.StopFlag` listener
ends the fit at the next batch, keeping the last epoch's checkpoint), then SIGTERM (which the
worker turns into ``KeyboardInterrupt``), then SIGKILL if it still lives.

Live progress is not sent through the queue: the worker's
:class:`~transferlab.training.callbacks.EventLog` appends to ``events.jsonl`` in the run
folder, and the web layer streams that file.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import secrets
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..store.registry import RegistryError, RunRegistry, run_result

TERMINAL = ("done", "failed", "stopped", "interrupted")
STOP_GRACE_S = 15.0  # after the stop flag, before SIGTERM
TERM_GRACE_S = 10.0  # after SIGTERM, before SIGKILL


@dataclass
class Job:
    id: str
    kind: str  # train | sweep | export
    spec: dict
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    run_dir: str | None = None
    detail: str = ""  # what the worker is doing now ("loading data", ...)
    error: str | None = None
    result: dict = field(default_factory=dict)
    stop_requested: float | None = None

    def public(self, position: int | None = None) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "created": self.created,
                "started": self.started, "finished": self.finished, "run_dir": self.run_dir,
                "detail": self.detail, "error": self.error, "result": self.result,
                "position": position, "stop_requested": self.stop_requested is not None,
                "label": self.spec.get("label", "")}


class UnknownJob(LookupError):
    """No job with that id since the server started (HTTP 404)."""


def new_job_id(prefix: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in prefix)[:40]
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{secrets.token_hex(3)}"


# --------------------------------------------------------------------------- worker side


def _worker(job_id: str, kind: str, spec: dict, stop, messages) -> None:
    """Entry point of the worker process (module level, so ``spawn`` can import it)."""
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def send(state: str, **info) -> None:
        messages.put({"job": job_id, "state": state, **info})

    try:
        send("running", detail="starting")
        if kind == "train":
            result = _train(spec, stop, send)
        elif kind == "sweep":
            result = _sweep(spec, stop, send)
        elif kind == "export":
            result = _export(spec, send)
        elif kind == "doctor":
            from .doctor import run_doctor

            result = run_doctor(spec, send)
        else:
            raise ValueError(f"unknown job kind {kind!r}")
        send("done", result=result)
    except KeyboardInterrupt:
        send("stopped", error="stopped on request")
    except BaseException as exc:  # report every failure to the page, then exit
        message = str(exc).strip() or type(exc).__name__
        send("failed", error=f"{type(exc).__name__}: {message}",
             traceback=traceback.format_exc(limit=8))


def _standby(conn, stop, messages) -> None:
    """A worker started ahead of time: import the heavy libraries, then wait for one job.

    Spawning a process and importing torch and timm takes seconds; a standby worker pays that
    while the server is idle, so a click on Start trains at once. ``None`` ends it unused.
    """
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        import os

        import matplotlib

        matplotlib.use("Agg")  # run folders get their plots from pyplot at the end
        import matplotlib.pyplot  # noqa: F401  (the imports are the point)

        from .. import api  # noqa: F401

        messages.put({"standby": os.getpid()})
        msg = conn.recv()
    except (EOFError, OSError, KeyboardInterrupt):
        return
    if msg is not None:
        _worker(*msg, stop, messages)


def _train(spec: dict, stop, send) -> dict:
    from ..api import fine_tune
    from ..config import TrainConfig
    from ..training.callbacks import GradNormLog, StopFlag

    cfg = TrainConfig.from_dict(spec["config"])
    from ..runs import run_folder

    run_dir = run_folder(cfg.out, cfg.model, cfg.strategy, cfg.name)  # named by the job id
    send("running", detail="loading data and model", run_dir=str(run_dir))
    # resume: continue the run in its folder from its last completed epoch
    how = {"resume": run_dir, "device": cfg.device} if spec.get("resume") else {"cfg": cfg}
    result = fine_tune(
        **how, progress=False, callbacks=[
            StopFlag(stop.is_set),
            GradNormLog(run_dir / "events.jsonl", every_batches=spec.get("grad_every", 5)),
        ],
        on_start=lambda folder: send("running", detail="training", run_dir=str(folder)),
        # auto's resolution search runs before the run folder exists
        log=lambda message: send("running", detail=message))
    test = result.test_evaluation
    return {"run_dir": str(result.run_dir), "wall_seconds": result.seconds,
            "accuracy": result.accuracy,
            "accuracy_interval": list(result.evaluation.accuracy_interval()),
            "num_images": len(result.evaluation.labels),
            "test_accuracy": None if test is None else test.accuracy,
            "test_accuracy_interval": None if test is None else list(test.accuracy_interval()),
            "test_num_images": None if test is None else len(test.labels),
            "notes": result.notes}


def _sweep(spec: dict, stop, send) -> dict:
    from . import sweeps

    send("running", detail=f"{spec['kind']} sweep", run_dir=spec["out_dir"])
    return sweeps.run_sweep(spec, stop_flag=stop.is_set)


def _export(spec: dict, send) -> dict:
    from . import service

    send("running", detail=f"exporting {spec['format']}", run_dir=spec["run_dir"])
    return service.run_export(spec)


# --------------------------------------------------------------------------- server side


class JobRunner:
    """Queue and run jobs; ``registry`` records train jobs as runs and sweep jobs as sweeps."""

    def __init__(self, registry: RunRegistry, *, poll_s: float = 0.2,
                 warm_worker: bool = True) -> None:
        self.registry = registry
        self.poll_s = poll_s
        self.warm_worker = warm_worker  # keep a standby worker ready while idle
        self._standby: tuple[mp.Process, object, object] | None = None
        self._standby_ready = False
        self._ctx = mp.get_context("spawn")
        self._messages = self._ctx.Queue()
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._pending: deque[str] = deque()
        self._current: tuple[Job, mp.Process, object] | None = None
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="transferlab-jobs", daemon=True)
        self._thread.start()

    # -- public ----------------------------------------------------------------------------
    def submit(self, job_id: str, kind: str, spec: dict) -> dict:
        """Queue a job. The registry entry is created here, so it shows up at once."""
        if self._closed:
            raise RuntimeError("the job runner is shut down")
        job = Job(job_id, kind, spec)
        if kind == "train" and spec.get("resume"):  # the same run, continued
            self.registry.update_run(job_id, state="queued", error=None, finished=None)
        elif kind == "train":
            self.registry.add_run(job_id, state="queued", config=spec["config"],
                                  run_dir=spec.get("run_dir"))
        elif kind == "sweep":
            self.registry.add_sweep(job_id, kind=spec["kind"], params=spec,
                                    out_dir=spec.get("out_dir"))
        with self._lock:
            self._jobs[job_id] = job
            self._pending.append(job_id)
        self._wake.set()
        return self.get(job_id)

    def get(self, job_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise UnknownJob(f"no job {job_id!r} (jobs are kept while the server runs; "
                                 "finished runs are under /api/runs)")
            return job.public(self._position(job_id))

    def list(self) -> list[dict]:
        with self._lock:
            return [j.public(self._position(j.id)) for j in
                    sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)]

    @property
    def standby_ready(self) -> bool:
        """True while a standby worker has finished its imports and waits for a job."""
        with self._lock:
            return (self._standby_ready and self._standby is not None
                    and self._standby[0].is_alive())

    def active(self) -> dict | None:
        with self._lock:
            return self._current[0].public(None) if self._current else None

    def stop(self, job_id: str) -> dict:
        """Cancel a queued job or ask a running one to stop; finished jobs are left alone."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise UnknownJob(f"no job {job_id!r}")
            if job.id in self._pending:
                self._pending.remove(job.id)
                self._finish(job, "stopped", error="cancelled before it started")
            elif self._current and self._current[0].id == job_id and job.stop_requested is None:
                job.stop_requested = time.time()
                job.detail = "stopping at the next batch"
                self._current[2].set()
        self._wake.set()
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float = 300.0) -> dict:
        """Block until the job is finished (tests, scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.get(job_id)
            if info["state"] in TERMINAL:
                return info
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still {self.get(job_id)['state']} after {timeout} s")

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the running job, mark queued ones interrupted, end the dispatcher."""
        with self._lock:
            self._closed = True
            for job_id in list(self._pending):
                self._finish(self._jobs[job_id], "interrupted", error="the server stopped")
            self._pending.clear()
            current = self._current
            standby, self._standby = self._standby, None
        if standby is not None:  # idle: SIGTERM ends it even in the middle of its imports
            proc, conn, _ = standby
            proc.terminate()
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
            conn.close()
        if current is not None:
            job, proc, stop = current
            stop.set()
            proc.terminate()
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
            with self._lock:
                self._drain()
                if job.state not in TERMINAL:
                    self._finish(job, "interrupted", error="the server stopped")
                self._current = None
        self._wake.set()
        self._thread.join(timeout)

    # -- dispatcher ------------------------------------------------------------------------
    def _position(self, job_id: str) -> int | None:
        try:
            return self._pending.index(job_id) + 1
        except ValueError:
            return None

    def _loop(self) -> None:
        while not self._closed:
            try:
                self._tick()
            except Exception:  # never let the dispatcher die; the job gets the error
                traceback.print_exc()
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _tick(self) -> None:
        with self._lock:
            self._drain()
            if self._current is not None:
                job, proc, _ = self._current
                if not proc.is_alive():
                    proc.join()
                    self._drain()
                    if job.state not in TERMINAL and job.stop_requested is not None:
                        self._finish(job, "stopped", error="stopped on request")
                    elif job.state not in TERMINAL and job.kind == "train":
                        # killed (OOM killer, kill -9): the last completed epoch is on disk
                        self._finish(job, "interrupted", error=(
                            f"the worker process died (exit code {proc.exitcode}); the last "
                            "completed epoch is kept: resume the run to continue"))
                    elif job.state not in TERMINAL:
                        self._finish(job, "failed",
                                     error=f"the worker process exited with code {proc.exitcode}")
                    self._current = None
                elif job.stop_requested is not None:
                    waited = time.time() - job.stop_requested
                    if waited > STOP_GRACE_S + TERM_GRACE_S:
                        proc.kill()
                    elif waited > STOP_GRACE_S:
                        proc.terminate()
            if self._current is None and self._pending and not self._closed:
                self._start(self._jobs[self._pending.popleft()])
            elif (self._current is None and self.warm_worker and not self._closed
                  and (self._standby is None or not self._standby[0].is_alive())):
                self._start_standby()

    def _start_standby(self) -> None:
        if self._standby is not None:  # died while waiting: forget it
            self._standby[1].close()
        self._standby_ready = False
        receive, send = self._ctx.Pipe(duplex=False)
        stop = self._ctx.Event()
        proc = self._ctx.Process(target=_standby, name="transferlab-job-standby",
                                 args=(receive, stop, self._messages), daemon=True)
        try:
            proc.start()
        except Exception:  # no standby: jobs start cold, as without warm_worker
            traceback.print_exc()
            self._standby, self.warm_worker = None, False
            return
        finally:
            receive.close()
        self._standby = (proc, send, stop)

    def _start(self, job: Job) -> None:
        job.state, job.started, job.detail = "running", time.time(), "starting the worker"
        self._record(job, state="running", started=job.started)
        if self._standby is not None:
            proc, conn, stop = self._standby
            self._standby, self._standby_ready = None, False
            try:
                if not proc.is_alive():
                    raise OSError("the standby worker has exited")
                conn.send((job.id, job.kind, job.spec))
                self._current = (job, proc, stop)
                return
            except OSError:
                proc.kill()
            finally:
                conn.close()
        stop = self._ctx.Event()
        proc = self._ctx.Process(target=_worker, name=f"transferlab-job-{job.id}",
                                 args=(job.id, job.kind, job.spec, stop, self._messages),
                                 daemon=True)
        try:
            proc.start()
        except Exception as exc:  # e.g. spawn refused: report it on the job, keep serving
            self._finish(job, "failed", error=f"could not start the worker process: {exc}")
            return
        self._current = (job, proc, stop)

    def _drain(self) -> None:
        while True:
            try:
                msg = self._messages.get_nowait()
            except queue.Empty:
                return
            if "standby" in msg:
                if self._standby is not None and self._standby[0].pid == msg["standby"]:
                    self._standby_ready = True
                continue
            job = self._jobs.get(msg.get("job"))
            if job is None or job.state in TERMINAL:
                continue
            state = msg["state"]
            if msg.get("run_dir"):
                job.run_dir = msg["run_dir"]
                self._record(job, **({"run_dir": job.run_dir} if job.kind == "train" else
                                     {"out_dir": job.run_dir}))
            if state == "running":
                job.detail = msg.get("detail", job.detail)
            else:
                self._finish(job, state, error=msg.get("error"), result=msg.get("result"))

    def _finish(self, job: Job, state: str, *, error: str | None = None,
                result: dict | None = None) -> None:
        job.state, job.finished = state, time.time()
        job.error, job.result = error, dict(result or {})
        job.detail = {"done": "finished", "stopped": "stopped"}.get(state, state)
        fields: dict = {"state": state, "finished": job.finished, "error": error}
        if job.kind == "train":
            summary = {}
            if job.run_dir and Path(job.run_dir, "evaluation.json").is_file():
                summary = run_result(job.run_dir)
            if "wall_seconds" in job.result:
                summary["wall_seconds"] = job.result["wall_seconds"]
            fields["result"] = summary
        else:
            fields["result"] = job.result
        self._record(job, **fields)

    def _record(self, job: Job, **fields) -> None:
        try:
            if job.kind == "train":
                self.registry.update_run(job.id, **fields)
            elif job.kind == "sweep":
                self.registry.update_sweep(job.id, **{k: v for k, v in fields.items()
                                                      if k != "run_dir"})
        except RegistryError:
            traceback.print_exc()
