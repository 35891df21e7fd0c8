"""How the Trainer runs: determinism, precision, workers, loaders and sharding.

Module-level resolution logic behind :class:`~binaryvision.Trainer`'s methods of the same
purpose. ``device`` arguments are callables (the trainer's ``resolved_device``), called
only where the answer depends on the device.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..exceptions import BinaryVisionWarning, InvalidParameterError, TrainingError

DeviceFn = Callable[[], torch.device]


@contextlib.contextmanager
def determinism(enabled: bool, device: DeviceFn) -> Iterator[None]:
    """While active, use deterministic algorithms if ``enabled`` (then restore)."""
    if not enabled:
        yield
        return
    if device().type == "cuda" and not os.environ.get("CUBLAS_WORKSPACE_CONFIG"):
        warnings.warn(
            "Trainer(deterministic=True) on CUDA needs the environment variable "
            "CUBLAS_WORKSPACE_CONFIG=:4096:8, set before Python starts; without it "
            "some cuBLAS operations stay non-deterministic.",
            BinaryVisionWarning,
            stacklevel=3,
        )
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2:]


def amp_dtype(precision: Any, device: DeviceFn) -> torch.dtype | None:
    """The autocast dtype for ``Trainer(precision=...)``; None for plain fp32."""
    allowed = ("auto", "32", "bf16", "16")
    if str(precision) not in allowed:
        raise InvalidParameterError(
            f"Trainer(precision=...) must be one of {allowed}; got {precision!r}."
        )
    dev = device()
    if str(precision) == "32" or (precision == "auto" and dev.type != "cuda"):
        return None
    if precision == "16":
        return torch.float16
    if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def worker_count(num_workers: Any, inference: bool, device: DeviceFn) -> int:
    """DataLoader worker processes for ``Trainer(num_workers=...)``."""
    if num_workers == "auto":
        cores = os.cpu_count() or 1
        spare = cores - 1
        if inference and device().type == "cpu":
            spare = cores - torch.get_num_threads()
        return max(0, min(8, spare))
    if not isinstance(num_workers, int) or num_workers < 0:
        raise InvalidParameterError(
            f"Trainer(num_workers=...) must be 'auto' or an int >= 0; got {num_workers!r}."
        )
    return num_workers


def keeps_data_on_device(setting: Any, n_bytes: int, device: DeviceFn) -> bool:
    """Whether ``Trainer(data_on_device=setting)`` keeps ``n_bytes`` on the device."""
    if setting not in ("auto", True, False):
        raise InvalidParameterError(
            f"Trainer(data_on_device=...) must be 'auto', True or False; got {setting!r}."
        )
    if setting != "auto":
        return bool(setting)
    dev = device()
    if dev.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(dev)
    return n_bytes <= min(2 * 2**30, free // 4)


def data_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    *,
    sampler: torch.utils.data.Sampler | None,
    shuffle: bool,
    generator: torch.Generator | None,
    drop_last: bool,
    workers: int,
    pin_memory: bool,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` (``sampler`` from :func:`shard`, or None).

    Workers beyond the number of batches after the first are not started.
    """
    if sampler is not None:
        shuffle = False
    if generator is None and not shuffle:
        # the loader draws its workers' base seed from this generator; without one it
        # would draw from the global RNG, so a fit's dropout masks would depend on
        # whether its features were cached
        generator = torch.Generator()
    n = len(dataset) if sampler is None else len(sampler)
    workers = min(workers, max(0, math.ceil(n / batch_size) - 1))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        generator=generator,
        drop_last=drop_last,
        num_workers=workers,
        persistent_workers=False,
        pin_memory=pin_memory,
    )


def shard(
    dataset: Any, batch_size: int, shuffle: bool, shard_seed: int | None
) -> tuple[torch.utils.data.distributed.DistributedSampler | None, int]:
    """This process's sampler and batch size (see :meth:`~binaryvision.Trainer.shard`)."""
    if shard_seed is None or not distributed.active():
        return None, batch_size
    sampler = torch.utils.data.distributed.DistributedSampler(
        dataset, shuffle=shuffle, seed=shard_seed, drop_last=True
    )
    return sampler, max(1, batch_size // distributed.world_size())


def training_model(
    model: nn.Module, device: torch.device, sampler: Any, compile: bool
) -> tuple[nn.Module, bool]:
    """The module a fit steps through (``model``, in DDP when sharded, compiled if asked)
    and whether it is in DDP (``sampler`` is the train loader's)."""
    ddp = distributed.active() and isinstance(
        sampler, torch.utils.data.distributed.DistributedSampler
    )
    train_model = model
    if ddp:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if compile:
        train_model = torch.compile(train_model)
    return train_model, ddp


def step_failure(
    loss: float, grad: float, epoch: int, step: int, phase: str, lr: float
) -> TrainingError:
    """The error for a step whose loss or gradient norm was not finite."""
    what = (
        f"training loss became {loss}"
        if not math.isfinite(loss)
        else (f"gradient norm became {grad}")
    )
    return TrainingError(
        f"The {what} at epoch {epoch}, step {step} ({phase} phase) "
        f"with learning rate {lr:.3g}. The weights of the last completed "
        "epoch were restored. Lower lr, or check the images."
    )
