"""The evaluation report: every binary metric of a classifier on labelled images.

A thin layer over :mod:`sklearn.metrics`: every score in :class:`EvaluationReport` is
computed by scikit-learn or by :mod:`binaryvision.decisions.metrics` (the expected
calibration error); its ``plot_*`` methods draw the displays of
:mod:`binaryvision.outputs.plots`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..decisions.metrics import _mcc, brier_score, expected_calibration_error
from .plots import (
    ConfusionMatrixDisplay,
    PRCurveDisplay,
    ReliabilityDisplay,
    ROCCurveDisplay,
    ThresholdDisplay,
)

__all__ = ["EvaluationReport"]


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
    selection : dict or None
        The classifier's ``selection_``: what the autopilot tried at fit (each candidate's
        out-of-fold score and seconds) and kept.
    """

    classes: list
    y_true: np.ndarray
    y_prob: np.ndarray
    threshold: float = 0.5
    y_prob_uncalibrated: np.ndarray | None = None
    abstained: np.ndarray | None = None
    coverage: float | None = None
    selection: dict | None = None
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
        return ROCCurveDisplay.from_predictions(
            self.y_true, self.y_prob, classes=self.classes, threshold=self.threshold, ax=ax
        )

    def plot_precision_recall(self, ax: Any = None) -> Any:
        """Precision-recall curve with the operating point marked (:class:`PRCurveDisplay`)."""
        return PRCurveDisplay.from_predictions(
            self.y_true, self.y_prob, classes=self.classes, threshold=self.threshold, ax=ax
        )

    def plot_threshold(self, ax: Any = None) -> Any:
        """Precision, recall, F1 and balanced accuracy versus threshold (:class:`ThresholdDisplay`)."""
        return ThresholdDisplay.from_predictions(
            self.y_true, self.y_prob, classes=self.classes, threshold=self.threshold, ax=ax
        )

    def plot_confusion_matrix(self, ax: Any = None) -> Any:
        """The confusion matrix at the threshold (:class:`ConfusionMatrixDisplay`)."""
        return ConfusionMatrixDisplay.from_predictions(
            self.y_true,
            self.y_prob,
            classes=self.classes,
            threshold=self.threshold,
            abstained=self.abstained,
            ax=ax,
        )

    def to_dict(self) -> dict:
        """The metrics as plain Python values (JSON-serialisable), with ``selection``
        (what the fit's autopilot tried and kept) when the model has one."""
        out = dict(self.metrics)
        if self.selection is not None:
            out["selection"] = self.selection
        return out

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
        if self.selection is not None:
            lines.append(f"  model chosen at fit: {self.selection['kept']}")
            for c in self.selection["candidates"]:
                cv = f"cv log loss {c['cv_log_loss']:.4f}, " if "cv_log_loss" in c else ""
                took = f"{c['seconds']:.1f} s, " if "seconds" in c else ""
                lines.append(f"    {c['name']:<26} {cv}{took}{c.get('note', '')}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        m = self.metrics
        return (
            f"EvaluationReport(n_images={m['n_images']}, accuracy={m['accuracy']:.4f}, "
            f"roc_auc={m['roc_auc']:.4f}, ece={m['ece']:.4f}, threshold={m['threshold']:.3f})"
        )
