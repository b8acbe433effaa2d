"""The one table of training options: every face is generated from it.

Each :class:`Option` says once what a setting is called, its type, default, allowed values or
range, its help text, the group it belongs to and which faces show it. From this table come
:class:`transferlab.config.TrainConfig` (the dataclass saved as ``config.json``), the flags of
``transferlab train`` and the sweep commands (:func:`transferlab.cli.train.add_train_arguments`)
and the web's request model (:mod:`transferlab.web.schemas`). :func:`check` is the one
validation: ``TrainConfig``, the argparse converters and the Pydantic validators all call it,
so a bad value gets the same message from every face.

The table lives in the core, not as a Pydantic model, because the core does not depend on
Pydantic (it comes with the ``web`` extra); the web builds its model from this table with
``pydantic.create_model``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .catalog import BN_POLICIES, DEFAULT_BN_POLICY, DEFAULT_MODEL, ENGINES

STRATEGIES = ("feature-extraction", "finetune", "full", "two-phase", "gradual", "auto")
DEFAULT_STRATEGY = "two-phase"

CLI, WEB, CONFIG = "cli", "web", "config"
ALL = frozenset({CLI, WEB, CONFIG})
NOT_WEB = frozenset({CLI, CONFIG})  # server-side settings (paths, devices): the server decides


@dataclass(frozen=True)
class Option:
    """One training option. ``kind``: int, float, str, bool, floats (list) or strs (list)."""

    name: str
    kind: str
    default: Any
    help: str
    group: str
    nullable: bool = False  # None allowed ("the strategy's default", "all", ...)
    choices: tuple | None = None
    min: float | None = None  # inclusive lower bound (gt: exclusive)
    gt: float | None = None
    max: float | None = None  # inclusive upper bound (lt: exclusive)
    lt: float | None = None
    faces: frozenset = ALL
    cli_aliases: tuple[str, ...] = ()  # older spellings the CLI still accepts
    cli_flag: str | None = None  # the flag, where it is not --name-with-dashes
    metavar: str | None = None
    web_choices: tuple | None = None  # the web offers fewer (no file paths from a browser)
    web_max: float | None = None  # a tighter bound on what a browser may ask of the server

    @property
    def flag(self) -> str:
        return self.cli_flag or "--" + self.name.replace("_", "-")

    @property
    def type(self) -> type:
        return {"int": int, "float": float, "str": str, "bool": bool, "floats": list,
                "strs": list}[self.kind]


def _o(*args, **kwargs) -> Option:
    return Option(*args, **kwargs)


OPTIONS: tuple[Option, ...] = (
    # -- model
    _o("model", "str", DEFAULT_MODEL, f"any timm model name (default {DEFAULT_MODEL}, weights "
       "offline)", "model"),
    _o("weights", "str", "auto", "auto | package | hub | random | FILE.safetensors|.pth "
       "(auto: weights already on this machine, packaged or in the hub cache; a backbone "
       "without them is refused: choose hub to download, random or a FILE)", "model",
       web_choices=("auto", "random")),
    _o("hidden", "int", None, "hidden units in the new head (default none)", "model",
       nullable=True, min=1, max=65_536),
    _o("dropout", "float", 0.0, "dropout before the new head", "model", min=0.0, lt=1.0),
    _o("image_size", "int", None, "square input resolution in pixels (default: the "
       "backbone's)", "model", nullable=True, min=32, max=2048),
    _o("bn_policy", "str", DEFAULT_BN_POLICY, "BatchNorm while training: eval = every "
       "BatchNorm layer keeps its pretrained statistics (default; scale and shift still "
       "train), freeze = only frozen groups' do, train = all use batch statistics", "model",
       choices=BN_POLICIES, cli_aliases=("--bn",)),
    # -- strategy
    _o("strategy", "str", DEFAULT_STRATEGY, "the recipe: " + " | ".join(STRATEGIES)
       + f" (default {DEFAULT_STRATEGY})", "strategy", choices=STRATEGIES),
    _o("epochs", "int", None, "epochs of the main phase (default: the strategy's)", "strategy",
       nullable=True, min=1, max=100_000, web_max=1000),
    _o("probe_epochs", "int", None, "two-phase: epochs of the linear probe", "strategy",
       nullable=True, min=1, max=100_000, web_max=1000),
    _o("train_top", "int", None, "finetune/two-phase: train the head plus the top K groups "
       "('all': every group)", "strategy", nullable=True, min=0, metavar="K"),
    _o("train_groups", "strs", None, "finetune/two-phase: train exactly these body groups plus "
       "the head (surgical fine-tuning), e.g. stage2; overrides train-top", "strategy",
       nullable=True, metavar="GROUP,GROUP,..."),
    _o("unfreeze_every", "int", 1, "gradual: epochs per group", "strategy", min=1,
       max=100_000, web_max=1000),
    # -- learning rates
    _o("head_lr", "float", None, "head learning rate (default: the strategy's)",
       "learning rates", nullable=True, gt=0, max=10),
    _o("body_lr", "float", None, "one learning rate for every body group", "learning rates",
       nullable=True, gt=0, max=10),
    _o("lr_decay", "float", None, "discriminative LRs: head-lr x decay^depth for each group "
       "below", "learning rates", nullable=True, gt=0, max=1),
    _o("lrs", "floats", None, "explicit learning rates, one per group (input to head), or "
       "fewer, e.g. 1e-6,1e-5,1e-4 (early, middle, head)", "learning rates", nullable=True,
       gt=0, max=10, metavar="LR,LR,..."),
    _o("weight_decay", "float", 0.01, "AdamW weight decay", "learning rates", min=0, max=10),
    _o("schedule", "str", "cosine", "learning-rate schedule within a phase", "learning rates",
       choices=("cosine", "constant", "plateau")),
    _o("warmup_epochs", "float", 0.0, "linear warm-up at the start of each phase (epochs)",
       "learning rates", min=0, max=1000),
    # -- regularisation and stopping
    _o("label_smoothing", "float", 0.0, "label smoothing of the loss", "regularisation",
       min=0, lt=1),
    _o("class_weighting", "str", "none", "balanced: weight the loss by inverse class frequency "
       "(imbalanced data)", "regularisation", choices=("none", "balanced")),
    _o("l2sp", "float", 0.0, "L2-SP strength: pull the body towards its pretrained weights "
       "(0: off)", "regularisation", min=0),
    _o("grad_clip", "float", None, "clip the gradient norm at this value", "regularisation",
       nullable=True, gt=0),
    _o("patience", "int", 5, "early-stopping patience (epochs)", "regularisation", min=1,
       max=100_000, web_max=1000),
    _o("min_delta", "float", 0.0, "smallest fall of the validation loss that counts as "
       "improvement", "regularisation", min=0),
    # -- data
    _o("batch_size", "int", 32, "images per batch", "data", min=1, max=65_536, web_max=1024),
    _o("augment", "str", "auto", "augmentation (auto: none on cached features, else "
       "standard)", "data", choices=("auto", "none", "standard", "strong")),
    _o("per_class", "int", None, "use at most N training images per class", "data",
       nullable=True, min=1, metavar="N"),
    _o("val_fraction", "float", 0.2, "held-out fraction when the folder has no val split",
       "data", gt=0, lt=1),
    _o("test_fraction", "float", 0.0, "hold out this fraction of the training images "
       "(stratified, seeded) as a test split used for nothing but the final figure (datasets "
       "without a test folder)", "data", min=0, lt=1, cli_flag="--holdout-test",
       metavar="FRACTION"),
    _o("seed", "int", 0, "random seed (splits, initialisation, order)", "data", min=0,
       max=2**31 - 1),
    _o("apply_fixes", "str", None, "apply a reviewed action list (transferlab doctor --fix "
       "FILE): relabel or remove images for this run only; the files are not touched", "data",
       nullable=True, faces=NOT_WEB, metavar="FILE"),
    _o("check_data", "bool", True, "warn before training about identical images within a "
       "split and shared between splits (--no-check-data: skip the check)", "data",
       faces=NOT_WEB),
    # -- speed
    _o("device", "str", "auto", "auto | cpu | cuda | cuda:N", "speed", faces=NOT_WEB),
    _o("num_workers", "int", 0, "DataLoader worker processes", "speed", min=0, max=256,
       faces=NOT_WEB, cli_aliases=("--workers",)),
    _o("cache_features", "bool", True, "cache frozen-body features (--no-cache-features: "
       "compute them every epoch)", "speed", cli_aliases=("--no-cache",)),
    _o("cache_dir", "str", None, "feature cache folder (default ~/.cache/transferlab)",
       "speed", nullable=True, faces=NOT_WEB),
    _o("fast_data", "bool", True, "decode every image once into a uint8 store and augment "
       "batches on the device (--no-fast-data: PIL every epoch)", "speed"),
    _o("feature_views", "int", 0, "cache K augmented views per image, so phases with a frozen "
       "bottom train from cached activations even with augmentation", "speed", min=0,
       max=1000, web_max=16, metavar="K"),
    _o("compile", "bool", False, "torch.compile the trained module", "speed"),
    _o("engine", "str", "auto", "what runs frozen forward passes on the CPU: auto (ONNX "
       "Runtime if installed, else bf16 where native, else torch) | torch | torch-bf16 | "
       "onnxruntime (transferlab.models.engines)", "speed", choices=ENGINES, faces=NOT_WEB),
    # -- output and tracking
    _o("out", "str", "runs", "folder for run folders", "output", faces=NOT_WEB),
    _o("save_mode", "str", "lean", "lean: the run folder keeps what training changed and "
       "refers to the pretrained weights by name and SHA-256 (found again offline: packaged "
       "weights, a local file, the hub cache); full: a self-contained folder with every "
       "weight (a sweep then also keeps its trials' checkpoints)", "output",
       choices=("lean", "full"), cli_flag="--save", faces=NOT_WEB),
    _o("name", "str", None, "run folder name (default: time-model-strategy)", "output",
       nullable=True, faces=NOT_WEB),
    _o("tensorboard", "bool", False, "log to TensorBoard (RUN/tensorboard; needs the "
       "tensorboard package)", "output", faces=NOT_WEB),
    _o("mlflow", "bool", False, "log to MLflow (default store: sqlite in the run folder; "
       "needs mlflow-skinny)", "output", faces=NOT_WEB),
    _o("mlflow_uri", "str", None, "MLflow tracking URI (default $MLFLOW_TRACKING_URI, else "
       "sqlite:///RUN/mlflow.db)", "output", nullable=True, faces=NOT_WEB),
    _o("mlflow_experiment", "str", "transferlab", "MLflow experiment name", "output",
       faces=NOT_WEB),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def options_for(face: str) -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if face in o.faces)


def _bounds(o: Option, value: float) -> str | None:
    if o.min is not None and value < o.min:
        return f"at least {o.min:g}"
    if o.gt is not None and not value > o.gt:
        return f"greater than {o.gt:g}"
    if o.max is not None and value > o.max:
        return f"at most {o.max:g}"
    if o.lt is not None and not value < o.lt:
        return f"less than {o.lt:g}"
    return None


def check(name: str, value: Any) -> Any:
    """``value`` if it is allowed for option ``name``; else ValueError with the one message.

    Numbers given as text are not converted here: each face parses its own text (argparse,
    JSON) and then calls this on the parsed value.
    """
    o = BY_NAME[name]
    if value is None:
        if o.nullable:
            return None
        raise ValueError(f"{name} must be given (no default of 'none')")
    if o.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if o.kind in ("int", "float"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if o.kind == "int" and ok and not float(value).is_integer():
            ok = False
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            what = "a whole number" if o.kind == "int" else "a number"
            raise ValueError(f"{name} must be {what}, got {value!r}")
        bound = _bounds(o, value)
        if bound:
            raise ValueError(f"{name} must be {bound}, got {value:g}")
        return int(value) if o.kind == "int" else float(value)
    if o.kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be text, got {value!r}")
        if o.choices is not None and value not in o.choices:
            raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(o.choices)}")
        return value
    if o.kind == "strs":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of names, got {value!r}")
        return list(value)
    # floats: a list of learning rates (or similar); every entry checked against the bounds
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name} must be a non-empty list of numbers, got {value!r}")
    for i, v in enumerate(value):
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"{name}: entry {i + 1} must be a number, got {v!r}")
        bound = _bounds(o, v)
        if bound:
            raise ValueError(f"{name}: entry {i + 1} must be {bound}, got {v:g}")
    return [float(v) for v in value]


def check_group_lrs(lrs: list[float] | dict[str, float], group_names: list[str]) -> None:
    """Learning rates of a table with one entry per layer group, named in the message.

    The web's learning-rate table and a full-length ``lrs`` list both name the group whose
    rate is wrong (blank, text, zero or negative), before any training starts.
    """
    items = lrs.items() if isinstance(lrs, dict) else zip(group_names, lrs, strict=False)
    o = BY_NAME["lrs"]
    for group, v in items:
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"the learning rate of {group} must be a number, got {v!r}")
        bound = _bounds(o, v)
        if bound:
            raise ValueError(f"the learning rate of {group} must be {bound}, got {v:g}")


def check_train_top(train_top: int | None, group_names: list[str]) -> None:
    """K between 0 and the number of body groups (``None``: all)."""
    n = len(group_names) - 1
    if train_top is not None and not 0 <= train_top <= n:
        raise ValueError(f"train_top must be between 0 and {n} (the body groups of this "
                         f"model: {', '.join(group_names[:-1])}), got {train_top}")


def parse(o: Option, text: str) -> Any:
    """The value of option ``o`` written as text (a flag, a YAML scalar): 'none'/'all' is None
    where allowed; lists are comma-separated. Not checked: :func:`check` does that."""
    s = text.strip()
    if o.nullable and s.lower() in {"none", "all", ""}:
        return None
    try:
        if o.kind == "int":
            return int(s)
        if o.kind == "float":
            return float(s)
        if o.kind == "floats":
            return [float(v) for v in s.split(",") if v.strip()]
    except ValueError:
        what = {"int": "a whole number", "float": "a number",
                "floats": "comma-separated numbers"}[o.kind]
        raise ValueError(f"{o.name} must be {what}, got {text!r}") from None
    if o.kind == "strs":
        return [v.strip() for v in s.split(",") if v.strip()]
    if o.kind == "bool":
        if s.lower() in {"true", "yes", "1", "on"}:
            return True
        if s.lower() in {"false", "no", "0", "off"}:
            return False
        raise ValueError(f"{o.name} must be true or false, got {text!r}")
    return text


# -- sweep kinds: one spelling (the library's) on every face ------------------------------


@dataclass(frozen=True)
class SweepKind:
    """One kind of sweep: its function in :mod:`transferlab.experiments`, what its values
    mean, its default number of seeds and which training strategies it runs."""

    kind: str
    function: str
    values_meaning: str
    default_seeds: int
    strategies: tuple[str, ...] | None = None  # None: any


SWEEP_KINDS: dict[str, SweepKind] = {
    "data-size": SweepKind("data-size", "data_size_sweep", "training images per class", 3),
    "freeze-depth": SweepKind("freeze-depth", "freeze_depth_sweep", "trained top groups K", 1,
                              strategies=("two-phase", "finetune")),
    "compare": SweepKind("compare", "compare_strategies", "strategies", 3),
}


def check_sweep(kind: str, values: list | None = None, strategy: str | None = None) -> list | None:
    """The values (None: the sweep's defaults) and training strategy of a sweep, checked with
    one message for the CLI, the web and the library."""
    if kind not in SWEEP_KINDS:
        raise ValueError(f"unknown sweep kind {kind!r}; choose one of {', '.join(SWEEP_KINDS)}")
    spec = SWEEP_KINDS[kind]
    if strategy is not None and spec.strategies and strategy not in spec.strategies:
        raise ValueError(f"{kind} sweeps use {' or '.join(spec.strategies)}, got {strategy!r}")
    if values is None:
        return None
    values = list(values)
    if not values:
        raise ValueError("give at least one value, or none for the sweep's defaults")
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if kind == "data-size" and (not ints or any(v < 1 for v in values)):
        raise ValueError(f"data-size values are images per class (integers >= 1), got {values}")
    if kind == "freeze-depth" and (not ints or any(v < 0 for v in values)):
        raise ValueError(f"freeze-depth values are numbers of top groups K >= 0, got {values}")
    if kind == "compare":
        bad = [v for v in values if v not in STRATEGIES]
        if bad:
            raise ValueError(f"unknown strategies {bad}; choose from {', '.join(STRATEGIES)}")
    return values
