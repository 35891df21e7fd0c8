"""Sample data the library can generate itself (no download needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["make_shapes"]


def _draw(kind: str, rng: np.random.Generator, size: int) -> Image.Image:
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    background = (top * (1 - ramp) + bottom * ramp).repeat(size, axis=1)
    noise = rng.normal(0, 12, (size, size, 3))
    image = Image.fromarray(np.clip(background + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        r = int(rng.integers(size // 8, size // 3))
        cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = (cx - r, cy - r, cx + r, cy + r)
        if kind == "circles":
            draw.ellipse(box, fill=colour, outline=(0, 0, 0), width=2)
        else:
            draw.rectangle(box, fill=colour, outline=(0, 0, 0), width=2)
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))


def make_shapes(
    root: str | os.PathLike,
    n_train: int = 40,
    n_valid: int = 20,
    size: int = 160,
    random_state: int = 0,
) -> Path:
    """Write a small two-class photo set: ``circles`` vs ``squares`` on noisy backgrounds.

    The layout is the one :meth:`~binaryvision.ImageBinaryClassifier.fit` reads:
    ``root/train/{circles,squares}/*.jpg`` and ``root/valid/{circles,squares}/*.jpg``.
    Existing files are overwritten; nothing else in ``root`` is touched.

    Parameters
    ----------
    root : str or path
        Folder to write into (created if missing).
    n_train, n_valid : int
        Images per class in each split.
    size : int
        Side of the square images in pixels.
    random_state : int
        Seed; the same seed writes the same images.

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    rng = np.random.default_rng(random_state)
    root = Path(root)
    for split, n in (("train", n_train), ("valid", n_valid)):
        for kind in ("circles", "squares"):
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _draw(kind, rng, size).save(folder / f"{kind}_{i:03d}.jpg", quality=90)
    return root
