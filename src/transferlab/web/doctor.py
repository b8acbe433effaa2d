"""The "Check data" panel's backend: thin routes over :mod:`transferlab.doctor`.

A check runs as a job in the worker process (features may need extracting first); its
``doctor.json`` and the dataset's action list (``fixes.json``) live under
``RUNS_ROOT/doctor/<dataset>/``, never in the dataset folder. The next training job on
that dataset applies the action list (``TrainConfig.apply_fixes``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from .jobs import new_job_id


class DoctorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(..., min_length=1, max_length=500)


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(..., min_length=1, max_length=500)
    path: str = Field(..., min_length=1, max_length=1000, description="relative to the dataset")
    action: Literal["relabel", "remove", "keep", "clear"]
    label: str | None = Field(None, max_length=200)


def doctor_dir(svc, dataset: str) -> Path:
    rel = svc.dataset_dir(dataset).relative_to(svc.data_root).as_posix()
    return svc.runs_root / "doctor" / rel.replace("/", "__")


def fixes_for(svc, dataset: str) -> Path | None:
    """The dataset's action list, if it holds any action (for the next training job)."""
    path = doctor_dir(svc, dataset) / "fixes.json"
    if not path.is_file():
        return None
    from ..doctor import load_fixes

    return path if load_fixes(path).actions else None


def run_doctor(spec: dict, send) -> dict:
    """Worker side of a doctor job."""
    from ..doctor import diagnose, write_report

    def progress(split: str, done: int, total: int) -> None:
        send("running", detail=f"features of {split} images {done}/{total}")

    report = diagnose(spec["data"], cache_dir=spec.get("cache_dir"),
                      device=spec.get("device") or "cpu", progress=progress)
    write_report(report, spec["out"])
    return {"counts": report.counts(), "seconds": report.seconds.get("total")}


def _state(svc, dataset: str) -> dict:
    from ..doctor import load_fixes

    folder = doctor_dir(svc, dataset)
    report = None
    if (folder / "doctor.json").is_file():
        report = json.loads((folder / "doctor.json").read_text(encoding="utf-8"))
    fixes = folder / "fixes.json"
    actions = ([a.to_dict() for a in load_fixes(fixes).actions.values()]
               if fixes.is_file() else [])
    jobs = [j for j in svc.runner.list() if j.get("kind") == "doctor"
            and j.get("label") == f"check data · {dataset}"]
    return {"dataset": dataset, "report": report, "actions": actions,
            "job": jobs[0] if jobs else None}


def mount_doctor(app: FastAPI, svc) -> None:
    router = APIRouter(prefix="/api/doctor")

    @router.get("")
    def state(dataset: str):
        return _state(svc, dataset)

    @router.post("", status_code=202)
    def start(req: DoctorRequest):
        data = svc.dataset_dir(req.dataset)
        job_id = new_job_id("doctor")
        return svc.runner.submit(job_id, "doctor", {
            "data": str(data), "out": str(doctor_dir(svc, req.dataset)),
            "cache_dir": svc.settings.cache_dir,
            "device": "cpu" if svc.settings.device == "auto" else svc.settings.device,
            "label": f"check data · {req.dataset}"})

    @router.post("/actions")
    def set_action(req: ActionRequest):
        from ..doctor import FixList, load_fixes

        data = svc.dataset_dir(req.dataset)
        target = data / req.path
        if ".." in Path(req.path).parts or not target.resolve().is_relative_to(data.resolve()) \
                or not target.is_file():
            raise ValueError(f"{req.path} is not an image of {req.dataset}")
        if req.action == "relabel" and req.label not in svc.dataset_info(req.dataset)["classes"]:
            raise ValueError(f"relabel needs one of the dataset's classes, got {req.label!r}")
        path = doctor_dir(svc, req.dataset) / "fixes.json"
        fixes = load_fixes(path) if path.is_file() else FixList(dataset=str(data))
        if req.action == "clear":
            fixes.actions.pop(req.path, None)
        else:
            fixes.set(req.path, req.action, req.label, "reviewed in the web page")
        fixes.save(path)
        return _state(svc, req.dataset)

    app.include_router(router)
