"""Decoded images kept on the training device and augmented there, a whole batch at once.

Fine-tuning normally decodes and augments every image again in every epoch, one image at a
time with Pillow in DataLoader worker processes. On a GPU those few CPU workers can leave
the accelerator waiting. For a small data set, the fastest scripts (the CIFAR-10 speed
runs) decode once, keep the images as uint8 tensors on the GPU and augment whole batches
there with a few tensor operations. This module does that:

- :func:`store_images` decodes each image once (through :func:`~binaryvision.data.load_image`
  and the DataLoader workers) into one ``uint8`` tensor ``(N, 3, R, R)`` on the device;
  uint8 takes a quarter of the memory of float32;
- :func:`augment_batch` turns a batch of them into normalised float images ``(B, 3, S, S)``:
  one affine resampling per image does the random resized crop, the horizontal flip and
  the small rotation, and per-image factors do the colour jitter;
- :class:`DeviceLoader` iterates over batches in place of a DataLoader, drawing the order
  and every random parameter from its own seeded :class:`torch.Generator`, so a fit is
  repeatable and a checkpointed fit resumes exactly.

``Trainer(data_on_device=...)`` decides when it is used (by default: on CUDA, when the
images take at most 2 GiB and a quarter of the free memory).

The augmentation matches the ``"light"`` and ``"standard"`` presets of
:func:`~binaryvision.transforms.build_transforms` in its ranges (crop area 35 to 100%,
aspect ratio 3/4 to 4/3, flip with probability 1/2, rotation up to 10 degrees, brightness,
contrast and saturation factors in [0.75, 1.25], hue shift up to 0.03 of a turn), with
three differences: crops are taken from the centred square of side ``R`` each image is
stored as (not from the whole photo); a rotated crop shows the surrounding image rather
than black corners; and the hue is turned in YIQ space (a 3x3 matrix per image) rather
than through HSV.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ..data.loading import ImageDataset
from ..exceptions import InvalidParameterError
from .config import DataConfig
from .presets import (
    _INTERPOLATION,
    AUGMENT_PRESETS,
    COLOR_JITTER,
    CROP_SCALE,
    ROTATION_DEGREES,
)

__all__ = ["DeviceLoader", "augment_batch", "store_images", "stored_bytes"]

# torchvision's grayscale weights (ITU-R 601-2 luma), as its ColorJitter uses
_GRAY = (0.2989, 0.587, 0.114)
# RGB -> YIQ; the hue turns the (I, Q) chroma plane
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def stored_size(config: DataConfig, augment: str) -> int:
    """Side of the stored squares: the eval crop, or the resize before it when augmenting."""
    if augment == "none":
        return config.input_size
    return int(round(config.input_size / config.crop_pct))


def stored_bytes(n_images: int, config: DataConfig, augment: str) -> int:
    """Bytes the uint8 images of :func:`store_images` take on the device."""
    return n_images * 3 * stored_size(config, augment) ** 2


class _ToStored:
    """PIL image -> uint8 tensor (3, side, side): resize the shorter side, centre-crop."""

    def __init__(self, resize: int, side: int, interpolation: v2.InterpolationMode) -> None:
        self.ops = v2.Compose(
            [
                v2.Resize(resize, interpolation=interpolation, antialias=True),
                v2.CenterCrop(side),
                v2.PILToTensor(),
            ]
        )

    def __call__(self, image: Any) -> torch.Tensor:
        return self.ops(image)


def store_images(
    items: Sequence[Any],
    config: DataConfig,
    augment: str,
    trainer: Any,
    *,
    max_pixels: int | None = None,
) -> torch.Tensor:
    """Decode ``items`` once into one uint8 tensor ``(N, 3, R, R)`` on the trainer's device.

    With ``augment="none"`` the squares are exactly the evaluation transform's crops
    (``R`` is the input size); otherwise they are the centred squares of the resized
    image (``R = input_size / crop_pct``) that :func:`augment_batch` crops from.
    Decoding runs in the trainer's DataLoader workers, a batch at a time, and each batch
    is copied to the device as it arrives, so host memory holds one batch, not the set.
    """
    _check_preset(augment)
    side = stored_size(config, augment)
    resize = int(round(config.input_size / config.crop_pct))
    interpolation = _INTERPOLATION.get(config.interpolation, v2.InterpolationMode.BILINEAR)
    dataset = ImageDataset(
        items,
        None,
        _ToStored(resize, side, interpolation),
        min_size=resize,
        max_pixels=max_pixels,
    )
    device = trainer.resolved_device()
    out = torch.empty((len(items), 3, side, side), dtype=torch.uint8, device=device)
    start = 0
    for batch, _ in trainer.loader(dataset, 32):
        out[start : start + len(batch)].copy_(batch, non_blocking=True)
        start += len(batch)
    return out


def _check_preset(augment: str) -> None:
    if augment not in AUGMENT_PRESETS:
        raise InvalidParameterError(
            f"Images kept on the device support the augmentation presets {AUGMENT_PRESETS}; got "
            f"{augment!r}. Use Trainer(data_on_device=False) for your own transforms."
        )


def _uniform(generator: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _crop_affines(n: int, generator: torch.Generator, rotate: bool) -> torch.Tensor:
    """``(n, 2, 3)`` affine matrices for :func:`F.affine_grid`: output -> input coordinates.

    An output point ``p`` (in [-1, 1]^2) is rotated, flipped, scaled to the crop's width
    and height and moved to the crop's centre; all parameters are drawn on the CPU from
    ``generator`` (in float64) so they do not depend on the device.
    """
    area = _uniform(generator, n, *CROP_SCALE)
    log_ratio = _uniform(generator, n, math.log(3 / 4), math.log(4 / 3))
    width = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    height = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    cx = (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1) * (1 - width)
    cy = (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1) * (1 - height)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
    angle = (
        _uniform(generator, n, -math.radians(ROTATION_DEGREES), math.radians(ROTATION_DEGREES))
        if rotate
        else torch.zeros(n, dtype=torch.float64)
    )
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = width * flip * cos
    theta[:, 0, 1] = -width * flip * sin
    theta[:, 1, 0] = height * sin
    theta[:, 1, 1] = height * cos
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    return theta


def _jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter of images in [0, 1], per image."""
    n = x.shape[0]
    *strengths, hue_turn = COLOR_JITTER  # brightness, contrast, saturation; hue
    factors = torch.stack([_uniform(generator, n, 1 - s, 1 + s) for s in strengths])
    factors = factors.view(3, n, 1, 1, 1)
    hue = _uniform(generator, n, -hue_turn, hue_turn) * 2 * math.pi
    factors = factors.to(x.device, x.dtype)
    gray_w = torch.tensor(_GRAY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)

    x = (x * factors[0]).clamp_(0, 1)
    mean = (x * gray_w).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * factors[1] + mean).clamp_(0, 1)
    gray = (x * gray_w).sum(1, keepdim=True)
    x = ((x - gray) * factors[2] + gray).clamp_(0, 1)
    # hue: rotate the chroma plane of YIQ, one 3x3 matrix per image
    cos, sin = torch.cos(hue), torch.sin(hue)
    turn = torch.zeros(n, 3, 3, dtype=torch.float64)
    turn[:, 0, 0] = 1
    turn[:, 1, 1], turn[:, 1, 2] = cos, -sin
    turn[:, 2, 1], turn[:, 2, 2] = sin, cos
    yiq = _YIQ.double()
    matrix = (torch.linalg.inv(yiq) @ turn @ yiq).to(x.device, x.dtype)
    return torch.einsum("nij,njhw->nihw", matrix, x).clamp_(0, 1)


