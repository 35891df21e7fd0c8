"""Binary metrics: the expected calibration error, the Brier score and MCC.

A thin layer over :mod:`sklearn.metrics`: every score in
:class:`~binaryvision.outputs.report.EvaluationReport` is computed by scikit-learn; this
module only adds what it lacks for a binary image classifier: the expected calibration
error, and the Brier score and Matthews correlation as plain floats. Choosing an
operating point lives in :mod:`~binaryvision.decisions.thresholds`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import InvalidParameterError

__all__ = [
    "brier_score",
    "ece_of_a_calibrated_model",
    "expected_calibration_error",
]


def expected_calibration_error(y_true: Any, y_prob: Any, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins on ``[0, 1]``.

    The weighted mean, over bins, of ``|fraction of positives - mean predicted
    probability|``, each bin weighted by its share of the samples; empty bins contribute
    nothing. The bins hold the positive-class probability, as in
    ``sklearn.calibration.calibration_curve`` and torchmetrics' binary calibration
    error, with Guo et al.'s (2017) 15 bins; their top-label form bins ``max(p, 1 - p)``
    instead and comes out lower. On a few hundred images either is mostly noise: see
    :func:`ece_of_a_calibrated_model`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels (1 = positive class).
    y_prob : array-like of shape (n,)
        Predicted probability of the positive class.
    n_bins : int
        Number of equal-width bins.
    """
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_prob = np.asarray(y_prob, dtype=float).ravel()
    if len(y_true) != len(y_prob):
        raise InvalidParameterError(
            f"y_true and y_prob must have the same length; got {len(y_true)} and {len(y_prob)}."
        )
    if len(y_true) == 0:
        return float("nan")
    # sklearn.calibration.calibration_curve drops empty bins and does not return the
    # counts, which ECE needs, hence this short binning (same bin edges as sklearn's).
    bins = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], y_prob)
    sum_prob = np.bincount(bins, weights=y_prob, minlength=n_bins)
    sum_true = np.bincount(bins, weights=y_true, minlength=n_bins)
    return float(np.abs(sum_true - sum_prob).sum() / len(y_true))


def ece_of_a_calibrated_model(
    y_prob: Any, n_bins: int = 15, n_draws: int = 1000, random_state: int = 0
) -> tuple[float, float]:
    """The mean and 95th percentile of the ECE that a perfectly calibrated model making
    the predictions ``y_prob`` would show on this many images.

    Labels are drawn as ``Bernoulli(y_prob)`` ``n_draws`` times, so each draw is exactly
    as calibrated as can be, and :func:`expected_calibration_error` is measured on each:
    the part of an ECE that is only sampling noise. On the 209 hot-dog validation photos
    the mean is about 0.045 with 15 bins, so an ECE there says little below that; an ECE
    above the 95th percentile is evidence of miscalibration.
    """
    p = np.asarray(y_prob, dtype=float).ravel()
    rng = np.random.default_rng(random_state)
    values = [expected_calibration_error(rng.random(len(p)) < p, p, n_bins) for _ in range(n_draws)]
    return float(np.mean(values)), float(np.percentile(values, 95))


def brier_score(y_true: Any, y_prob: Any) -> float:
    """Mean squared error of the probability (:func:`sklearn.metrics.brier_score_loss`)."""
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(np.asarray(y_true, dtype=int), np.asarray(y_prob, dtype=float)))


def _mcc(y: np.ndarray, pred: np.ndarray) -> float:
    """Matthews correlation; 0 without sklearn's warning when only one label occurs."""
    import warnings

    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "A single label was found": MCC is 0
        return float(matthews_corrcoef(y, pred))
