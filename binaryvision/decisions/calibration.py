"""Probability calibration: temperature, Platt or isotonic, fitted on held-out logits.

A network's sigmoid output is a score, not a frequency: "0.9" is rarely right nine
times in ten. :class:`~binaryvision.ImageBinaryClassifier` fits a calibrator on
held-out logits after training (out of fold when cross-fitted, else the validation
images'), and keeps those images' scores for
conformal prediction sets (:mod:`~binaryvision.decisions.conformal`). Which calibrator,
in plain words:

``"auto"`` (the classifier's default)
    A temperature, kept only when a cross-validation of it over the held-out logits
    (:func:`cross_validate`) says it lowers their Brier score; otherwise the raw sigmoid.
    Out-of-fold logits of a well-regularized head are often calibrated already, and a
    temperature fitted on a few dozen of them can sharpen new images' probabilities more
    than they deserve.
``"temperature"``
    One number ``T``: ``p = sigmoid(logit / T)``. Fixes over- and under-confidence
    without ever changing which side of 0.5 an image falls on, and hardly overfits a
    small validation set. The right calibrator almost always, where one is needed (Guo
    et al., 2017). ``T`` is kept within ``[0.25, 20]``: validation images that are all
    classified correctly would otherwise drive ``T`` towards 0 and every probability to
    0 or 1, which new images do not deserve.
``"platt"``
    Two numbers: ``p = sigmoid(a * logit + b)`` (:class:`sklearn.linear_model.LogisticRegression`).
    Also corrects a shifted base rate, for instance after training with
    ``class_weight="balanced"`` when you want probabilities of the real frequencies.
``"isotonic"``
    Any increasing map (:class:`sklearn.isotonic.IsotonicRegression`). Most flexible;
    needs a few hundred validation images or it overfits into steps.
``None``
    The raw sigmoid.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..exceptions import InvalidParameterError, ModelFileError

__all__ = [
    "AUTO",
    "CALIBRATION_CHOICES",
    "CALIBRATION_METHODS",
    "Calibrator",
    "cross_validate",
    "make_calibrator",
    "sigmoid",
]

CALIBRATION_METHODS = ("temperature", "platt", "isotonic")
#: what ``calibration="auto"`` fits, when the cross-validation keeps it
AUTO = "temperature"
#: every value the classifier's ``calibration`` accepts besides None
CALIBRATION_CHOICES = ("auto", *CALIBRATION_METHODS)
_T_BOUNDS = (0.25, 20.0)  # at most 4x sharper: see the module docstring


def sigmoid(z: Any) -> np.ndarray:
    """The logistic function, computed without overflow for large logits."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))  # overflow-free


