"""A generated corpus of hostile and odd image files, each with the outcome it must have.

``build_corpus(root)`` writes 200+ files into ``root/<class>/...`` (plus a few at the root and
an ``outside`` folder next to it for symlink targets) and returns one :class:`Expect` per file:

* ``used``: the scanner keeps it, and :func:`transferlab.data.load_rgb` gives an upright RGB
  image of ``size`` with the listed colours at the listed relative positions (a pure-red CMYK,
  palette or RGBA file must come out red, EXIF orientation 6 swaps width and height, ...);
* ``reported``: the scanner skips it and reports its path with a reason matching ``reason``;
* ``ignored``: neither (hidden files, operating-system clutter, folders already listed).

The files are made here, with Pillow and by hand (truncations, forged headers), so nothing is
downloaded and every expectation is known by construction.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "transferlab" / "sample_data" / "food4"

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
Pixel = tuple[tuple[float, float], tuple[int, int, int]]

TRUNCATED = r"^truncated or corrupt: "
UNIDENTIFIED = r"^not an image \(cannot identify image file\)$"
TOO_LARGE = r"^image too large: {w}x{h} pixels exceeds limit \d+$"
AS_ROOT = os.geteuid() == 0  # root reads chmod 000 files, so they are usable then


@dataclass
class Expect:
    """What must happen to one corpus entry."""

    path: str  # as the scanner reports it: absolute, non-UTF-8 bytes as surrogate escapes
    kind: str  # what the entry is, for failure messages
    outcome: str  # "used" | "reported" | "ignored"
    reason: str | None = None  # regex the reported reason must match
    size: tuple[int, int] | None = None  # (width, height) after load_rgb
    pixels: tuple[Pixel, ...] = ()  # ((x, y) as fractions of width/height, expected RGB)
    tolerance: int = 6  # per channel; lossy formats get more
    label: str | None = None  # class folder the sample must be labelled with


# Upright test pattern: top-left quarter red, top-right green, bottom half blue. Any flip or
# rotation moves at least one of the three probes below to the wrong colour.
PATTERN_SIZE = (64, 40)
PATTERN_PROBES: tuple[Pixel, ...] = (
    ((0.25, 0.25), RED),
    ((0.75, 0.25), GREEN),
    ((0.5, 0.75), BLUE),
)

# Pillow transpose that *stores* the upright pattern so that EXIF orientation o restores it
# (the inverse of what ImageOps.exif_transpose applies).
_STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def pattern() -> Image.Image:
    w, h = PATTERN_SIZE
    img = Image.new("RGB", PATTERN_SIZE, BLUE)
    img.paste(RED, (0, 0, w // 2, h // 2))
    img.paste(GREEN, (w // 2, 0, w, h // 2))
    return img


def real_photos(n: int) -> list[Path]:
    files = sorted(SAMPLE.glob("train/*/*.jpg"))
    assert len(files) >= n, f"sample dataset missing or too small at {SAMPLE}"
    return files[:n]


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header claims ``width`` x ``height`` (a bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    small = encode(Image.new("P", (4, 4)), "GIF")
    return small[:6] + struct.pack("<HH", width, height) + small[10:]


def bmp_claiming(width: int, height: int) -> bytes:
    small = bytearray(encode(Image.new("RGB", (4, 4), RED), "BMP"))
    struct.pack_into("<ii", small, 18, width, height)
    return bytes(small)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG with its frame header (SOF0) patched to claim another size."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def tiff_claiming(width: int, height: int) -> bytes:
    img = Image.new("L", (4, 4), 0)
    data = bytearray(encode(img, "TIFF"))
    # Little-endian TIFF: patch the ImageWidth (256) and ImageLength (257) LONG/SHORT entries.
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, typ = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            value = width if tag == 256 else height
            struct.pack_into("<HHII", data, at, tag, 4, 1, value)  # as a LONG
    return bytes(data)


def heic_like() -> bytes:
    """An ISO-BMFF ``ftyp`` box for HEIC followed by junk: what an iPhone photo looks like
    to a reader without a HEIF decoder."""
    rng = random.Random(6)
    return (
        struct.pack(">I", 24)
        + b"ftypheic"
        + b"\0\0\0\0"
        + b"mif1heic"
        + bytes(rng.randrange(256) for _ in range(400))
    )


@dataclass
class _Builder:
    root: Path
    classes: tuple[str, ...]
    outside: Path
    expects: list[Expect] = field(default_factory=list)
    _turn: int = 0

    def cls(self) -> str:
        """Classes take turns so every class receives every kind of file."""
        self._turn += 1
        return self.classes[self._turn % len(self.classes)]

    def path(self, name: str, folder: str | None = None) -> Path:
        p = self.root / (folder or self.cls()) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def add(self, path: Path, kind: str, outcome: str, **kw) -> Expect:
        label = kw.pop("label", None)
        if outcome == "used" and label is None:
            label = path.relative_to(self.root).parts[0]
        e = Expect(str(path), kind, outcome, label=label, **kw)
        self.expects.append(e)
        return e

    def write(
        self, name: str, data: bytes, kind: str, outcome: str, folder: str | None = None, **kw
    ) -> Expect:
        p = self.path(name, folder)
        p.write_bytes(data)
        return self.add(p, kind, outcome, **kw)

    def image(
        self,
        name: str,
        img: Image.Image,
        fmt: str,
        kind: str,
        *,
        pixels: tuple[Pixel, ...] = (),
        size: tuple[int, int] | None = None,
        tolerance: int = 6,
        folder: str | None = None,
        **save,
    ) -> Expect:
        return self.write(
            name,
            encode(img, fmt, **save),
            kind,
            "used",
            folder=folder,
            size=size or img.size,
            pixels=pixels,
            tolerance=tolerance,
        )


def build_corpus(
    root: str | os.PathLike[str],
    classes: tuple[str, ...] = ("alpha", "beta"),
) -> list[Expect]:
    """Write the corpus under ``root`` (created) and return what must happen to each entry.

    ``root`` gets one folder per class; ``root.parent / "outside"`` holds symlink targets
    that lie outside the dataset.
    """
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(exist_ok=True)
    b = _Builder(root, tuple(classes), outside)
    for name in classes:
        (root / name).mkdir(exist_ok=True)
    for section in _SECTIONS:
        section(b)
    return b.expects


# --------------------------------------------------------------------------- sections


def _truncated(b: _Builder) -> None:
    photos = real_photos(2)
    for i, src in enumerate(photos):
        data = src.read_bytes()
        # A couple of bytes is not even a JPEG; a header without scan data reads as truncated.
        b.write(
            f"trunc-jpeg{i}-2B.jpg",
            data[:2],
            "JPEG cut to 2 bytes",
            "reported",
            reason=UNIDENTIFIED,
        )
        for n in (10, 100, 300):
            b.write(
                f"trunc-jpeg{i}-{n}B.jpg",
                data[:n],
                f"JPEG cut to {n} bytes",
                "reported",
                reason=TRUNCATED,
            )
        for frac in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.98):
            b.write(
                f"trunc-jpeg{i}-{int(frac * 100)}pc.jpg",
                data[: int(len(data) * frac)],
                f"JPEG cut at {frac:.0%}",
                "reported",
                reason=TRUNCATED,
            )
        b.write(
            f"trunc-jpeg{i}-no-eoi.jpg",
            data[:-2],
            "JPEG without its end marker",
            "reported",
            reason=TRUNCATED,
        )

        png = encode(Image.open(src).convert("RGB"), "PNG")
        for n in (8, 33):  # signature only; signature + IHDR
            b.write(
                f"trunc-png{i}-{n}B.png",
                png[:n],
                f"PNG cut to {n} bytes",
                "reported",
                reason=UNIDENTIFIED,
            )
        b.write(
            f"trunc-png{i}-16B.png", png[:16], "PNG cut inside IHDR", "reported", reason=TRUNCATED
        )
        for frac in (0.05, 0.3, 0.5, 0.9, 0.999):
            b.write(
                f"trunc-png{i}-{frac * 100:g}pc.png",
                png[: int(len(png) * frac)],
                f"PNG cut at {frac:.1%}",
                "reported",
                reason=TRUNCATED,
            )
        # Only the IEND chunk missing: every pixel is there, so the image is usable.
        w, h = Image.open(src).size
        b.write(f"png{i}-no-iend.png", png[:-12], "PNG without IEND", "used", size=(w, h))

    img = pattern()
    for fmt, ext in (("GIF", "gif"), ("WEBP", "webp"), ("TIFF", "tif"), ("BMP", "bmp")):
        data = encode(img, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        for frac in (0.3, 0.6, 0.9):
            b.write(
                f"trunc-{ext}-{int(frac * 100)}pc.{ext}",
                data[: int(len(data) * frac)],
                f"{fmt} cut at {frac:.0%}",
                "reported",
                reason=rf"{TRUNCATED}|{UNIDENTIFIED}",
            )

    # Corruption that is not truncation: a PNG whose pixel data fails its checksum.
    png = bytearray(encode(img, "PNG"))
    idat = png.index(b"IDAT")
    png[idat + 10] ^= 0xFF
    b.write(
        "bad-crc.png", bytes(png), "PNG with a corrupt IDAT chunk", "reported", reason=TRUNCATED
    )


def _not_images(b: _Builder) -> None:
    for ext in (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"):
        b.write(f"zero{ext}", b"", f"zero bytes {ext}", "reported", reason=r"^zero bytes$")
    rng = random.Random(0)
    impostors = {
        "text.jpg": b"just some text, renamed to .jpg\n",
        "page.png": b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
        "data.jpeg": b'{"not": "an image"}',
        "vector.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "doc.jpg": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "archive.png": b"PK\x03\x04" + bytes(60),
        "program.jpg": b"\x7fELF\x02\x01\x01" + bytes(120),
        "noise.jpg": bytes(rng.randrange(256) for _ in range(2048)),
        "script.gif": b"#!/bin/sh\nrm -rf /\n",
        "heic-renamed.jpg": heic_like(),
    }
    for name, data in impostors.items():
        b.write(name, data, f"not an image: {name}", "reported", reason=UNIDENTIFIED)
    # A JPEG start marker followed by junk: the JPEG parser gives up on the header.
    b.write(
        "garbage-after-soi.jpg",
        b"\xff\xd8\xff" + bytes(200),
        "JPEG marker then junk",
        "reported",
        reason=UNIDENTIFIED,
    )
    for name, data in (
        ("iphone.heic", heic_like()),
        ("iphone.HEIF", heic_like()),
        ("notes.txt", b"labels"),
        ("layers.psd", b"8BPS"),
        ("raw.cr2", b"II*\0"),
        ("no_extension", encode(pattern(), "PNG")),
        ("photos.zip", b"PK\x05\x06" + bytes(18)),
    ):
        suffix = Path(name).suffix or "(none)"
        b.write(
            name,
            data,
            f"unsupported extension {suffix}",
            "reported",
            reason=rf"^unsupported extension {suffix.replace('(', '[(]').replace(')', '[)]')}$",
        )


def _colour_modes(b: _Builder) -> None:
    w, h = 32, 24
    left, right = (0.25, 0.5), (0.75, 0.5)

    def halves(mode: str, a, c) -> Image.Image:
        img = Image.new(mode, (w, h), c)
        img.paste(a, (0, 0, w // 2, h))
        return img

    # CMYK (print workflows): pure red, green and blue ink mixes must come out as those colours.
    for name, ink, rgb in (
        ("red", (0, 255, 255, 0), RED),
        ("green", (255, 0, 255, 0), GREEN),
        ("blue", (255, 255, 0, 0), BLUE),
    ):
        img = Image.new("CMYK", (w, h), ink)
        b.image(
            f"cmyk-{name}.jpg",
            img,
            "JPEG",
            f"CMYK JPEG {name}",
            quality=95,
            pixels=(((0.5, 0.5), rgb),),
            tolerance=40,
        )
        b.image(f"cmyk-{name}.tif", img, "TIFF", f"CMYK TIFF {name}", pixels=(((0.5, 0.5), rgb),))
    # 16-bit: convert("RGB") would clip almost every value to white; it must be rescaled.
    for ext, fmt in (("png", "PNG"), ("tif", "TIFF")):
        arr = np.zeros((h, w), np.uint16)
        arr[:, w // 4 : w // 2], arr[:, w // 2 : 3 * w // 4], arr[:, 3 * w // 4 :] = (
            16448,
            32896,
            65535,
        )
        probes = tuple(
            ((x, 0.5), (v,) * 3) for x, v in ((0.1, 0), (0.4, 64), (0.6, 128), (0.9, 255))
        )
        b.image(f"gray16-ramp.{ext}", Image.fromarray(arr), fmt, f"16-bit {fmt}", pixels=probes)
        dim = np.full((h, w), 200, np.uint16)  # a dark 16-bit image stays dark
        b.image(
            f"gray16-dark.{ext}",
            Image.fromarray(dim),
            fmt,
            f"dark 16-bit {fmt}",
            pixels=(((0.5, 0.5), BLACK),),
            tolerance=2,
        )
    flt = np.zeros((h, w), np.float32)
    flt[:, w // 2 :] = 1.0
    b.image(
        "float32.tif",
        Image.fromarray(flt, "F"),
        "TIFF",
        "32-bit float TIFF",
        pixels=((left, BLACK), (right, WHITE)),
    )
    # Grayscale, bilevel, grayscale+alpha.
    for ext, fmt, tol in (
        ("png", "PNG", 0),
        ("jpg", "JPEG", 4),
        ("bmp", "BMP", 0),
        ("webp", "WEBP", 6),
    ):
        b.image(
            f"gray-100.{ext}",
            Image.new("L", (w, h), 100),
            fmt,
            f"grayscale {fmt}",
            pixels=(((0.5, 0.5), (100, 100, 100)),),
            tolerance=tol,
        )
    for ext, fmt in (("png", "PNG"), ("tif", "TIFF")):
        b.image(
            f"bilevel.{ext}",
            halves("1", 0, 1),
            fmt,
            f"1-bit {fmt}",
            pixels=((left, BLACK), (right, WHITE)),
        )
    la = halves("LA", (0, 255), (0, 0))
    b.image(
        "gray-alpha.png",
        la,
        "PNG",
        "LA PNG: transparent half on white",
        pixels=((left, BLACK), (right, WHITE)),
    )
    b.image(
        "gray-alpha.webp",
        la,
        "WEBP",
        "LA WEBP",
        lossless=True,
        pixels=((left, BLACK), (right, WHITE)),
    )
    # RGBA: transparent pixels (black under alpha 0) must come out white, not black.
    rgba = halves("RGBA", (255, 0, 0, 255), (0, 0, 0, 0))
    for ext, fmt, kw in (
        ("png", "PNG", {}),
        ("webp", "WEBP", {"lossless": True}),
        ("tif", "TIFF", {}),
    ):
        b.image(
            f"rgba-red.{ext}", rgba, fmt, f"RGBA {fmt}", pixels=((left, RED), (right, WHITE)), **kw
        )
    half = Image.new("RGBA", (w, h), (255, 0, 0, 128))
    b.image(
        "rgba-half-red.png",
        half,
        "PNG",
        "50% transparent red over white",
        pixels=(((0.5, 0.5), (255, 127, 127)),),
        tolerance=2,
    )
    # Palette: index 0 red, index 1 transparent (its palette colour is black).
    pal = halves("P", 0, 1)
    pal.putpalette([255, 0, 0, 0, 0, 0] + [0] * 762)
    b.image(
        "palette-transparent.png",
        pal,
        "PNG",
        "palette PNG with transparency",
        transparency=1,
        pixels=((left, RED), (right, WHITE)),
    )
    b.image(
        "palette-transparent.gif",
        pal,
        "GIF",
        "palette GIF with transparency",
        transparency=1,
        pixels=((left, RED), (right, WHITE)),
    )
    pal_solid = halves("P", 0, 1)
    pal_solid.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    b.image("palette.png", pal_solid, "PNG", "palette PNG", pixels=((left, RED), (right, BLUE)))
    b.image("palette.bmp", pal_solid, "BMP", "palette BMP", pixels=((left, RED), (right, BLUE)))


def _orientation(b: _Builder) -> None:
    upright = pattern()
    for orientation, op in _STORE_FOR_ORIENTATION.items():
        stored = upright if op is None else upright.transpose(op)
        exif = Image.Exif()
        exif[0x0112] = orientation
        for ext, fmt, kw, tol in (
            ("jpg", "JPEG", {"quality": 95}, 40),
            ("png", "PNG", {}, 0),
            ("webp", "WEBP", {"lossless": True}, 0),
        ):
            b.image(
                f"exif-{orientation}.{ext}",
                stored,
                fmt,
                f"{fmt} with EXIF orientation {orientation}",
                size=PATTERN_SIZE,
                pixels=PATTERN_PROBES,
                tolerance=tol,
                exif=exif.tobytes(),
                **kw,
            )
    # Out-of-range orientations and a broken EXIF block: ignored, the pixels are kept as stored.
    for orientation in (0, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        b.image(
            f"exif-invalid-{orientation}.jpg",
            upright,
            "JPEG",
            f"EXIF orientation {orientation} (invalid)",
            pixels=PATTERN_PROBES,
            tolerance=40,
            quality=95,
            exif=exif.tobytes(),
        )
    b.image(
        "exif-garbage.jpg",
        upright,
        "JPEG",
        "malformed EXIF block",
        pixels=PATTERN_PROBES,
        tolerance=40,
        quality=95,
        exif=b"Exif\0\0MM\0*\0\0\0\x08\xff\xff" + bytes(20),
    )


def _formats(b: _Builder) -> None:
    img = pattern()
    for ext, fmt, kw, tol in (
        ("png", "PNG", {}, 0),
        ("bmp", "BMP", {}, 0),
        ("tif", "TIFF", {}, 0),
        ("tiff", "TIFF", {"compression": "tiff_lzw"}, 0),
        ("tif", "TIFF", {"compression": "tiff_adobe_deflate"}, 0),
        ("webp", "WEBP", {"lossless": True}, 0),
        ("webp", "WEBP", {"quality": 90}, 40),
        ("jpg", "JPEG", {"quality": 95, "progressive": True}, 40),
        ("jpeg", "JPEG", {"quality": 95, "subsampling": 0, "optimize": True}, 40),
        ("gif", "GIF", {}, 0),
    ):
        tag = "-".join(f"{k}{v}" for k, v in kw.items()) or "plain"
        b.image(
            f"format-{tag}.{ext}",
            img,
            fmt,
            f"{fmt} {tag}",
            pixels=PATTERN_PROBES,
            tolerance=tol,
            **kw,
        )
    b.image(
        "icc-profile.jpg",
        img,
        "JPEG",
        "JPEG with an ICC profile",
        pixels=PATTERN_PROBES,
        tolerance=40,
        quality=95,
        icc_profile=_srgb_profile(),
    )
    # Content decides, not the extension.
    for name, fmt in (
        ("png-named.jpg", "PNG"),
        ("jpeg-named.png", "JPEG"),
        ("gif-named.webp", "GIF"),
        ("bmp-named.tif", "BMP"),
    ):
        b.image(
            name,
            img,
            fmt,
            f"{fmt} data under another extension",
            pixels=PATTERN_PROBES,
            tolerance=40 if fmt == "JPEG" else 0,
        )
    # Animations: the first frame is used.
    frames = [Image.new("RGB", (24, 24), c) for c in (RED, GREEN, BLUE)]
    centre = (((0.5, 0.5), RED),)
    for name, fmt, kw in (
        ("animated.gif", "GIF", {"duration": 100, "loop": 0}),
        ("animated.png", "PNG", {"duration": 100}),
        ("animated.webp", "WEBP", {"duration": 100, "lossless": True}),
    ):
        b.image(
            name,
            frames[0],
            fmt,
            f"animated {fmt}",
            pixels=centre,
            save_all=True,
            append_images=frames[1:],
            **kw,
        )
    # Tiny and extreme shapes.
    for ext, fmt in (
        ("png", "PNG"),
        ("jpg", "JPEG"),
        ("gif", "GIF"),
        ("bmp", "BMP"),
        ("webp", "WEBP"),
        ("tif", "TIFF"),
    ):
        kw = {"lossless": True} if fmt == "WEBP" else {"quality": 100} if fmt == "JPEG" else {}
        b.image(
            f"one-pixel.{ext}",
            Image.new("RGB", (1, 1), RED),
            fmt,
            f"1x1 {fmt}",
            pixels=(((0.0, 0.0), RED),),
            tolerance=40 if fmt == "JPEG" else 0,
            **kw,
        )
    b.image(
        "strip-2000x1.png",
        Image.new("RGB", (2000, 1), GREEN),
        "PNG",
        "2000x1 strip",
        pixels=(((0.5, 0.0), GREEN),),
    )
    b.image(
        "strip-1x2000.png",
        Image.new("RGB", (1, 2000), BLUE),
        "PNG",
        "1x2000 strip",
        pixels=(((0.0, 0.5), BLUE),),
    )


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _bombs(b: _Builder) -> None:
    """Headers claiming more pixels than Pillow's limit: refused from the header alone."""
    for name, data, (w, h) in (
        ("bomb-100000x100000.png", png_claiming(100_000, 100_000), (100_000, 100_000)),
        ("bomb-14000x14000.png", png_claiming(14_000, 14_000), (14_000, 14_000)),
        ("bomb-65535x65535.gif", gif_claiming(65_535, 65_535), (65_535, 65_535)),
        ("bomb-65500x65500.jpg", jpeg_claiming(65_500, 65_500), (65_500, 65_500)),
        ("bomb-100000x100000.bmp", bmp_claiming(100_000, 100_000), (100_000, 100_000)),
        ("bomb-100000x100000.tif", tiff_claiming(100_000, 100_000), (100_000, 100_000)),
    ):
        b.write(
            name, data, f"decompression bomb {w}x{h}", "reported", reason=TOO_LARGE.format(w=w, h=h)
        )


