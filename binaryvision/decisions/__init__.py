"""Stage 6, decisions: from logits to calibrated probabilities, labels and prediction sets.

Owns: :mod:`~binaryvision.decisions.calibration` (temperature, Platt, isotonic),
:mod:`~binaryvision.decisions.thresholds` (the operating point),
:mod:`~binaryvision.decisions.conformal` (split-conformal sets) and
:mod:`~binaryvision.decisions.metrics` (ECE, Brier and the other numbers).

May import: :mod:`binaryvision.exceptions` only: decisions work on numbers, not images.
"""

from .calibration import CALIBRATION_CHOICES, CALIBRATION_METHODS, Calibrator, sigmoid
from .conformal import conformal_quantile, conformal_scores, prediction_sets
from .metrics import brier_score, expected_calibration_error
from .thresholds import (
    NEVER_POSITIVE,
    THRESHOLD_RULES,
    ThresholdChoice,
    check_threshold_rule,
    choose_threshold,
)

__all__ = [
    "CALIBRATION_CHOICES",
    "CALIBRATION_METHODS",
    "NEVER_POSITIVE",
    "THRESHOLD_RULES",
    "Calibrator",
    "ThresholdChoice",
    "brier_score",
    "check_threshold_rule",
    "choose_threshold",
    "conformal_quantile",
    "conformal_scores",
    "expected_calibration_error",
    "prediction_sets",
    "sigmoid",
]
