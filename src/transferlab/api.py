"""The high-level recipe: fine-tune a pretrained backbone on an image folder.

``fine_tune`` composes the mid-level parts — data splits, the model factory, freezing,
parameter groups, the training loop and its listeners — following the phases of a strategy.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .config import TrainConfig
from .data import build_transforms
from .finetune.freeze import count_parameters, freeze_all, set_group_trainable, train_top
from .finetune.param_groups import build_param_groups
from .finetune.regularizers import L2SP
from .finetune.schedules import Scheduler
from .finetune.strategies import Phase
from .inspect.calibration import BINNING, DEFAULT_BINS, fit_temperature, plot_reliability
from .inspect.interpret import Evaluation, plot_confusion
from .models.factory import TransferModel
from .models.reference import FrozenReference, resolve_reference
from .runs import new_run_dir, plot_curves, save_model, write_report
from .session import prepare, resolve_device  # noqa: F401 (resolve_device: re-export)
from .training import distributed
from .training.accel import configure_backend, cpu_threads, maybe_compile
from .training.callbacks import EarlyStopping, EventLog, GradualUnfreezing, MetricsLogger
from .training.checkpoint import CheckpointError, atomic_write_text, load_state, save_state
from .training.fastpath import phase_loaders
from .training.loop import Callback, Trainer

LAST = Path("checkpoints") / "last.safetensors"
FROZEN = Path("checkpoints") / "frozen.safetensors"  # a phase's frozen parameters
# Settings a resumed run may change: where and how fast it runs, never what it computes.
RESUME_OVERRIDES = frozenset({"device", "num_workers", "cache_dir"})


@dataclass
class RunResult:
    run_dir: Path
    model: TransferModel
    evaluation: Evaluation
    history: list[dict]
    seconds: float
    notes: list[str] = field(default_factory=list)
    # the untouched figure: the test split, used for nothing but this (None: no test split)
    test_evaluation: Evaluation | None = None
    calibration: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Validation accuracy (it also chose the epoch; see ``test_evaluation``)."""
        return self.evaluation.accuracy

    @property
    def test_accuracy(self) -> float | None:
        return None if self.test_evaluation is None else self.test_evaluation.accuracy


class _PhaseCheckpoint(Callback):
    """Saves the resumable state after each epoch and when the phase ends.

    In a phase whose trainable set is fixed (every strategy but gradual unfreezing) frozen
    parameters cannot change, so the model's state is written once, when the phase starts,
    to ``checkpoints/frozen.safetensors``; each epoch's checkpoint then holds only the
    trainable parameters, the buffers that changed since (BatchNorm statistics that train)
    and the trainer's state, and names the frozen file by a token. A head on cached features
    then checkpoints kilobytes per epoch instead of the whole model. The checkpoint written
    when the phase ends is complete again.
    """

    def __init__(self, path: Path, model: nn.Module, phase_index: int, rows_before: list[dict],
                 *, partial: bool = True, reference: FrozenReference | None = None):
        self.path, self.model = path, model
        # lean runs: tensors equal to the pretrained weights are named, not written
        self.reference = reference
        self.phase_index, self.rows_before = phase_index, rows_before
        self.partial = partial
        self.token: str | None = None
        self.trainable: set[str] = set()
        self.start: dict[str, torch.Tensor] = {}
        self.versions: dict[str, int] = {}

    def on_fit_start(self, trainer: Trainer) -> None:
        self.token = None
        if not self.partial:
            return
        self.trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        self.start = {k: v.detach().clone() for k, v in self.model.state_dict().items()
                      if k not in self.trainable}
        # an in-place update (BatchNorm statistics) bumps a tensor's version counter
        self.versions = {n: b._version for n, b in self.model.named_buffers() if n in self.start}
        self.token = secrets.token_hex(8)
        frozen = {"token": self.token, "phase_index": self.phase_index, "model": self.start}
        if self.reference is not None:
            frozen["model"], frozen["reference"] = self.reference.split(self.start)
        save_state(self.path.parent / FROZEN.name, frozen)

    def _save(self, trainer: Trainer, complete: bool) -> None:
        model = self.model.state_dict()
        run = {"phase_index": self.phase_index, "phase_complete": complete,
               "rows_before": self.rows_before}
        if self.token is not None and not complete:
            moved = {n for n, b in self.model.named_buffers()
                     if n in self.versions and b._version != self.versions[n]}
            model = {k: v for k, v in model.items() if k in self.trainable or k in moved}
            run["frozen"] = self.token
        elif self.reference is not None:
            model, run["reference"] = self.reference.split(model)
        save_state(self.path, {"model": model, "trainer": trainer.state_dict(), "run": run})

    def on_epoch_end(self, trainer: Trainer, record) -> None:
        self._save(trainer, complete=False)

    def on_fit_end(self, trainer: Trainer) -> None:
        self._save(trainer, complete=True)


