"""Run a sweep's trials in parallel on Ray (optional: ``pip install ray``).

``RayBackend("local")`` starts a private Ray instance on this machine; ``RayBackend(ADDRESS)``
joins a running cluster (``ray://host:10001`` or ``host:6379``, or ``auto``). Each trial is
one Ray task of ``cpus_per_trial`` CPUs, and torch in that task uses that many threads. The
driver appends each row to ``trials.jsonl`` as soon as its task finishes, so resuming works
exactly as in sequential mode.

On a cluster, every worker must see the dataset and the sweep folder at the same paths (a
shared filesystem) and have transferlab installed; the rows come back to the driver either
way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from .trials import Trial, run_trial


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "running trials on Ray needs the ray package: pip install 'ray>=2.9' "
            "(or install transferlab[ray])") from exc
    return ray


def _ray_trial(doc: dict, runs_dir: str, threads: int) -> dict:
    """The task body: plain data in, a result row out (nothing to pickle but dicts)."""
    import torch

    torch.set_num_threads(max(1, threads))
    return run_trial(Trial.from_dict(doc), runs_dir)


class RayBackend:
    """Runs trials as Ray tasks; ``run`` yields (trial, row) in completion order."""

    def __init__(self, address: str = "local", *, cpus_per_trial: float = 1.0,
                 num_cpus: int | None = None) -> None:
        if cpus_per_trial <= 0:
            raise ValueError(f"cpus_per_trial must be positive, got {cpus_per_trial}")
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self.num_cpus = num_cpus
        self._started = False

    def _init(self):
        ray = _import_ray()
        if not ray.is_initialized():
            if self.address == "local":
                ray.init(num_cpus=self.num_cpus, include_dashboard=False,
                         configure_logging=False, log_to_driver=False)
            else:
                ray.init(address=self.address, configure_logging=False)
            self._started = True
        return ray

    def run(self, trials: Sequence[Trial], runs_dir: str | Path) -> Iterator[tuple[Trial, dict]]:
        if not trials:
            return
        ray = self._init()
        task = ray.remote(num_cpus=self.cpus_per_trial, max_retries=0)(_ray_trial)
        threads = max(1, int(self.cpus_per_trial))
        pending = {task.remote(t.to_dict(), str(Path(runs_dir).absolute()), threads): t
                   for t in trials}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    trial = pending.pop(ref)
                    yield trial, ray.get(ref)
        finally:
            for ref in pending:  # an error or an interrupt: stop the rest
                ray.cancel(ref, force=True)

    def shutdown(self) -> None:
        """Stop the Ray instance this backend started (a joined cluster keeps running)."""
        if self._started:
            _import_ray().shutdown()
            self._started = False

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
