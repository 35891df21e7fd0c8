"""Tests of binaryvision.data: the single decoding path, folder layouts, labels and splits."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image, write_class_tree
from hypothesis import given, settings
from PIL import Image
from strategies import pil_images

from binaryvision.backbones import DataConfig
from binaryvision.data import (
    ImageDataset,
    ImageSet,
    as_image_set,
    check_two_classes,
    find_images,
    load_image,
    split_fit_data,
)
from binaryvision.exceptions import DataError, ImageDecodeError, InvalidParameterError
from binaryvision.transforms import build_transforms

WHITE = (255, 255, 255)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decode_file(path: Path, **kwargs) -> Image.Image:
    """load_image on a file, asserting the file is byte-for-byte unchanged afterwards."""
    before = sha256(path)
    out = load_image(path, **kwargs)
    assert sha256(path) == before
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    return out


def close(pixel, expected, tol: int) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected))


# ============================================================================ load_image: files


def test_rgb_png_pixels_kept(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(arr).save(path)
    out = decode_file(path)
    assert out.size == (17, 12)
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_grey_l_becomes_three_equal_channels(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (9, 11), dtype=np.uint8)
    path = tmp_path / "grey.png"
    Image.fromarray(arr).save(path)
    out = np.asarray(decode_file(path))
    assert out.shape == (9, 11, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], arr)


def test_palette_with_transparency_composited_on_white(tmp_path):
    im = Image.new("P", (6, 5), 1)
    im.putpalette([0, 0, 0, 200, 10, 10])
    im.putpixel((0, 0), 0)  # index 0 is the transparent one
    path = tmp_path / "palette.png"
    im.save(path, transparency=0)
    assert Image.open(path).info.get("transparency") == 0
    out = decode_file(path)
    assert out.getpixel((0, 0)) == WHITE  # transparent black shows as white, not black
    assert out.getpixel((3, 3)) == (200, 10, 10)


def test_rgba_alpha_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), dtype=np.uint8)
    arr[..., :3] = (10, 20, 30)
    arr[:, :2, 3] = 255  # left half opaque, right half fully transparent
    path = tmp_path / "rgba.png"
    Image.fromarray(arr, "RGBA").save(path)
    out = decode_file(path)
    assert out.getpixel((0, 0)) == (10, 20, 30)
    assert out.getpixel((3, 0)) == WHITE


def test_la_alpha_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 2), dtype=np.uint8)
    arr[..., 0] = 40
    arr[:2, :, 1] = 255  # top opaque, bottom transparent
    path = tmp_path / "la.png"
    Image.fromarray(arr, "LA").save(path)
    assert Image.open(path).mode == "LA"
    out = decode_file(path)
    assert out.getpixel((0, 0)) == (40, 40, 40)
    assert out.getpixel((0, 3)) == WHITE


def test_one_bit_image(tmp_path):
    im = Image.new("1", (8, 8), 0)
    im.putpixel((2, 3), 1)
    path = tmp_path / "bits.png"
    im.save(path)
    assert Image.open(path).mode == "1"
    out = decode_file(path)
    assert out.getpixel((2, 3)) == WHITE
    assert out.getpixel((0, 0)) == (0, 0, 0)


def test_cmyk_jpeg_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink
    assert Image.open(path).mode == "CMYK"
    out = decode_file(path)
    assert close(out.getpixel((8, 8)), (255, 0, 0), tol=12)


def test_sixteen_bit_png_rescaled_not_clamped(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(decode_file(path))[..., 0].astype(int)
    y, x = np.argwhere(ramp == 32768)[0]
    assert abs(out[y, x] - 128) <= 1  # mid-grey stays mid-grey (clamping would give 255)
    expected = np.round(ramp / 65535 * 255)
    assert np.abs(out - expected).max() <= 1
    assert out.min() == 0 and out.max() >= 254
    assert np.all(np.diff(out.ravel()) >= 0)  # the ramp stays monotonic


def test_float_tiff_rescaled(tmp_path):
    arr = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    path = tmp_path / "float.tif"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode == "F"
    out = np.asarray(decode_file(path))[..., 0].astype(int)
    np.testing.assert_allclose(out, np.round(arr * 255), atol=1)


def test_exif_orientation_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (10, 20, 30))
    im.paste((250, 250, 250), (0, 0, 10, 10))  # a bright top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    im.save(path, exif=exif, quality=95)
    out = decode_file(path)
    assert out.size == (20, 40)
    # Orientation 6: the stored top-left corner is displayed at the top-right.
    assert min(out.getpixel((17, 2))) > 200
    assert max(out.getpixel((2, 2))) < 80


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(path).n_frames == 3
    out = decode_file(path)
    assert out.size == (8, 8)
    assert close(out.getpixel((4, 4)), (255, 0, 0), tol=2)


def test_webp(tmp_path):
    arr = np.random.default_rng(2).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    path = tmp_path / "photo.webp"
    Image.fromarray(arr).save(path, lossless=True)
    out = decode_file(path)
    assert Image.open(path).format == "WEBP"
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_min_size_draft_keeps_short_side(tmp_path):
    path = tmp_path / "big.jpg"
    make_image(0, np.random.default_rng(0), size=256).save(path)
    out = decode_file(path, min_size=64)
    assert min(out.size) >= 64  # never below what the transform needs
    assert out.size[0] < 256  # but decoded at reduced size
    assert decode_file(path).size == (256, 256)


# ============================================================================ load_image: refusals


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _write_truncated_jpeg(path: Path) -> None:
    buf = path.with_suffix(".full.jpg")
    arr = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(buf, quality=95)
    data = buf.read_bytes()
    buf.unlink()
    path.write_bytes(data[: len(data) // 2])


def _write_zero_size_png(path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)  # width 0
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )


BAD_FILES = {
    "truncated.jpg": (_write_truncated_jpeg, "truncated or corrupt"),
    "empty.jpg": (lambda p: p.write_bytes(b""), "not an image"),
    "notes.jpg": (lambda p: p.write_text("just some text, not a picture\n"), "not an image"),
    "page.png": (
        lambda p: p.write_text("<!doctype html><html><body>404</body></html>"),
        "not an image",
    ),
    "zero.png": (_write_zero_size_png, "zero size|not an image"),
    "thin.png": (lambda p: Image.new("RGB", (1, 200)).save(p), "aspect ratio"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_decode_error_with_path_and_reason(tmp_path, name):
    write, reason = BAD_FILES[name]
    path = tmp_path / name
    write(path)
    before = sha256(path)
    with pytest.raises(ImageDecodeError, match=re.escape(str(path))) as info:
        load_image(path)
    assert re.search(reason, str(info.value))
    assert info.value.path == str(path)
    assert re.search(reason, info.value.reason)
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)
    assert sha256(path) == before


def test_max_pixels_exceeded(tmp_path):
    path = tmp_path / "small.png"
    Image.new("RGB", (20, 10)).save(path)
    with pytest.raises(ImageDecodeError, match=r"max_pixels=199") as info:
        load_image(path, max_pixels=199)
    assert str(path) in str(info.value)
    assert "200 pixels" in str(info.value)
    assert load_image(path, max_pixels=200).size == (20, 10)  # the limit itself is allowed


@pytest.mark.xfail(
    strict=True,
    raises=ImageDecodeError,
    reason="package bug: load_image cannot honour max_pixels above 2 * PIL.Image.MAX_IMAGE_PIXELS: "
    "Image.open raises DecompressionBombError before binaryvision's own max_pixels check, so "
    "the 'Raise max_pixels if you trust the file' advice does not work for very large images",
)
def test_max_pixels_above_pillow_limit_is_honoured(tmp_path, monkeypatch):
    path = tmp_path / "scan.png"
    Image.new("RGB", (20, 20)).save(path)
    # Scaled down: Pillow's limit of ~89 MP becomes 100 px (it refuses above 200 px, 2x).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert load_image(path, max_pixels=10_000).size == (20, 20)


def test_missing_file_and_folder(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ImageDecodeError, match=re.escape(str(missing)) + ".*does not exist"):
        load_image(missing)
    with pytest.raises(ImageDecodeError, match="folder"):
        load_image(tmp_path)


def test_refused_format(tmp_path):
    path = tmp_path / "image.ico"
    Image.new("RGB", (16, 16)).save(path, format="ICO")
    with pytest.raises(ImageDecodeError, match=r"format ICO is not one of"):
        load_image(path)


def test_in_memory_zero_size_and_aspect():
    with pytest.raises(ImageDecodeError, match="zero size"):
        load_image(Image.new("RGB", (0, 0)))
    with pytest.raises(ImageDecodeError, match="aspect ratio"):
        load_image(np.zeros((200, 1, 3), dtype=np.uint8))


def test_wrong_source_type():
    with pytest.raises(InvalidParameterError, match="file path, a PIL.Image.Image"):
        load_image(12345)


# ============================================================================ load_image: in memory


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_pil_input_not_modified(mode):
    rng = np.random.default_rng(4)
    im = Image.fromarray(rng.integers(0, 256, (9, 7, 4), dtype=np.uint8), "RGBA")
    if mode == "P":
        im = im.convert("RGB").quantize(8)
        im.info["transparency"] = 0
    elif mode != "RGBA":
        im = im.convert(mode)
    before_bytes, before_mode, before_info = im.tobytes(), im.mode, dict(im.info)
    out = load_image(im)
    assert out is not im
    assert out.mode == "RGB" and out.size == im.size
    assert im.tobytes() == before_bytes
    assert im.mode == before_mode
    assert im.info == before_info
    out.paste((1, 2, 3), (0, 0, 7, 9))  # the result does not share pixels with the input
    assert im.tobytes() == before_bytes


def test_pil_input_exif_orientation_applied_without_touching_input():
    im = Image.new("RGB", (30, 10), (5, 5, 5))
    exif = im.getexif()
    exif[0x0112] = 6
    im.info["exif"] = exif.tobytes()
    before = im.tobytes()
    out = load_image(im)
    assert out.size == (10, 30)
    assert im.size == (30, 10) and im.tobytes() == before
    assert im.getexif().get(0x0112) == 6


def test_uint8_array_ok():
    arr = np.random.default_rng(5).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    copy = arr.copy()
    out = load_image(arr)
    assert out.mode == "RGB" and out.size == (9, 6)
    np.testing.assert_array_equal(np.asarray(out), arr)
    np.testing.assert_array_equal(arr, copy)


def test_grey_and_rgba_arrays():
    grey = np.full((5, 4), 77, dtype=np.uint8)
    assert load_image(grey).getpixel((0, 0)) == (77, 77, 77)
    rgba = np.zeros((5, 4, 4), dtype=np.uint8)
    assert load_image(rgba).getpixel((0, 0)) == WHITE  # transparent -> white


def test_float_array_refused():
    with pytest.raises(InvalidParameterError, match="uint8"):
        load_image(np.random.default_rng(0).random((8, 8, 3)))


def test_channels_first_array_refused():
    with pytest.raises(InvalidParameterError, match="channels-first"):
        load_image(np.zeros((3, 20, 30), dtype=np.uint8))


def test_array_of_wrong_shape_refused():
    with pytest.raises(InvalidParameterError, match=r"\(H, W, 3\)"):
        load_image(np.zeros((8, 8, 2), dtype=np.uint8))


# ============================================================================ property


EVAL_32 = build_transforms(DataConfig(input_size=32, crop_pct=1.0), "none").eval


@settings(max_examples=30, deadline=None)
@given(im=pil_images())
def test_any_small_image_decodes_and_transforms(im):
    before = im.tobytes()
    out = load_image(im)
    assert out.mode == "RGB"
    assert out.size == im.size
    assert im.tobytes() == before
    x = EVAL_32(out)
    assert isinstance(x, torch.Tensor)
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (3, 32, 32)
    assert torch.isfinite(x).all()


# ============================================================================ as_image_set


def test_class_folders_labels_inferred(class_tree):
    data = as_image_set(class_tree)
    assert isinstance(data, ImageSet)
    assert len(data) == 24
    assert sorted(set(data.labels.tolist())) == ["cat", "dog"]
    for item, label in zip(data.items, data.labels):
        assert Path(item).parent.name == label
    assert data.valid is None


def test_hidden_folders_and_junk_files_ignored(class_tree):
    hidden = class_tree / ".ipynb_checkpoints"
    hidden.mkdir()
    make_image(0, np.random.default_rng(0)).save(hidden / "cat_000-checkpoint.png")
    (class_tree / "__pycache__").mkdir()
    (class_tree / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (class_tree / "cat" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (class_tree / "cat" / "notes.txt").write_text("collected in 2020\n")
    (class_tree / "dog" / "._dog_000.png").write_bytes(b"AppleDouble junk")
    data = as_image_set(class_tree)
    assert sorted(set(data.labels.tolist())) == ["cat", "dog"]
    assert len(data) == 24
    names = [Path(p).name for p in data.items]
    assert not any(n.startswith(".") or n.endswith(".txt") for n in names)
    assert all(".ipynb_checkpoints" not in p for p in data.items)


def test_find_images_sorted_and_case_insensitive(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.txt", ".hidden.jpg"]:
        (tmp_path / name).write_bytes(b"")
    assert [Path(p).name for p in find_images(tmp_path)] == ["a.jpg", "b.PNG"]


def test_seed_layout_only_when_allowed(seed_tree):
    with pytest.raises(DataError, match=re.escape(repr(str(seed_tree / "valid")))):
        as_image_set(seed_tree)
    data = as_image_set(seed_tree, allow_seed_layout=True)
    assert len(data) == 24 and data.valid is not None and len(data.valid) == 12
    assert all(Path(p).parts[-3] == "train" for p in data.items)
    assert all(Path(p).parts[-3] == "valid" for p in data.valid.items)
    assert sorted(set(data.valid.labels.tolist())) == ["drogon", "viserion"]
    train, valid = split_fit_data(data, 0.5, 0)
    assert train is data and valid is data.valid  # the attached split is used as it is


def test_train_only_layout_hint_names_train(tmp_path):
    write_class_tree(tmp_path / "d" / "train", 2)
    with pytest.raises(DataError, match=re.escape(repr(str(tmp_path / "d" / "train")))):
        as_image_set(tmp_path / "d")
    assert as_image_set(tmp_path / "d", allow_seed_layout=True).valid is None


def test_flat_folder_unlabelled(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        make_image(i % 2, rng).save(tmp_path / f"{i}.png")
    (tmp_path / "readme.txt").write_text("x")
    data = as_image_set(tmp_path)
    assert data.labels is None
    assert [Path(p).name for p in data.items] == ["0.png", "1.png", "2.png"]
    labelled = as_image_set(tmp_path, ["a", "b", "a"])
    assert labelled.labels.tolist() == ["a", "b", "a"]


def test_single_file(tmp_path):
    path = tmp_path / "one.png"
    make_image(0, np.random.default_rng(0)).save(path)
    data = as_image_set(path)
    assert data.items == [str(path)] and data.labels is None


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(repr(str(missing))) + " does not exist"):
        as_image_set(missing)


def test_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="contains no images"):
        as_image_set(tmp_path)


def test_mixed_folder_refused(class_tree):
    make_image(0, np.random.default_rng(0)).save(class_tree / "stray.png")
    with pytest.raises(DataError, match="both images"):
        as_image_set(class_tree)


def test_y_with_class_folder_refused(class_tree):
    with pytest.raises(InvalidParameterError, match="already"):
        as_image_set(class_tree, ["cat"] * 24)


def test_list_with_y():
    items = [make_image(k, np.random.default_rng(k)) for k in (0, 1, 0)]
    data = as_image_set(items, np.array([0, 1, 0]))
    assert data.items == items
    assert data.labels.tolist() == [0, 1, 0]


@pytest.mark.parametrize("n_labels", [2, 4])
def test_y_of_wrong_length(n_labels):
    items = [np.zeros((4, 4, 3), np.uint8)] * 3
    with pytest.raises(InvalidParameterError, match=f"got {n_labels} labels for 3 images"):
        as_image_set(items, ["a"] * n_labels)


@pytest.mark.parametrize("bad", [None, float("nan"), np.float64("nan")])
def test_y_with_missing_labels(bad):
    items = [np.zeros((4, 4, 3), np.uint8)] * 4
    with pytest.raises(DataError, match="1 missing labels.*index 2"):
        as_image_set(items, [0.0, 1.0, bad, 1.0])


def test_y_with_missing_labels_in_a_folder(tmp_path):
    for i in range(3):
        make_image(0, np.random.default_rng(i)).save(tmp_path / f"{i}.png")
    with pytest.raises(DataError, match="2 missing labels.*index 0"):
        as_image_set(tmp_path, [None, "a", np.nan])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_y_with_nan_in_float32_array(dtype):
    # NaN values of a numpy float array are np.floating, not Python floats.
    items = [np.zeros((4, 4, 3), np.uint8)] * 4
    with pytest.raises(DataError, match="missing labels"):
        as_image_set(items, np.array([0, 1, np.nan, 1], dtype=dtype))


def test_empty_list_and_bad_types():
    with pytest.raises(DataError, match="empty"):
        as_image_set([])
    with pytest.raises(InvalidParameterError, match="folder path"):
        as_image_set(42)
    with pytest.raises(InvalidParameterError, match="uint8 of shape"):
        as_image_set(np.zeros((4, 4), np.uint8))


def test_array_batch():
    batch = np.zeros((5, 8, 8, 3), np.uint8)
    data = as_image_set(batch, [0, 1, 0, 1, 1])
    assert len(data) == 5 and data.items[0].shape == (8, 8, 3)


# ============================================================================ check_two_classes


def test_two_classes_sorted():
    classes = check_two_classes(np.array(["dog", "cat", "dog"], dtype=object), "X")
    assert classes.tolist() == ["cat", "dog"]


def test_one_class_listed():
    with pytest.raises(DataError, match=r"has 1 \('cat'\)"):
        check_two_classes(np.array(["cat", "cat"], dtype=object), "X")


def test_three_classes_listed():
    labels = np.array(["cat", "dog", "bird", "cat"], dtype=object)
    with pytest.raises(DataError, match=r"has 3 \('bird', 'cat', 'dog'\)"):
        check_two_classes(labels, "pets")


def test_zero_classes():
    with pytest.raises(DataError, match=r"has 0 \(none\)"):
        check_two_classes(np.array([], dtype=object), "X")


# ============================================================================ split_fit_data


def _balanced(n_per_class: int = 10) -> ImageSet:
    labels = np.array(["a"] * n_per_class + ["b"] * n_per_class, dtype=object)
    return ImageSet(list(range(2 * n_per_class)), labels, "X")


def test_split_stratified():
    data = _balanced(10)
    train, valid = split_fit_data(data, 0.3, 0)
    assert len(train) + len(valid) == 20
    assert sorted(train.items + valid.items) == list(range(20))
    assert set(train.labels.tolist()) == {"a", "b"}
    assert set(valid.labels.tolist()) == {"a", "b"}
    assert sum(v == "a" for v in valid.labels) == sum(v == "b" for v in valid.labels)
    for part in (train, valid):  # labels still match their items
        assert all((i < 10) == (lab == "a") for i, lab in zip(part.items, part.labels))


def test_split_seeded():
    data = _balanced(20)
    first = split_fit_data(data, 0.25, 7)[1].items
    assert split_fit_data(data, 0.25, 7)[1].items == first
    others = {tuple(split_fit_data(data, 0.25, seed)[1].items) for seed in range(8)}
    assert len(others) > 1


def test_valid_size_zero():
    data = _balanced(3)
    train, valid = split_fit_data(data, 0, 0)
    assert valid is None and train is data


@pytest.mark.parametrize(
    "labels, valid_size",
    [
        (["a", "a", "a", "b"], 0.5),  # smallest class has 1 image
        (["a", "a", "b", "b"], 0.25),  # 1 validation image
        (["a", "a", "b", "b", "a"], 0.8),
    ],  # 1 training image
)
def test_split_too_few(labels, valid_size):
    data = ImageSet(list(range(len(labels))), np.array(labels, dtype=object), "X")
    with pytest.raises(DataError, match="Too few images"):
        split_fit_data(data, valid_size, 0)


# ============================================================================ ImageDataset


def test_image_dataset_unlabelled_and_labelled(class_tree):
    files = find_images(class_tree / "cat")[:2] + find_images(class_tree / "dog")[:1]
    transform = build_transforms(DataConfig(input_size=32, crop_pct=1.0), "none").eval
    unlabelled = ImageDataset(files, None, transform)
    assert len(unlabelled) == 3
    x, t = unlabelled[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert t.dtype == torch.float32 and t.item() == -1.0
    labelled = ImageDataset(files, np.array([0.0, 0.0, 1.0]), transform)
    assert [labelled[i][1].item() for i in range(3)] == [0.0, 0.0, 1.0]
    torch.testing.assert_close(labelled[2][0], transform(load_image(files[2])))


def test_image_dataset_propagates_decode_errors(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    ds = ImageDataset([str(bad)], None, lambda im: im)
    with pytest.raises(ImageDecodeError, match="bad.jpg"):
        ds[0]


def test_image_dataset_max_pixels(tmp_path):
    ds = ImageDataset([np.zeros((10, 10, 3), np.uint8)], None, lambda im: im, max_pixels=50)
    with pytest.raises(ImageDecodeError, match="max_pixels=50"):
        ds[0]
