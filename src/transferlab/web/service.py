"""What the web routes call: thin wrappers over the library, with the web's guards applied.

Nothing here holds training logic: datasets come from :func:`transferlab.data.load_splits`,
diagrams from :func:`transferlab.models.summary.summarize`, plans from
:func:`transferlab.finetune.strategies.plan_phases`, training from
:func:`transferlab.api.fine_tune` (in a worker, see :mod:`.jobs`), predictions from
:func:`transferlab.export.predict.predict_images`, activations from
:func:`transferlab.inspect.activations.inspect_activations`.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..config import TrainConfig
from ..data.scan import IMAGE_EXTENSIONS, DataError
from ..models.factory import DEFAULT_MODEL, KNOWN_BACKBONES, TransferModel
from ..store.registry import RunRegistry
from .jobs import JobRunner, new_job_id
from .security import SecurityError, relative_to_root, resolve_under

RUN_FILES = {  # downloadable/viewable files of a run folder
    "config.json": "application/json", "data.json": "application/json",
    "metrics.json": "application/json", "metrics.csv": "text/csv",
    "evaluation.json": "application/json", "report.md": "text/markdown",
    "curves.png": "image/png", "confusion.png": "image/png", "reliability.png": "image/png",
    "predictions.json": "application/json",
    "best.safetensors": "application/octet-stream", "best.json": "application/json",
    "events.jsonl": "application/x-ndjson", "bad_files.txt": "text/plain",
}


SWEEP_FILES = {"plot": "image/png", "report.md": "text/markdown", "table.csv": "text/csv",
               "trials.csv": "text/csv", "table.json": "application/json"}


def _sweep_plot(folder: Path) -> Path | None:
    return next(iter(sorted(folder.glob("*.png"))), None) if folder.is_dir() else None


class NotFound(LookupError):
    """A dataset, run, job or file that does not exist (HTTP 404)."""


class Unavailable(RuntimeError):
    """A feature whose library part is not installed or not written yet (HTTP 501)."""


@dataclass
class WebSettings:
    data_root: Path
    runs_root: Path
    token: str | None = None
    max_upload_bytes: int = 512 * 2**20  # dataset zips
    max_image_bytes: int = 20 * 2**20  # single images for predict / inspect
    cache_dir: str | None = None  # feature cache (None: the library default)
    device: str = "auto"
    engine: str = "auto"  # predictions' inference engine (transferlab.models.engines)
    db_path: Path | None = None  # default: runs_root / "registry.sqlite"
    warm_worker: bool = True  # a standby worker with torch imported waits for the next job

    def __post_init__(self) -> None:
        self.data_root = Path(self.data_root).expanduser().resolve()
        self.runs_root = Path(self.runs_root).expanduser().resolve()
        if not self.data_root.is_dir():
            raise ValueError(f"data root {self.data_root} is not a folder")
        self.runs_root.mkdir(parents=True, exist_ok=True)
        if self.db_path is None:
            self.db_path = self.runs_root / "registry.sqlite"


def _looks_like_dataset(path: Path) -> str | None:
    """'split-folders', 'class-folders' or None, from a bounded look at the folder."""
    try:
        subdirs = [e for e in os.scandir(path) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return None
    if any(e.name.lower() == "train" for e in subdirs):
        return "split-folders"
    with_images = 0
    for entry in subdirs[:200]:
        try:
            with os.scandir(entry.path) as it:
                for i, f in enumerate(it):
                    if Path(f.name).suffix.lower() in IMAGE_EXTENSIONS:
                        with_images += 1
                        break
                    if i > 50:
                        break
        except OSError:
            continue
        if with_images >= 2:
            return "class-folders"
    return None


def _folder_signature(path: Path) -> tuple:
    """Changes when files are added or removed two levels down (class folders)."""
    sig = []
    stack = [(path, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            sig.append((str(current), current.stat().st_mtime_ns))
            if depth < 2:
                stack += [(Path(e.path), depth + 1) for e in os.scandir(current) if e.is_dir()]
        except OSError:
            continue
    return tuple(sorted(sig))


class Service:
    """One per app: settings, the registry, the job runner and small caches."""

    def __init__(self, settings: WebSettings, *, runner: JobRunner | None = None) -> None:
        self.settings = settings
        self.registry = RunRegistry(settings.db_path)
        self.registry.mark_interrupted()
        self.registry.sync_folder(settings.runs_root)
        self.runner = runner or JobRunner(self.registry, warm_worker=settings.warm_worker)
        self._torch_lock = threading.Lock()  # one model computation at a time in the server
        self._models: OrderedDict[tuple, TransferModel] = OrderedDict()
        self._trained: OrderedDict[str, TransferModel] = OrderedDict()
        self._shapes: dict[tuple, dict] = {}
        self._datasets: dict[str, tuple[tuple, dict]] = {}
        self._quiz: list[dict] | None = None

    @property
    def data_root(self) -> Path:
        return self.settings.data_root

    @property
    def runs_root(self) -> Path:
        return self.settings.runs_root

    def close(self) -> None:
        self.runner.shutdown()

    # -- datasets --------------------------------------------------------------------------
    def list_datasets(self) -> list[dict]:
        """Dataset folders up to three levels below the data root."""
        found = []
        stack = [(self.data_root, 0)]
        while stack:
            folder, depth = stack.pop()
            layout = _looks_like_dataset(folder) if folder != self.data_root else None
            if layout:
                rel = folder.relative_to(self.data_root).as_posix()
                found.append({"path": rel, "name": folder.name, "layout": layout,
                              "uploaded": rel.startswith("uploads/")})
                continue
            if depth >= 3:
                continue
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
            except OSError:
                continue
            stack += [(Path(e.path), depth + 1) for e in entries
                      if e.is_dir() and not e.name.startswith(".")]
        return sorted(found, key=lambda d: d["path"])

    def dataset_dir(self, rel: str) -> Path:
        path = resolve_under(self.data_root, rel, what="dataset path")
        if not path.is_dir():
            raise NotFound(f"no dataset folder {rel!r} under the data root")
        return path

    def dataset_info(self, rel: str, *, val_fraction: float = 0.2, seed: int = 0) -> dict:
        """Classes, counts per split, notes, bad files and a few sample images per class."""
        from ..data import load_splits

        path = self.dataset_dir(rel)
        key = f"{path}|{val_fraction}|{seed}"
        sig = _folder_signature(path)
        cached = self._datasets.get(key)
        if cached and cached[0] == sig:
            return cached[1]
        splits = load_splits(path, val_fraction=val_fraction, seed=seed)
        counts = {c: {"train": 0, "val": 0, "test": 0} for c in splits.classes}
        samples: dict[str, list[str]] = {c: [] for c in splits.classes}
        for split in ("train", "val", "test"):
            for file, label in getattr(splits, split) or []:
                cls = splits.classes[label]
                counts[cls][split] += 1
                if split == "val" and len(samples[cls]) < 6:
                    samples[cls].append(relative_to_root(self.data_root, file))
        for cls, items in samples.items():  # classes with few val images: fill from train
            if len(items) < 6:
                extra = [relative_to_root(self.data_root, f) for f, lab in splits.train
                         if splits.classes[lab] == cls][: 6 - len(items)]
                items.extend(extra)
        info = {
            "path": path.relative_to(self.data_root).as_posix(),
            "name": path.name,
            "layout": splits.layout,
            "classes": splits.classes,
            "counts": counts,
            "totals": {s: sum(c[s] for c in counts.values()) for s in ("train", "val", "test")},
            "notes": splits.notes,
            "bad_files": [{"path": relative_to_root(self.data_root, b.path) or Path(b.path).name,
                           "reason": b.reason} for b in splits.bad_files[:500]],
            "bad_file_count": len(splits.bad_files),
            "samples": samples,
        }
        self._datasets[key] = (sig, info)
        return info

    def image_file(self, rel: str) -> Path:
        path = resolve_under(self.data_root, rel, what="image path")
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise SecurityError(f"{rel!r} is not an image file "
                                f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
        if not path.is_file():
            raise NotFound(f"no image {rel!r} under the data root")
        return path

    def thumbnail(self, rel: str, size: int = 160) -> bytes:
        from ..data.datasets import load_rgb

        path = self.image_file(rel)
        try:
            img = load_rgb(path)
        except Exception as exc:
            raise DataError(f"cannot read image {rel}: {exc}") from exc
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        return buf.getvalue()

    def add_uploaded_dataset(self, zip_path: Path, name: str) -> dict:
        """Unpack an uploaded zip into ``uploads/<name>`` safely and describe it."""
        import shutil

        from .security import dataset_root_in, safe_extract_zip

        dest = self.data_root / "uploads" / name
        safe_extract_zip(zip_path, dest)
        root = dataset_root_in(dest)
        try:
            return self.dataset_info(root.relative_to(self.data_root).as_posix())
        except DataError:
            shutil.rmtree(dest, ignore_errors=True)
            raise

    # -- models ----------------------------------------------------------------------------
    def list_models(self) -> list[dict]:
        from ..models.factory import offline_availability
        from ..models.weights import packaged_weights_hint

        out = []
        for name in KNOWN_BACKBONES:
            where = offline_availability(name)
            out.append({"name": name, "availability": where, "offline": where != "download",
                        "hint": packaged_weights_hint(name), "default": name == DEFAULT_MODEL})
        return out

    def _check_model_name(self, name: str) -> None:
        import timm

        if not timm.is_model(name):
            close = timm.list_models(f"*{name}*")[:5]
            raise ValueError(f"unknown backbone {name!r}"
                             + (f"; did you mean {', '.join(close)}?" if close else ""))

    def _model(self, name: str, num_classes: int, hidden: int | None = None,
               dropout: float = 0.0) -> tuple[TransferModel, bool]:
        """A cached model for diagrams; random weights where none are available offline."""
        from ..models.factory import create_model, offline_availability

        self._check_model_name(name)
        architecture_only = offline_availability(name) == "download"
        key = (name, num_classes, hidden, dropout, architecture_only)
        model = self._models.get(key)
        if model is None:
            model = create_model(name, num_classes=num_classes,
                                 weights="random" if architecture_only else "auto",
                                 hidden=hidden, dropout=dropout)
            model.eval()
            self._models[key] = model
            while len(self._models) > 3:
                self._models.popitem(last=False)
        self._models.move_to_end(key)
        return model, architecture_only

    def model_summary(self, name: str, num_classes: int, train_top: int | None,
                      hidden: int | None = None, dropout: float = 0.0,
                      train_groups: list[str] | None = None) -> dict:
        """The groups diagram: ``train_groups`` (exactly these body groups + head) or
        ``train_top`` (head + top K) decide what is trainable, as in training."""
        from ..finetune.freeze import (
            count_parameters,
            freeze_all,
            set_group_trainable,
            trainable_groups,
        )
        from ..finetune.freeze import train_top as set_train_top
        from ..models.factory import offline_availability
        from ..models.summary import output_shapes, summarize

        with self._torch_lock:
            model, architecture_only = self._model(name, num_classes, hidden, dropout)
            if train_groups is not None:
                body = model.group_names[:-1]
                unknown = [g for g in train_groups if g not in body]
                if unknown:
                    raise ValueError(f"no body group {unknown[0]!r} in {name}; groups are "
                                     f"{', '.join(body)}")
                freeze_all(model)
                set_group_trainable(model, [*train_groups, model.group_names[-1]], True)
                trainable = trainable_groups(model)
            else:
                trainable = set_train_top(model, train_top)
            key = (name, num_classes, hidden, dropout)
            if key not in self._shapes:
                self._shapes[key] = output_shapes(model)
            summary = summarize(model, shapes=False)
            doc = summary.to_dict()
            for g in doc["groups"]:
                g["output_shape"] = self._shapes[key].get(g["name"])
            doc.update(
                availability=offline_availability(name),
                architecture_only=architecture_only,
                trainable_groups=trainable,
                train_top=train_top,
                train_groups=train_groups,
                body_groups=len(model.groups) - 1,
                counts=count_parameters(model),
                head_repr=_head_repr(model),
            )
        return doc

    def group_names(self, name: str, num_classes: int = 4) -> list[str]:
        """From the architecture alone: no weights are read to name the groups."""
        from ..session import architecture_group_names

        self._check_model_name(name)
        with self._torch_lock:
            return architecture_group_names(name)

    # -- strategies and plans --------------------------------------------------------------
    def strategies(self) -> list[dict]:
        """The library's registry (:data:`transferlab.finetune.strategies.REGISTRY`)."""
        from ..finetune.strategies import describe

        return describe()

    def _config(self, opts, data: str, *, group_names: list[str] | None = None,
                **extra) -> TrainConfig:
        """The TrainConfig of a web request; a learning-rate table (one rate per group, in
        the model's group order) is checked naming the group whose rate is wrong."""
        from ..options import check_group_lrs

        values = opts.model_dump(exclude={"data", "num_classes"})
        if opts.lrs is not None:
            names = group_names or self.group_names(opts.model)
            if len(opts.lrs) != len(names):
                raise ValueError(f"the learning-rate table has {len(opts.lrs)} rates for the "
                                 f"{len(names)} groups of {opts.model} ({', '.join(names)})")
            check_group_lrs(opts.lrs, names)
            values["lrs"] = [float(v) for v in opts.lrs]
        return TrainConfig(data=data, **values, **extra)

    def plan(self, opts) -> dict:
        """The library's plan (:func:`transferlab.session.plan_document`); for ``auto`` the
        rule's choice and reasons (the resolution is measured when the job starts)."""
        from ..session import plan_document, resolve_strategy

        self._check_model_name(opts.model)
        names = self.group_names(opts.model)
        cfg = self._config(opts, ".", group_names=names)
        auto = cfg.strategy == "auto"
        if auto:  # the rule needs the dataset's statistics
            from ..data import load_splits

            if opts.data in ("", "."):
                raise ValueError("strategy 'auto' decides from the dataset: choose one first")
            splits = load_splits(self.dataset_dir(opts.data), val_fraction=cfg.val_fraction,
                                 seed=cfg.seed, per_class=cfg.per_class,
                                 test_fraction=cfg.test_fraction)
            cfg = resolve_strategy(cfg, splits, measure=False)
        return plan_document(cfg, names, resolved_from_auto=auto)

    # -- training jobs ---------------------------------------------------------------------
    def submit_train(self, opts) -> dict:
        from ..models.factory import require_offline_weights
        from ..runs import run_folder

        data = self.dataset_dir(opts.data)
        self._check_model_name(opts.model)
        require_offline_weights(opts.model, opts.weights)
        job_id = new_job_id(f"{opts.model}-{opts.strategy}")
        names = self.group_names(opts.model)
        from .doctor import fixes_for

        fixes = fixes_for(self, opts.data)  # the "Check data" panel's reviewed actions
        cfg = self._config(opts, str(data), group_names=names, out=str(self.runs_root),
                           name=job_id, cache_dir=self.settings.cache_dir,
                           device=self.settings.device,
                           apply_fixes=str(fixes) if fixes else None)
        if cfg.strategy != "auto":  # checks group names and strategy options now, not later
            from ..finetune.strategies import plan_phases

            plan_phases(cfg, names)
        label = f"{opts.strategy} · {opts.model} · {data.name}"
        return self.runner.submit(job_id, "train", {
            "config": cfg.to_dict(), "label": label,
            "run_dir": str(run_folder(cfg.out, cfg.model, cfg.strategy, cfg.name))})

    def resume_train(self, run_id: str) -> dict:
        """Continue an interrupted or stopped run from its last completed epoch (same id)."""
        from ..store.registry import RegistryError

        try:
            record = self.registry.get_run(run_id)
        except RegistryError as exc:
            raise NotFound(f"no run {run_id!r}") from exc
        if record.state not in ("interrupted", "stopped", "failed"):
            raise ValueError(f"run {run_id} is {record.state}: only an interrupted, stopped or "
                             "failed run can be resumed")
        active = self.runner.active()
        if active is not None and active["id"] == run_id:
            raise ValueError(f"run {run_id} is running")
        run_dir = self.run_dir(run_id)
        if record.kind != "train" or run_dir.parent != self.runs_root:
            raise ValueError(f"run {run_id} is not a training job of this server")
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        config["device"] = self.settings.device
        return self.runner.submit(run_id, "train", {
            "config": config, "run_dir": str(run_dir), "resume": True,
            "label": f"resume · {run_id}"})

    def job_events_path(self, job: dict) -> Path | None:
        """The live feed of a job: a run's ``events.jsonl``, a sweep's ``progress.jsonl``."""
        from .sweeps import PROGRESS

        if job["kind"] == "train" and job.get("run_dir"):
            return Path(job["run_dir"]) / "events.jsonl"
        if job["kind"] == "sweep" and job.get("run_dir"):
            return Path(job["run_dir"]) / PROGRESS
        return None

    # -- runs ------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """A run's folder: ``runs_root/<id>``, or (sweep trials) the folder the registry
        records, which must also lie under the runs root."""
        from ..store.registry import RegistryError

        path = resolve_under(self.runs_root, run_id, what="run id")
        if path.parent == self.runs_root and (path / "config.json").is_file():
            return path
        try:
            recorded = self.registry.get_run(run_id).run_dir
        except RegistryError:
            recorded = None
        if recorded:
            rel = relative_to_root(self.runs_root, recorded)
            if rel is not None:
                path = resolve_under(self.runs_root, rel, what="run folder")
                if (path / "config.json").is_file():
                    return path
        raise NotFound(f"no run {run_id!r}")

    def list_runs(self) -> list[dict]:
        self.registry.sync_folder(self.runs_root)
        out = []
        for rec in self.registry.list_runs():
            doc = rec.to_dict()
            doc["dataset"] = relative_to_root(self.data_root, rec.dataset or "") or rec.dataset
            doc.pop("config")
            out.append(doc)
        return out

    def get_run(self, run_id: str) -> dict:
        from ..store.registry import RegistryError

        run_dir = self.run_dir(run_id)
        try:
            record = self.registry.get_run(run_id).to_dict()
        except RegistryError:
            self.registry.sync_folder(self.runs_root)
            record = self.registry.get_run(run_id).to_dict()
        doc = {"run": record, "files": [n for n in RUN_FILES if (run_dir / n).is_file()]}
        for name, key in (("evaluation.json", "evaluation"), ("metrics.json", "metrics"),
                          ("data.json", "data"), ("config.json", "config")):
            path = run_dir / name
            doc[key] = _read_json(path) if path.is_file() else None
        ev = doc["evaluation"]
        if ev:
            for err in ev.get("worst_errors", []):
                err["image"] = relative_to_root(self.data_root, err["path"])
                err["name"] = Path(err["path"]).name
        if doc["data"]:
            doc["data"]["root"] = relative_to_root(self.data_root, doc["data"]["root"])
            doc["data"]["bad_files"] = [
                {"path": relative_to_root(self.data_root, b["path"]) or Path(b["path"]).name,
                 "reason": b["reason"]} for b in doc["data"].get("bad_files", [])]
        doc["predictable"] = (run_dir / "best.safetensors").is_file()
        doc["exports"] = export_formats()
        doc["exported"] = exported_files(run_dir)
        return doc

    def exported_file(self, run_id: str, name: str) -> Path:
        run_dir = self.run_dir(run_id)
        if name not in exported_files(run_dir):
            raise NotFound(f"run {run_id} has no exported file {name!r}")
        return run_dir / "export" / name

    def run_file(self, run_id: str, name: str) -> tuple[Path, str]:
        if name not in RUN_FILES:
            raise NotFound(f"{name!r} is not a run file; files are {', '.join(RUN_FILES)}")
        path = self.run_dir(run_id) / name
        if not path.is_file():
            raise NotFound(f"run {run_id} has no {name} (yet)")
        return path, RUN_FILES[name]

    def compare(self, a: str, b: str) -> dict:
        self.run_dir(a)
        self.run_dir(b)
        doc = self.registry.compare_runs(a, b)
        for side, run_id in (("a", a), ("b", b)):
            path = self.run_dir(run_id) / "metrics.json"
            doc[f"history_{side}"] = _read_json(path) if path.is_file() else []
            for key in ("dataset",):
                doc[side][key] = relative_to_root(self.data_root, doc[side][key] or "") or \
                    doc[side][key]
        return doc

    def grad_norms(self, run_id: str) -> list[dict]:
        path = self.run_dir(run_id) / "events.jsonl"
        out = []
        if path.is_file():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if '"grad_norms"' in line:
                        try:
                            out.append(json.loads(line))
                        except ValueError:
                            continue
        return out

    # -- trained models: predict and inspect -----------------------------------------------
    def _trained_model(self, run_id: str) -> TransferModel:
        from ..runs import load_model

        run_dir = self.run_dir(run_id)
        if not (run_dir / "best.safetensors").is_file():
            raise NotFound(f"run {run_id} has no trained model yet (best.safetensors); "
                           "wait until it finishes")
        stamp = f"{run_id}@{(run_dir / 'best.safetensors').stat().st_mtime_ns}"
        model = self._trained.get(stamp)
        if model is None:
            model = load_model(run_dir)
            self._trained[stamp] = model
            while len(self._trained) > 2:
                self._trained.popitem(last=False)
        return model

    def predict(self, run_id: str, image: Path, topk: int = 5) -> dict:
        from ..export.predict import predict_images

        with self._torch_lock:
            model = self._trained_model(run_id)
            result = predict_images(model, [image], topk=topk,
                                    engine=self.settings.engine)[0]
        if "error" in result:
            raise DataError(result["error"])
        return {"run": run_id, "top": result["top"], "classes": model.classes}

    def inspect(self, image: Path, *, run_id: str | None = None, model: str | None = None,
                max_maps: int = 16) -> dict:
        from ..inspect.activations import feature_map_grid, inspect_activations

        with self._torch_lock:
            if run_id:
                net, source = self._trained_model(run_id), f"run {run_id}"
                architecture_only = False
            else:
                net, architecture_only = self._model(model or DEFAULT_MODEL, 4)
                source = f"pretrained {model or DEFAULT_MODEL}" + (
                    " (random weights: architecture only)" if architecture_only else "")
            try:
                acts = inspect_activations(net, image, max_maps=max_maps)
            except ValueError as exc:
                raise DataError(str(exc)) from exc
        groups = []
        for a in acts:
            doc = a.to_dict()
            if a.feature_maps.shape[0]:
                png = feature_map_grid(a.feature_maps)
                doc["grid_png"] = "data:image/png;base64," + base64.b64encode(png).decode()
            groups.append(doc)
        return {"source": source, "architecture_only": architecture_only, "groups": groups}

    # -- experiments and export ------------------------------------------------------------
    def experiments(self) -> dict:
        from . import sweeps

        return {"kinds": sweeps.available_sweeps(),
                "sweeps": [s.to_dict() for s in self.registry.list_sweeps(limit=50)]}

    def submit_sweep(self, req) -> dict:
        from . import sweeps

        info = {k["kind"]: k for k in sweeps.available_sweeps()}[req.kind]
        if not info["available"]:
            raise Unavailable(info["reason"])
        data = self.dataset_dir(req.train.data)
        self._check_model_name(req.train.model)
        values = sweeps.check_values(req.kind, req.values, req.train.strategy)
        job_id = new_job_id(f"sweep-{req.kind}")
        out_dir = self.runs_root / "sweeps" / job_id
        cfg = self._config(req.train, str(data), name=None, cache_dir=self.settings.cache_dir,
                           device=self.settings.device)
        return self.runner.submit(job_id, "sweep", {
            "kind": req.kind, "config": cfg.to_dict(), "values": values,
            "seeds": req.seeds or sweeps.SWEEP_KINDS[req.kind].default_seeds,
            "scratch": req.scratch, "out_dir": str(out_dir),
            "db_path": str(self.settings.db_path),
            "label": f"{req.kind} sweep · {data.name}"})

    def get_sweep(self, sweep_id: str) -> dict:
        from ..store.registry import RegistryError

        try:
            rec = self.registry.get_sweep(sweep_id)
        except RegistryError as exc:
            raise NotFound(str(exc)) from exc
        doc = rec.to_dict()
        doc["runs"] = [r.id for r in self.registry.list_runs(sweep_id=sweep_id)]
        doc["files"] = []
        if rec.out_dir:
            folder = Path(rec.out_dir)
            doc["files"] = sorted(n for n in SWEEP_FILES if (folder / n).is_file()
                                  or n == "plot" and _sweep_plot(folder) is not None)
        return doc

    def sweep_file(self, sweep_id: str, name: str) -> tuple[Path, str]:
        if name not in SWEEP_FILES:
            raise NotFound(f"{name!r} is not a sweep file; files are {', '.join(SWEEP_FILES)}")
        rec = self.get_sweep(sweep_id)
        rel = relative_to_root(self.runs_root, rec["out_dir"] or "")
        if rel is None:
            raise NotFound(f"sweep {sweep_id} has no folder under the runs root")
        folder = resolve_under(self.runs_root, rel, what="sweep folder")
        path = _sweep_plot(folder) if name == "plot" else folder / name
        if path is None or not path.is_file():
            raise NotFound(f"sweep {sweep_id} has no {name} (yet)")
        return path, SWEEP_FILES[name]

    def submit_export(self, run_id: str, fmt: str) -> dict:
        formats = export_formats()
        if not formats:
            raise Unavailable("model export is not available yet in this installation "
                              "(transferlab.export has no exporters); download the checkpoint")
        if fmt not in formats:
            raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(formats)}")
        run_dir = self.run_dir(run_id)
        if not (run_dir / "best.safetensors").is_file():
            raise NotFound(f"run {run_id} has no trained model to export")
        job_id = new_job_id(f"export-{fmt}")
        return self.runner.submit(job_id, "export", {
            "format": fmt, "run_dir": str(run_dir), "label": f"export {fmt} · {run_id}"})

    # -- learn -----------------------------------------------------------------------------
    def quiz(self) -> list[dict]:
        from . import learn

        if self._quiz is None:
            with self._torch_lock:
                self._quiz = learn.build_quiz()
        return [{k: v for k, v in q.items() if k not in ("answer", "accept")}
                for q in self._quiz]

    def check_answer(self, qid: str, answer: str) -> dict:
        from . import learn

        self.quiz()
        question = next((q for q in self._quiz or [] if q["id"] == qid), None)
        if question is None:
            raise NotFound(f"no question {qid!r}")
        return learn.check(question, answer)


def _head_repr(model: TransferModel) -> str:
    from torch import nn

    parts = []
    for m in model.head.modules():
        if isinstance(m, nn.Linear):
            parts.append(f"Linear({m.in_features}, {m.out_features})")
        elif isinstance(m, nn.ReLU):
            parts.append("ReLU")
        elif isinstance(m, nn.Dropout):
            parts.append(f"Dropout({m.p:g})")
    return " → ".join(parts) or type(model.head).__name__


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _exporters():
    try:
        mod = importlib.import_module("transferlab.export.exporters")
    except ImportError:
        return None
    return mod if callable(getattr(mod, "export_model", None)) else None


def export_formats() -> list[str]:
    """Formats of ``transferlab.export.exporters`` (empty where export is not installed)."""
    mod = _exporters()
    return list(getattr(mod, "FORMATS", ())) if mod is not None else []


def exported_files(run_dir: Path) -> list[str]:
    folder = run_dir / "export"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def run_export(spec: dict) -> dict:
    """Worker side of an export job: ``export_model(run folder, format)`` into RUN/export."""
    mod = _exporters()
    if mod is None:
        raise Unavailable("transferlab.export.exporters.export_model is not available")
    result = mod.export_model(spec["run_dir"], spec["format"])
    return {"format": result.format, "files": [Path(f).name for f in result.files]}
