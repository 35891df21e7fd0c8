"""The learning-rate range test (Smith, 2015; fastai's ``lr_find``).

The learning rate grows exponentially from ``start_lr`` to ``end_lr`` over ``num_steps``
mini-batches while the loss is recorded; the sweep stops early once the smoothed loss
exceeds ``diverge`` times its best value. Every weight, the optimizer state and the RNG
state are restored afterwards: the test leaves no trace on the model.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["SUGGESTERS", "LRFindResult", "lr_range_test", "minimum", "steep", "valley"]


def _finite(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(losses)
    return lrs[keep], losses[keep]


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's default: the middle of the longest steadily decreasing stretch of the curve."""
    lrs, losses = _finite(lrs, losses)
    n = len(losses)
    if n < 3:
        return float(lrs[0])
    # Longest decreasing subsequence ending at each point (O(n^2), n <= a few hundred).
    length = np.ones(n, dtype=int)
    start = np.arange(n)
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and length[j] + 1 > length[i]:
                length[i], start[i] = length[j] + 1, start[j]
    end = int(np.argmax(length))
    begin = int(start[end])
    index = begin + int(round((end - begin) * 2 / 3))
    return float(lrs[index])


def steep(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The learning rate where the loss falls fastest (steepest negative slope in log lr)."""
    lrs, losses = _finite(lrs, losses)
    if len(losses) < 3:
        return float(lrs[0])
    slopes = np.gradient(losses, np.log(lrs))
    return float(lrs[int(np.argmin(slopes))])


def minimum(lrs: np.ndarray, losses: np.ndarray) -> float:
    """One tenth of the learning rate at the lowest loss (clipped to the swept range)."""
    lrs, losses = _finite(lrs, losses)
    return float(max(lrs[int(np.argmin(losses))] / 10.0, lrs[0]))


#: Suggestion rules by name; each maps ``(lrs, losses)`` to a learning rate in the range.
SUGGESTERS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "valley": valley,
    "steep": steep,
    "minimum": minimum,
}


class LRFindResult:
    """Outcome of a learning-rate range test.

    Attributes
    ----------
    lrs : numpy.ndarray
        Learning rates tried, increasing.
    losses : numpy.ndarray
        Smoothed training loss at each learning rate.
    suggestions : dict of str to float
        One suggestion per rule in :data:`SUGGESTERS`.
    suggestion : float
        The suggestion of the chosen rule (``method``).
    method : str
        The rule behind :attr:`suggestion`.
    """

    def __init__(self, lrs: np.ndarray, losses: np.ndarray, method: str = "valley") -> None:
        self.lrs = np.asarray(lrs, dtype=float)
        self.losses = np.asarray(losses, dtype=float)
        self.method = method
        self.suggestions = {name: rule(self.lrs, self.losses) for name, rule in SUGGESTERS.items()}
        self.suggestion = self.suggestions[method]

    def __repr__(self) -> str:
        others = ", ".join(f"{k}={v:.2e}" for k, v in self.suggestions.items())
        return (
            f"LRFindResult(suggestion={self.suggestion:.2e} ({self.method}), {others}, "
            f"steps={len(self.lrs)}, range=[{self.lrs[0]:.1e}, {self.lrs[-1]:.1e}])"
        )

    def plot(self, ax: Any = None) -> LRFindResult:
        """Plot loss against learning rate (log scale) with every suggestion marked.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure is created when omitted (no window is opened).

        Returns
        -------
        LRFindResult
            ``self``, with ``ax_`` and ``figure_`` set.
        """
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(6, 4), layout="constrained").add_subplot()
        ax.plot(self.lrs, self.losses, color="C0", label="smoothed loss")
        ax.set_xscale("log")
        markers = {"valley": "o", "steep": "^", "minimum": "s"}
        for i, (name, lr) in enumerate(self.suggestions.items()):
            loss = float(np.interp(np.log(lr), np.log(self.lrs), self.losses))
            ax.plot(
                [lr],
                [loss],
                markers.get(name, "o"),
                color=f"C{i + 1}",
                markersize=8,
                label=f"{name}: {lr:.1e}" + (" (suggested)" if name == self.method else ""),
            )
        finite = self.losses[np.isfinite(self.losses)]
        if len(finite):
            low, high = (
                finite.min(),
                min(finite.max(), finite[0] * 2 if finite[0] > 0 else finite.max()),
            )
            pad = 0.05 * max(high - low, 1e-6)
            ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss (smoothed)")
        ax.set_title("Learning-rate finder")
        ax.legend(loc="best", fontsize="small")  # away from the curve
        ax.grid(True, which="both", alpha=0.3)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def lr_range_test(
    trainer: Any,
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    diverge: float = 4.0,
    method: str = "valley",
) -> LRFindResult:
    """Run the range test with ``trainer.train_step`` and restore everything afterwards.

    Parameters
    ----------
    trainer : Trainer
        Provides ``train_step`` and the device.
    model, optimizer, loss_fn
        What to train; the optimizer's learning rates are overwritten during the sweep.
    loader : DataLoader
        Cycled as often as needed to make ``num_steps`` steps.
    start_lr, end_lr : float
        The sweep's bounds (the suggestion always lies inside them).
    num_steps : int
        Number of mini-batches (learning rates) tried.
    smoothing : float
        Exponential smoothing of the loss (with bias correction).
    diverge : float
        Stop once the smoothed loss exceeds this multiple of its best value.
    method : str
        Rule for :attr:`LRFindResult.suggestion`, a key of :data:`SUGGESTERS`.
    """
    if not 0 < start_lr < end_lr:
        from ..exceptions import InvalidParameterError

        raise InvalidParameterError(
            f"lr_find needs 0 < start_lr < end_lr; got start_lr={start_lr}, end_lr={end_lr}."
        )
    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    rng_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = model.training
    ratios = [g["lr"] / optimizer.param_groups[-1]["lr"] for g in optimizer.param_groups]
    device = trainer.resolved_device()
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
    try:
        model.to(device).train()
        factor = (end_lr / start_lr) ** (1.0 / max(num_steps - 1, 1))
        batches = itertools.chain.from_iterable(itertools.repeat(loader))
        for step, batch in zip(range(num_steps), batches):
            lr = start_lr * factor**step
            for group, ratio in zip(optimizer.param_groups, ratios):
                group["lr"] = lr * ratio
            loss = trainer.train_step(model, batch, optimizer, loss_fn, scaler)
            if not math.isfinite(loss):  # a non-finite loss is divergence, never a data point
                break
            avg = smoothing * avg + (1 - smoothing) * loss
            smoothed = avg / (1 - smoothing ** (step + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if step > 0 and smoothed > diverge * best:
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(rng_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
        model.train(was_training)
    if len(lrs) < 2:
        from ..exceptions import TrainingError

        raise TrainingError(
            f"The learning-rate finder diverged at once (start_lr={start_lr:g}); lower start_lr."
        )
    return LRFindResult(np.array(lrs), np.array(losses), method)
