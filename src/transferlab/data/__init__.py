"""Data layer: scan and validate image folders, split them, load images, build transforms.

Typical use::

    splits = load_splits("my_photos", per_class=50, seed=0)
    data_cfg = timm.data.resolve_data_config(model=model)
    train_loader = make_loader(
        splits.train, build_transforms(data_cfg, train=True),
        batch_size=32, shuffle=True, seed=0,
    )
"""

from .datasets import ImageDataset, load_rgb, make_loader, to_rgb
from .scan import (
    IMAGE_EXTENSIONS,
    BadFile,
    DataError,
    DatasetSplits,
    ImageFolderIndex,
    Sample,
    load_splits,
    per_class_subset,
    scan_image_folder,
    stratified_split,
    validate_image,
)
from .transforms import AUGMENTATIONS, build_transforms

__all__ = [
    "AUGMENTATIONS",
    "IMAGE_EXTENSIONS",
    "BadFile",
    "DataError",
    "DatasetSplits",
    "ImageDataset",
    "ImageFolderIndex",
    "Sample",
    "build_transforms",
    "load_rgb",
    "load_splits",
    "make_loader",
    "per_class_subset",
    "scan_image_folder",
    "stratified_split",
    "to_rgb",
    "validate_image",
]
