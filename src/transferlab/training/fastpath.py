"""Choose the fastest correct inputs for a training phase.

1. **Cached activations.** When every group below group ``k`` is frozen (BatchNorm frozen
   too) and the inputs are not randomly augmented — or ``feature_views`` augmented views
   are cached — the frozen part runs once per image (per view) and the phase trains
   ``upper + head`` on the stored boundary-``k`` activations. ``k`` equal to the number of
   body groups is feature extraction: the head on pooled features.
2. **Decode once + device augmentation.** Otherwise, with ``fast_data``, images come from the
   decoded uint8 store and are cropped, flipped and colour-jittered in batches on the device;
   the frozen bottom (if any) runs without autograd.
3. Anything else (``strong`` RandAugment, gradual unfreezing with caching, distributed runs)
   returns ``None``: the caller uses the per-image PIL pipeline.

Every path feeds the same Trainer, and the loaders expose ``generator`` so the Trainer's
per-epoch reseeding keeps runs reproducible and resumable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.datasets import make_loader
from ..data.decoded import (
    DecodedLoader,
    DecodedSource,
    StreamingDecodedSource,
    decoded_store,
    find_store,
)
from ..data.features import PilSource, cached_activations, feature_loader
from ..data.gpu_augment import DEVICE_AUGMENTS, DeviceAugment
from ..data.transforms import build_transforms
from ..finetune.freeze import first_trainable_index
from ..models.batchnorm import updates_frozen_statistics
from ..models.staged import (
    FrozenLowerModel,
    UpperModel,
    num_boundaries,
    split_at,
    supports_staging,
)


@dataclass
class PhaseInputs:
    module: nn.Module  # what the Trainer trains (shares parameters with the model)
    train_loader: object
    val_loader: object
    head_only: bool  # True: ``module`` is the head alone, on pooled features
    how: str  # a short description, for logs and benchmarks

    def as_tuple(self) -> tuple:
        return self.module, self.train_loader, self.val_loader, self.head_only


def _store(model, cfg, samples, split: str, device, cache: dict):
    key = ("decoded", split)
    if key not in cache:
        cache[key] = decoded_store(samples, model.data_config, cache_dir=cfg.cache_dir or None,
                                   device=device)
    return cache[key]


# Decode while the engine extracts (StreamingDecodedSource) instead of building the store first.
STREAM_DECODE = True


def activation_source(model, cfg, splits, split: str, augment: str, device, cache: dict):
    samples = getattr(splits, split)
    views = augment != "none"
    if getattr(cfg, "fast_data", True) and (not views or augment in DEVICE_AUGMENTS):
        if (STREAM_DECODE and not views and ("decoded", split) not in cache
                and device.type == "cpu"):
            store = find_store(samples, model.data_config, cache_dir=cfg.cache_dir or None,
                               device=device)
            if store is None:  # decode while the engine extracts; the store is built too
                return StreamingDecodedSource(samples, model.data_config,
                                              cache_dir=cfg.cache_dir or None, device=device,
                                              seed=cfg.seed)
            cache[("decoded", split)] = store
        store = _store(model, cfg, samples, split, device, cache)
        return DecodedSource(store, model.data_config, augment=augment, seed=cfg.seed)
    eval_tf = build_transforms(model.data_config, train=False)
    train_tf = build_transforms(model.data_config, train=True, augment=augment) if views else None
    return PilSource(samples, eval_tf, train_transform=train_tf, seed=cfg.seed,
                     num_workers=cfg.num_workers)


def cacheable_boundary(model, cfg, phase) -> int | None:
    """The boundary whose activations this phase can train from, or None."""
    if not cfg.cache_features or phase.unfreeze_every:
        return None
    views = getattr(cfg, "feature_views", 0)
    if phase.augment != "none" and not views:
        return None
    k = min(first_trainable_index(model), num_boundaries(model))
    if k == 0:
        return None
    if k == num_boundaries(model):
        return k
    if updates_frozen_statistics(cfg.bn_policy) or not supports_staging(model):
        return None  # BatchNorm below k would update its statistics / no staged forward
    return k


def phase_inputs(model, cfg, phase, splits, device: torch.device,
                 cache: dict) -> PhaseInputs | None:
    """Inputs for ``phase`` (the model's groups already frozen for it), or None."""
    from .distributed import world_size

    if world_size() > 1:
        return None
    boundary = cacheable_boundary(model, cfg, phase)
    if boundary is not None:
        return _cached_inputs(model, cfg, phase, splits, device, cache, boundary)
    if getattr(cfg, "fast_data", True) and phase.augment in DEVICE_AUGMENTS:
        return _decoded_inputs(model, cfg, phase, splits, device, cache)
    return None


def _cached_inputs(model, cfg, phase, splits, device, cache, boundary: int) -> PhaseInputs:
    views = getattr(cfg, "feature_views", 0) if phase.augment != "none" else 0
    common = {"boundary": boundary, "cache_dir": cfg.cache_dir or None, "device": device,
              "engine": getattr(cfg, "engine", "auto"), "log": cache.get("log")}
    train = cached_activations(model, activation_source(model, cfg, splits, "train", phase.augment,
                                              device, cache), views=views, **common)
    val = cached_activations(model, activation_source(model, cfg, splits, "val", "none", device, cache),
                             **common)
    head_only = boundary == num_boundaries(model)
    if head_only:
        module: nn.Module = model.head
        if not views:  # the final evaluation reuses these (see fine_tune)
            cache["train"] = (train.tensor(), train.labels)
        cache["val"] = (val.tensor(), val.labels)
    else:
        module = UpperModel(split_at(model, boundary)[1], model.head, cfg.bn_policy)
    for note in [*train.notes, *(n for n in val.notes if n not in train.notes)]:
        if note not in cfg.notes:
            cfg.notes.append(note)
    how = (f"cached activations at boundary {boundary} ({model.group_names[boundary]}), "
           f"{f'{views} augmented views' if views else 'no augmentation'}, "
           f"{'hit' if train.hit else 'extracted'}")
    return PhaseInputs(module, train.loader(batch_size=cfg.batch_size, shuffle=True,
                                            seed=cfg.seed),
                       val.loader(batch_size=max(256, cfg.batch_size * 2), shuffle=False),
                       head_only, how)


def _decoded_inputs(model, cfg, phase, splits, device, cache) -> PhaseInputs:
    train_store = _store(model, cfg, splits.train, "train", device, cache)
    val_store = _store(model, cfg, splits.val, "val", device, cache)
    module: nn.Module = model
    k = min(first_trainable_index(model), num_boundaries(model))
    if (k > 0 and not phase.unfreeze_every and not updates_frozen_statistics(cfg.bn_policy)
            and (k == num_boundaries(model) or supports_staging(model))):
        lower, upper = split_at(model, k)
        module = FrozenLowerModel(lower, upper, model.head, cfg.bn_policy)
    data_cfg = model.data_config
    train = DecodedLoader(train_store, DeviceAugment(data_cfg, phase.augment),
                          batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed, device=device)
    val = DecodedLoader(val_store, DeviceAugment(data_cfg, "none"),
                        batch_size=cfg.batch_size * 2, shuffle=False, device=device)
    how = (f"decoded store ({train_store.size}px squares, "
           f"{'hit' if train_store.hit else 'built'}) + {phase.augment} augmentation on "
           f"{device.type}" + (f", groups below {model.group_names[k]} without autograd"
                               if module is not model else ""))
    return PhaseInputs(module, train, val, False, how)


def phase_loaders(model, cfg, phase, splits, device, cache: dict) -> tuple:
    """(module to train, train loader, val loader, cached?) for a phase: cached activations,
    decode-once with device augmentation, cached features of a frozen body, or PIL."""
    from .distributed import cached_features

    # cached activations at the first trainable group, or decode-once + device augmentation
    fast = phase_inputs(model, cfg, phase, splits, device, cache)
    if fast is not None:
        return fast.as_tuple()
    if phase.head_only and phase.augment == "none" and cfg.cache_features:
        if "train" not in cache:
            tf = build_transforms(model.data_config, train=False)
            for split in ("train", "val"):
                x, y, _ = cached_features(model, getattr(splits, split), tf,
                                          cache_dir=cfg.cache_dir or None, device=device,
                                          engine=getattr(cfg, "engine", "auto"))
                cache[split] = (x, y)
        return (model.head,
                feature_loader(*cache["train"], batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed),
                feature_loader(*cache["val"], batch_size=256, shuffle=False), True)
    train_tf = build_transforms(model.data_config, train=True, augment=phase.augment)
    eval_tf = build_transforms(model.data_config, train=False)
    return (model,
            make_loader(splits.train, train_tf, batch_size=cfg.batch_size, shuffle=True,
                        seed=cfg.seed, num_workers=cfg.num_workers),
            make_loader(splits.val, eval_tf, batch_size=cfg.batch_size * 2, shuffle=False,
                        seed=cfg.seed, num_workers=cfg.num_workers), False)
