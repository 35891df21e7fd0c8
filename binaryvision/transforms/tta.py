"""Test-time augmentation: deterministic views of the eval transform's output."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

from ..exceptions import InvalidParameterError

__all__ = ["MAX_TTA_VIEWS", "TTA_VIEWS", "TTAView", "tta_views"]

#: Names of the deterministic test-time views, in the order ``tta=n`` takes them.
TTA_VIEWS = (
    "identity",
    "hflip",
    "zoom",
    "zoom_hflip",
    "top_left",
    "bottom_right",
    "top_right",
    "bottom_left",
)
MAX_TTA_VIEWS = len(TTA_VIEWS)
_ZOOM = 0.875  # crops keep 87.5% of the side, as the eval transform's own crop does


class TTAView:
    """One deterministic test-time view: the eval transform, then a flip and/or crop.

    Views act on the eval transform's output tensor ``(3, S, S)``: ``"hflip"`` mirrors
    it; ``"zoom"`` crops the central 87.5% and resizes back to ``S``; the corner views
    crop 87.5% at that corner. A plain class (not a lambda) so DataLoader workers can
    pickle it.

    Parameters
    ----------
    base : callable
        The eval transform (PIL image to tensor).
    name : str
        One of :data:`TTA_VIEWS`.
    """

    def __init__(self, base: Callable[..., torch.Tensor], name: str) -> None:
        if name not in TTA_VIEWS:
            raise InvalidParameterError(f"TTA view must be one of {TTA_VIEWS}; got {name!r}.")
        self.base = base
        self.name = name

    def __call__(self, image: object) -> torch.Tensor:
        """Apply the eval transform, then this view."""
        x = self.base(image)
        name = self.name
        if name in ("identity", "hflip"):
            return v2.functional.horizontal_flip(x) if name == "hflip" else x
        size = x.shape[-1]
        crop = int(round(size * _ZOOM))
        edge = size - crop
        top, left = {
            "zoom": (edge // 2, edge // 2),
            "zoom_hflip": (edge // 2, edge // 2),
            "top_left": (0, 0),
            "bottom_right": (edge, edge),
            "top_right": (0, edge),
            "bottom_left": (edge, 0),
        }[name]
        x = v2.functional.resized_crop(x, top, left, crop, crop, [size, size], antialias=True)
        return v2.functional.horizontal_flip(x) if name == "zoom_hflip" else x

    def __repr__(self) -> str:
        return f"TTAView({self.name!r})"


def tta_views(n: int) -> tuple[str, ...]:
    """The names of the first ``n`` test-time views (``n`` of 0 or 1: no augmentation).

    Raises
    ------
    InvalidParameterError
        When ``n`` is not an int in ``[0, MAX_TTA_VIEWS]``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_TTA_VIEWS:
        raise InvalidParameterError(
            f"tta must be an int in [0, {MAX_TTA_VIEWS}] (the number of views, 0 or 1 for "
            f"none); got {n!r}."
        )
    return TTA_VIEWS[: max(n, 1)]
