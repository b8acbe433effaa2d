"""The Lab's challenges: steps answered with a number or with code run in the kernel.

A ``number`` step is compared with its answer here; a ``code`` step runs the learner's code in
their kernel and then a check from :mod:`.checks` reads the kernel's objects (``new_layer``,
``model``, ``optimizer``, ``stop_epoch``), never the code's text. After the first wrong try the
answer carries ``hint: true``, after the second (or on request) the solution.

Every sentence (titles, prompts, hints, feedback) lives in the message catalogs under
``challenge.<id>.*`` and ``check.*``; this module holds only answers, code and structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .checks import EARLY_STOP_GIVEN


@dataclass(frozen=True)
class Step:
    kind: str  # "number" | "code"
    answer: float | None = None  # number steps
    check: str | None = None  # code steps: a name in checks.CHECKS
    solution: str = ""  # shown after two wrong tries or on request
    starter: str = ""  # code steps: what the editor opens with (comments from the catalogs)


@dataclass(frozen=True)
class Challenge:
    id: str
    steps: tuple[Step, ...]
    setup: str = ""  # run in the kernel before a code step is checked (e.g. load a model)
    questions: tuple[str, ...] = field(default_factory=tuple)  # Learn-page questions it practises


MODEL_SETUP = ("import torch\nfrom transferlab.models import create_model\n"
               "if 'model' not in globals():\n"
               "    model = create_model('tf_efficientnet_lite0', num_classes=7)\n")

CHALLENGES: dict[str, Challenge] = {c.id: c for c in (
    Challenge("head", questions=("new-layer",), steps=(
        Step("number", answer=512, solution="512"),
        Step("code", check="head_layer", solution="new_layer = torch.nn.Linear(512, 7)",
             starter="import torch\n\nnew_layer = ...\n"),
        Step("number", answer=7, solution="7"),
    )),
    Challenge("freeze", setup=MODEL_SETUP, questions=("head-params", "unfreeze-first"), steps=(
        Step("number", answer=1280 * 7 + 7, solution=f"1280 × 7 + 7 = {1280 * 7 + 7}"),
        Step("code", check="freeze_body",
             solution="for p in model.body.parameters():\n    p.requires_grad = False\n"
                      "for p in model.head.parameters():\n    p.requires_grad = True\n",
             starter="for p in model.body.parameters():\n    ...\n"),
    )),
    Challenge("lrs", setup=MODEL_SETUP, questions=("discriminative-lr",), steps=(
        Step("number", answer=1e-6, solution="1e-6"),
        Step("code", check="disc_lrs",
             solution=("blocks = list(model.body.parameters())\nhalf = len(blocks) // 2\n"
                       "for p in model.parameters():\n    p.requires_grad = True\n"
                       "optimizer = torch.optim.AdamW([\n"
                       "    {'params': blocks[:half], 'lr': 1e-6},\n"
                       "    {'params': blocks[half:], 'lr': 1e-5},\n"
                       "    {'params': model.head.parameters(), 'lr': 1e-4},\n])\n"),
             starter="optimizer = torch.optim.AdamW([\n    ...\n])\n"),
    )),
    Challenge("early", questions=("early-stopping",), steps=(
        Step("number", answer=6, solution="6"),
        Step("code", check="early_stopping",
             solution=("def stop_epoch(losses, patience=2):\n    best, wait = float('inf'), 0\n"
                       "    for epoch, loss in enumerate(losses, start=1):\n"
                       "        if loss < best:\n            best, wait = loss, 0\n"
                       "        else:\n            wait += 1\n"
                       "            if wait >= patience:\n                return epoch\n"
                       "    return len(losses)\n"),
             starter=f"val_losses = {EARLY_STOP_GIVEN}\n\n"
                     "def stop_epoch(losses, patience=2):\n    ...\n\n"
                     "print(stop_epoch(val_losses))\n"),
    )),
)}


def public(challenge: Challenge) -> dict:
    """What the page needs to show a challenge (no answers, no solutions)."""
    return {"id": challenge.id, "questions": list(challenge.questions),
            "given": {"val_losses": EARLY_STOP_GIVEN} if challenge.id == "early" else {},
            "steps": [{"kind": s.kind, "starter": s.starter} for s in challenge.steps]}


def get(challenge_id: str, step: int) -> tuple[Challenge, Step]:
    challenge = CHALLENGES.get(challenge_id)
    if challenge is None:
        raise KeyError(f"no challenge {challenge_id!r}; there are {', '.join(CHALLENGES)}")
    if not 0 <= step < len(challenge.steps):
        raise KeyError(f"challenge {challenge_id!r} has steps 0..{len(challenge.steps) - 1}, "
                       f"not {step}")
    return challenge, challenge.steps[step]


def check_number(step: Step, answer: str) -> dict:
    try:
        value = float(str(answer).strip().replace(",", "").replace("_", ""))
    except ValueError:
        return {"ok": False, "message": "check.not_a_number", "params": {"got": str(answer)}}
    ok = math.isclose(value, float(step.answer), rel_tol=1e-9, abs_tol=0.0)
    return {"ok": ok, "message": "check.number_ok" if ok else "check.number_wrong",
            "params": {"got": value}}


class Attempts:
    """Wrong tries per (session, challenge, step): a hint after one, the solution after two."""

    def __init__(self) -> None:
        self.wrong: dict[tuple[str, str, int], int] = {}

    def record(self, session: str, challenge_id: str, step: int, ok: bool) -> dict:
        key = (session, challenge_id, step)
        if not ok:
            self.wrong[key] = self.wrong.get(key, 0) + 1
        n = self.wrong.get(key, 0)
        _, s = get(challenge_id, step)
        return {"wrong_tries": n, "hint": n >= 1 and not ok,
                "solution": s.solution if n >= 2 and not ok else None}