def load_run_state(run_dir: str | Path) -> dict:
    """The last checkpoint of a run, with the frozen parameters it refers to merged back."""
    run_dir = Path(run_dir)
    state = load_state(run_dir / LAST)
    if state["run"].get("reference"):  # lean: the pretrained tensors were named, not stored
        doc = state["run"]["reference"]
        state["model"] = resolve_reference(doc).merge(state["model"], doc)
    token = state["run"].get("frozen")
    if token is not None:
        frozen = load_state(run_dir / FROZEN)
        if frozen.get("reference"):
            frozen["model"] = resolve_reference(frozen["reference"]).merge(
                frozen["model"], frozen["reference"])
        if frozen.get("token") != token:
            raise CheckpointError(
                f"{run_dir / LAST} refers to frozen weights {token} but {run_dir / FROZEN} "
                f"holds {frozen.get('token')}: the checkpoint pair is inconsistent")
        state["model"] = {**frozen["model"], **state["model"]}
    return state


def class_weights(splits, mode: str) -> torch.Tensor | None:
    """``balanced``: weight each class by N / (C * count), so rare defects count as much."""
    if mode == "none":
        return None
    counts = torch.bincount(torch.tensor([label for _, label in splits.train]),
                            minlength=len(splits.classes)).float()
    return counts.sum() / (len(counts) * counts.clamp(min=1))


def run_phase(model: TransferModel, cfg: TrainConfig, phase: Phase, index: int, splits,
              run_dir: Path, device: torch.device, *, rows_before: list[dict],
              cache: dict, resume_state: dict | None = None,
              reference: FrozenReference | None = None,
              callbacks: Sequence[Callback] = (), progress: bool = True) -> Trainer:
    """Freeze per the phase, build the optimizer over every group, train with listeners."""
    if phase.train_groups is not None:  # surgical: exactly these body groups + the head
        freeze_all(model)
        set_group_trainable(model, [*phase.train_groups, model.groups[-1].name], True)
    else:
        train_top(model, phase.train_top)
    configure_backend(device)
    module, train_loader, val_loader, cached = phase_loaders(model, cfg, phase, splits,
                                                              device, cache)
    # torchrun: each rank loads its share; the global batch stays cfg.batch_size
    train_loader = distributed.shard_loader(train_loader, train=True)
    val_loader = distributed.shard_loader(val_loader, train=False)
    groups = [model.groups[-1]] if cached else model.groups
    param_groups = build_param_groups(model, groups, phase.lrs, weight_decay=cfg.weight_decay,
                                      body_weight_decay=0.0 if cfg.l2sp else None)
    # fused: one kernel for all parameters (on the CPU too: 3x faster steps for a small head)
    optimizer = torch.optim.AdamW(param_groups, lr=phase.lrs[model.groups[-1].name],
                                  fused=device.type in {"cuda", "cpu"})
    steps = phase.epochs * len(train_loader)
    scheduler = Scheduler(optimizer, steps, warmup_steps=int(cfg.warmup_epochs * len(train_loader)),
                          kind=cfg.schedule)
    listeners: list[Callback] = [EarlyStopping(module, patience=cfg.patience,
                                               min_delta=cfg.min_delta)]
    if phase.unfreeze_every:
        listeners.append(GradualUnfreezing(model, every=phase.unfreeze_every))
    main = distributed.is_main()  # rank 0 logs and writes; the other ranks wait on a barrier
    if main:
        listeners += [MetricsLogger(run_dir, rows_before), EventLog(run_dir / "events.jsonl")]
    listeners += [*callbacks]
    if progress and main:
        from .training.progress import RichProgress

        listeners.append(RichProgress())
    if main:
        listeners.append(_PhaseCheckpoint(run_dir / LAST, model, index, rows_before,
                                          partial=not phase.unfreeze_every,
                                          reference=reference))
    if distributed.world_size() > 1:
        listeners.append(distributed.Barrier())
    trainer = Trainer(
        maybe_compile(module, cfg.compile), optimizer, scheduler, train_loader=train_loader,
        val_loader=val_loader,
        epochs=phase.epochs,
        loss_fn=nn.CrossEntropyLoss(weight=class_weights(splits, cfg.class_weighting),
                                    label_smoothing=cfg.label_smoothing),
        device=device, callbacks=listeners, seed=cfg.seed * 31 + index, phase=phase.name,
        regularizer=L2SP(model, cfg.l2sp) if cfg.l2sp and not cached else None,
        grad_clip=cfg.grad_clip, channels_last=not cached, owner=model,
        amp_dtype=torch.bfloat16 if device.type == "cuda" else None,
        distributed=distributed.world_size() > 1,
    )
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
    model.to(device)
    if not cached:  # CPU and GPU convolutions are fastest in channels_last
        model.to(memory_format=torch.channels_last)
    with cpu_threads(1 if cached and device.type == "cpu" else None):  # tiny ops: one thread
        trainer.fit()
    return trainer


