"""Inference helpers of the Trainer: row gathering, progress bars, the model pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .. import distributed


class Rows:
    """Batches of rows gathered into one tensor, allocated up front when the total is known.

    Keeping each batch's small output alive while the forward pass allocates and frees
    large activations fragmented the C heap: over 1,600 photos on the CPU, peak RSS grew
    by 1.2 GB (bench/scaling.py). One buffer allocated at the first batch keeps the peak
    at the small-data figure. Without a known total (or past it), batches are listed and
    concatenated at the end.
    """

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.parts: list[torch.Tensor] = []
        self.buffer: torch.Tensor | None = None
        self.n = 0

    def add(self, rows: torch.Tensor) -> None:
        if self.total is not None and self.buffer is None:
            self.buffer = torch.empty((self.total, *rows.shape[1:]), dtype=rows.dtype)
        if self.buffer is not None and self.n + len(rows) <= len(self.buffer):
            self.buffer[self.n : self.n + len(rows)] = rows
        else:
            if self.buffer is not None:  # more rows than announced: list them from here
                self.parts, self.buffer, self.total = [self.buffer[: self.n]], None, None
            self.parts.append(rows)
        self.n += len(rows)

    def result(self) -> torch.Tensor:
        if self.buffer is not None:
            return self.buffer[: self.n]
        return torch.cat(self.parts) if self.parts else torch.empty(0)


def gather(trainer: Any, model: nn.Module, loader: Iterable, desc: str) -> tuple[Rows, Rows]:
    """The outputs (float32, CPU) and targets of ``model`` over ``loader``, as :class:`Rows`.

    ``trainer`` (a :class:`~binaryvision.Trainer`) supplies the device, the memory layout,
    the progress bar and the autocast context; the caller sets the inference mode.
    """
    device = trainer.resolved_device()
    model.eval().to(device)
    try:
        total = len(loader.dataset) or None
    except (AttributeError, TypeError):  # not a DataLoader, or an iterable dataset
        total = None
    outputs, targets = Rows(total), Rows(total)
    with trainer._layout(model, device.type == "cuda" or is_conv_net(model)):
        for inputs, target in trainer._progress(loader, desc):
            targets.add(target)
            with trainer.autocast():
                outputs.add(model(trainer._device_inputs(inputs)).float().cpu())
    return outputs, targets


def progress(iterable: Iterable, desc: str, enabled: bool) -> Iterable:
    """``iterable`` behind a tqdm bar when ``enabled`` and on the main process."""
    if not enabled or not distributed.is_main_process():
        return iterable
    from tqdm.auto import tqdm

    total = len(iterable) if hasattr(iterable, "__len__") else None
    return tqdm(
        iterable, desc=desc, total=total, leave=False, mininterval=1.0, disable=None
    )  # None: silent when not on a terminal


def is_conv_net(model: nn.Module) -> bool:
    """Whether ``model`` has a 2-d convolution (then channels_last pays)."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())
