"""Image transforms: evaluation preprocessing and train-time augmentation presets.

Both are built from a backbone's :class:`~binaryvision.backbones.DataConfig`, so the
classifier never hard-codes image statistics. The evaluation transform is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from .backbones import DataConfig
from .exceptions import InvalidParameterError

__all__ = [
    "AUGMENT_PRESETS",
    "MAX_TTA_VIEWS",
    "TTA_VIEWS",
    "Transforms",
    "TTAView",
    "build_transforms",
    "tta_views",
]

#: Names accepted by ``transforms=`` and ``build_transforms(augment=...)``.
AUGMENT_PRESETS = ("none", "light", "standard")

# The augmentation presets' ranges, shared with the on-device path (device_data.py):
# random resized crops keep 35 to 100% of the area; "standard" adds colour jitter
# (brightness, contrast, saturation, hue) and rotations up to 10 degrees.
CROP_SCALE = (0.35, 1.0)
COLOR_JITTER = (0.25, 0.25, 0.25, 0.03)
ROTATION_DEGREES = 10.0

_INTERPOLATION = {
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
    "nearest": v2.InterpolationMode.NEAREST,
}


@dataclass(frozen=True)
class Transforms:
    """A pair of transforms from an RGB :class:`PIL.Image.Image` to a float tensor (3, S, S).

    Parameters
    ----------
    train : callable
        Applied to training images when the backbone is fine-tuned (may be random).
    eval : callable
        Applied for feature extraction, validation and prediction (must be deterministic).
    decode_size : int, optional
        Smallest short side the eval transform needs; JPEGs are decoded at reduced size
        down to it. ``None`` decodes at full size.
    """

    train: Callable[..., torch.Tensor]
    eval: Callable[..., torch.Tensor]
    decode_size: int | None = None


def _tail(config: DataConfig) -> list[v2.Transform]:
    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(config.mean), list(config.std)),
    ]


def build_transforms(config: DataConfig, augment: str = "standard") -> Transforms:
    """Build the train and eval transforms for a backbone's data config.

    Parameters
    ----------
    config : DataConfig
        Input size, normalisation, interpolation and crop fraction.
    augment : {"none", "light", "standard"}
        Train-time augmentation: ``"none"`` uses the eval transform, ``"light"`` adds
        random resized crops and horizontal flips, ``"standard"`` also jitters colour and
        rotates slightly.

    Returns
    -------
    Transforms
    """
    if augment not in AUGMENT_PRESETS:
        raise InvalidParameterError(
            f"transforms must be one of {AUGMENT_PRESETS} or a Transforms object; got {augment!r}."
        )
    size = config.input_size
    interpolation = _INTERPOLATION.get(config.interpolation, v2.InterpolationMode.BILINEAR)
    resize = int(round(size / config.crop_pct))
    eval_tf = v2.Compose(
        [
            v2.Resize(resize, interpolation=interpolation, antialias=True),
            v2.CenterCrop(size),
            *_tail(config),
        ]
    )
    if augment == "none":
        return Transforms(eval_tf, eval_tf, resize)
    train_ops: list[v2.Transform] = [
        v2.RandomResizedCrop(size, scale=CROP_SCALE, interpolation=interpolation, antialias=True),
        v2.RandomHorizontalFlip(),
    ]
    if augment == "standard":
        train_ops += [v2.ColorJitter(*COLOR_JITTER), v2.RandomRotation(ROTATION_DEGREES)]
    return Transforms(v2.Compose([*train_ops, *_tail(config)]), eval_tf, resize)


# ---------------------------------------------------------------------- test-time views
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
