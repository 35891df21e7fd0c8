"""Binary metrics: calibration error, threshold rules and the evaluation report.

A thin layer over :mod:`sklearn.metrics`: every score in :class:`EvaluationReport` is
computed by scikit-learn; this module only adds what it lacks for a binary image
classifier: the expected calibration error, choosing an operating point on held-out
predictions, and one readable report object.

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
    "EvaluationReport",
    "ThresholdChoice",
    "brier_score",
    "choose_threshold",
    "expected_calibration_error",
    "check_threshold_rule",
]

THRESHOLD_RULES = ("f1", "youden")
#: The threshold that predicts no image positive, even one at probability 1.0.
NEVER_POSITIVE = float(np.nextafter(1.0, 2.0))
_TARGETS = ("precision", "recall")
_COSTS = ("fp_cost", "fn_cost")


def expected_calibration_error(y_true: Any, y_prob: Any, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins on ``[0, 1]``.

    The weighted mean, over bins, of ``|fraction of positives - mean predicted
    probability|``, each bin weighted by its share of the samples (Guo et al., 2017;
    15 bins as there). Empty bins contribute nothing.

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


def brier_score(y_true: Any, y_prob: Any) -> float:
    """Mean squared error of the probability (:func:`sklearn.metrics.brier_score_loss`)."""
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(np.asarray(y_true, dtype=int), np.asarray(y_prob, dtype=float)))


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


# ---------------------------------------------------------------------- the report
@dataclasses.dataclass
class EvaluationReport:
    """Every binary metric of a classifier on labelled images, from :mod:`sklearn.metrics`.

    Made by :meth:`ImageBinaryClassifier.evaluate` or :meth:`from_predictions`.
    ``str(report)`` is a readable summary; :meth:`to_dict` gives plain Python values.
    When the classes are imbalanced (the majority at least 3 times the minority) the
    summary leads with PR-AUC and balanced accuracy, which accuracy then misleads on.

    Abstained images (``coverage`` given) count in ``n_abstained``; the threshold
    metrics (accuracy, precision, ...) are computed on all images with the threshold,
    and ``accuracy_answered`` on the images that were not abstained on.

    Attributes
    ----------
    classes : list of str
        The negative and positive class names, in that order.
    y_true, y_prob : numpy.ndarray
        0/1 labels (1 = positive class) and calibrated positive-class probabilities.
    y_prob_uncalibrated : numpy.ndarray or None
        Probabilities before calibration, when the model is calibrated.
    threshold : float
        Decision threshold on ``y_prob``.
    abstained : numpy.ndarray of bool or None
        Which images got both labels in their conformal prediction set.
    """

    classes: list
    y_true: np.ndarray
    y_prob: np.ndarray
    threshold: float = 0.5
    y_prob_uncalibrated: np.ndarray | None = None
    abstained: np.ndarray | None = None
    coverage: float | None = None
    metrics: dict = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.y_true = np.asarray(self.y_true, dtype=int).ravel()
        self.y_prob = np.asarray(self.y_prob, dtype=float).ravel()
        if self.y_prob_uncalibrated is not None:
            self.y_prob_uncalibrated = np.asarray(self.y_prob_uncalibrated, dtype=float).ravel()
        if self.abstained is not None:
            self.abstained = np.asarray(self.abstained, dtype=bool).ravel()
        self.classes = [str(c) for c in self.classes]
        self.metrics = self._compute()

    @classmethod
    def from_predictions(
        cls, y_true: Any, y_prob: Any, *, classes: Any = ("0", "1"), **kwargs: Any
    ) -> EvaluationReport:
        """Build a report from 0/1 labels and positive-class probabilities."""
        return cls(list(classes), y_true, y_prob, **kwargs)

    def _compute(self) -> dict:
        from sklearn import metrics as m

        y, p = self.y_true, self.y_prob
        pred = (p >= self.threshold).astype(int)
        both = len(np.unique(y)) == 2
        counts = np.bincount(y, minlength=2)
        out: dict[str, Any] = {
            "n_images": len(y),
            f"n_{self.classes[0]}": int(counts[0]),
            f"n_{self.classes[1]}": int(counts[1]),
            "threshold": float(self.threshold),
            "accuracy": m.accuracy_score(y, pred),
            "balanced_accuracy": m.balanced_accuracy_score(y, pred) if both else float("nan"),
            "precision": m.precision_score(y, pred, zero_division=0.0),
            "recall": m.recall_score(y, pred, zero_division=0.0),
            "f1": m.f1_score(y, pred, zero_division=0.0),
            "mcc": _mcc(y, pred),
            "roc_auc": m.roc_auc_score(y, p) if both else float("nan"),
            "average_precision": m.average_precision_score(y, p) if both else float("nan"),
            "log_loss": m.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]),
            "brier": brier_score(y, p),
            "ece": expected_calibration_error(y, p),
        }
        if self.y_prob_uncalibrated is not None:
            out["ece_uncalibrated"] = expected_calibration_error(y, self.y_prob_uncalibrated)
            out["brier_uncalibrated"] = brier_score(y, self.y_prob_uncalibrated)
        out["confusion_matrix"] = m.confusion_matrix(y, pred, labels=[0, 1]).tolist()
        if self.abstained is not None:
            answered = ~self.abstained
            out["coverage_target"] = self.coverage
            out["n_abstained"] = int(self.abstained.sum())
            out["accuracy_answered"] = (
                m.accuracy_score(y[answered], pred[answered]) if answered.any() else float("nan")
            )
        else:
            out["n_abstained"] = 0
        return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in out.items()}

    @property
    def imbalance_ratio(self) -> float:
        """Majority count divided by minority count (inf when one class is absent)."""
        counts = np.bincount(self.y_true, minlength=2)
        return float(counts.max() / counts.min()) if counts.min() else float("inf")

    def __getattr__(self, name: str) -> Any:
        metrics = self.__dict__.get("metrics")
        if metrics is not None and name in metrics:
            return metrics[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def plot_reliability(self, ax: Any = None, n_bins: int = 15) -> Any:
        """Reliability diagram, before and after calibration (:class:`ReliabilityDisplay`)."""
        from .plotting import ReliabilityDisplay

        return ReliabilityDisplay.from_predictions(
            self.y_true,
            self.y_prob,
            y_prob_uncalibrated=self.y_prob_uncalibrated,
            classes=self.classes,
            n_bins=n_bins,
            ax=ax,
        )

    def plot_roc(self, ax: Any = None) -> Any:
        """ROC curve with the operating point marked (:class:`ROCCurveDisplay`)."""
        from .plotting import ROCCurveDisplay

        return ROCCurveDisplay.from_predictions(
            self.y_true, self.y_prob, classes=self.classes, threshold=self.threshold, ax=ax
        )

    def plot_precision_recall(self, ax: Any = None) -> Any:
        """Precision-recall curve with the operating point marked (:class:`PRCurveDisplay`)."""
        from .plotting import PRCurveDisplay

        return PRCurveDisplay.from_predictions(
            self.y_true, self.y_prob, classes=self.classes, threshold=self.threshold, ax=ax
        )

    def plot_threshold(self, ax: Any = None) -> Any:
        """Precision, recall, F1 and balanced accuracy versus threshold (:class:`ThresholdDisplay`)."""
        from .plotting import ThresholdDisplay

        return ThresholdDisplay.from_predictions(
            self.y_true, self.y_prob, classes=self.classes, threshold=self.threshold, ax=ax
        )

    def plot_confusion_matrix(self, ax: Any = None) -> Any:
        """The confusion matrix at the threshold (:class:`ConfusionMatrixDisplay`)."""
        from .plotting import ConfusionMatrixDisplay

        return ConfusionMatrixDisplay.from_predictions(
            self.y_true,
            self.y_prob,
            classes=self.classes,
            threshold=self.threshold,
            abstained=self.abstained,
            ax=ax,
        )

    def to_dict(self) -> dict:
        """The metrics as plain Python values (JSON-serialisable)."""
        return dict(self.metrics)

    def __str__(self) -> str:
        m = self.metrics
        neg, pos = self.classes
        lead = ["accuracy", "balanced_accuracy", "roc_auc", "average_precision"]
        if self.imbalance_ratio >= 3:
            lead = ["average_precision", "balanced_accuracy", "roc_auc", "accuracy"]
        names = {
            "accuracy": "accuracy",
            "balanced_accuracy": "balanced accuracy",
            "roc_auc": "ROC-AUC",
            "average_precision": "PR-AUC (average precision)",
            "precision": f"precision ({pos})",
            "recall": f"recall ({pos})",
            "f1": f"F1 ({pos})",
            "mcc": "MCC",
            "log_loss": "log loss",
            "brier": "Brier score",
            "ece": "ECE (15 bins)",
        }
        lines = [
            f"{m['n_images']} images: {m[f'n_{neg}']} {neg}, {m[f'n_{pos}']} {pos} "
            f"(positive class: {pos}); threshold {m['threshold']:.3f}"
        ]
        if self.imbalance_ratio >= 3:
            lines.append(
                f"imbalanced ({self.imbalance_ratio:.1f}:1): read PR-AUC and balanced "
                "accuracy first"
            )
        for key in [*lead, "precision", "recall", "f1", "mcc", "log_loss", "brier", "ece"]:
            lines.append(f"  {names[key]:<28} {m[key]:.4f}")
        if "ece_uncalibrated" in m:
            lines.append(
                f"  {'before calibration':<28} ECE {m['ece_uncalibrated']:.4f}, "
                f"Brier {m['brier_uncalibrated']:.4f}"
            )
        (tn, fp), (fn, tp) = m["confusion_matrix"]
        width = max(len(neg), len(pos), 9)
        lines += [
            "  confusion matrix (rows: true, columns: predicted)",
            f"    {'':<{width}} {neg:>{width}} {pos:>{width}}",
            f"    {neg:<{width}} {tn:>{width}} {fp:>{width}}",
            f"    {pos:<{width}} {fn:>{width}} {tp:>{width}}",
        ]
        if self.abstained is not None:
            lines.append(
                f"  abstained: {m['n_abstained']} of {m['n_images']} at coverage "
                f"{self.coverage:.2f}; accuracy on the rest {m['accuracy_answered']:.4f}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        m = self.metrics
        return (
            f"EvaluationReport(n_images={m['n_images']}, accuracy={m['accuracy']:.4f}, "
            f"roc_auc={m['roc_auc']:.4f}, ece={m['ece']:.4f}, threshold={m['threshold']:.3f})"
        )


def _mcc(y: np.ndarray, pred: np.ndarray) -> float:
    """Matthews correlation; 0 without sklearn's warning when only one label occurs."""
    import warnings

    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "A single label was found": MCC is 0
        return float(matthews_corrcoef(y, pred))
