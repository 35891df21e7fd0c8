"""Everything a fit decides from held-out logits: calibration, the threshold, conformal scores.

:func:`fit_decisions` turns the uncalibrated logits of images that did not train the model
into the fitted calibrator, its before/after report, the operating point and the sorted
nonconformity scores that :meth:`~binaryvision.ImageBinaryClassifier.predict_set` uses.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Any

import numpy as np

from ..exceptions import BinaryVisionWarning
from .calibration import Calibrator, sigmoid
from .conformal import conformal_scores
from .metrics import brier_score, expected_calibration_error
from .thresholds import ThresholdChoice, choose_threshold

__all__ = ["Decisions", "fit_decisions"]


@dataclasses.dataclass
class Decisions:
    """What :func:`fit_decisions` fitted (None where there were no held-out images)."""

    threshold: float
    calibrator: Calibrator | None = None
    calibration_report: dict | None = None
    threshold_choice: ThresholdChoice | None = None
    conformal_scores: np.ndarray | None = None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the positive class (the raw sigmoid without a calibrator)."""
        return sigmoid(logits) if self.calibrator is None else self.calibrator.transform(logits)


def fit_decisions(
    logits: np.ndarray | None, y: np.ndarray | None, calibration: str | None, threshold: Any
) -> Decisions:
    """Fit the calibrator, tune the threshold and keep conformal scores on held-out logits.

    Parameters
    ----------
    logits, y : numpy.ndarray or None
        Uncalibrated logits of the positive class and 0/1 targets of held-out images;
        None when there are none (then only a float ``threshold`` is kept).
    calibration : str or None
        A :data:`~binaryvision.decisions.calibration.CALIBRATION_METHODS` name, or None.
    threshold : float, str or dict
        A threshold or a rule for :func:`~binaryvision.decisions.thresholds.choose_threshold`;
        a rule that cannot reach its target warns once.
    """
    fixed = float(threshold) if isinstance(threshold, numbers.Real) else 0.5
    if logits is None:
        return Decisions(threshold=fixed)
    y = np.asarray(y).astype(int)
    calibrator = None
    if calibration is not None and len(np.unique(y)) == 2:
        calibrator = Calibrator(calibration).fit(logits, y)
    decisions = Decisions(threshold=fixed, calibrator=calibrator)
    raw, p = sigmoid(logits), decisions.probabilities(logits)
    decisions.calibration_report = {
        "n_images": len(y),
        "method": None if calibrator is None else calibration,
        "ece_before": expected_calibration_error(y, raw),
        "ece_after": expected_calibration_error(y, p),
        "brier_before": brier_score(y, raw),
        "brier_after": brier_score(y, p),
    }
    choice = choose_threshold(y, p, threshold)
    if not choice.met:
        warnings.warn(
            BinaryVisionWarning(f"threshold={threshold!r}: {choice.message}"), stacklevel=3
        )
    decisions.threshold_choice = choice
    decisions.threshold = choice.threshold
    decisions.conformal_scores = conformal_scores(y, p)
    return decisions
