"""Tests of the deterministic test-time views: TTAView, tta_views and TTA_VIEWS."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from strategies import pil_images
from torchvision.transforms.v2 import functional as F

from binaryvision.backbones import DataConfig
from binaryvision.exceptions import InvalidParameterError
from binaryvision.transforms import (
    MAX_TTA_VIEWS,
    TTA_VIEWS,
    TTAView,
    build_transforms,
    tta_views,
)

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def eval_transform(size: int = 32):
    return build_transforms(DataConfig(input_size=size), augment="none").eval


def noise_image(width: int = 44, height: int = 40, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def half_bright_image(side: str = "left", size: int = 40) -> Image.Image:
    """Black image whose left (or top) half is white."""
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    if side == "left":
        arr[:, : size // 2] = 255
    else:
        arr[: size // 2, :] = 255
    return Image.fromarray(arr)


def gradient_image(axis: int, size: int = 40) -> Image.Image:
    """Grey ramp increasing to the right (axis=1) or downwards (axis=0)."""
    ramp = np.linspace(0, 255, size).astype(np.uint8)
    arr = np.broadcast_to(ramp[None, :] if axis == 1 else ramp[:, None], (size, size))
    return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")


# ---------------------------------------------------------------------- tta_views
@pytest.mark.parametrize("n", [0, 1])
def test_zero_or_one_view_is_identity_only(n):
    assert tta_views(n) == ("identity",)


def test_eight_views_are_all_distinct_names():
    views = tta_views(8)
    assert len(views) == 8 == MAX_TTA_VIEWS
    assert len(set(views)) == 8
    assert set(views) == set(TTA_VIEWS)
    assert views[0] == "identity"


@pytest.mark.parametrize("n", range(2, 9))
def test_n_views_are_the_first_n(n):
    views = tta_views(n)
    assert len(views) == n
    assert views == TTA_VIEWS[:n]
    assert views[0] == "identity"


@pytest.mark.parametrize("n", [9, -1, 2.0, True, False, None, "4", 100])
def test_invalid_view_counts_raise(n):
    with pytest.raises(InvalidParameterError, match="tta"):
        tta_views(n)


@pytest.mark.parametrize("name", ["rotate", "Identity", "", "vflip"])
def test_unknown_view_name_raises(name):
    with pytest.raises(InvalidParameterError, match="TTA view"):
        TTAView(eval_transform(), name)


# ---------------------------------------------------------------------- the views
def test_identity_is_the_eval_transform():
    base = eval_transform()
    image = noise_image()
    assert torch.equal(TTAView(base, "identity")(image), base(image))


@given(pil_images(modes=("RGB",), max_side=48), st.sampled_from([16, 24, 33]))
@settings(max_examples=30, deadline=None)
def test_hflip_mirrors_the_identity_along_the_last_dim(image, size):
    base = eval_transform(size)
    identity = TTAView(base, "identity")(image)
    assert torch.equal(TTAView(base, "hflip")(image), torch.flip(identity, dims=[-1]))


@given(pil_images(modes=("RGB",), max_side=48), st.sampled_from([16, 24, 33]))
@settings(max_examples=30, deadline=None)
def test_every_view_has_the_identity_shape(image, size):
    base = eval_transform(size)
    shape = TTAView(base, "identity")(image).shape
    assert shape == (3, size, size)
    for name in TTA_VIEWS:
        out = TTAView(base, name)(image)
        assert out.shape == shape, name
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("size", [32, 33, 24])
def test_zoom_is_the_central_crop_resized(size):
    base = eval_transform(size)
    image = noise_image(seed=size)
    identity = base(image)
    crop = round(size * 0.875)  # the central 87.5% of the side
    offset = (size - crop) // 2
    expected = F.resized_crop(identity, offset, offset, crop, crop, [size, size], antialias=True)
    zoom = TTAView(base, "zoom")(image)
    assert torch.allclose(zoom, expected, atol=1e-6)
    assert not torch.allclose(zoom, identity, atol=1e-3)
    flipped = TTAView(base, "zoom_hflip")(image)
    assert torch.allclose(flipped, torch.flip(expected, dims=[-1]), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "top", "left"),
    [("top_left", 0, 0), ("top_right", 0, 1), ("bottom_left", 1, 0), ("bottom_right", 1, 1)],
)
def test_corner_views_crop_at_their_corner(name, top, left):
    size = 32
    base = eval_transform(size)
    image = noise_image(seed=3)
    identity = base(image)
    crop = round(size * 0.875)
    edge = size - crop
    expected = F.resized_crop(
        identity, top * edge, left * edge, crop, crop, [size, size], antialias=True
    )
    assert torch.allclose(TTAView(base, name)(image), expected, atol=1e-6)


@pytest.mark.parametrize("name", TTA_VIEWS)
def test_a_constant_image_stays_constant(name):
    base = eval_transform(32)
    image = Image.new("RGB", (40, 36), (200, 30, 120))
    identity = base(image)
    out = TTAView(base, name)(image)
    for c in range(3):
        assert torch.allclose(out[c], identity[c, 0, 0].expand_as(out[c]), atol=1e-5)


@pytest.mark.parametrize(
    ("name", "brighter"),
    [
        ("identity", "left"),
        ("zoom", "left"),
        ("top_left", "left"),
        ("bottom_right", "left"),
        ("hflip", "right"),
        ("zoom_hflip", "right"),
    ],
)
def test_a_bright_left_half_moves_only_with_a_flip(name, brighter):
    base = eval_transform(32)
    out = TTAView(base, name)(half_bright_image("left"))
    left, right = out[..., :16].mean(), out[..., 16:].mean()
    assert (left > right) if brighter == "left" else (right > left)


def test_corner_views_look_where_they_say():
    base = eval_transform(32)
    rightwards = gradient_image(axis=1)  # brighter to the right
    downwards = gradient_image(axis=0)  # brighter to the bottom

    def mean(name: str, image: Image.Image) -> float:
        return float(TTAView(base, name)(image).mean())

    assert mean("top_right", rightwards) > mean("top_left", rightwards)
    assert mean("bottom_right", rightwards) > mean("bottom_left", rightwards)
    assert mean("bottom_left", downwards) > mean("top_left", downwards)
    assert mean("bottom_right", downwards) > mean("top_right", downwards)
    # the centre zoom sits between the corners
    assert mean("top_left", rightwards) < mean("zoom", rightwards) < mean("top_right", rightwards)


def test_corner_views_differ_on_a_non_symmetric_image():
    base = eval_transform(32)
    image = noise_image(seed=7)
    outs = {name: TTAView(base, name)(image) for name in CORNERS}
    for a, b in itertools.combinations(CORNERS, 2):
        assert not torch.allclose(outs[a], outs[b], atol=1e-3), (a, b)


def test_all_views_differ_on_a_non_symmetric_image():
    base = eval_transform(32)
    image = noise_image(seed=9)
    outs = {name: TTAView(base, name)(image) for name in TTA_VIEWS}
    for a, b in itertools.combinations(TTA_VIEWS, 2):
        assert not torch.allclose(outs[a], outs[b], atol=1e-3), (a, b)


@pytest.mark.parametrize("name", TTA_VIEWS)
def test_views_are_deterministic(name):
    view = TTAView(eval_transform(32), name)
    image = noise_image(seed=5)
    assert torch.equal(view(image), view(image))


@pytest.mark.parametrize("name", TTA_VIEWS)
def test_view_pickle_round_trip(name):
    view = TTAView(eval_transform(32), name)
    again = pickle.loads(pickle.dumps(view))
    assert again.name == name
    assert repr(again) == repr(view) == f"TTAView({name!r})"
    image = noise_image(seed=11)
    assert torch.equal(again(image), view(image))
