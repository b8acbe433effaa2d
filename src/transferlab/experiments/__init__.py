"""Experiments: data-size, freeze-depth and strategy sweeps with honest intervals; LR finder.

Typical use::

    from transferlab.experiments import data_size_sweep
    result = data_size_sweep("photos/", sizes=[10, 50, 100], seeds=3, out="sweeps")
    print(result)                      # table with 95 % intervals and noise verdicts
    result.files["plot"], result.files["report"]
"""

from .lr_find import LRFindResult, lr_find
from .stats import compare, summarize, t_quantile, welch_t_test
from .sweeps import (
    ScratchRecipe,
    SweepResult,
    compare_strategies,
    data_size_sweep,
    freeze_depth_sweep,
    resume_sweep,
)
from .trials import Trial, run_trial

__all__ = [
    "LRFindResult",
    "ScratchRecipe",
    "SweepResult",
    "Trial",
    "compare",
    "compare_strategies",
    "data_size_sweep",
    "freeze_depth_sweep",
    "lr_find",
    "resume_sweep",
    "run_trial",
    "summarize",
    "t_quantile",
    "welch_t_test",
]
