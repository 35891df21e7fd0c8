"""Torch datasets over images, and the plain decoding scan for unreadable files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..exceptions import ImageDecodeError
from .decode import load_image

__all__ = ["ImageDataset", "scan_images"]


class ImageDataset(torch.utils.data.Dataset):
    """A torch Dataset over an :class:`ImageSet`: ``(transform(image), target)`` pairs.

    Parameters
    ----------
    items : list
        Paths, PIL images or arrays.
    targets : numpy.ndarray, optional
        Float targets (0 or 1); -1 when unlabelled.
    transform : callable
        Maps an RGB PIL image to a tensor.
    min_size : int, optional
        Passed to :func:`load_image` for fast reduced-size JPEG decoding.
    flag_errors : bool
        Instead of raising, return a blank image with a NaN target for an item that
        cannot be decoded (used when feature extraction doubles as the pre-training scan).
    """

    def __init__(
        self,
        items: Sequence[Any],
        targets: np.ndarray | None,
        transform: Any,
        min_size: int | None = None,
        max_pixels: int | None = None,
        flag_errors: bool = False,
    ) -> None:
        self.items = items
        self.targets = targets
        self.transform = transform
        self.min_size = min_size
        self.max_pixels = max_pixels
        self.flag_errors = flag_errors

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        target = -1.0 if self.targets is None else float(self.targets[index])
        try:
            image = load_image(
                self.items[index], min_size=self.min_size, max_pixels=self.max_pixels
            )
        except ImageDecodeError:
            if not self.flag_errors:
                raise
            image, target = Image.new("RGB", (8, 8)), math.nan
        return self.transform(image), torch.tensor(target, dtype=torch.float32)


# ---------------------------------------------------------------------- scanning
class _ScanDataset(torch.utils.data.Dataset):
    """Decodes each item once and returns why it failed ("" when it is fine)."""

    def __init__(self, items: Sequence[Any], min_size: int | None, max_pixels: int | None):
        self.items = items
        self.min_size = min_size
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> str:
        try:
            load_image(self.items[index], min_size=self.min_size, max_pixels=self.max_pixels)
        except ImageDecodeError as exc:
            return exc.reason
        return ""


def _as_list(batch: list) -> list:
    return batch


def scan_images(
    items: Sequence[Any],
    *,
    min_size: int | None = None,
    max_pixels: int | None = None,
    workers: int = 0,
) -> list[tuple[int, str]]:
    """Decode every image once, in parallel, and list the ones that cannot be used.

    Uses the same decoding path (:func:`load_image`) as training and prediction, so
    what passes here decodes later too.

    Parameters
    ----------
    items : sequence
        Paths, PIL images or arrays.
    min_size, max_pixels
        As for :func:`load_image`.
    workers : int
        DataLoader worker processes.

    Returns
    -------
    list of (int, str)
        Index and reason of each unusable item, in order.
    """
    loader = torch.utils.data.DataLoader(
        _ScanDataset(items, min_size, max_pixels),
        batch_size=8,
        num_workers=min(workers, max(0, (len(items) - 1) // 8)),
        collate_fn=_as_list,
        generator=torch.Generator(),  # worker seeds come from here, not the global RNG
    )
    reasons = [reason for batch in loader for reason in batch]
    return [(i, reason) for i, reason in enumerate(reasons) if reason]
