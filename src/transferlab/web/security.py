"""The web app's guards: token when exposed, path confinement, capped uploads, safe unzip.

* Bound to a loopback address the app needs no token; bound anywhere else it refuses to start
  without one (:func:`check_bind`), and every request must then carry it (header, cookie or
  ``?token=`` for links and event streams; see :func:`request_token`).
* Every path a request names is resolved (symlinks included) and must stay under its root
  (:func:`resolve_under`): the data root for datasets and images, the runs root for runs.
* Uploads are read in chunks and cut off at a byte limit (:func:`read_capped`).
* Zip files are checked member by member before anything is written
  (:func:`safe_extract_zip`): no absolute paths or ``..``, no links or special files, a cap
  on the number of files, on the total uncompressed size and on the compression ratio (zip
  bombs), and the bytes actually written are counted again while extracting.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import shutil
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

TOKEN_COOKIE = "transferlab_token"
TOKEN_HEADER = "x-transferlab-token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


class SecurityError(ValueError):
    """A request tried to leave its root, upload too much or unpack an unsafe archive.

    ``status`` is the HTTP status the web layer answers with.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- binding, token


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a token."""
    if not is_loopback(host) and not token:
        raise SecurityError(
            f"binding to {host} exposes your data and runs to the network: pass --token TOKEN "
            "(or set TRANSFERLAB_TOKEN), e.g. --token $(python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))'), or bind to 127.0.0.1"
        )
    if token is not None and len(token) < 8:
        raise SecurityError("the token must be at least 8 characters long")


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def request_token(headers, cookies, query) -> str | None:
    """The token a request carries: ``Authorization: Bearer``, ``X-Transferlab-Token``,
    the cookie set when the page was opened with ``?token=``, or ``?token=`` itself."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get(TOKEN_HEADER) or cookies.get(TOKEN_COOKIE) or query.get("token")


# --------------------------------------------------------------------------- paths


def resolve_under(root: str | Path, relative: str, *, what: str = "path") -> Path:
    """``root / relative`` resolved, or :class:`SecurityError` (403) if it leaves ``root``.

    Absolute paths and ``..`` are refused outright; symlinks are followed and the target
    must still lie under ``root``.
    """
    if relative is None or "\x00" in relative:
        raise SecurityError(f"invalid {what}: {relative!r}")
    rel = relative.replace("\\", "/").strip()
    posix = PurePosixPath(rel)
    if posix.is_absolute() or (len(rel) > 1 and rel[1] == ":"):
        raise SecurityError(f"{what} must be relative to its root, got {relative!r}", 403)
    if any(part == ".." for part in posix.parts):
        raise SecurityError(f"{what} may not contain '..': {relative!r}", 403)
    root_real = Path(root).resolve()
    target = (root_real / posix).resolve()
    if not target.is_relative_to(root_real):
        raise SecurityError(f"{what} {relative!r} points outside its root", 403)
    return target


