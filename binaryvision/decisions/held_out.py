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
from .calibration import AUTO, Calibrator, cross_validate, sigmoid
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


_ONE_CLASS = {"note": "raw sigmoid: the held-out images are of one class only"}


def _auto(logits: np.ndarray, y: np.ndarray, folds: Any) -> tuple[Any, dict]:
    """``calibration="auto"``: the temperature when its cross-validation over the held-out
    logits lowers their Brier score, else None; and what the check found.

    Why a check, and why the Brier score (``bench/calibration_draws.py``, random draws of
    hot-dog photos, figures in ``bench/RESULTS.md``): a temperature fitted on the L2
    head's out-of-fold logits raised the test log loss over the raw sigmoid's in about
    half the draws at every size, while the frozen head's logits (under-confident) needed
    one nearly always. Judged by the cross-validated log loss, one sharpened mistake among
    a few dozen held-out images could reject a temperature that new images needed; the
    Brier score is proper too, but bounded, and its check kept the frozen head's
    temperatures as often as they helped while rarely keeping the L2 head's."""
    if folds is None:
        return None, {"note": "raw sigmoid: too few images of a class to check a temperature"}
    check = cross_validate(AUTO, logits, y, folds)
    raw, calibrated = check["cv_brier_raw"], check["cv_brier_calibrated"]
    figures = f"cross-validated Brier score {raw:.4f} raw, {calibrated:.4f} with a {AUTO}"
    if calibrated < raw:
        calibrator = Calibrator(AUTO).fit(logits, y)
        t = calibrator.params_["temperature"]
        return calibrator, {**check, "note": f"temperature {t:.3g} ({figures})"}
    return None, {**check, "note": f"raw sigmoid ({figures})"}


def fit_decisions(
    logits: np.ndarray | None,
    y: np.ndarray | None,
    calibration: str | None,
    threshold: Any,
    folds: Any = None,
) -> Decisions:
    """Fit the calibrator, tune the threshold and keep conformal scores on held-out logits.

    Parameters
    ----------
    logits, y : numpy.ndarray or None
        Uncalibrated logits of the positive class and 0/1 targets of held-out images;
        None when there are none (then only a float ``threshold`` is kept).
    calibration : str or None
        A :data:`~binaryvision.decisions.calibration.CALIBRATION_METHODS` name, ``"auto"``
        (a temperature when its cross-validation over ``logits`` lowers their Brier
        score), or None.
    threshold : float, str or dict
        A threshold or a rule for :func:`~binaryvision.decisions.thresholds.choose_threshold`;
        a rule that cannot reach its target warns once.
    folds : array-like of shape (n,), optional
        The fold of each image, for ``"auto"``'s check (the cross-fitting folds the
        logits came from, or stratified folds of the validation images); None when a
        class has too few images to fold, and then ``"auto"`` keeps the raw sigmoid.
    """
    fixed = float(threshold) if isinstance(threshold, numbers.Real) else 0.5
    if logits is None:
        return Decisions(threshold=fixed)
    y = np.asarray(y).astype(int)
    calibrator, check, both = None, {}, len(np.unique(y)) == 2
    if calibration == "auto":
        calibrator, check = _auto(logits, y, folds) if both else (None, _ONE_CLASS)
    elif calibration is not None and both:
        calibrator = Calibrator(calibration).fit(logits, y)
    decisions = Decisions(threshold=fixed, calibrator=calibrator)
    raw, p = sigmoid(logits), decisions.probabilities(logits)
    decisions.calibration_report = {
        "n_images": len(y),
        "method": None if calibrator is None else calibrator.method,
        **({"asked": "auto", **check} if calibration == "auto" else {}),
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
