"""The FastAPI app: routes validate input and call :class:`~.service.Service`, nothing more.

``create_app(data_root=..., runs_root=...)`` builds an app; ``transferlab serve`` runs it with
uvicorn. See docs/WEB.md for the pages, the API and the security model.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..data.scan import DataError
from ..models.weights import WeightsUnavailableError
from ..runs import RunError
from ..store.registry import RegistryError
from . import schemas
from .doctor import mount_doctor
from .jobs import TERMINAL, UnknownJob
from .lab.kernels import LabError
from .lab.routes import lab_error_response, lab_policy, mount_lab
from .security import (
    TOKEN_COOKIE,
    SecurityError,
    is_loopback,
    read_capped,
    request_token,
    token_matches,
)
from .service import NotFound, Service, Unavailable, WebSettings

STATIC = Path(__file__).parent / "static"
UPLOAD_PATHS = ("/api/datasets/upload",)
IMAGE_UPLOAD_PATHS = ("/predict", "/api/inspect")
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


# One table from the library's exceptions to HTTP statuses (the first matching class wins).
ERROR_STATUS: dict[type[Exception], int] = {
    SecurityError: 400,  # its own status, see _library_error
    NotFound: 404, RegistryError: 404, UnknownJob: 404, RunError: 404,
    Unavailable: 501,
    DataError: 422, WeightsUnavailableError: 422, ValueError: 422,
}


async def _library_error(_request, exc: Exception) -> JSONResponse:
    if isinstance(exc, SecurityError):
        return _error(exc.status, str(exc))
    status = next(s for t, s in ERROR_STATUS.items() if isinstance(exc, t))
    return _error(status, str(exc))


async def _invalid_request(_request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line per problem (``field: message``), as the library's errors
    read: the options table's message is the same here as on the command line."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return _error(422, "; ".join(parts) or "invalid request")


def _host_allowed(host_header: str, allowed: tuple[str, ...]) -> bool:
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":")[0]
    return host in allowed


def create_app(settings: WebSettings | None = None, *, data_root: str | Path | None = None,
               runs_root: str | Path | None = None, token: str | None = None,
               allowed_hosts: tuple[str, ...] | None = None, service: Service | None = None,
               allow_code: bool | None = None, lab_limits=None, **options) -> FastAPI:
    """The web playground over ``data_root`` (readable datasets) and ``runs_root`` (runs).

    ``token``: required on every request when set. ``allowed_hosts``: accepted Host headers
    (``transferlab serve`` passes the loopback names when bound to loopback, which blocks DNS
    rebinding); None accepts any. ``allow_code``: the Lab (code run in a kernel, see
    :mod:`.lab.routes`): None = on only when loopback-only, True = also off loopback with a
    token, False = off.
    """
    if settings is None:
        if data_root is None or runs_root is None:
            raise ValueError("create_app needs data_root and runs_root (or settings)")
        settings = WebSettings(data_root=data_root, runs_root=runs_root, token=token, **options)
    svc = service or Service(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if lab_pool is not None:
            await lab_pool.close()
        await run_in_threadpool(svc.close)

    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN. The schema is at
    # /openapi.json.
    app = FastAPI(title="transferlab playground", lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="See and steer transfer learning in the browser.")
    app.state.service = svc
    loopback_only = allowed_hosts is not None and all(is_loopback(h) for h in allowed_hosts)
    lab_on, lab_reason = lab_policy(loopback_only=loopback_only, token=settings.token,
                                    allow_code=allow_code)
    mount_doctor(app, svc)
    lab_pool = mount_lab(app, enabled=lab_on, reason=lab_reason, runs_dir=svc.run_dir,
                         limits=lab_limits)
    tmp_root = settings.runs_root / ".uploads"

    # -- guards ----------------------------------------------------------------------------
    @app.middleware("http")
    async def guard(request: Request, call_next):
        if allowed_hosts is not None and not _host_allowed(request.headers.get("host", ""),
                                                           allowed_hosts):
            return _error(400, "invalid Host header (the server only answers to "
                               f"{', '.join(allowed_hosts)})")
        from_query = False
        if settings.token:
            given = request_token(request.headers, request.cookies, request.query_params)
            if not token_matches(settings.token, given):
                return _error(401, "a token is required: open the address that "
                                   "`transferlab serve` printed (it ends in ?token=...)")
            from_query = request.query_params.get("token") is not None
        path = request.url.path
        if request.method in {"POST", "PUT", "PATCH", "DELETE"} and _cross_site(request):
            return _error(403, "cross-site requests are refused: use the playground's own page")
        if request.method == "POST" and (path in UPLOAD_PATHS or path.endswith(IMAGE_UPLOAD_PATHS)):
            limit = (settings.max_upload_bytes if path in UPLOAD_PATHS
                     else settings.max_image_bytes) + 64 * 1024  # multipart overhead
            length = request.headers.get("content-length")
            if length is None:
                return _error(411, "uploads need a Content-Length header")
            if not length.isdigit() or int(length) > limit:
                return _error(413, f"upload too large: limit {limit // 2**20} MiB")
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", CSP)
        if settings.token and from_query and path == "/":
            response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    for exc_type in ERROR_STATUS:
        app.add_exception_handler(exc_type, _library_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(LabError, lab_error_response)

    # -- page ------------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                            headers={"Cache-Control": "no-store"})

    @app.get("/api/health")
    async def health():
        return {"ok": True, "active_job": svc.runner.active()}

    @app.get("/api/settings")
    async def get_settings():
        return {"data_root": str(settings.data_root), "runs_root": str(settings.runs_root),
                "token_required": bool(settings.token),
                "max_upload_mib": settings.max_upload_bytes // 2**20,
                "max_image_mib": settings.max_image_bytes // 2**20,
                "loopback_only": loopback_only, "lab": app.state.lab}

    # -- datasets --------------------------------------------------------------------------
    @app.get("/api/datasets")
    def datasets():
        return svc.list_datasets()

    @app.get("/api/datasets/info")
    def dataset_info(path: str, val_fraction: float = 0.2, seed: int = 0):
        return svc.dataset_info(path, val_fraction=val_fraction, seed=seed)

    @app.get("/api/datasets/thumb")
    def thumbnail(path: str, size: int = 160):
        if not 16 <= size <= 512:
            raise ValueError(f"size must be between 16 and 512 pixels, got {size}")
        return Response(svc.thumbnail(path, size), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/datasets/upload")
    async def upload_dataset(request: Request):
        form = await request.form(max_files=1, max_fields=4)
        upload, name = form.get("file"), str(form.get("name") or "").strip()
        if upload is None or isinstance(upload, str):
            raise ValueError("send the zip as the multipart field 'file'")
        name = name or Path(upload.filename or "dataset").stem
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")[:64]
        if not name:
            raise ValueError("give the dataset a name (letters, digits, - _ .)")
        if (settings.data_root / "uploads" / name).exists():
            raise SecurityError(f"a dataset named {name!r} was already uploaded; "
                                "choose another name", 409)
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
            zip_path = Path(tmp) / "upload.zip"
            await read_capped(upload, zip_path, settings.max_upload_bytes)
            return await run_in_threadpool(svc.add_uploaded_dataset, zip_path, name)

    # -- models and plans ------------------------------------------------------------------
    @app.get("/api/models")
    def models():
        return svc.list_models()

    @app.post("/api/models/summary")
    def model_summary(req: schemas.SummaryRequest):
        return svc.model_summary(req.model, req.num_classes, req.train_top, req.hidden,
                                 req.dropout, req.train_groups)

    @app.get("/api/strategies")
    def strategies():
        return svc.strategies()

    @app.post("/api/train/plan")
    def plan(req: schemas.PlanRequest):
        return svc.plan(req)

    # -- jobs ------------------------------------------------------------------------------
    @app.post("/api/jobs/train", status_code=202)
    def start_training(req: schemas.TrainOptions):
        return svc.submit_train(req)

    @app.post("/api/runs/{run_id}/resume", status_code=202)
    def resume_run(run_id: str):
        """One click on an interrupted run: continue it from its last completed epoch."""
        return svc.resume_train(run_id)

    @app.get("/api/jobs")
    def jobs():
        return svc.runner.list()

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str):
        return svc.runner.get(job_id)

    @app.post("/api/jobs/{job_id}/stop")
    def stop_job(job_id: str):
        return svc.runner.stop(job_id)

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request):
        svc.runner.get(job_id)  # 404 for unknown jobs, before the stream starts
        last = request.headers.get("last-event-id", "")
        first_line = int(last) + 1 if last.isdigit() else 0
        return StreamingResponse(_event_stream(svc, job_id, request, first_line),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- runs ------------------------------------------------------------------------------
    @app.get("/api/runs")
    def runs():
        return svc.list_runs()

    @app.get("/api/runs/compare")
    def compare(a: str, b: str):
        return svc.compare(a, b)

    @app.get("/api/runs/{run_id}")
    def run(run_id: str):
        return svc.get_run(run_id)

    @app.get("/api/runs/{run_id}/files/{name}")
    def run_file(run_id: str, name: str, download: bool = False):
        path, media = svc.run_file(run_id, name)
        attach = download or name.endswith(".safetensors")
        return FileResponse(path, media_type=media,
                            filename=f"{run_id}-{name}" if attach else None,
                            content_disposition_type="attachment" if attach else "inline")

    @app.get("/api/runs/{run_id}/exported/{name}")
    def exported_file(run_id: str, name: str):
        return FileResponse(svc.exported_file(run_id, name), filename=f"{run_id}-{name}",
                            media_type="application/octet-stream")

    @app.get("/api/runs/{run_id}/grad-norms")
    def grad_norms(run_id: str):
        return svc.grad_norms(run_id)

    @app.post("/api/runs/{run_id}/predict")
    async def predict(run_id: str, request: Request):
        form = await request.form(max_files=1, max_fields=4)
        raw = str(form.get("topk") or 5)
        if not raw.strip().isdigit():
            raise ValueError(f"topk must be a whole number, got {raw!r}")
        topk = int(raw)
        if not 1 <= topk <= 100:
            raise ValueError(f"topk must be between 1 and 100, got {topk}")
        async with _ImageFromForm(svc, form, tmp_root) as image:
            return await run_in_threadpool(svc.predict, run_id, image, topk)

    @app.post("/api/runs/{run_id}/export", status_code=202)
    def export(run_id: str, req: schemas.ExportRequest):
        return svc.submit_export(run_id, req.format)

    @app.post("/api/inspect")
    async def inspect(request: Request):
        form = await request.form(max_files=1, max_fields=6)
        run_id = str(form.get("run_id") or "") or None
        model = str(form.get("model") or "") or None
        async with _ImageFromForm(svc, form, tmp_root) as image:
            return await run_in_threadpool(svc.inspect, image, run_id=run_id, model=model)

    # -- experiments and learning ----------------------------------------------------------
    @app.get("/api/experiments")
    def experiments():
        return svc.experiments()

    @app.post("/api/experiments", status_code=202)
    def start_sweep(req: schemas.SweepRequest):
        return svc.submit_sweep(req)

    @app.get("/api/experiments/{sweep_id}")
    def sweep(sweep_id: str):
        return svc.get_sweep(sweep_id)

    @app.get("/api/experiments/{sweep_id}/files/{name}")
    def sweep_file(sweep_id: str, name: str):
        path, media = svc.sweep_file(sweep_id, name)
        return FileResponse(path, media_type=media)

    @app.get("/api/learn/quiz")
    def quiz():
        return svc.quiz()

    @app.post("/api/learn/check")
    def check(req: schemas.Answer):
        return svc.check_answer(req.id, req.answer)

    return app


def _cross_site(request: Request) -> bool:
    """A state-changing request sent by a page of another site (CSRF against a local server).

    Browsers mark such requests with ``Sec-Fetch-Site: cross-site`` and an ``Origin`` whose
    host differs from the ``Host`` the request was sent to; scripts and the CLI send neither.
    """
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


class _ImageFromForm:
    """An image for predict/inspect: an uploaded file (copied to a temp file, size-capped)
    or ``path``, relative to the data root."""

    def __init__(self, svc: Service, form, tmp_root: Path) -> None:
        self.svc, self.form, self.tmp_root = svc, form, tmp_root
        self.tmp: Path | None = None

    async def __aenter__(self) -> Path:
        upload, rel = self.form.get("file"), self.form.get("path")
        if upload is not None and not isinstance(upload, str):
            suffix = Path(upload.filename or "image").suffix.lower()[:8] or ".img"
            self.tmp_root.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(dir=self.tmp_root))
            dest = self.tmp / f"upload{suffix}"
            try:
                await read_capped(upload, dest, self.svc.settings.max_image_bytes)
            except BaseException:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None
                raise
            return dest
        if rel:
            return self.svc.image_file(str(rel))
        raise ValueError("send an image as the multipart field 'file', or 'path' (an image "
                         "under the data root)")

    async def __aexit__(self, *exc) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


async def _event_stream(svc: Service, job_id: str, request: Request, first_line: int):
    """Server-sent events: job state changes, then every line of the run's ``events.jsonl``
    (``id:`` is the line number, so a reconnecting EventSource resumes where it left off)."""
    sent_job = None
    offset, line_no, partial = 0, 0, b""
    while True:
        job = svc.runner.get(job_id)
        if job != sent_job:
            sent_job = job
            yield f"data: {json.dumps({'event': 'job', 'job': job})}\n\n"
        path = svc.job_events_path(job)
        got_lines = False
        if path is not None and path.is_file():
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read(1 << 20)
            offset += len(chunk)
            data = partial + chunk
            *lines, partial = data.split(b"\n")
            for raw in lines:
                if raw.strip() and line_no >= first_line:
                    yield f"id: {line_no}\ndata: {raw.decode('utf-8', 'replace')}\n\n"
                    got_lines = True
                line_no += 1 if raw.strip() else 0
        if job["state"] in TERMINAL and not got_lines:
            yield f"data: {json.dumps({'event': 'end', 'state': job['state']})}\n\n"
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.25)