def relative_to_root(root: str | Path, path: str | Path) -> str | None:
    """``path`` relative to ``root`` (POSIX), or None when it lies elsewhere."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None


# --------------------------------------------------------------------------- uploads


async def read_capped(upload, dest: Path, limit: int, *, chunk: int = 1 << 20) -> int:
    """Stream a Starlette ``UploadFile`` to ``dest``; 413 once more than ``limit`` bytes."""
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(dest, "wb") as fh:
            while True:
                block = await upload.read(chunk)
                if not block:
                    break
                size += len(block)
                if size > limit:
                    raise SecurityError(
                        f"upload {upload.filename!r} is larger than the limit of "
                        f"{limit / 2**20:.0f} MiB", 413)
                fh.write(block)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if size == 0:
        dest.unlink(missing_ok=True)
        raise SecurityError(f"upload {upload.filename!r} is empty")
    return size


# --------------------------------------------------------------------------- zip files


@dataclass(frozen=True)
class ZipLimits:
    max_files: int = 20_000
    max_total_bytes: int = 2 * 2**30  # uncompressed
    max_ratio: float = 100.0  # uncompressed / compressed, per member and overall
    max_member_bytes: int = 200 * 2**20


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if "\x00" in name:
        return "has a NUL byte in its name"
    norm = name.replace("\\", "/")
    posix = PurePosixPath(norm)
    if posix.is_absolute() or (len(norm) > 1 and norm[1] == ":"):
        return "has an absolute path"
    if any(part == ".." for part in posix.parts):
        return "contains '..'"
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # made on Unix: the mode bits are meaningful
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            return "is a symbolic link"
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            return "is not a regular file or folder"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def check_zip(zf: zipfile.ZipFile, limits: ZipLimits = ZipLimits()) -> list[zipfile.ZipInfo]:
    """Validate every member's name, type and size; returns the members to extract."""
    members = zf.infolist()
    if len(members) > limits.max_files:
        raise SecurityError(f"zip has {len(members)} entries, more than the limit of "
                            f"{limits.max_files}", 413)
    total = compressed = 0
    for info in members:
        problem = _member_problem(info)
        if problem:
            raise SecurityError(f"unsafe zip: entry {info.filename!r} {problem}")
        if info.is_dir():
            continue
        if info.file_size > limits.max_member_bytes:
            raise SecurityError(f"zip entry {info.filename!r} unpacks to {info.file_size} bytes, "
                                f"more than the limit of {limits.max_member_bytes}", 413)
        if info.file_size > 1_000_000 and info.file_size > limits.max_ratio * max(
                info.compress_size, 1):
            raise SecurityError(f"zip entry {info.filename!r} is compressed "
                                f"{info.file_size / max(info.compress_size, 1):.0f}:1, "
                                "which looks like a zip bomb", 413)
        total += info.file_size
        compressed += info.compress_size
    if total > limits.max_total_bytes:
        raise SecurityError(f"zip unpacks to {total} bytes, more than the limit of "
                            f"{limits.max_total_bytes}", 413)
    if total > 10_000_000 and total > limits.max_ratio * max(compressed, 1):
        raise SecurityError(f"zip is compressed {total / max(compressed, 1):.0f}:1 overall, "
                            "which looks like a zip bomb", 413)
    return members


def safe_extract_zip(path: str | Path, dest: str | Path,
                     limits: ZipLimits = ZipLimits()) -> list[Path]:
    """Extract the zip at ``path`` into the new folder ``dest``; returns the files written.

    Nothing is written unless every member passes :func:`check_zip`; on any error the
    partly written ``dest`` is removed.
    """
    dest = Path(dest)
    if dest.exists():
        raise SecurityError(f"destination {dest.name!r} already exists", 409)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SecurityError(f"not a valid zip file: {exc}") from exc
    written: list[Path] = []
    with zf:
        members = check_zip(zf, limits)
        dest.mkdir(parents=True)
        root = dest.resolve()
        total = 0
        try:
            for info in members:
                target = (root / info.filename.replace("\\", "/")).resolve()
                if not target.is_relative_to(root):
                    raise SecurityError(f"unsafe zip: entry {info.filename!r} leaves the folder")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    while block := src.read(1 << 20):
                        total += len(block)
                        if total > limits.max_total_bytes:
                            raise SecurityError("zip unpacks to more than its declared size", 413)
                        out.write(block)
                os.chmod(target, 0o644)
                written.append(target)
        except BaseException as exc:
            shutil.rmtree(dest, ignore_errors=True)
            if isinstance(exc, (zipfile.BadZipFile, FileExistsError)):
                raise SecurityError(f"cannot unpack the zip: {exc}") from exc
            raise
    return written


def dataset_root_in(folder: Path, ignore: Iterable[str] = ("__MACOSX",)) -> Path:
    """The folder that holds the classes: zips often wrap everything in one top folder.

    Descends through single folders that hold only folders; a single folder holding files is
    a class (so a one-class zip is reported as such, not looked into)."""

    def visible(path: Path) -> list[Path]:
        return [e for e in path.iterdir() if not e.name.startswith(".") and e.name not in ignore]

    current = folder
    while True:
        entries = visible(current)
        if len(entries) == 1 and entries[0].is_dir() and all(e.is_dir()
                                                             for e in visible(entries[0])):
            current = entries[0]
            continue
        return current