def _names(b: _Builder) -> None:
    photo = real_photos(3)[2].read_bytes()
    size = Image.open(io.BytesIO(photo)).size
    names = [
        "with spaces.jpg",
        "  leading spaces.jpg",
        "trailing space .jpg",
        "crème brûlée.jpg",
        "日本語の写真.jpg",
        "фото.jpeg",
        "emoji 🍰.jpg",
        "cafe\u0301 (NFD).jpg",
        "Ω≈ç√.JPG",
        "UPPER.JPG",
        "Mixed.JpEg",
        "-rf.jpg",
        "$(rm -rf ~).jpg",
        "quote'\"`.jpg",
        "back\\slash.jpg",
        "percent%2e%2e%2f.jpg",
        "semi;colon&amp.jpg",
        "new\nline.jpg",
        "x" * 250 + ".jpg",
        # Not valid UTF-8: Linux allows any bytes; Python gives them as surrogate escapes.
        os.fsdecode(b"caf\xe9.jpg"),
        os.fsdecode(b"\xff\xfe\xfd.jpeg"),
        os.fsdecode(b"latin1 \xe0 \xe9 \xfc.jpg"),
    ]
    for name in names:
        b.write(name, photo, f"file name {name!r}", "used", size=size)
    # Bad files with awkward names must still be reported by their exact path.
    half = photo[: len(photo) // 2]
    for name in (
        os.fsdecode(b"broken \xe9.jpg"),
        "tab\tand\nnewline broken.jpg",
        "broken ünïcödé.jpg",
    ):
        b.write(name, half, f"truncated file named {name!r}", "reported", reason=TRUNCATED)


def _links_and_folders(b: _Builder) -> None:
    photo = real_photos(4)[3]
    size = Image.open(photo).size
    a, c = b.classes[0], b.classes[1]
    target = b.path("link-target.jpg", a)
    shutil.copyfile(photo, target)
    b.add(target, "symlink target inside the dataset", "used", size=size)
    secret = b.outside / "secret.jpg"
    shutil.copyfile(photo, secret)
    (b.outside / "folder").mkdir(exist_ok=True)
    shutil.copyfile(photo, b.outside / "folder" / "x.jpg")

    def link(name: str, to: str | Path, folder: str) -> Path:
        p = b.path(name, folder)
        p.symlink_to(to)
        return p

    outside_reason = r"^symlink points outside the dataset folder \(to .*\)$"
    b.add(
        link("to-outside.jpg", secret, c),
        "symlink to a file outside",
        "reported",
        reason=outside_reason,
    )
    b.add(
        link("to-outside-relative.jpg", Path("..", "..", secret.parent.name, "secret.jpg"), c),
        "relative symlink escaping with ../..",
        "reported",
        reason=outside_reason,
    )
    b.add(
        link("outside-folder", b.outside / "folder", c),
        "symlink to a folder outside",
        "reported",
        reason=outside_reason,
    )
    root_link = b.root / "outside-class"
    root_link.symlink_to(b.outside / "folder")
    b.add(root_link, "class folder symlinked outside", "reported", reason=outside_reason)
    b.add(
        link("to-sibling.jpg", Path("..", a, "link-target.jpg"), c),
        "symlink to an image inside the dataset",
        "used",
        size=size,
        label=c,
    )
    b.add(
        link("dangling.jpg", "does-not-exist.jpg", c),
        "broken symlink",
        "reported",
        reason=r"^broken symlink$",
    )
    loop = r"^symlink loop"
    b.add(link("self-loop.jpg", "self-loop.jpg", c), "symlink to itself", "reported", reason=loop)
    link("ping.jpg", "pong.jpg", a)
    b.add(link("pong.jpg", "ping.jpg", a), "symlink cycle (a)", "reported", reason=loop)
    b.add(b.root / a / "ping.jpg", "symlink cycle (b)", "reported", reason=loop)
    # Folder links that lead back up: followed at most once, never into other classes.
    b.add(link("here", ".", a), "folder symlink to its own folder", "reported", reason=loop)
    b.add(link("up", "..", c), "folder symlink to the dataset root", "reported", reason=loop)

    # Folders named like images are folders: their images are used, they are not reported.
    nested = b.path("folder.jpg/inside.jpg", a)
    shutil.copyfile(photo, nested)
    b.add(nested, "image inside a folder named folder.jpg", "used", size=size)
    (b.root / c / "empty.png").mkdir()
    b.add(b.root / c / "empty.png", "empty folder named empty.png", "ignored")
    deep = b.path("d1/d2/d3/d4/deep.jpg", c)
    shutil.copyfile(photo, deep)
    b.add(deep, "image four folders down", "used", size=size)

    # Hidden files and clutter: not data, not worth a report.
    for name, data in (
        (".DS_Store", b"\0\0\0\1Bud1"),
        ("._photo.jpg", b"AppleDouble"),
        (".hidden.jpg", photo.read_bytes()),
        ("Thumbs.db", b"\xd0\xcf\x11\xe0"),
        ("desktop.ini", b"[.ShellClassInfo]"),
    ):
        b.write(name, data, f"clutter {name}", "ignored", folder=a)
    hidden = b.path(".thumbnails/thumb.jpg", c)
    shutil.copyfile(photo, hidden)
    b.add(hidden, "image in a hidden folder", "ignored")
    (b.root / ".git").mkdir()
    (b.root / ".git" / "HEAD.jpg").write_bytes(photo.read_bytes())
    b.add(b.root / ".git" / "HEAD.jpg", "image in a hidden top folder", "ignored")
    stray = b.root / "stray.jpg"
    shutil.copyfile(photo, stray)
    b.add(
        stray,
        "image beside the class folders",
        "reported",
        reason=r"^image is not inside a class folder$",
    )
    (b.root / "README.txt").write_text("about this dataset")
    b.add(b.root / "README.txt", "text file beside the class folders", "ignored")

    # A named pipe with an image name: opening it would block forever.
    fifo = b.path("pipe.jpg", c)
    os.mkfifo(fifo)
    b.add(fifo, "named pipe called pipe.jpg", "reported", reason=r"^not a regular file")

    # Unreadable files and folders (root reads them anyway, so they are usable then).
    locked = b.path("locked.jpg", a)
    shutil.copyfile(photo, locked)
    locked.chmod(0)
    if AS_ROOT:
        b.add(locked, "chmod 000 file (read as root)", "used", size=size)
    else:
        b.add(locked, "chmod 000 file", "reported", reason=r"^cannot read: ")
    locked_dir = b.path("locked-folder/inside.jpg", c)
    shutil.copyfile(photo, locked_dir)
    locked_dir.parent.chmod(0)
    if AS_ROOT:
        b.add(locked_dir, "image in a chmod 000 folder (read as root)", "used", size=size)
    else:
        b.add(locked_dir.parent, "chmod 000 folder", "reported", reason=r"^cannot list folder: ")


_SECTIONS: tuple[Callable[[_Builder], None], ...] = (
    _truncated,
    _not_images,
    _colour_modes,
    _orientation,
    _formats,
    _bombs,
    _names,
    _links_and_folders,
)


def unlock(root: str | os.PathLike[str]) -> None:
    """Give chmod 000 files and folders their permissions back (so temp folders can go)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p) and stat.S_IMODE(os.lstat(p).st_mode) == 0:
                os.chmod(p, 0o755)
