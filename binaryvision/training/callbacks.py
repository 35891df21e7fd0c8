"""Callbacks: small objects that receive the events of the training loop.

A callback overrides any of the no-op hooks of :class:`Callback`. Each hook receives the
:class:`~binaryvision.Trainer` and a mutable :class:`TrainState`; setting
``state.stop_training = True`` ends training after the current epoch (no exceptions are
used for control flow). Pass callbacks with ``Trainer(callbacks=[...])``.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Callback", "EarlyStopping", "History", "ProgressBar", "TrainState"]


@dataclass
class TrainState:
    """What a callback can see and change while training runs.

    Attributes
    ----------
    phase : str
        ``"head"`` (training the head on cached backbone features) or ``"fine_tune"``
        (the unfrozen network on images).
    model : torch.nn.Module
        The module being trained.
    epoch : int
        Current epoch, counted from 1 within the phase.
    epochs : int
        Planned number of epochs of the phase.
    step : int
        Optimizer steps taken so far in the phase.
    lr : float
        Learning rate of the last parameter group (the head).
    batch_loss : float
        Loss of the last training batch.
    logs : dict
        Epoch figures (``train_loss``, ``valid_loss``, ``valid_accuracy``, ...), filled at
        the end of each epoch.
    stop_training : bool
        Set to True to stop after the current epoch.
    """

    phase: str
    model: nn.Module
    epochs: int
    epoch: int = 0
    step: int = 0
    lr: float = 0.0
    batch_loss: float = math.nan
    logs: dict[str, Any] = field(default_factory=dict)
    stop_training: bool = False


class Callback:
    """Base class with a no-op method for every event of the loop."""

    def on_fit_start(self, trainer: Any, state: TrainState) -> None:
        """Called once before the first epoch of a phase."""

    def on_epoch_start(self, trainer: Any, state: TrainState) -> None:
        """Called at the start of every epoch."""

    def on_batch_start(self, trainer: Any, state: TrainState) -> None:
        """Called before every training step."""

    def on_batch_end(self, trainer: Any, state: TrainState) -> None:
        """Called after every training step; ``state.batch_loss`` is set."""

    def on_epoch_end(self, trainer: Any, state: TrainState) -> None:
        """Called after validation; ``state.logs`` holds the epoch's figures."""

    def on_fit_end(self, trainer: Any, state: TrainState) -> None:
        """Called once after the last epoch of a phase."""

    def state_dict(self) -> dict | None:
        """State to keep in training checkpoints (tensors, lists, dicts, plain values).

        ``None`` (the default) means the callback has nothing to restore on resume.
        """
        return None

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (called after ``on_fit_start``)."""


class History(Callback):
    """Record one dict of figures per epoch (exposed as ``classifier.history_``)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []

    def on_epoch_end(self, trainer: Any, state: TrainState) -> None:  # noqa: D102
        self.epochs.append({"phase": state.phase, "epoch": state.epoch, **state.logs})

    def state_dict(self) -> dict:  # noqa: D102
        return {"epochs": copy.deepcopy(self.epochs)}

    def load_state_dict(self, state: dict) -> None:  # noqa: D102
        self.epochs = copy.deepcopy(state["epochs"])


class EarlyStopping(Callback):
    """Stop when a monitored figure stops improving and restore the best weights.

    Parameters
    ----------
    monitor : str
        Key of ``state.logs`` to watch; lower is better.
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        Smallest decrease that counts as an improvement.
    restore_best : bool
        Load the weights of the best epoch when training ends.
    """

    def __init__(
        self,
        monitor: str = "valid_loss",
        patience: int = 3,
        min_delta: float = 1e-4,
        restore_best: bool = True,
    ) -> None:
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best

    def on_fit_start(self, trainer: Any, state: TrainState) -> None:  # noqa: D102
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.wait = 0

    def on_epoch_end(self, trainer: Any, state: TrainState) -> None:  # noqa: D102
        value = state.logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop_training = True

    def state_dict(self) -> dict:  # noqa: D102
        return {
            "best": getattr(self, "best", math.inf),
            "best_epoch": getattr(self, "best_epoch", 0),
            "best_state": getattr(self, "best_state", None),
            "wait": getattr(self, "wait", 0),
        }

    def load_state_dict(self, state: dict) -> None:  # noqa: D102
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_state, self.wait = state["best_state"], state["wait"]

    def on_fit_end(self, trainer: Any, state: TrainState) -> None:  # noqa: D102
        if self.restore_best and self.best_state is not None and self.best_epoch != state.epoch:
            state.model.load_state_dict(self.best_state)
        state.logs["best_epoch"] = self.best_epoch


class ProgressBar(Callback):
    """A tqdm bar per phase on a terminal, one plain line per epoch elsewhere (logs, CI)."""

    def __init__(self, file: Any = None) -> None:
        self.file = file

    def on_fit_start(self, trainer: Any, state: TrainState) -> None:  # noqa: D102
        from tqdm.auto import tqdm

        out = self.file or sys.stderr
        self.interactive = hasattr(out, "isatty") and out.isatty()
        self.bar = tqdm(
            total=state.epochs,
            desc=f"fit {state.phase}",
            unit="epoch",
            file=out,
            disable=not self.interactive,
            leave=False,
        )

    def on_epoch_end(self, trainer: Any, state: TrainState) -> None:  # noqa: D102
        figures = " ".join(f"{k}={v:.4g}" for k, v in state.logs.items() if isinstance(v, float))
        if self.interactive:
            self.bar.set_postfix_str(figures)
            self.bar.update(1)
        else:
            print(
                f"[{state.phase}] epoch {state.epoch}/{state.epochs} {figures}",
                file=self.file or sys.stderr,
                flush=True,
            )

    def on_fit_end(self, trainer: Any, state: TrainState) -> None:  # noqa: D102
        self.bar.close()
