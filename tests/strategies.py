"""Hypothesis strategies shared by the tests: small in-memory Pillow images."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from PIL import Image

#: Modes drawn by :func:`pil_images`.
IMAGE_MODES = ("L", "RGB", "RGBA", "P", "I;16")
#: Largest long side / short side ratio drawn (binaryvision refuses more than 25).
MAX_ASPECT = 25


@st.composite
def image_sizes(draw, max_side: int = 64, max_aspect: int = MAX_ASPECT) -> tuple[int, int]:
    """``(width, height)`` with both sides in ``1..max_side`` and aspect ratio <= max_aspect."""
    width = draw(st.integers(1, max_side))
    low = max(1, math.ceil(width / max_aspect))
    high = min(max_side, width * max_aspect)
    height = draw(st.integers(low, high))
    return width, height


def _pixels(rng: np.random.Generator, mode: str, width: int, height: int) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "L":
        return Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8))
    channels = 4 if mode == "RGBA" else 3
    im = Image.fromarray(rng.integers(0, 256, (height, width, channels), dtype=np.uint8))
    if mode == "P":
        im = im.quantize(colors=int(rng.integers(2, 17)))
        if rng.random() < 0.5:
            im.info["transparency"] = 0
    return im


@st.composite
def pil_images(draw, modes: tuple[str, ...] = IMAGE_MODES, max_side: int = 64) -> Image.Image:
    """A random in-memory image (no EXIF) of one of ``modes``."""
    mode = draw(st.sampled_from(modes))
    width, height = draw(image_sizes(max_side=max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    im = _pixels(np.random.default_rng(seed), mode, width, height)
    assert im.mode == mode and im.size == (width, height)
    return im