def augment_batch(
    images: torch.Tensor,
    config: DataConfig,
    augment: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Turn stored uint8 images ``(B, 3, R, R)`` into normalised float32 ``(B, 3, S, S)``.

    Parameters
    ----------
    images : torch.Tensor
        uint8 images from :func:`store_images`, on any device; they are not modified.
    config : DataConfig
        The backbone's input size, mean and std.
    augment : {"none", "light", "standard"}
        ``"none"``: the centred ``S x S`` crop. ``"light"``: random resized crop and
        horizontal flip. ``"standard"``: also a rotation of up to 10 degrees and colour
        jitter. See the module's docstring for how this compares with the Pillow path.
    generator : torch.Generator, optional
        A CPU generator for every random draw (required unless ``augment="none"``).

    Returns
    -------
    torch.Tensor
        A new float32 tensor on the images' device.
    """
    _check_preset(augment)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise InvalidParameterError(
            f"augment_batch(images=...) must be a uint8 tensor (B, 3, R, R); got "
            f"{images.dtype} {tuple(images.shape)}."
        )
    size = config.input_size
    if augment == "none":
        top = (images.shape[-2] - size) // 2
        left = (images.shape[-1] - size) // 2
        x = images[..., top : top + size, left : left + size].float().div_(255)
    else:
        if generator is None:
            raise InvalidParameterError(
                f"augment_batch(augment={augment!r}) needs a torch.Generator for its draws."
            )
        n = images.shape[0]
        theta = _crop_affines(n, generator, rotate=augment == "standard")
        theta = theta.to(images.device, torch.float32)
        grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
        x = F.grid_sample(
            images.float().div_(255), grid, mode="bilinear", align_corners=False
        ).clamp_(0, 1)
        if augment == "standard":
            x = _jitter(x, generator)
    mean = torch.tensor(config.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


class DeviceLoader:
    """Batches of :func:`augment_batch` over stored images, in place of a DataLoader.

    Parameters
    ----------
    images : torch.Tensor
        uint8 ``(N, 3, R, R)`` from :func:`store_images`.
    targets : numpy.ndarray
        N float targets.
    config : DataConfig
        The backbone's data config.
    augment : {"none", "light", "standard"}
        As for :func:`augment_batch`.
    batch_size : int
        Images per batch (per process when ``sampler`` shards them).
    shuffle : bool
        A new order every epoch, drawn from ``generator``.
    generator : torch.Generator, optional
        Source of the order and of every augmentation draw. The trainer checkpoints it
        with the rest of the fit, as it does a DataLoader's.
    drop_last : bool
        Drop a last incomplete batch.
    sampler : iterable of int, optional
        Indices to take each epoch instead (a ``DistributedSampler`` under DDP; the
        trainer calls its ``set_epoch``).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: np.ndarray,
        config: DataConfig,
        augment: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        sampler: Any = None,
    ) -> None:
        _check_preset(augment)
        self.images = images
        self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
        self.config = config
        self.augment = augment
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(0) if generator is None else generator
        self.drop_last = drop_last
        self.sampler = sampler

    def _batch_sampler(self) -> torch.utils.data.BatchSampler:
        if self.sampler is not None:
            sampler = self.sampler
        elif self.shuffle:
            sampler = torch.utils.data.RandomSampler(
                range(len(self.images)), generator=self.generator
            )
        else:
            sampler = torch.utils.data.SequentialSampler(range(len(self.images)))
        return torch.utils.data.BatchSampler(sampler, self.batch_size, self.drop_last)

    def __len__(self) -> int:
        return len(self._batch_sampler())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = iter(self._batch_sampler())
        # A DataLoader's iterator draws its workers' base seed from the generator before
        # its sampler draws the order: drawing the same keeps both paths in the same
        # order, so with augment="none" they give the same fit (tests/test_device_data.py).
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        device = self.images.device
        for chunk in batches:
            index = torch.tensor(chunk, device=device)
            x = augment_batch(self.images[index], self.config, self.augment, self.generator)
            yield x, self.targets[chunk]