def fine_tune(cfg: TrainConfig | None = None, *, resume: str | Path | None = None,
              callbacks: Sequence[Callback] = (), progress: bool = True,
              on_start: Callable[[Path], None] | None = None,
              log: Callable[[str], None] | None = None, **overrides) -> RunResult:
    """Fine-tune ``cfg.model`` on ``cfg.data`` with ``cfg.strategy``; returns the result.

    ``fine_tune(data="photos/", strategy="feature-extraction")`` works too (keyword overrides).
    ``resume=RUN_DIR`` continues an interrupted run from its last completed epoch; with it,
    only the settings in ``RESUME_OVERRIDES`` may be overridden (others raise ``ValueError``).
    A run that already completed is returned as it is, with a note saying so.
    ``on_start(run_dir)`` is called once the run folder exists (to tell the user where it is);
    ``log(message)`` hears about work done before it (auto's resolution search).
    """
    start = time.perf_counter()
    state = None
    if resume is not None:
        run_dir = Path(resume)
        if cfg is not None:
            raise ValueError(f"resume={run_dir} takes its settings from {run_dir / 'config.json'};"
                             " pass no cfg with it")
        refused = sorted(set(overrides) - RESUME_OVERRIDES)
        if refused:
            raise ValueError(
                f"cannot change {', '.join(refused)} when resuming {run_dir}: the epochs already "
                f"trained used the values in its config.json (a resumed run may change only "
                f"{', '.join(sorted(RESUME_OVERRIDES))}); start a new run to train differently")
        cfg = TrainConfig.load(run_dir / "config.json")
        if overrides:
            cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
        if (run_dir / LAST).is_file():
            state = load_run_state(run_dir)
    else:
        if cfg is None:
            cfg = TrainConfig(**overrides)
        elif overrides:
            cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
        run_dir = None
    device = resolve_device(cfg.device)
    distributed.init_from_env(device)  # under torchrun: join the process group
    device = distributed.device_for_rank(device)
    from .training.tracking import require_trackers

    require_trackers(cfg)  # fail before any work if a requested logger is not installed
    # splits, auto resolved once (config.json records the chosen settings), seeded model, plan
    session = prepare(cfg, device=device, log=log)
    cfg, splits, model, phases = session.cfg, session.splits, session.model, session.phases
    # lean runs name the pretrained body instead of copying it (None: --save full, random)
    reference = FrozenReference.of(model) if cfg.save_mode == "lean" else None
    if run_dir is None:
        if distributed.is_main():
            run_dir = new_run_dir(cfg.out, cfg.model, cfg.strategy, cfg.name)
            cfg.save(run_dir / "config.json")
        run_dir = distributed.broadcast_object(run_dir)  # one run folder for all ranks
    if on_start is not None and distributed.is_main():
        on_start(run_dir)
    # A finished run (its last phase checkpointed complete and its report written) is
    # evaluated again in memory and returned as it is: nothing in its folder is rewritten.
    completed = (state is not None and state["run"]["phase_complete"]
                 and state["run"]["phase_index"] == len(phases) - 1
                 and (run_dir / "report.md").is_file())
    writes = distributed.is_main() and not completed
    data_info = {
        "root": str(splits.root), "layout": splits.layout, "classes": splits.classes,
        "train": len(splits.train), "val": len(splits.val),
        "test": len(splits.test) if splits.test else 0, "notes": splits.notes,
        "bad_files": [{"path": b.path, "reason": b.reason} for b in splits.bad_files],
    }
    if cfg.apply_fixes:
        data_info["fixes"] = {"file": str(cfg.apply_fixes), "applied": session.fixes_applied}
    if writes:
        atomic_write_text(run_dir / "data.json", json.dumps(data_info, indent=1))
    if splits.bad_files and writes:
        atomic_write_text(run_dir / "bad_files.txt",
                          "".join(f"{b.path}\t{b.reason}\n" for b in splits.bad_files))

    first, rows, phase_state = 0, [], None
    if state is not None:
        model.load_state_dict(state["model"])
        run = state["run"]
        rows = list(run["rows_before"]) + list(state["trainer"]["history"])
        if run["phase_complete"]:
            first = run["phase_index"] + 1
        else:
            first, rows = run["phase_index"], list(run["rows_before"])
            phase_state = state["trainer"]
    cache: dict = {"log": log}  # fastpath reports each extraction's rates to ``log``
    from .training.tracking import trackers_from_config

    trackers = trackers_from_config(cfg, run_dir, len(rows)) if writes else []
    try:
        for index in range(first, len(phases)):
            trainer = run_phase(model, cfg, phases[index], index, splits, run_dir, device,
                                rows_before=rows, cache=cache, resume_state=phase_state,
                                reference=reference,
                                callbacks=[*callbacks, *trackers], progress=progress)
            phase_state = None
            rows = rows + [r.as_dict() for r in trainer.history]
    except BaseException as exc:
        for tracker in trackers:
            tracker.fail(exc)
        raise

    evaluation, test_evaluation, calibration = evaluate_run(model, splits, cfg, phases,
                                                           cache, device)
    summary = evaluation_document(evaluation, test_evaluation, calibration)
    model.cpu()
    seconds = time.perf_counter() - start
    notes = [*splits.notes, *(n for n in cfg.notes if n not in splits.notes)]  # engine, auto
    if completed:
        notes.append(f"{run_dir} had already completed: nothing was trained and no file in it "
                     "changed (the accuracy above is its best model evaluated again)")
    if writes:
        atomic_write_text(run_dir / "evaluation.json", json.dumps(summary, indent=1))
        atomic_write_text(run_dir / "predictions.json", json.dumps(
            {"val": evaluation.predictions(),
             "test": None if test_evaluation is None else test_evaluation.predictions()}))
        extra = {"strategy": cfg.strategy, "val_accuracy": evaluation.accuracy,
                 "parameters": count_parameters(model), "run": run_dir.name}
        if test_evaluation is not None:
            extra["test_accuracy"] = test_evaluation.accuracy
        save_model(model, run_dir / "best.safetensors", extra=extra, reference=reference)
        plot_curves(rows, run_dir / "curves.png")
        plot_confusion(test_evaluation or evaluation, run_dir / "confusion.png",
                       title=_confusion_title(test_evaluation or evaluation,
                                              "test" if test_evaluation else "validation"))
        judged = test_evaluation or evaluation
        plot_reliability(judged.probs, judged.labels, run_dir / "reliability.png",
                         before=judged.raw_logits.softmax(1),
                         title=f"reliability on {calibration['measured_on']} "
                         f"({len(judged.labels)} images, T={calibration['temperature']:.2f})")
        write_report(run_dir, config=cfg.to_dict(), data=data_info, rows=rows,
                     evaluation=summary, model_info=model.describe(), seconds=seconds)
        for tracker in trackers:
            tracker.finish(summary, run_dir)
    distributed.barrier()
    return RunResult(run_dir, model, evaluation, rows, seconds, notes=notes,
                     test_evaluation=test_evaluation, calibration=calibration)


