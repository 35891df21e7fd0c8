"""Image transforms: evaluation preprocessing and train-time augmentation presets.

Both are built from a backbone's :class:`~binaryvision.transforms.DataConfig`, so the
classifier never hard-codes image statistics. The evaluation transform is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from ..exceptions import InvalidParameterError
from .config import DataConfig

__all__ = ["AUGMENT_PRESETS", "Transforms", "build_transforms"]

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
