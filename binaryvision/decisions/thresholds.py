"""Threshold rules: choosing an operating point on held-out predictions.

The scores come from :mod:`sklearn.metrics`; this module only adds what it lacks for a
binary image classifier: checking a threshold rule and choosing the threshold it asks
for on held-out predictions (:func:`choose_threshold`).

Choosing a threshold rule, in plain words
-----------------------------------------
``0.5`` (a float)
    Predict positive when the calibrated probability is at least this value. With
    calibrated probabilities, 0.5 minimises the number of mistakes.
``"f1"``
    Balance precision and recall of the positive class; a good default when the
    positive class is rarer and both kinds of mistake matter.
``"youden"``
    Maximise sensitivity + specificity - 1 (Youden's J): the point of the ROC curve
    farthest from chance. Treats both classes equally whatever their frequencies,
    like balanced accuracy.
``{"precision": 0.95}``
    "When it says positive, it must be right 95% of the time": the lowest threshold
    whose precision reaches the target, which keeps as much recall as possible.
``{"recall": 0.9}``
    "Find at least 90% of the positives": the highest threshold whose recall reaches
    the target, which keeps as much precision as possible.
``{"fp_cost": 1, "fn_cost": 5}``
    Mistakes have prices: the threshold that minimises the total cost on held-out
    images (here a missed positive costs five times a false alarm).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..exceptions import InvalidParameterError

__all__ = [
    "ThresholdChoice",
    "choose_threshold",
    "check_threshold_rule",
]

THRESHOLD_RULES = ("f1", "youden")
#: The threshold that predicts no image positive, even one at probability 1.0.
NEVER_POSITIVE = float(np.nextafter(1.0, 2.0))
_TARGETS = ("precision", "recall")
_COSTS = ("fp_cost", "fn_cost")


# ---------------------------------------------------------------------- threshold rules
def check_threshold_rule(rule: Any, name: str = "threshold") -> Any:
    """Validate a threshold rule and return it normalised (dict values as floats).

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the allowed forms and what was given.
    """
    allowed = (
        "a float in [0, 1], 'f1', 'youden', {'precision': p}, {'recall': r} or "
        "{'fp_cost': a, 'fn_cost': b}"
    )
    if isinstance(rule, numbers.Real) and not isinstance(rule, bool):
        if 0 <= rule <= 1:
            return float(rule)
    elif isinstance(rule, str):
        if rule in THRESHOLD_RULES:
            return rule
    elif isinstance(rule, Mapping):
        keys = set(rule)
        values = list(rule.values())
        numeric = all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        )
        if numeric and len(keys) == 1 and keys <= set(_TARGETS) and 0 < values[0] <= 1:
            return {k: float(v) for k, v in rule.items()}
        if numeric and keys == set(_COSTS) and all(v >= 0 for v in values) and any(values):
            return {k: float(v) for k, v in rule.items()}
    raise InvalidParameterError(f"{name} must be {allowed}; got {rule!r}.")


@dataclasses.dataclass(frozen=True)
class ThresholdChoice:
    """The outcome of tuning a threshold rule on held-out predictions.

    Attributes
    ----------
    threshold : float
        The chosen threshold on the positive-class probability.
    rule : float, str or dict
        The rule that chose it.
    met : bool
        False when a target (precision or recall) could not be reached on the held-out
        data; ``threshold`` is then the closest one can get, and ``message`` says so.
    achieved : float or None
        The rule's metric at ``threshold`` on the held-out data (F1, J, precision,
        recall or mean cost per image).
    message : str
        One sentence on what was chosen, or why a target was not met.
    """

    threshold: float
    rule: Any
    met: bool
    achieved: float | None
    message: str


def choose_threshold(y_true: Any, y_prob: Any, rule: Any) -> ThresholdChoice:
    """Tune a decision threshold on held-out predictions (see the module docstring).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels of held-out images (1 = positive class).
    y_prob : array-like of shape (n,)
        Calibrated probability of the positive class for the same images.
    rule : float, str or dict
        A threshold rule; a float is returned as it is.

    Returns
    -------
    ThresholdChoice
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    rule = check_threshold_rule(rule)
    if isinstance(rule, float):
        return ThresholdChoice(rule, rule, True, None, f"fixed threshold {rule:.3g}")
    y_true = np.asarray(y_true, dtype=int).ravel()
    y_prob = np.asarray(y_prob, dtype=float).ravel()
    if len(y_true) == 0 or y_true.min() == y_true.max():
        raise InvalidParameterError(
            f"threshold={rule!r} is tuned on held-out images, which must hold both classes; "
            f"got {len(y_true)} images with labels {sorted(set(y_true.tolist()))}. Use more "
            "validation images (valid_size) or a fixed float threshold."
        )
    if rule == "youden":
        fpr, tpr, thresholds = roc_curve(y_true, y_prob)
        keep = np.isfinite(thresholds)
        j = (tpr - fpr)[keep]
        best = int(np.argmax(j))
        t = float(thresholds[keep][best])
        return ThresholdChoice(t, rule, True, float(j[best]), f"Youden's J {j[best]:.3f}")

    precision, recall, thresholds = precision_recall_curve(y_true, y_prob)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if rule == "f1":
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
        best = int(np.argmax(f1))
        t = float(thresholds[best])
        return ThresholdChoice(t, rule, True, float(f1[best]), f"F1 {f1[best]:.3f}")
    if "precision" in rule:
        target = rule["precision"]
        ok = np.flatnonzero(precision >= target)
        if len(ok):
            i = int(ok[0])  # lowest threshold reaching the precision: most recall
            return ThresholdChoice(
                float(thresholds[i]),
                rule,
                True,
                float(precision[i]),
                f"precision {precision[i]:.3f} >= {target:.3g} with recall {recall[i]:.3f}",
            )
        i = int(np.argmax(precision))
        return ThresholdChoice(
            float(thresholds[i]),
            rule,
            False,
            float(precision[i]),
            f"target precision {target:.3g} is not reached on the {len(y_true)} held-out "
            f"images: the best is {precision[i]:.3f} (threshold {thresholds[i]:.3g}, "
            f"recall {recall[i]:.3f}). More training data, fine-tuning or a lower target "
            "would help.",
        )
    if "recall" in rule:
        target = rule["recall"]
        ok = np.flatnonzero(recall >= target)  # recall falls as the threshold rises
        i = int(ok[-1])  # always non-empty: the lowest threshold has recall 1
        return ThresholdChoice(
            float(thresholds[i]),
            rule,
            True,
            float(recall[i]),
            f"recall {recall[i]:.3f} >= {target:.3g} with precision {precision[i]:.3f}",
        )
    # expected cost: sweep every distinct probability (and "never positive")
    fp_cost, fn_cost = rule["fp_cost"], rule["fn_cost"]
    candidates = np.unique(np.concatenate([y_prob, [NEVER_POSITIVE]]))
    order = np.argsort(y_prob)
    p_sorted, t_sorted = y_prob[order], y_true[order]
    below = np.searchsorted(p_sorted, candidates, side="left")  # predicted negative
    fn = np.concatenate([[0], np.cumsum(t_sorted)])[below]
    fp = (len(t_sorted) - below) - (t_sorted.sum() - fn)
    cost = (fp_cost * fp + fn_cost * fn) / len(y_true)
    best = int(np.argmin(cost))
    t = float(candidates[best])
    message = f"mean cost {cost[best]:.4g} per image"
    if t == NEVER_POSITIVE:
        message += "; cheapest is never to predict the positive class (threshold just above 1)"
    return ThresholdChoice(t, rule, True, float(cost[best]), message)