class Calibrator:
    """Maps positive-class logits to calibrated probabilities.

    Parameters
    ----------
    method : {"temperature", "platt", "isotonic"}
        See the module docstring.

    Attributes
    ----------
    params_ : dict
        The fitted parameters (JSON-serialisable): ``temperature``; ``slope`` and
        ``intercept``; or the isotonic ``x`` and ``y`` knots on the probability scale.
    """

    def __init__(self, method: str = "temperature") -> None:
        if method not in CALIBRATION_METHODS:
            raise InvalidParameterError(
                f"calibration must be one of {CALIBRATION_METHODS} or None; got {method!r}."
            )
        self.method = method
        self.params_: dict[str, Any] = {}

    def fit(self, logits: Any, y: Any) -> Calibrator:
        """Fit on held-out logits of the positive class and their 0/1 labels."""
        z = np.asarray(logits, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        if len(z) == 0 or len(np.unique(y)) < 2:
            raise InvalidParameterError(
                f"calibration={self.method!r} needs held-out images of both classes; got "
                f"{len(z)} images with labels {sorted(set(y.astype(int).tolist()))}."
            )
        if self.method == "temperature":
            from scipy.optimize import minimize_scalar

            def nll(log_t: float) -> float:
                s = z / math.exp(log_t)
                # log(1 + e^s) - y*s, written stably
                return float(np.mean(np.logaddexp(0.0, s) - y * s))

            bounds = (math.log(_T_BOUNDS[0]), math.log(_T_BOUNDS[1]))
            result = minimize_scalar(nll, bounds=bounds, method="bounded")
            self.params_ = {"temperature": float(math.exp(result.x))}
        elif self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            # C large: plain maximum likelihood, as Platt's method is
            model = LogisticRegression(C=1e6).fit(z[:, None], y.astype(int))
            self.params_ = {
                "slope": float(model.coef_[0, 0]),
                "intercept": float(model.intercept_[0]),
            }
        else:
            from sklearn.isotonic import IsotonicRegression

            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            model.fit(sigmoid(z), y)
            self.params_ = {
                "x": model.X_thresholds_.tolist(),
                "y": model.y_thresholds_.tolist(),
            }
        return self

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities of the positive class for ``logits``."""
        z = np.asarray(logits, dtype=float)
        if self.method == "temperature":
            return sigmoid(z / self.params_["temperature"])
        if self.method == "platt":
            return sigmoid(self.params_["slope"] * z + self.params_["intercept"])
        # the same piecewise-linear interpolation IsotonicRegression.predict does
        return np.interp(sigmoid(z), self.params_["x"], self.params_["y"])

    def to_dict(self) -> dict:
        """JSON-serialisable state, for model files."""
        return {"method": self.method, **self.params_}

    @classmethod
    def from_dict(cls, state: dict) -> Calibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output."""
        state = dict(state)
        try:
            calibrator = cls(state.pop("method"))
            needed = {
                "temperature": {"temperature"},
                "platt": {"slope", "intercept"},
                "isotonic": {"x", "y"},
            }[calibrator.method]
        except (KeyError, InvalidParameterError) as exc:
            raise ModelFileError(f"The model file's calibration entry is invalid: {exc}") from None
        if set(state) != needed:
            raise ModelFileError(
                f"The model file's {calibrator.method!r} calibration needs {sorted(needed)}; "
                f"found {sorted(state)}."
            )
        calibrator.params_ = state
        return calibrator

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.params_.items() if not isinstance(v, list)}
        return f"Calibrator({self.method!r}, {shown})"


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, p, labels=[0, 1]))


def cross_validate(method: str, logits: Any, y: Any, folds: Any) -> dict:
    """Brier score and log loss of held-out logits, raw and calibrated by ``method``, the
    calibrator fitted on the other folds each time (scikit-learn's ``cross_val_predict``
    pattern).

    Parameters
    ----------
    method : {"temperature", "platt", "isotonic"}
        The calibrator to cross-validate.
    logits, y : array-like of shape (n,)
        Held-out logits of the positive class and their 0/1 labels.
    folds : array-like of shape (n,)
        The fold number of each image; every fold's complement must hold both classes.

    Returns
    -------
    dict
        ``cv_brier_raw``, ``cv_brier_calibrated``, ``cv_log_loss_raw`` and
        ``cv_log_loss_calibrated`` (means over the ``n`` images) and ``n_folds``.
    """
    z = np.asarray(logits, dtype=float).ravel()
    y = np.asarray(y).astype(int).ravel()
    folds = np.asarray(folds).ravel()
    p = np.empty(len(z))
    for k in np.unique(folds):
        held = folds == k
        p[held] = Calibrator(method).fit(z[~held], y[~held]).transform(z[held])
    return {
        "cv_brier_raw": round(float(np.mean((sigmoid(z) - y) ** 2)), 5),
        "cv_brier_calibrated": round(float(np.mean((p - y) ** 2)), 5),
        "cv_log_loss_raw": round(_log_loss(y, sigmoid(z)), 5),
        "cv_log_loss_calibrated": round(_log_loss(y, p), 5),
        "n_folds": len(np.unique(folds)),
    }


def make_calibrator(method: str | None) -> Calibrator | None:
    """A fresh :class:`Calibrator`, or None for ``method=None``."""
    return None if method is None else Calibrator(method)
