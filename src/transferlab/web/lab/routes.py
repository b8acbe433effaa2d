"""The Lab's HTTP API (``/api/lab/...``): run code in the session's kernel, stream what it
prints, inspect its tensors, check challenges.

Whether the Lab is on (:func:`lab_policy`): by default only when the server answers on
loopback alone; off loopback it needs both the token and ``transferlab serve --allow-code``.
When it is off, every ``/api/lab/...`` route answers 403 and ``/api/settings`` says why, so the
page hides the Lab. Code sent here runs as the server's user, on the server's machine.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import MISSING, asdict, fields

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from . import challenges as ch
from .kernels import KernelPool, LabError, LabKernel, LabLimits, new_session_id

SESSION_COOKIE = "transferlab_lab"
MAX_CODE_CHARS = 200_000


class RunRequest(BaseModel):
    code: str = Field(max_length=MAX_CODE_CHARS)
    wait: bool = False  # answer when the run has finished (scripts, tests)


class AnswerRequest(BaseModel):
    answer: str | None = Field(default=None, max_length=200)
    code: str | None = Field(default=None, max_length=MAX_CODE_CHARS)


def lab_policy(*, loopback_only: bool, token: str | None, allow_code: bool | None
               ) -> tuple[bool, str]:
    """(enabled, reason). ``allow_code``: None = the default (loopback only), False = off."""
    if allow_code is False:
        return False, "lab.off.disabled"
    if loopback_only:
        return True, "lab.on.loopback"
    if token and allow_code:
        return True, "lab.on.allowed"
    return False, "lab.off.network"


def mount_lab(app: FastAPI, *, enabled: bool, reason: str, runs_dir=None,
              limits: LabLimits | None = None) -> KernelPool | None:
    """Add the Lab's routes to ``app``; returns the kernel pool (None when the Lab is off).

    ``runs_dir(run_id) -> Path``: a run's folder, for "Open in Lab".
    """
    app.state.lab = {"enabled": enabled, "reason": reason}
    router = APIRouter(prefix="/api/lab")
    if not enabled:
        @router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
        async def refused(rest: str):
            return JSONResponse({"detail": "the Lab is off on this server: it runs Python code "
                                 "as the server's user, so off loopback it needs the token and "
                                 "`transferlab serve --allow-code`"}, status_code=403)
        app.include_router(router)
        return None

    pool = app.state.lab_pool = KernelPool(limits)
    attempts = ch.Attempts()
    app.state.lab["limits"] = asdict(pool.limits)

    def session_id(request: Request) -> str:
        sid = request.cookies.get(SESSION_COOKIE)
        if not sid:
            raise LabError("no Lab session: open the Lab page (POST /api/lab/session) first", 400)
        return sid

    def kernel(request: Request) -> LabKernel:
        return pool.session(session_id(request))

    @router.post("/session")
    async def session(request: Request):
        sid = request.cookies.get(SESSION_COOKIE) or new_session_id()
        k = pool.get(sid)
        body = {"limits": asdict(pool.limits), "started": bool(k and k.km),
                "last_event": k.seq if k else 0, "runs": k.run_no if k else 0}
        response = JSONResponse(body)
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict")
        return response

    @router.post("/run")
    async def run(req: RunRequest, request: Request):
        k = kernel(request)
        run_no = await k.start_run(req.code)
        if req.wait:
            return await k.wait_run()
        return {"run": run_no}

    @router.post("/interrupt")
    async def interrupt(request: Request):
        k = pool.get(session_id(request))
        return {"interrupted": bool(k) and await k.interrupt()}

    @router.post("/restart")
    async def restart(request: Request):
        k = kernel(request)
        await k.restart()
        return {"restarted": True, "restarts": k.restarts}

    @router.get("/events")
    async def events(request: Request, after: int = 0, follow: bool = True):
        """The session's events as server-sent events; ``follow=false`` ends the stream once
        the events so far are sent and no run is going."""
        k = kernel(request)
        last = request.headers.get("last-event-id", "")
        start = int(last) if last.isdigit() else after
        return StreamingResponse(_stream(k, request, start, follow),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    @router.get("/inspect")
    async def inspect(request: Request):
        k = kernel(request)
        if k.km is None:
            return {"tensors": [], "modules": [], "truncated": False}
        return await k.ask({"op": "snapshot", "commit": False})

    @router.get("/module")
    async def module(name: str, request: Request):
        return _answer(await kernel(request).ask({"op": "module", "name": name}))

    @router.get("/image")
    async def image(name: str, request: Request):
        return _answer(await kernel(request).ask({"op": "image", "name": name}))

    @router.get("/challenges")
    async def challenge_list():
        return [ch.public(c) for c in ch.CHALLENGES.values()]

    @router.post("/challenges/{challenge_id}/{step}")
    async def answer(challenge_id: str, step: int, req: AnswerRequest, request: Request):
        sid = session_id(request)
        challenge, st = _step(challenge_id, step)
        out: dict = {}
        if st.kind == "number":
            if req.answer is None:
                raise LabError("this step takes a number: send {'answer': ...}", 422)
            verdict = ch.check_number(st, req.answer)
        else:
            if req.code is None:
                raise LabError("this step takes code: send {'code': ...}", 422)
            k = pool.session(sid)
            if challenge.setup:
                await k.start_run(challenge.setup)
                await k.wait_run()
            await k.start_run(req.code)
            out["run"] = await k.wait_run()
            if out["run"]["status"] != "ok":
                errs = out["run"]["errors"]
                verdict = {"ok": False, "message": "check.run_failed",
                           "params": {"status": out["run"]["status"],
                                      "error": f"{errs[0]['ename']}: {errs[0]['evalue']}"
                                      if errs else ""}}
            else:
                verdict = await k.ask({"op": "check", "check": st.check})
                if "error" in verdict:
                    raise LabError(verdict["error"], 500)
        return {**verdict, **out, **attempts.record(sid, challenge_id, step, verdict["ok"])}

    @router.post("/challenges/{challenge_id}/{step}/solution")
    async def solution(challenge_id: str, step: int):
        _, st = _step(challenge_id, step)
        return {"solution": st.solution}

    @router.get("/snippet")
    async def snippet(run: str):
        if runs_dir is None:
            raise LabError("runs are not available here", 404)
        folder = runs_dir(run)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return {"run": run, "code": run_snippet(config)}

    app.include_router(router)
    return pool


def _step(challenge_id: str, step: int):
    try:
        return ch.get(challenge_id, step)
    except KeyError as exc:
        raise LabError(str(exc.args[0]), 404) from exc


def _answer(doc: dict) -> dict:
    if "error" in doc:
        raise LabError(doc["error"], 422)
    return doc


def lab_error_response(_request, exc: LabError) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


async def _stream(k: LabKernel, request: Request, after: int, follow: bool = True):
    """Server-sent events of the session's log from ``after`` on (``id:`` is the sequence)."""
    sent = after
    yield ": lab\n\n"
    while True:
        waiter = k.changed
        for event in k.events_after(sent):
            sent = event["seq"]
            yield f"id: {sent}\ndata: {json.dumps(event)}\n\n"
        if not follow and not k.running:
            return
        if await request.is_disconnected():
            return
        try:
            await asyncio.wait_for(waiter.wait(), timeout=15)
        except asyncio.TimeoutError:
            yield ": keep-alive\n\n"


def run_snippet(config: dict) -> str:
    """The Python that reruns a run: its config's non-default fields into ``fine_tune``."""
    from ...config import TrainConfig

    defaults = {f.name: f.default if f.default is not MISSING else
                (f.default_factory() if f.default_factory is not MISSING else None)
                for f in fields(TrainConfig)}
    lines = ["from transferlab import TrainConfig, fine_tune", "", "config = TrainConfig("]
    lines.append(f"    data={config.get('data')!r},")
    for f in fields(TrainConfig):
        if f.name == "data" or f.name not in config:
            continue
        value = config[f.name]
        if value != defaults.get(f.name):
            lines.append(f"    {f.name}={value!r},")
    lines += [")", "result = fine_tune(config)",
              "print(result.accuracy, result.run_dir)", ""]
    return "\n".join(lines)
