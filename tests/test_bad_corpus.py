"""A corpus of bad and odd files mixed into real two-class folders (issue 4).

Every file kind gets a decision. *Bad* files cannot be used (truncated, not an image,
refused format, zero size, extreme aspect ratio, too many pixels): ``fit`` must skip
exactly them, each with a reason that says what is wrong, and ``predict`` /
``predict_proba`` must raise :class:`ImageDecodeError` naming the file. *Odd but valid*
files (CMYK, palette, alpha, 1-bit, 16-bit, float, EXIF-rotated, animated, WebP, 1x1,
upper-case extensions, a symlink, ...) must be decoded correctly and used for training.
Hidden and non-image entries must be listed in ``fit_report_["ignored"]`` and never become
classes or images. Nothing in the user's tree may change, and a decompression bomb must
never be decoded (peak RSS of a child process stays far below its 546 MB of pixels).

The corpus is mixed into a synthetic folder (always) and into 40 real photos per class
copied from the hot-dog set (when ``../shared/datasets/hotdog`` is present).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import HOTDOG, make_image, needs_hotdog, tiny, write_class_tree
from PIL import Image, ImageFile, features

from binaryvision.data import ImageDataset, load_image
from binaryvision.exceptions import DataError, DataWarning, ImageDecodeError

WHITE = (255, 255, 255)
BOMB_SIZE = (14000, 13000)  # 182 MP: above 2 x Pillow's MAX_IMAGE_PIXELS, so Image.open refuses
BIG_SIZE = (10000, 10000)  # 100 MP: Pillow only warns; binaryvision's max_pixels must refuse
#: RSS growth allowed while fitting the corpus; one decoded bomb (RGB) would need more.
RSS_BOUND = 400 * 2**20


class Unsupported(Exception):
    """This Pillow / platform cannot write the file kind; it is left out of the corpus."""


@dataclass
class Context:
    """What writers may need: a real JPEG to damage, and a folder outside the tree."""

    jpeg: bytes
    outside: Path


@dataclass(frozen=True)
class Kind:
    name: str
    filename: str
    write: Callable[[Path, Context], None]
    bad: str | None = None  # regex the skip reason must match; None: odd but valid, used
    check: Callable[[Image.Image, Path], None] | None = None  # on load_image's output


# ============================================================================ writers


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return struct.pack(">I", len(data)) + kind + data + crc


def _png_bytes(width: int, height: int, bit_depth: int, colour: int, raw: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw, 1))
        + _png_chunk(b"IEND", b"")
    )


def _all_black_1bit_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of any size, written in a fraction of a second (all zero rows)."""
    return _png_bytes(width, height, 1, 0, bytes((1 + (width + 7) // 8) * height))


def _noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def w_truncated_jpeg(p: Path, ctx: Context) -> None:
    p.write_bytes(ctx.jpeg[: len(ctx.jpeg) // 2])


def w_jpeg_without_eoi(p: Path, ctx: Context) -> None:
    p.write_bytes(ctx.jpeg[: ctx.jpeg.rindex(b"\xff\xd9")])  # everything but the end marker


def w_truncated_png(p: Path, ctx: Context) -> None:
    data = _png_bytes(64, 64, 8, 2, _noise((64 * (1 + 64 * 3),), 5).tobytes())
    p.write_bytes(data[: len(data) // 2])


def w_png_bad_crc(p: Path, ctx: Context) -> None:
    data = bytearray(_png_bytes(16, 16, 8, 2, bytes(16 * (1 + 16 * 3))))
    data[29] ^= 0xFF  # last byte of the IHDR CRC
    p.write_bytes(bytes(data))


def w_png_bad_zlib(p: Path, ctx: Context) -> None:
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    idat = b"\x78\x9c" + bytes(range(200))  # a zlib header, then garbage
    p.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def w_zero_width_png(p: Path, ctx: Context) -> None:
    p.write_bytes(_png_bytes(0, 10, 8, 2, b""))


def w_bomb(p: Path, ctx: Context) -> None:
    p.write_bytes(_all_black_1bit_png(*BOMB_SIZE))


def w_big(p: Path, ctx: Context) -> None:
    p.write_bytes(_all_black_1bit_png(*BIG_SIZE))


def w_ico_named_png(p: Path, ctx: Context) -> None:
    Image.new("RGB", (16, 16), (1, 2, 3)).save(p, format="ICO")


def w_cmyk(p: Path, ctx: Context) -> None:
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(p, quality=95)  # pure red ink


def c_cmyk(im: Image.Image, p: Path) -> None:
    assert Image.open(p).mode == "CMYK"
    assert _close(im.getpixel((12, 12)), (255, 0, 0), 12)


def w_palette_trns(p: Path, ctx: Context) -> None:
    im = Image.new("P", (12, 10), 1)
    im.putpalette([0, 0, 0, 200, 10, 10])
    im.paste(0, (0, 0, 6, 10))  # left half: index 0, the transparent one
    im.save(p, transparency=0)


def c_palette_trns(im: Image.Image, p: Path) -> None:
    assert Image.open(p).mode == "P"
    assert im.getpixel((1, 1)) == WHITE  # transparent black shows as white
    assert im.getpixel((9, 5)) == (200, 10, 10)


def w_rgba(p: Path, ctx: Context) -> None:
    arr = _noise((10, 12, 4), 6)  # random colour under the transparent half
    arr[:, :6, :3] = (10, 20, 30)
    arr[:, :6, 3] = 255
    arr[:, 6:, 3] = 0
    Image.fromarray(arr, "RGBA").save(p)


def c_rgba(im: Image.Image, p: Path) -> None:
    a = np.asarray(im)
    assert (a[:, :6] == (10, 20, 30)).all()
    assert (a[:, 6:] == 255).all()


def w_la(p: Path, ctx: Context) -> None:
    arr = np.zeros((10, 12, 2), dtype=np.uint8)
    arr[..., 0] = 40
    arr[:5, :, 1] = 255
    Image.fromarray(arr, "LA").save(p)


def c_la(im: Image.Image, p: Path) -> None:
    assert Image.open(p).mode == "LA"
    assert im.getpixel((3, 2)) == (40, 40, 40)
    assert im.getpixel((3, 8)) == WHITE


def w_one_bit(p: Path, ctx: Context) -> None:
    im = Image.new("1", (16, 16), 0)
    im.paste(1, (0, 0, 8, 16))
    im.save(p)


def c_one_bit(im: Image.Image, p: Path) -> None:
    assert Image.open(p).mode == "1"
    assert im.getpixel((2, 2)) == WHITE and im.getpixel((12, 2)) == (0, 0, 0)


def w_i16_ramp(p: Path, ctx: Context) -> None:
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(p)


def c_i16_ramp(im: Image.Image, p: Path) -> None:
    assert Image.open(p).mode.startswith("I")
    a = np.asarray(im)[..., 0].astype(int)
    assert a.min() <= 2 and a.max() >= 253, "a 16-bit ramp must span dark to bright"
    assert len(np.unique(a)) >= 200, "rescaled, not clamped to a few levels"
    assert abs(a[32, 0] - 128) <= 2  # mid-grey stays mid-grey (clamping gives 255)


def w_float_tiff(p: Path, ctx: Context) -> None:
    arr = np.linspace(0.0, 1.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    try:
        Image.fromarray(arr).save(p)
    except (OSError, KeyError, ValueError) as exc:  # pragma: no cover - Pillow-dependent
        raise Unsupported(f"Pillow cannot write a mode F TIFF: {exc}") from exc


def c_float_tiff(im: Image.Image, p: Path) -> None:
    assert Image.open(p).mode == "F"
    a = np.asarray(im)[..., 0].astype(int)
    assert a.min() <= 1 and a.max() >= 254


def w_exif_rotated(p: Path, ctx: Context) -> None:
    im = Image.new("RGB", (40, 20), (10, 20, 30))
    im.paste((250, 250, 250), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    im.save(p, exif=exif, quality=95)


def c_exif_rotated(im: Image.Image, p: Path) -> None:
    assert Image.open(p).size == (40, 20)
    assert im.size == (20, 40), "EXIF orientation 6 must transpose the decoded size"
    assert min(im.getpixel((17, 2))) > 200  # stored top-left is displayed top-right


def w_gif3(p: Path, ctx: Context) -> None:
    frames = [Image.new("RGB", (12, 12), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50)


def c_gif3(im: Image.Image, p: Path) -> None:
    assert Image.open(p).n_frames == 3
    assert _close(im.getpixel((6, 6)), (255, 0, 0), 2), "frame 0 must be used"


def w_webp(p: Path, ctx: Context) -> None:
    if not features.check("webp"):  # pragma: no cover - Pillow-dependent
        raise Unsupported("Pillow was built without WebP")
    Image.fromarray(_noise((10, 14, 3), 7)).save(p, lossless=True)


def c_webp(im: Image.Image, p: Path) -> None:
    assert Image.open(p).format == "WEBP"
    np.testing.assert_array_equal(np.asarray(im), _noise((10, 14, 3), 7))


def w_one_by_one(p: Path, ctx: Context) -> None:
    Image.new("RGB", (1, 1), (7, 8, 9)).save(p)


def c_one_by_one(im: Image.Image, p: Path) -> None:
    assert im.size == (1, 1) and im.getpixel((0, 0)) == (7, 8, 9)


def w_aspect_limit(p: Path, ctx: Context) -> None:
    Image.fromarray(_noise((50, 2, 3), 8)).save(p)  # exactly 25:1, the largest allowed


def c_aspect_limit(im: Image.Image, p: Path) -> None:
    assert im.size == (2, 50)


def w_photo_png(p: Path, ctx: Context) -> None:
    seed = zlib.crc32(p.name.encode())  # every file its own content
    make_image(1, np.random.default_rng(seed)).save(p, format="PNG")


def w_photo_jpeg(p: Path, ctx: Context) -> None:
    make_image(0, np.random.default_rng(zlib.crc32(p.name.encode()))).save(p, format="JPEG")


def c_size40(im: Image.Image, p: Path) -> None:
    assert im.size == (40, 40)


def c_png_content(im: Image.Image, p: Path) -> None:
    assert Image.open(p).format == "PNG"  # decoded by content, not by extension
    assert im.size == (40, 40)


def w_grey_jpeg(p: Path, ctx: Context) -> None:
    Image.fromarray(_noise((20, 30), 11)).save(p, quality=90)


def c_grey_jpeg(im: Image.Image, p: Path) -> None:
    assert Image.open(p).mode == "L"
    a = np.asarray(im)
    assert a.shape == (20, 30, 3) and (a[..., 0] == a[..., 2]).all()


def w_progressive(p: Path, ctx: Context) -> None:
    Image.fromarray(_noise((48, 64, 3), 12)).save(p, quality=80, progressive=True)


def c_progressive(im: Image.Image, p: Path) -> None:
    assert Image.open(p).info.get("progressive") and im.size == (64, 48)


def w_bmp(p: Path, ctx: Context) -> None:
    Image.fromarray(_noise((9, 13, 3), 13)).save(p)


def c_bmp(im: Image.Image, p: Path) -> None:
    np.testing.assert_array_equal(np.asarray(im), _noise((9, 13, 3), 13))


def w_multipage_tiff(p: Path, ctx: Context) -> None:
    pages = [Image.new("RGB", (10, 10), c) for c in [(0, 0, 250), (250, 0, 0)]]
    pages[0].save(p, save_all=True, append_images=pages[1:])


def c_multipage_tiff(im: Image.Image, p: Path) -> None:
    assert Image.open(p).n_frames == 2
    assert im.getpixel((5, 5)) == (0, 0, 250), "page 0 must be used"


def w_symlink(p: Path, ctx: Context) -> None:
    target = ctx.outside / "linked_target.png"
    make_image(0, np.random.default_rng(14)).save(target)
    try:
        os.symlink(target, p)
    except (OSError, NotImplementedError) as exc:  # pragma: no cover - Windows without rights
        raise Unsupported(f"cannot create symlinks here: {exc}") from exc


def c_symlink(im: Image.Image, p: Path) -> None:
    assert p.is_symlink()
    assert np.array_equal(np.asarray(im), np.asarray(load_image(os.path.realpath(p))))


def _close(pixel, expected, tol: int) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected))


NOT_AN_IMAGE = r"not an image"
KINDS = [
    # ---------------------------------------------------------------- bad: must be skipped
    Kind("truncated JPEG", "truncated.jpg", w_truncated_jpeg, r"truncated"),
    Kind("JPEG without EOI marker", "no_eoi.jpg", w_jpeg_without_eoi, r"truncated"),
    Kind("truncated PNG", "truncated.png", w_truncated_png, r"truncated|corrupt"),
    # Pillow refuses a bad IHDR CRC when identifying the file, hence "not an image"
    Kind("PNG with a bad IHDR CRC", "bad_crc.png", w_png_bad_crc, r"not an image|corrupt"),
    Kind("PNG with a corrupt zlib stream", "bad_zlib.png", w_png_bad_zlib, r"corrupt"),
    Kind("empty file", "empty.jpg", lambda p, c: p.write_bytes(b""), NOT_AN_IMAGE + "|empty"),
    Kind(
        "text named .jpg",
        "notes.jpg",
        lambda p, c: p.write_text("just some text, not a picture\n"),
        NOT_AN_IMAGE,
    ),
    Kind(
        "HTML named .png",
        "page.png",
        lambda p, c: p.write_text("<!doctype html><html><body>404 Not Found</body></html>\n"),
        NOT_AN_IMAGE,
    ),
    Kind("ICO named .png", "icon.png", w_ico_named_png, r"format ICO is not one of"),
    Kind(
        "0-width PNG (crafted IHDR)", "zero_width.png", w_zero_width_png, r"zero size|not an image"
    ),
    Kind(
        "1x20000 strip",
        "strip_1x20000.png",
        lambda p, c: Image.new("RGB", (1, 20000), (9, 9, 9)).save(p),
        r"aspect ratio 1x20000",
    ),
    Kind("14000x13000 decompression bomb", "bomb.png", w_bomb, r"decompression bomb"),
    Kind("10000x10000 over max_pixels", "huge.png", w_big, r"100000000 pixels.*max_pixels"),
    # ---------------------------------------------------------------- odd but valid: used
    Kind("CMYK JPEG", "cmyk.jpg", w_cmyk, check=c_cmyk),
    Kind("P PNG with transparency", "palette_trns.png", w_palette_trns, check=c_palette_trns),
    Kind("RGBA PNG", "rgba.png", w_rgba, check=c_rgba),
    Kind("LA PNG", "la.png", w_la, check=c_la),
    Kind("1-bit PNG", "one_bit.png", w_one_bit, check=c_one_bit),
    Kind("I;16 PNG ramp", "ramp16.png", w_i16_ramp, check=c_i16_ramp),
    Kind("float TIFF (mode F)", "float.tif", w_float_tiff, check=c_float_tiff),
    Kind("EXIF orientation 6 JPEG", "rotated.jpg", w_exif_rotated, check=c_exif_rotated),
    Kind("3-frame GIF", "anim.gif", w_gif3, check=c_gif3),
    Kind("WebP", "photo.webp", w_webp, check=c_webp),
    Kind("1x1 image", "dot.png", w_one_by_one, check=c_one_by_one),
    Kind("2x50 strip (25:1 limit)", "strip_2x50.png", w_aspect_limit, check=c_aspect_limit),
    Kind("upper-case .JPG", "UPPER1.JPG", w_photo_jpeg, check=c_size40),
    Kind("upper-case .PNG", "UPPER2.PNG", w_photo_png, check=c_size40),
    Kind("upper-case .JPEG", "UPPER3.JPEG", w_photo_jpeg, check=c_size40),
    Kind("PNG named .jpg", "really_png.jpg", w_photo_png, check=c_png_content),
    Kind("greyscale JPEG", "grey.jpg", w_grey_jpeg, check=c_grey_jpeg),
    Kind("progressive JPEG", "progressive.jpg", w_progressive, check=c_progressive),
    Kind("BMP", "photo.bmp", w_bmp, check=c_bmp),
    Kind("2-page TIFF", "pages.tiff", w_multipage_tiff, check=c_multipage_tiff),
    Kind("symlink to an image outside the tree", "linked.png", w_symlink, check=c_symlink),
]
BAD_KINDS = [k.name for k in KINDS if k.bad is not None]
ODD_KINDS = [k.name for k in KINDS if k.bad is None]
KIND = {k.name: k for k in KINDS}
assert len(KIND) == len(KINDS) and len({k.filename for k in KINDS}) == len(KINDS)


# ============================================================================ corpus


@dataclass
class Corpus:
    name: str
    root: Path  # what fit receives
    top: Path  # everything written under here (the user's tree)
    outside: Path  # symlink targets, outside the tree
    classes: tuple[str, str]
    good: set[str] = field(default_factory=set)
    paths: dict[str, str] = field(default_factory=dict)  # kind name -> path
    must_ignore: set[str] = field(default_factory=set)
    may_ignore: set[str] = field(default_factory=set)
    never_used: set[str] = field(default_factory=set)  # images inside ignored entries
    unsupported: dict[str, str] = field(default_factory=dict)
    # filled by the fit fixture
    clf: object = None
    decoded: set[str] = field(default_factory=set)
    fit_warnings: list = field(default_factory=list)
    before: dict = field(default_factory=dict)

    @property
    def bad(self) -> dict[str, str]:
        return {n: p for n, p in self.paths.items() if KIND[n].bad is not None}

    @property
    def odd(self) -> dict[str, str]:
        return {n: p for n, p in self.paths.items() if KIND[n].bad is None}


def _p(path: Path) -> str:
    return os.path.normpath(os.fspath(path))


def _add_hidden_image(c: Corpus, path: Path) -> None:
    """An image inside an ignored entry: never decoded, never skipped, never a class."""
    make_image(0, np.random.default_rng(len(c.never_used) + 100)).save(path)
    c.never_used.add(_p(path))


def _can_symlink(folder: Path) -> bool:
    probe = folder / ".symlink-probe"
    try:
        os.symlink(folder, probe)
    except (OSError, NotImplementedError):  # pragma: no cover - Windows without rights
        return False
    probe.unlink()
    return True


def _add_junk(c: Corpus, listing_dir: Path, class_dirs: list[Path]) -> None:
    """Hidden entries and non-image files, beside and inside the class folders."""
    for sub in (".ipynb_checkpoints", ".hidden", "__MACOSX"):
        (listing_dir / sub).mkdir()
        _add_hidden_image(c, listing_dir / sub / f"{class_dirs[0].name}_000-checkpoint.png")
        c.must_ignore.add(_p(listing_dir / sub))
    (listing_dir / "README.txt").write_text("Photos collected in 2020.\n")
    (listing_dir / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    (listing_dir / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64))
    c.must_ignore |= {_p(listing_dir / n) for n in ("README.txt", ".DS_Store", "Thumbs.db")}
    for i, d in enumerate(class_dirs):
        (d / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(32))
        (d / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(32))
        (d / "README.txt").write_text("notes\n")
        (d / "._photo.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
        (d / ".ipynb_checkpoints").mkdir()
        _add_hidden_image(c, d / ".ipynb_checkpoints" / "photo-checkpoint.jpg")
        names = ["README.txt", ".DS_Store", "Thumbs.db", "._photo.jpg", ".ipynb_checkpoints"]
        c.never_used.add(_p(d / "._photo.jpg"))
        if i == 0:
            (d / "nested").mkdir()  # folders are not searched recursively
            _add_hidden_image(c, d / "nested" / "deeper.png")
            names.append("nested")
        if i == 1 and _can_symlink(d):
            # a broken link named like an image: not a file, so listed as ignored
            os.symlink(d / "vanished.jpg.bak", d / "dangling.jpg")
            names.append("dangling.jpg")
            c.never_used.add(_p(d / "dangling.jpg"))
        c.must_ignore |= {_p(d / n) for n in names}


def _add_kinds(c: Corpus, class_dirs: list[Path], ctx: Context) -> None:
    for i, kind in enumerate(KINDS):
        path = class_dirs[i % len(class_dirs)] / kind.filename
        try:
            kind.write(path, ctx)
        except Unsupported as exc:  # pragma: no cover - Pillow/platform-dependent
            c.unsupported[kind.name] = str(exc)
            continue
        c.paths[kind.name] = _p(path)


def _images_in(folder: Path) -> set[str]:
    return {_p(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def _noise_jpeg(seed: int = 3) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(_noise((300, 300, 3), seed)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def build_synthetic(top: Path) -> Corpus:
    """The fastai layout (train/ + valid/) of conftest's generated photos, plus the corpus."""
    root = top / "dragons"
    classes = ("drogon", "viserion")
    write_class_tree(root / "train", 16, classes, seed=1)
    write_class_tree(root / "valid", 8, classes, seed=2)
    outside = top.parent / f"{top.name}-outside"
    outside.mkdir()
    c = Corpus("synthetic", root, top, outside, classes)
    dirs = [root / s / k for s in ("train", "valid") for k in classes]
    for d in dirs:
        c.good |= _images_in(d)
    _add_junk(c, root / "train", dirs[:2])
    _add_junk(c, root / "valid", dirs[2:])
    # beside train/ and valid/: outside the data, never a class nor an image
    (root / ".ipynb_checkpoints").mkdir()
    _add_hidden_image(c, root / ".ipynb_checkpoints" / "train-checkpoint.png")
    (root / "README.txt").write_text("dragons\n")
    c.may_ignore |= {_p(root / ".ipynb_checkpoints"), _p(root / "README.txt")}
    _add_kinds(c, dirs, Context(_noise_jpeg(), outside))
    return c


def build_hotdog(top: Path, n_per_class: int = 40) -> Corpus:
    """40 real photos per class (one class folder each), plus the corpus."""
    root = top / "hotdog"
    classes = ("hot_dog", "not_hot_dog")
    outside = top.parent / f"{top.name}-outside"
    outside.mkdir()
    c = Corpus("hotdog", root, top, outside, classes)
    dirs = []
    for k in classes:
        photos = sorted((HOTDOG / "train" / k).glob("*.jpg"))
        assert len(photos) > n_per_class, f"too few photos in {HOTDOG / 'train' / k}"
        (root / k).mkdir(parents=True)
        for src in photos[:n_per_class]:
            shutil.copyfile(src, root / k / src.name)
        dirs.append(root / k)
        c.good |= _images_in(root / k)
    real = sorted((HOTDOG / "train" / classes[0]).glob("*.jpg"))[n_per_class].read_bytes()
    _add_junk(c, root, dirs)
    _add_kinds(c, dirs, Context(real, outside))
    return c


def snapshot(*tops: Path) -> dict:
    """Every entry under ``tops``: kind, size, mtime and SHA-256 (or the link target)."""
    out = {}
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            for name in [""] + dirnames + filenames:
                path = os.path.join(dirpath, name) if name else dirpath
                st = os.lstat(path)
                if os.path.islink(path):
                    out[path] = ("link", os.readlink(path))
                elif os.path.isdir(path):
                    out[path] = ("dir", st.st_mtime_ns, st.st_mode)
                else:
                    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                    out[path] = ("file", st.st_size, st.st_mtime_ns, st.st_mode, digest)
    return out


def make_clf(**kwargs):
    # Seeds no other test uses: tiny_cnn's random weights, hence the keys of the
    # process-wide feature cache, are this module's own, so fit decodes every image.
    params = dict(epochs=2, max_bad_fraction=0.5, random_state=4040)
    params.update(kwargs)
    return tiny(**params)


BUILDERS = {"synthetic": build_synthetic, "hotdog": build_hotdog}
SEEDS = {"synthetic": 4041, "hotdog": 4042}
CORPORA = [
    pytest.param("synthetic", id="synthetic"),
    pytest.param("hotdog", id="hotdog", marks=[pytest.mark.slow, needs_hotdog]),
]


@pytest.fixture(scope="module", params=CORPORA)
def corpus(request, tmp_path_factory) -> Corpus:
    """The corpus, fitted once with a spy on which files are decoded for training."""
    top = tmp_path_factory.mktemp(f"corpus-{request.param}")
    c = BUILDERS[request.param](top)
    c.before = snapshot(c.top, c.outside)
    pil_flags = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)
    original = ImageDataset.__getitem__

    def spy(self, index):
        item = self.items[index]
        out = original(self, index)
        # a NaN target flags a file the feature pass could not decode (it doubles as the
        # scan): such a file gives no tensor to train on
        if isinstance(item, (str, os.PathLike)) and not torch.isnan(out[1]):
            c.decoded.add(_p(item))
        return out

    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp.setattr(ImageDataset, "__getitem__", spy)
        # its own seed per corpus: the odd files of both corpora have the same content
        c.clf = make_clf(random_state=SEEDS[c.name]).fit(os.fspath(c.root))
    c.fit_warnings = [w for w in caught if issubclass(w.category, DataWarning)]
    assert (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS) == pil_flags
    return c


# ============================================================================ fit


def test_corpus_has_at_least_20_kinds(corpus):
    kinds = len(corpus.paths) + len({Path(p).name for p in corpus.must_ignore})
    assert kinds >= 20 and len(corpus.bad) >= 10 and len(corpus.odd) >= 15
    assert not corpus.unsupported or set(corpus.unsupported) <= {
        "float TIFF (mode F)",
        "WebP",
        "symlink to an image outside the tree",
    }


def test_bomb_file_is_small_but_claims_182_megapixels(corpus):
    data = Path(corpus.paths["14000x13000 decompression bomb"]).read_bytes()
    assert len(data) < 200_000
    assert struct.unpack(">II", data[16:24]) == BOMB_SIZE
    assert BOMB_SIZE[0] * BOMB_SIZE[1] * 3 > RSS_BOUND  # decoding it would break the RSS bound


def test_fit_keeps_exactly_the_two_classes(corpus):
    clf = corpus.clf
    assert list(clf.classes_) == list(corpus.classes)
    report = clf.fit_report_
    assert clf.n_train_ + clf.n_valid_ == report["n_used"]
    assert set(clf.class_counts_) == set(corpus.classes)


def test_skipped_lists_exactly_the_bad_files_with_reasons(corpus):
    skipped = corpus.clf.fit_report_["skipped"]
    paths = [_p(e["path"]) for e in skipped]
    assert len(paths) == len(set(paths)), "a file is listed twice"
    assert set(paths) == set(corpus.bad.values())
    by_path = {_p(e["path"]): e["reason"] for e in skipped}
    for name, path in corpus.bad.items():
        reason = by_path[path]
        assert reason.strip(), f"{name}: empty reason"
        assert re.search(KIND[name].bad, reason), f"{name}: reason {reason!r}"


def test_counts_found_and_used(corpus):
    report = corpus.clf.fit_report_
    n_candidates = len(corpus.good) + len(corpus.paths)
    assert report["n_found"] == n_candidates
    assert report["n_used"] == len(corpus.good) + len(corpus.odd)


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_training_decoded_exactly_the_good_and_odd_files(corpus):
    used = corpus.good | set(corpus.odd.values())
    assert len({_sha256(p) for p in used}) == len(used), "the corpus repeats a file's content"
    # compared by content: features are cached by content, so a copy need not be decoded
    assert {_sha256(p) for p in corpus.decoded} == {_sha256(p) for p in used}
    assert corpus.decoded <= used
    assert not corpus.decoded & set(corpus.bad.values())
    assert not corpus.decoded & corpus.never_used


def test_hidden_and_non_image_entries_are_ignored_not_used(corpus):
    report = corpus.clf.fit_report_
    ignored = {_p(p) for p in report["ignored"]}
    assert corpus.must_ignore <= ignored, sorted(corpus.must_ignore - ignored)
    assert ignored <= corpus.must_ignore | corpus.may_ignore, sorted(
        ignored - corpus.must_ignore - corpus.may_ignore
    )
    skipped = {_p(e["path"]) for e in report["skipped"]}
    assert not (corpus.never_used | corpus.must_ignore) & skipped
    hidden_names = {".ipynb_checkpoints", ".hidden", "__MACOSX", "nested", "README.txt"}
    assert not hidden_names & {str(c) for c in corpus.clf.classes_}


def test_one_warning_summarises_the_skipped_files(corpus):
    assert len(corpus.fit_warnings) == 1, [str(w.message) for w in corpus.fit_warnings]
    message = str(corpus.fit_warnings[0].message)
    assert f"Skipped {len(corpus.bad)} of {len(corpus.good) + len(corpus.paths)}" in message


def test_default_max_bad_fraction_refuses_the_corpus(corpus):
    n_bad = len(corpus.bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=rf"{n_bad} of the \d+ images .*max_bad_fraction"):
            make_clf(max_bad_fraction=0.01).fit(os.fspath(corpus.root))


def test_on_bad_image_raise_names_a_bad_file(corpus):
    with pytest.raises(ImageDecodeError) as info:
        make_clf(on_bad_image="raise").fit(os.fspath(corpus.root))
    assert _p(info.value.path) in set(corpus.bad.values())
    assert info.value.path in str(info.value)


# ============================================================================ per file kind


@pytest.mark.parametrize("kind", ODD_KINDS)
def test_odd_file_decodes_correctly_and_predicts(corpus, kind):
    if kind not in corpus.paths:
        pytest.skip(corpus.unsupported[kind])
    path = corpus.paths[kind]
    image = load_image(path)
    assert image.mode == "RGB"
    KIND[kind].check(image, Path(path))
    clf = corpus.clf
    proba = clf.predict_proba([path])
    assert proba.shape == (1, 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # a TTA view is not in the feature cache of fit, so this decodes the file again
    proba, spread = clf.predict_proba([path], tta=2, return_std=True)
    assert np.isfinite(proba).all() and np.isfinite(spread).all()
    assert clf.predict([path])[0] in set(clf.classes_)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_predict_raises_naming_it(corpus, kind):
    path = corpus.paths[kind]
    good = sorted(corpus.good)[0]
    for call in (corpus.clf.predict_proba, corpus.clf.predict):
        with pytest.raises(ImageDecodeError) as info:
            call([good, path])
        assert info.value.path == path
        assert path in str(info.value)
        assert re.search(KIND[kind].bad, info.value.reason), info.value.reason


def test_predict_proba_nan_rows_are_exactly_the_bad_files(corpus):
    files = sorted(corpus.paths.values())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proba = corpus.clf.predict_proba(files, on_bad_image="nan")
    bad = set(corpus.bad.values())
    nan_rows = {f for f, row in zip(files, proba) if np.isnan(row).all()}
    assert nan_rows == bad
    finite = [row for f, row in zip(files, proba) if f not in bad]
    assert np.isfinite(finite).all()
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and f"{len(bad)} of {len(files)} images" in messages[0]


def test_tree_unchanged_after_fit_and_predict(corpus):
    clf = corpus.clf
    odd = sorted(corpus.odd.values())
    clf.predict_proba(odd, tta=4)
    clf.predict(sorted(corpus.good)[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        clf.predict_proba(sorted(corpus.paths.values()), on_bad_image="nan")
    for path in corpus.bad.values():
        with pytest.raises(ImageDecodeError):
            clf.predict_proba(path)
    after = snapshot(corpus.top, corpus.outside)
    assert after.keys() == corpus.before.keys(), "files were created or removed"
    changed = sorted(p for p in after if after[p] != corpus.before[p])
    assert not changed, changed


# ============================================================================ memory

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time, warnings
    from binaryvision import ImageBinaryClassifier, Trainer
    from binaryvision.exceptions import ImageDecodeError
    import numpy as np

    root, probes = sys.argv[1], json.loads(sys.argv[2])
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux

    def peak():  # the high-water mark: VmHWM (resettable) on Linux, else ru_maxrss
        if os.path.exists("/proc/self/status"):
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def current():  # resident now; the peak so far if /proc is missing (conservative)
        if os.path.exists("/proc/self/status"):
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        return peak()

    warnings.simplefilter("ignore")
    clf = ImageBinaryClassifier(
        "tiny_cnn", pretrained=False, epochs=2, lr=0.3, batch_size=8, max_bad_fraction=0.5,
        random_state=0, verbose=0, trainer=Trainer(num_workers=0, progress=False),
    )
    baseline, baseline_peak = current(), peak()
    try:  # measure from here: imports can peak above the resident baseline now (Linux)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    start = time.perf_counter()
    clf.fit(root)
    fit_s = time.perf_counter() - start
    after_fit = peak()
    reasons = {}
    for path in probes["bad"]:
        try:
            clf.predict_proba([path])
        except ImageDecodeError as exc:
            reasons[path] = exc.reason
    proba = clf.predict_proba(probes["odd"], tta=2)
    measured = peak()
    # control: what one decoded bomb (RGB) does to the same measurement
    bomb = np.ones(probes["bomb_bytes"], dtype=np.uint8)
    control = peak()
    del bomb
    print(json.dumps({
        "baseline": baseline, "baseline_peak": baseline_peak, "after_fit": after_fit,
        "peak": measured, "control": control, "fit_s": fit_s,
        "skipped": sorted(e["path"] for e in clf.fit_report_["skipped"]),
        "refused": reasons, "finite": bool(np.isfinite(proba).all()), "n_odd": len(proba),
    }))
    """
)


def test_peak_rss_bounded_in_a_child_process(corpus):
    pytest.importorskip("resource")
    probes = {
        "bad": [corpus.paths["14000x13000 decompression bomb"], corpus.paths["1x20000 strip"]],
        "odd": sorted(corpus.odd.values()),
        "bomb_bytes": BOMB_SIZE[0] * BOMB_SIZE[1] * 3,
    }
    run = subprocess.run(
        [sys.executable, "-c", CHILD, os.fspath(corpus.root), json.dumps(probes)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    mb = 2**20
    print(
        f"\n[{corpus.name}] child RSS: baseline {out['baseline'] / mb:.0f} MB (peak so far "
        f"{out['baseline_peak'] / mb:.0f} MB), after fit {out['after_fit'] / mb:.0f} MB, peak "
        f"{out['peak'] / mb:.0f} MB (+{(out['peak'] - out['baseline']) / mb:.0f} MB), with one "
        f"decoded bomb {out['control'] / mb:.0f} MB; fit {out['fit_s']:.1f} s"
    )
    assert {_p(p) for p in out["skipped"]} == set(corpus.bad.values())
    assert set(out["refused"]) == set(probes["bad"]), "the bomb or the strip was not refused"
    assert out["finite"] and out["n_odd"] == len(corpus.odd)
    assert out["peak"] - out["baseline"] < RSS_BOUND
    # the measurement would have seen a decoded bomb
    assert out["control"] - out["baseline"] > RSS_BOUND
    assert snapshot(corpus.top, corpus.outside) == corpus.before
