"""The run registry: runs and sweeps in SQLite (standard library only)."""

from .registry import RegistryError, RunRecord, RunRegistry, SweepRecord, run_result

__all__ = ["RegistryError", "RunRecord", "RunRegistry", "SweepRecord", "run_result"]