def _confusion_title(ev: Evaluation, split: str) -> str:
    lo, hi = ev.accuracy_interval()
    return f"{split} accuracy {ev.accuracy:.3f} [{lo:.3f}, {hi:.3f}] on {len(ev.labels)} images"


def evaluate_run(model: TransferModel, splits, cfg: TrainConfig, phases: list[Phase],
                 cache: dict, device: torch.device
                 ) -> tuple[Evaluation, Evaluation | None, dict]:
    """Validation and test evaluations of the trained model, and its temperature.

    The validation split already chose the epoch; it also fits the temperature
    (``model.temperature`` is set here). The test split is touched only now, once, for
    figures: nothing is chosen on it. Calibration is judged on test (val when there is none,
    which the returned dict says).
    """
    model.eval()
    eval_tf = build_transforms(model.data_config, train=False)
    body_unchanged = all(p.head_only for p in phases) and "val" in cache
    model.temperature = 1.0
    evaluation = distributed.evaluate(model, splits.val, eval_tf, device=device,
                                      features=cache["val"][0] if body_unchanged else None,
                                      engine=cfg.engine, log=cache.get("log"))
    temperature = fit_temperature(evaluation.raw_logits, evaluation.labels)
    model.temperature = temperature
    evaluation = evaluation.with_temperature(temperature)
    test_evaluation = None
    if splits.test:
        features = None
        if body_unchanged:  # the frozen body's test features (disk cache: once per dataset)
            features, _, _ = distributed.cached_features(model, splits.test, eval_tf,
                                                         cache_dir=cfg.cache_dir or None,
                                                         device=device, engine=cfg.engine)
        test_evaluation = distributed.evaluate(model, splits.test, eval_tf, device=device,
                                               features=features, engine=cfg.engine,
                                               log=cache.get("log"))
    judged = test_evaluation or evaluation
    calibration = {
        "method": "temperature scaling (one parameter, fitted on the validation split by NLL)",
        "temperature": temperature,
        "fitted_on": f"val ({len(evaluation.labels)} images)",
        "measured_on": "test" if test_evaluation is not None else "val",
        "images": len(judged.labels),
        "binning": BINNING.format(bins=DEFAULT_BINS),
        "ece_before": judged.ece(temperature=1.0),
        "ece_after": judged.ece(),
    }
    if test_evaluation is None:
        calibration["note"] = ("no test split: fitted and measured on the same validation "
                               "images, so the after figure is optimistic")
    return evaluation, test_evaluation, calibration


def evaluation_document(evaluation: Evaluation, test: Evaluation | None,
                        calibration: dict) -> dict:
    """evaluation.json: validation figures at the top (as before), the test split's under
    ``test``, calibration, and a plain note on which figure can be trusted."""
    doc = evaluation.summary()
    doc["split"] = "val"
    if test is not None:
        doc["note"] = ("the validation split chose the epoch (early stopping on its loss) and "
                       "the temperature; the test split was used for nothing else: its "
                       "figures are the untouched ones")
    else:
        doc["note"] = ("no test split: the validation figure also chose the epoch (early "
                       "stopping on its loss) and the temperature, so it is optimistic; "
                       "--holdout-test FRACTION sets an untouched test split aside")
    doc["test"] = None if test is None else {**test.summary(), "split": "test"}
    doc["calibration"] = calibration
    return doc
