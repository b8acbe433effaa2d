"""Find, check and split the images of a dataset laid out as class folders.

Small user datasets are messy: a zero-byte upload, a screenshot saved as ``.jpg`` that is
really HTML, a half-copied JPEG, a ``.DS_Store``.  Rather than crash an hour into training
(or silently train on fewer images), everything here is checked up front: unusable files
are *reported* with a reason and skipped, and structural problems (no classes, an empty
class, a validation class unknown to training) stop with a :class:`DataError` that names
the folder, file or value at fault.

Every listing and split is deterministic for a given seed, so runs can be compared.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "BadFile",
    "DataError",
    "DatasetSplits",
    "ImageFolderIndex",
    "Sample",
    "load_splits",
    "per_class_subset",
    "scan_image_folder",
    "stratified_split",
    "validate_image",
]

Sample = tuple[str, int]
"""One labelled image: (path, class index)."""

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
"""Lower-case suffixes accepted as images; compare with ``suffix.lower()``."""

# Operating-system clutter that is neither an image nor worth a warning.
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})

# Names that mark the split-folder layout root/{train,val,test}/class/*.
_TRAIN_NAMES = ("train",)
_VAL_NAMES = ("val", "valid", "validation")
_TEST_NAMES = ("test",)
_SPLIT_NAMES = frozenset(_TRAIN_NAMES + _VAL_NAMES + _TEST_NAMES)

# JPEGs are decoded at reduced scale (DCT scaling) when validating: every byte of the
# entropy-coded data is still read, so truncation and corruption are still caught.
_DRAFT_SIZE = (256, 256)

# warnings.catch_warnings() swaps process-global state, so concurrent validation
# threads must take turns while they open (parse the header of) a file.
_OPEN_LOCK = threading.Lock()


class DataError(ValueError):
    """A dataset cannot be used as given; the message names the folder, file or value."""


@dataclass
class BadFile:
    """A file that was skipped, and why (shown to the user so they can fix their data)."""

    path: str
    reason: str


@dataclass
class ImageFolderIndex:
    """The usable images of one ``root/<class>/<image>`` folder, plus what was skipped."""

    root: Path
    classes: list[str]
    samples: list[Sample]
    bad_files: list[BadFile] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Usable images per class, in class-index order (to spot imbalance at a glance)."""
        counts = dict.fromkeys(self.classes, 0)
        for _, label in self.samples:
            counts[self.classes[label]] += 1
        return counts


@dataclass
class DatasetSplits:
    """Train/val(/test) samples sharing one class list, with everything worth telling the user.

    ``layout`` is ``"split-folders"`` (root/train/class/...) or ``"class-folders"``
    (root/class/..., split here).  ``notes`` holds human-readable remarks such as clipped
    per-class requests, so a report can show exactly which data a run used.
    """

    root: Path
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample] | None
    bad_files: list[BadFile]
    layout: str
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- validation


def validate_image(path: str | os.PathLike[str]) -> str | None:
    """Return ``None`` if *path* decodes as an image, else a short human-readable reason.

    The image is fully decoded because truncated files pass ``Image.verify()`` and only
    fail later in a DataLoader worker.  Images over ``PIL.Image.MAX_IMAGE_PIXELS`` are
    rejected (decompression-bomb guard) instead of producing a warning.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if size == 0:
        return "zero bytes"
    try:
        img = _open_guarded(p)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return _too_large_reason(p)
    except UnidentifiedImageError:
        return "not an image (cannot identify image file)"
    except PermissionError as exc:
        return f"cannot read: {exc.strerror or exc}"
    except Exception as exc:  # any parser failure means the file is unusable
        return f"truncated or corrupt: {_describe(exc)}"
    try:
        with img:
            if img.format in ("JPEG", "MPO"):
                img.draft("RGB", _DRAFT_SIZE)
            img.load()
            if img.width < 1 or img.height < 1:
                return f"truncated or corrupt: empty image {img.width}x{img.height}"
    except Exception as exc:  # decoder errors come as OSError, SyntaxError, ValueError, ...
        return f"truncated or corrupt: {_describe(exc)}"
    return None


def _open_guarded(path: Path) -> Image.Image:
    """Open lazily, turning Pillow's decompression-bomb *warning* into an exception."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _too_large_reason(path: Path) -> str:
    limit = Image.MAX_IMAGE_PIXELS
    size = _header_size(path)
    dims = f"{size[0]}x{size[1]}" if size else "unknown size"
    return f"image too large: {dims} pixels exceeds limit {limit}"


