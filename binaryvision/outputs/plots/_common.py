"""Shared by the displays: input checks, the axes to draw on and confusion counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...decisions.thresholds import NEVER_POSITIVE
from ...exceptions import InvalidParameterError


# ---------------------------------------------------------------------- shared helpers
def _check_predictions(
    y_true: Any,
    y_prob: Any,
    *,
    names: tuple[str, str] = ("y_true", "y_prob"),
    both_classes: bool = False,
    extra: Mapping[str, tuple[Any, str]] | None = None,
) -> tuple[Any, ...]:
    """Check labels, probabilities and optional per-image arrays; return them as arrays.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        0/1 labels and positive-class probabilities.
    names : (str, str)
        The argument names of ``y_true`` and ``y_prob``, used in error messages.
    both_classes : bool
        Require both labels to be present (ROC, PR and threshold curves need them).
    extra : mapping of name -> (array-like or None, kind), optional
        More per-image arrays; ``kind`` is ``"probability"`` (in [0, 1]), ``"mask"``
        (bool or 0/1) or ``"nonnegative"`` (finite and >= 0). ``None`` values are
        passed through.

    Returns
    -------
    tuple
        ``y_true`` as int, ``y_prob`` as float, then each ``extra`` array in order.

    Raises
    ------
    InvalidParameterError
        Naming the argument, what was expected and what was found.
    """
    true_name, prob_name = names

    def one_d(name: str, value: Any) -> np.ndarray:
        array = np.asarray(value)
        if array.ndim != 1:
            raise InvalidParameterError(
                f"{name} must be 1-D with one value per image; got shape {array.shape}."
            )
        return array

    def numeric(name: str, array: np.ndarray, expected: str) -> np.ndarray:
        if array.dtype.kind not in "biuf":
            raise InvalidParameterError(
                f"{name} must hold {expected}; got dtype {array.dtype} "
                f"(first values {array[:3].tolist()})."
            )
        return array.astype(float)

    def probability(name: str, value: Any) -> np.ndarray:
        array = numeric(name, one_d(name, value), "probabilities in [0, 1]")
        bad = ~((array >= 0) & (array <= 1))  # NaN counts as bad
        if bad.any():
            raise InvalidParameterError(
                f"{name} must hold probabilities in [0, 1]; got {int(bad.sum())} value(s) "
                f"outside, e.g. {array[bad][:3].tolist()}."
            )
        return array

    def labels(name: str, value: Any, expected: str) -> np.ndarray:
        array = numeric(name, one_d(name, value), expected)
        bad = ~np.isin(array, [0.0, 1.0])
        if bad.any():
            raise InvalidParameterError(
                f"{name} must hold {expected}; got values {np.unique(array[bad])[:5].tolist()}."
            )
        return array.astype(int)

    y_true = labels(true_name, y_true, "0/1 labels (1 = positive class)")
    y_prob = probability(prob_name, y_prob)
    if len(y_true) != len(y_prob):
        raise InvalidParameterError(
            f"{true_name} and {prob_name} must have the same length; "
            f"got {len(y_true)} and {len(y_prob)}."
        )
    if len(y_true) == 0:
        raise InvalidParameterError(f"{true_name} must hold at least one image; got 0.")
    if both_classes and len(np.unique(y_true)) < 2:
        raise InvalidParameterError(
            f"{true_name} must hold both labels 0 and 1 for this curve; "
            f"got only {int(y_true[0])} ({len(y_true)} images)."
        )
    out: list[Any] = [y_true, y_prob]
    for name, (value, kind) in (extra or {}).items():
        if value is None:
            out.append(None)
            continue
        if kind == "probability":
            array = probability(name, value)
        elif kind == "mask":
            array = labels(name, value, "booleans (one per image)").astype(bool)
        else:
            array = numeric(name, one_d(name, value), "non-negative numbers")
            bad = ~(np.isfinite(array) & (array >= 0))
            if bad.any():
                raise InvalidParameterError(
                    f"{name} must hold finite non-negative numbers; got {array[bad][:3].tolist()}."
                )
        if len(array) != len(y_prob):
            raise InvalidParameterError(
                f"{name} must have one value per image like {prob_name} ({len(y_prob)}); "
                f"got {len(array)}."
            )
        out.append(array)
    return tuple(out)


def _check_classes(classes: Sequence[Any]) -> list[str]:
    """The two class names as strings (negative first)."""
    names = [str(c) for c in classes]
    if len(names) != 2:
        raise InvalidParameterError(
            f"classes must hold two names (negative, positive); got {list(classes)!r}."
        )
    return names


def _check_threshold(threshold: Any) -> float:
    """A decision threshold as a float in [0, 1] (or just above 1: "never positive")."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 <= value <= NEVER_POSITIVE:
        raise InvalidParameterError(f"threshold must be a float in [0, 1]; got {threshold!r}.")
    return value


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """``(figure, axes)``: the given axes and its figure, or a new constrained figure."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def _counts(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> tuple[int, ...]:
    """``(tp, fp, fn, tn)`` when predicting positive for ``y_prob >= threshold``."""
    predicted = y_prob >= threshold
    positive = y_true == 1
    tp = int(np.sum(predicted & positive))
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))
    tn = int(np.sum(~predicted & ~positive))
    return tp, fp, fn, tn
