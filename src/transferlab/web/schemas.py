"""Request bodies, validated at the edge (Pydantic). Responses are plain JSON from the service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, create_model, field_validator

from ..models.factory import DEFAULT_MODEL
from ..options import BY_NAME, SWEEP_KINDS, WEB, Option, check, options_for

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SummaryRequest(_Strict):
    """The layer-group diagram of a backbone with the head for ``num_classes`` classes."""

    model: str = Field(DEFAULT_MODEL, min_length=1, max_length=100)
    num_classes: int = Field(4, ge=2, le=100_000)
    train_top: int | None = Field(None, ge=0, description="trainable: head + top K groups")
    train_groups: list[str] | None = Field(
        None, max_length=64, description="trainable: exactly these body groups + the head")
    hidden: int | None = Field(None, ge=1, le=65_536)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


def _web_field(o: Option):
    """Type and Field of option ``o`` for the web: the table's default, choices and range
    (in the JSON schema); the table's :func:`~transferlab.options.check` decides."""
    base = {"int": int, "float": float, "str": str, "bool": bool, "floats": list[Any],
            "strs": list[str]}[o.kind]
    choices = o.web_choices or o.choices
    tp = Literal[choices] if choices else base  # type: ignore[valid-type]
    if o.nullable:
        tp = tp | None
    extra: dict = {"description": o.help, "json_schema_extra": {"group": o.group}}
    if o.kind in ("int", "float"):
        extra.update(ge=o.min, gt=o.gt, le=o.web_max if o.web_max is not None else o.max,
                     lt=o.lt)
    if o.kind in ("floats", "strs"):
        extra["max_length"] = 64
    return tp, Field(o.default, **extra)


def _checked(names: tuple[str, ...]):
    """One ``field_validator`` running the table's check on every option (same messages as
    the CLI and ``TrainConfig``); runs before Pydantic's own type and range checks."""

    def run(cls, value, info):
        o = BY_NAME[info.field_name]
        if isinstance(value, str) and o.kind in ("int", "float", "floats"):
            raise ValueError(f"{o.name} must be {'a whole number' if o.kind == 'int' else 'a number'}"
                             f", got {value!r}")
        if o.kind == "floats" and isinstance(value, list):
            # the learning-rate table: checked by the service, which knows the groups and
            # names the one whose rate is blank, text, zero or negative
            return value
        return check(o.name, value)

    return field_validator(*names, mode="before")(classmethod(run))


_WEB_OPTIONS = options_for(WEB)

# What the Train page sends: every option of the table the web shows, plus the dataset.
TrainOptions = create_model(
    "TrainOptions",
    __base__=_Strict,
    __validators__={"_table": _checked(tuple(o.name for o in _WEB_OPTIONS))},
    data=(str, Field(..., min_length=1, max_length=500,
                     validation_alias=AliasChoices("data", "dataset"),
                     description="dataset folder, relative to the data root")),
    **{o.name: _web_field(o) for o in _WEB_OPTIONS},
)
TrainOptions.__doc__ = ("Training options from the Train page: generated from "
                        ":data:`transferlab.options.OPTIONS` (the ``web`` face).")


class PlanRequest(TrainOptions):
    """Same fields as a training request; the dataset is optional (only the plan is made)."""

    data: str = Field(".", validation_alias=AliasChoices("data", "dataset"))
    num_classes: int = Field(4, ge=2, le=100_000)


class SweepRequest(_Strict):
    kind: Literal[tuple(SWEEP_KINDS)]  # type: ignore[valid-type]
    train: TrainOptions
    values: list[int | str] | None = Field(
        None, max_length=20,
        description="data-size: images per class; freeze-depth: K values; compare: names")
    seeds: int | None = Field(None, ge=1, le=10, description="repeats per setting (for "
                              "intervals); default: the kind's, as on the command line")
    scratch: bool = Field(False, description="data-size: also train from random weights")


class ExportRequest(_Strict):
    format: str = Field(..., min_length=1, max_length=40)


class Answer(_Strict):
    id: str = Field(..., min_length=1, max_length=64)
    answer: str = Field(..., max_length=200)