def _header_size(path: Path) -> tuple[int, int] | None:
    """Read width and height from the header only, bypassing the bomb check for the message.

    ``Image.open`` refuses to return oversized images, so this asks the format plugins
    directly (they parse the header and allocate nothing).
    """
    Image.init()
    try:
        with path.open("rb") as fp:
            prefix = fp.read(16)
            for fmt in Image.ID:
                factory, accept = Image.OPEN[fmt]
                if accept is not None:
                    accepted = accept(prefix)
                    if not accepted or isinstance(accepted, str):
                        continue
                try:
                    fp.seek(0)
                    return factory(fp, str(path)).size
                except Exception:
                    continue
    except OSError:
        return None
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


# --------------------------------------------------------------------------- scanning


def scan_image_folder(
    root: str | os.PathLike[str],
    *,
    classes: list[str] | None = None,
    validate: bool = True,
    workers: int | None = None,
) -> ImageFolderIndex:
    """Index ``root/<class>/**/<image>``, reporting and skipping unusable files.

    Pass *classes* (e.g. the training split's list) to keep label ids identical across
    train/val/test; a folder not in that list, or a listed class without a folder, is then
    an error.  Validation decodes every file in a thread pool of *workers* threads
    (default: one per CPU, at most 8; 0 or 1 validates in this thread).
    """
    root_path = Path(root).expanduser().absolute()
    if not root_path.exists():
        raise DataError(f"dataset folder {root_path} does not exist")
    if not root_path.is_dir():
        raise DataError(f"dataset path {root_path} is not a folder")
    root_real = root_path.resolve()

    bad: list[BadFile] = []
    folders: dict[str, Path] = {}
    for entry in sorted(os.scandir(root_path), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        entry_path = Path(entry.path)
        if entry.is_dir():
            if entry.is_symlink() and not _inside(entry_path, root_real):
                bad.append(BadFile(str(entry_path), _outside_reason(entry_path)))
                continue
            folders[entry.name] = entry_path
        elif entry_path.suffix.lower() in IMAGE_EXTENSIONS:
            bad.append(BadFile(str(entry_path), "image is not inside a class folder"))

    if classes is None:
        if not folders:
            raise DataError(
                f"no class folders in {root_path}: expected {root_path}/<class name>/<image>"
            )
        if {name.lower() for name in folders} <= _SPLIT_NAMES:
            raise DataError(
                f"{root_path} holds split folders ({', '.join(folders)}), not class folders: "
                "use load_splits() on it, or scan one split such as "
                f"{root_path / next(iter(folders))}"
            )
        class_list = sorted(folders)
    else:
        class_list = list(classes)
        if len(set(class_list)) != len(class_list):
            raise DataError(f"duplicate names in the class list {class_list}")
        unknown = [name for name in folders if name not in class_list]
        if unknown:
            raise DataError(
                f"folder '{unknown[0]}' in {root_path} is not one of the expected classes "
                f"({', '.join(class_list)})"
            )
        missing = [name for name in class_list if name not in folders]
        if missing:
            raise DataError(f"class '{missing[0]}' has no folder in {root_path}")
    if len(class_list) < 2:
        raise DataError(
            f"{root_path} needs at least 2 classes, found {len(class_list)}"
            + (f" ('{class_list[0]}')" if class_list else "")
        )

    candidates: list[Sample] = []
    for label, name in enumerate(class_list):
        for file_path in _list_files(folders[name], root_real, bad):
            if file_path.suffix.lower() in IMAGE_EXTENSIONS:
                candidates.append((str(file_path), label))
            else:
                suffix = file_path.suffix or "(none)"
                bad.append(BadFile(str(file_path), f"unsupported extension {suffix}"))
    candidates.sort()

    if validate:
        reasons = _validate_all([path for path, _ in candidates], workers)
        samples = [s for s, reason in zip(candidates, reasons, strict=True) if reason is None]
        bad.extend(
            BadFile(path, reason)
            for (path, _), reason in zip(candidates, reasons, strict=True)
            if reason is not None
        )
    else:
        samples = candidates
    bad.sort(key=lambda b: b.path)

    index = ImageFolderIndex(root=root_path, classes=class_list, samples=samples, bad_files=bad)
    for name, count in index.counts().items():
        if count == 0:
            skipped = [b for b in bad if Path(b.path).is_relative_to(folders[name])]
            detail = (
                f"; {len(skipped)} file(s) skipped, e.g. {skipped[0].path}: {skipped[0].reason}"
                if skipped
                else ""
            )
            raise DataError(f"class '{name}' has no usable images in {folders[name]}{detail}")
    return index


def _inside(path: Path, root_real: Path) -> bool:
    return path.resolve().is_relative_to(root_real)


def _outside_reason(path: Path) -> str:
    return f"symlink points outside the dataset folder (to {path.resolve()})"


_LOOP_REASON = "symlink loop (the link leads back to itself)"


def _link_problem(path: Path, root_real: Path) -> str | None:
    """Why a symlink is not followed (it leaves the dataset, loops or dangles), or None."""
    try:
        if not _inside(path, root_real):
            return _outside_reason(path)
    except RuntimeError:  # resolve() raises this for symlink loops before Python 3.13
        return _LOOP_REASON
    try:
        os.stat(path)
    except OSError as exc:
        return _LOOP_REASON if exc.errno == errno.ELOOP else "broken symlink"
    return None


def _list_files(folder: Path, root_real: Path, bad: list[BadFile]) -> list[Path]:
    """All non-hidden files below *folder*; symlinks leaving the dataset are reported.

    Symlinked folders inside the dataset are followed once (a loop cannot recurse forever).
    """
    files: list[Path] = []
    seen = {folder.resolve()}
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            bad.append(BadFile(str(current), f"cannot list folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name.lower() in _IGNORED_NAMES:
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                problem = _link_problem(path, root_real)
                if problem:
                    bad.append(BadFile(str(path), problem))
                    continue
            if entry.is_dir():
                real = path.resolve()
                if entry.is_symlink() and current.resolve().is_relative_to(real):
                    # A link to its own folder or above would pull other classes in.
                    bad.append(BadFile(str(path), "symlink loop (links to a folder that "
                                                  "contains it)"))
                elif real not in seen:
                    seen.add(real)
                    stack.append(path)
            elif entry.is_file():
                files.append(path)
            else:  # opening a named pipe would block forever
                bad.append(BadFile(str(path), "not a regular file (pipe, socket or device)"))
    return files


def _validate_all(paths: Sequence[str], workers: int | None) -> list[str | None]:
    """Decode in threads: Pillow releases the GIL while decoding, so this scales with cores."""
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    if workers <= 1 or len(paths) < 2:
        return [validate_image(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="validate") as pool:
        return list(pool.map(validate_image, paths))


# --------------------------------------------------------------------------- splitting


def _by_class(samples: Iterable[Sample]) -> dict[int, list[Sample]]:
    groups: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[sample[1]].append(sample)
    for items in groups.values():
        items.sort()  # the input order must not change the result
    return dict(sorted(groups.items()))


def _shuffled(items: list[Sample], seed: int, label: int, purpose: str) -> list[Sample]:
    """Shuffle one class with its own RNG so adding a class never changes another's split."""
    items = list(items)
    random.Random(f"{purpose}:{seed}:{label}").shuffle(items)
    return items


def stratified_split(
    samples: Sequence[Sample], val_fraction: float, seed: int, purpose: str = "split"
) -> tuple[list[Sample], list[Sample]]:
    """Split each class in the same proportion, deterministically for *seed*.

    Every class gets at least one validation and one training image, so per-class metrics
    exist even for rare classes; a class with a single image is therefore an error.
    *purpose* keys the shuffle, so a test split (``"test"``) is drawn independently of the
    validation split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    train: list[Sample] = []
    val: list[Sample] = []
    for label, items in _by_class(samples).items():
        if len(items) < 2:
            raise DataError(
                f"class {label} has only {len(items)} image ({items[0][0]}); "
                "at least 2 are needed to split it into train and val"
            )
        n_val = min(max(1, round(len(items) * val_fraction)), len(items) - 1)
        order = _shuffled(items, seed, label, purpose)
        val.extend(order[:n_val])
        train.extend(order[n_val:])
    return sorted(train), sorted(val)


def per_class_subset(
    samples: Sequence[Sample], n: int, seed: int
) -> tuple[list[Sample], dict[int, int]]:
    """Keep at most *n* samples per class; nested across *n* for a fixed *seed*.

    Each class is shuffled once with the seed and the first *n* are kept, so the
    10-per-class subset lies inside the 50-per-class one: learning curves then differ only
    by the added images.  Returns the subset and ``{label: available}`` for clipped classes.
    """
    if n < 1:
        raise DataError(f"per_class must be at least 1, got {n}")
    subset: list[Sample] = []
    clipped: dict[int, int] = {}
    for label, items in _by_class(samples).items():
        if len(items) < n:
            clipped[label] = len(items)
        subset.extend(_shuffled(items, seed, label, "subset")[:n])
    return sorted(subset), clipped


def _find_split_dirs(root: Path) -> dict[str, Path]:
    """Map 'train'/'val'/'test' to their folders (names matched case-insensitively)."""
    found: dict[str, Path] = {}
    aliases = {name: "train" for name in _TRAIN_NAMES}
    aliases.update({name: "val" for name in _VAL_NAMES})
    aliases.update({name: "test" for name in _TEST_NAMES})
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        split = aliases.get(entry.name.lower())
        if split is None or not entry.is_dir():
            continue
        if split in found:
            raise DataError(
                f"{root} has two {split} folders ('{found[split].name}' and '{entry.name}'); "
                "keep one"
            )
        found[split] = Path(entry.path)
    return found


def load_splits(
    root: str | os.PathLike[str],
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    per_class: int | None = None,
    validate: bool = True,
    test_fraction: float = 0.0,
) -> DatasetSplits:
    """Load a dataset in either supported layout and return train/val(/test) samples.

    * ``root/train/<class>/*`` (+ ``val``/``valid``/``validation``, ``test``): the given
      splits are kept; if there is no val folder, *val_fraction* of train is held out.
    * ``root/<class>/*``: a seeded stratified split with at least one val image per class.

    The class list comes from train and is enforced on val/test.  *per_class* limits only
    the training split (nested across sizes, see :func:`per_class_subset`).

    *test_fraction* > 0 sets a stratified, seeded test split aside from the training images
    (before *per_class*, so the test images do not change with it) for a dataset without a
    test folder; with a test folder it is an error (the folder already is the test split).
    """
    root_path = Path(root).expanduser().absolute()
    if not root_path.exists():
        raise DataError(f"dataset folder {root_path} does not exist")
    if not root_path.is_dir():
        raise DataError(f"dataset path {root_path} is not a folder")
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if per_class is not None and per_class < 1:
        raise DataError(f"per_class must be at least 1, got {per_class}")
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction}")

    notes: list[str] = []
    splits = _find_split_dirs(root_path)
    test: list[Sample] | None = None
    if "train" in splits:
        layout = "split-folders"
        train_index = scan_image_folder(splits["train"], validate=validate)
        classes = train_index.classes
        bad = list(train_index.bad_files)
        others = [
            e.name
            for e in os.scandir(root_path)
            if e.is_dir()
            and not e.name.startswith(".")
            and all(e.name != d.name for d in splits.values())
        ]
        for name in sorted(others):
            notes.append(f"ignored folder '{name}' (not train/val/test)")
        if "val" in splits:
            val_index = _scan_against(splits["val"], classes, splits["train"], validate)
            train, val = train_index.samples, val_index.samples
            bad += val_index.bad_files
        else:
            _require_two_per_class(train_index)
            train, val = stratified_split(train_index.samples, val_fraction, seed)
            notes.append(
                f"no val folder: held out {len(val)} training images "
                f"(val_fraction={val_fraction}, seed={seed})"
            )
        if "test" in splits:
            test_index = _scan_against(splits["test"], classes, splits["train"], validate)
            test = test_index.samples
            bad += test_index.bad_files
    else:
        stray = [s for s in splits if s != "train"]
        if stray:
            raise DataError(
                f"{root_path} has a '{splits[stray[0]].name}' folder but no 'train' folder"
            )
        layout = "class-folders"
        index = scan_image_folder(root_path, validate=validate)
        classes = index.classes
        bad = list(index.bad_files)
        _require_two_per_class(index)
        train, val = stratified_split(index.samples, val_fraction, seed)
        notes.append(
            f"split {len(index.samples)} images into {len(train)} train / {len(val)} val "
            f"(stratified, val_fraction={val_fraction}, seed={seed})"
        )

    if test_fraction > 0:
        if test is not None:
            raise DataError(
                f"{root_path} already has a test folder ({len(test)} images); "
                "drop --holdout-test (test_fraction) to use it"
            )
        too_few = [classes[label] for label, items in _by_class(train).items() if len(items) < 2]
        if too_few:
            raise DataError(
                f"class '{too_few[0]}' has fewer than 2 training images: cannot hold out a "
                "test image and keep a training one"
            )
        train, test = stratified_split(train, test_fraction, seed, purpose="test")
        notes.append(
            f"held out {len(test)} training images as the test split "
            f"(stratified, test_fraction={test_fraction}, seed={seed})"
        )
    if per_class is not None:
        train, clipped = per_class_subset(train, per_class, seed)
        for label, available in clipped.items():
            notes.append(
                f"class '{classes[label]}' has {available} training images; "
                f"using {available} of {per_class} requested"
            )
    if bad:
        notes.append(f"skipped {len(bad)} unusable file(s); see bad_files")
    return DatasetSplits(
        root=root_path,
        classes=classes,
        train=train,
        val=val,
        test=test,
        bad_files=sorted(bad, key=lambda b: b.path),
        layout=layout,
        notes=notes,
    )


def _require_two_per_class(index: ImageFolderIndex) -> None:
    """Name the class (not just its label id) before stratified_split would refuse it."""
    for name, count in index.counts().items():
        if count < 2:
            raise DataError(
                f"class '{name}' in {index.root} has only {count} usable image; "
                "at least 2 are needed to split it into train and val"
            )


def _scan_against(
    folder: Path, classes: list[str], train_dir: Path, validate: bool
) -> ImageFolderIndex:
    """Scan a val/test split with the training class list, naming both folders on mismatch."""
    for entry in os.scandir(folder):
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in classes:
            raise DataError(
                f"class '{entry.name}' is in {folder} but not in {train_dir}; "
                "val/test classes must also exist in train"
            )
    return scan_image_folder(folder, classes=classes, validate=validate)
