"""Split-conformal prediction sets: which labels an image may have, at a chosen coverage.

:class:`~binaryvision.ImageBinaryClassifier` keeps the nonconformity scores of its
held-out validation images (:func:`conformal_scores`); :func:`conformal_quantile` turns
them into a score threshold for a coverage and :func:`prediction_sets` into the sets.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..exceptions import InvalidParameterError

__all__ = [
    "conformal_quantile",
    "conformal_scores",
    "prediction_sets",
]


# ---------------------------------------------------------------------- conformal sets
def conformal_scores(y_true: Any, y_prob: Any) -> np.ndarray:
    """Nonconformity scores ``1 - P(true label)`` of held-out images, sorted ascending."""
    y = np.asarray(y_true, dtype=int).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    return np.sort(np.where(y == 1, 1.0 - p, p))


def conformal_quantile(scores: Any, coverage: float) -> float:
    """The split-conformal score threshold for ``coverage`` (Vovk; Angelopoulos & Bates).

    With ``n`` calibration scores, the ``ceil((n + 1) * coverage)``-th smallest. When
    that rank exceeds ``n`` there are too few calibration images for the coverage
    asked: the threshold is ``inf`` and every prediction set holds both labels.
    """
    if not (isinstance(coverage, (int, float)) and 0 < coverage < 1):
        raise InvalidParameterError(f"coverage must be a float in (0, 1); got {coverage!r}.")
    scores = np.sort(np.asarray(scores, dtype=float))
    k = math.ceil((len(scores) + 1) * coverage)
    return float("inf") if k > len(scores) else float(scores[k - 1])


def prediction_sets(y_prob: Any, quantile: float) -> np.ndarray:
    """Boolean membership ``(n, 2)``: column ``j`` says whether class ``j`` is in the set.

    A label is in an image's set when ``1 - P(label) <= quantile``. The most probable
    label is always included, so no set is empty (this can only raise coverage, so the
    guarantee holds).
    """
    p1 = np.asarray(y_prob, dtype=float).ravel()
    probs = np.column_stack([1.0 - p1, p1])
    member = (1.0 - probs) <= quantile
    member[np.arange(len(p1)), (p1 >= 0.5).astype(int)] = True
    return member
