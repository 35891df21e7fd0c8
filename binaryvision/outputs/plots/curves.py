"""Curves over the threshold: ROC, precision-recall and metrics against the threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._common import _axes, _check_classes, _check_predictions, _check_threshold, _counts

__all__ = ["PRCurveDisplay", "ROCCurveDisplay", "ThresholdDisplay"]


# ---------------------------------------------------------------------- curves
class _CurveDisplay:
    """Shared by the displays of one probability against 0/1 labels at a threshold.

    Checks the inputs (both classes must occur), then lets the subclass compute its
    curve in ``_compute``.
    """

    def __init__(
        self,
        y_true: Any,
        y_prob: Any,
        *,
        classes: Sequence[str] = ("0", "1"),
        threshold: float = 0.5,
    ) -> None:
        self.y_true, self.y_prob = _check_predictions(y_true, y_prob, both_classes=True)
        self.classes = _check_classes(classes)
        self.threshold = _check_threshold(threshold)
        self._compute()

    def _compute(self) -> None:
        raise NotImplementedError

    @classmethod
    def from_predictions(
        cls,
        y_true: Any,
        y_prob: Any,
        *,
        classes: Sequence[str] = ("0", "1"),
        threshold: float = 0.5,
        ax: Any = None,
    ) -> Any:
        """Build the display from labels and probabilities and draw it.

        Parameters
        ----------
        y_true, y_prob, classes, threshold
            As for the class.
        ax : matplotlib.axes.Axes, optional
            As for ``plot``.

        Returns
        -------
        display
            An instance of the class, drawn.
        """
        return cls(y_true, y_prob, classes=classes, threshold=threshold).plot(ax=ax)

    def plot(self, ax: Any = None) -> Any:  # pragma: no cover - every subclass draws
        raise NotImplementedError

    def _mark_operating_point(self, ax: Any, x: float, y: float, label: str) -> None:
        """The red dot at the decision threshold, kept as ``point_``."""
        (self.point_,) = ax.plot(
            [x], [y], linestyle="none", marker="o", markersize=9, color="C3", label=label
        )

    def _finish_unit_square(
        self, ax: Any, figure: Any, top: float, xlabel: str, ylabel: str, title: str, loc: str
    ) -> Any:
        """Unit-square limits, labels, legend and grid; keeps ``ax_`` and ``figure_``."""
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, top)
        ax.set_aspect("equal")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc=loc, fontsize="small")
        ax.grid(alpha=0.3)
        self.ax_, self.figure_ = ax, figure
        return self


class ROCCurveDisplay(_CurveDisplay):
    """ROC curve with its AUC and the operating point at the decision threshold.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels (1 = ``classes[1]``); both must occur.
    y_prob : array-like of shape (n,)
        Probability of ``classes[1]``.
    classes : sequence of str
        The negative and positive class names.
    threshold : float
        Decision threshold: positive when ``y_prob >= threshold``.

    Attributes
    ----------
    fpr_, tpr_, thresholds_ : numpy.ndarray
        The curve, from :func:`sklearn.metrics.roc_curve`.
    roc_auc_ : float
        Area under the curve (:func:`sklearn.metrics.roc_auc_score`).
    fpr_at_threshold_, tpr_at_threshold_ : float
        False and true positive rates at ``threshold``, counted directly.
    figure_ : matplotlib.figure.Figure
        Set by :meth:`plot`.
    ax_ : matplotlib.axes.Axes
        Set by :meth:`plot`.
    line_ : matplotlib.lines.Line2D
        The ROC curve; set by :meth:`plot`.
    point_ : matplotlib.lines.Line2D
        The marker of the operating point; set by :meth:`plot`.
    """

    def _compute(self) -> None:
        from sklearn.metrics import roc_auc_score, roc_curve

        self.fpr_, self.tpr_, self.thresholds_ = roc_curve(self.y_true, self.y_prob)
        self.roc_auc_ = float(roc_auc_score(self.y_true, self.y_prob))
        tp, fp, fn, tn = _counts(self.y_true, self.y_prob, self.threshold)
        self.tpr_at_threshold_ = tp / (tp + fn)
        self.fpr_at_threshold_ = fp / (fp + tn)

    def plot(self, ax: Any = None) -> ROCCurveDisplay:
        """Draw the curve, the chance diagonal and the operating point.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into this axes; a new :class:`~matplotlib.figure.Figure` when omitted.

        Returns
        -------
        ROCCurveDisplay
            ``self``, with ``figure_``, ``ax_``, ``line_`` and ``point_`` set.
        """
        figure, ax = _axes(ax, (5.5, 5.5))
        neg, pos = self.classes
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", label="chance (AUC = 0.5)")
        (self.line_,) = ax.plot(
            self.fpr_, self.tpr_, color="C0", label=f"ROC (AUC = {self.roc_auc_:.3f})"
        )
        self._mark_operating_point(
            ax,
            self.fpr_at_threshold_,
            self.tpr_at_threshold_,
            f"threshold {self.threshold:.2f}: TPR {self.tpr_at_threshold_:.2f}, "
            f"FPR {self.fpr_at_threshold_:.2f}",
        )
        return self._finish_unit_square(
            ax,
            figure,
            1.01,
            f"false positive rate ({neg} predicted {pos})",
            f"true positive rate ({pos} found)",
            f"ROC curve, positive class {pos}",
            "lower right",
        )


class PRCurveDisplay(_CurveDisplay):
    """Precision-recall curve with its average precision and the operating point.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels (1 = ``classes[1]``); both must occur.
    y_prob : array-like of shape (n,)
        Probability of ``classes[1]``.
    classes : sequence of str
        The negative and positive class names.
    threshold : float
        Decision threshold: positive when ``y_prob >= threshold``.

    Attributes
    ----------
    precision_, recall_, thresholds_ : numpy.ndarray
        The curve, from :func:`sklearn.metrics.precision_recall_curve`.
    average_precision_ : float
        :func:`sklearn.metrics.average_precision_score`.
    prevalence_ : float
        Fraction of positives: the precision of a classifier that guesses.
    precision_at_threshold_, recall_at_threshold_ : float
        Precision and recall at ``threshold``, counted directly (precision is 1.0 when
        nothing is predicted positive).
    figure_ : matplotlib.figure.Figure
        Set by :meth:`plot`.
    ax_ : matplotlib.axes.Axes
        Set by :meth:`plot`.
    line_ : matplotlib.lines.Line2D
        The precision-recall curve; set by :meth:`plot`.
    point_ : matplotlib.lines.Line2D
        The marker of the operating point; set by :meth:`plot`.
    """

    def _compute(self) -> None:
        from sklearn.metrics import average_precision_score, precision_recall_curve

        self.precision_, self.recall_, self.thresholds_ = precision_recall_curve(
            self.y_true, self.y_prob
        )
        self.average_precision_ = float(average_precision_score(self.y_true, self.y_prob))
        self.prevalence_ = float(self.y_true.mean())
        tp, fp, fn, _ = _counts(self.y_true, self.y_prob, self.threshold)
        self.precision_at_threshold_ = tp / (tp + fp) if tp + fp else 1.0
        self.recall_at_threshold_ = tp / (tp + fn)

    def plot(self, ax: Any = None) -> PRCurveDisplay:
        """Draw the curve, the prevalence line and the operating point.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into this axes; a new :class:`~matplotlib.figure.Figure` when omitted.

        Returns
        -------
        PRCurveDisplay
            ``self``, with ``figure_``, ``ax_``, ``line_`` and ``point_`` set.
        """
        figure, ax = _axes(ax, (5.5, 5.5))
        pos = self.classes[1]
        (self.line_,) = ax.plot(
            self.recall_,
            self.precision_,
            drawstyle="steps-post",
            color="C0",
            label=f"PR (AP = {self.average_precision_:.3f})",
        )
        ax.axhline(
            self.prevalence_,
            linestyle="--",
            color="0.5",
            label=f"chance (prevalence {self.prevalence_:.2f})",
        )
        self._mark_operating_point(
            ax,
            self.recall_at_threshold_,
            self.precision_at_threshold_,
            f"threshold {self.threshold:.2f}: precision "
            f"{self.precision_at_threshold_:.2f}, recall {self.recall_at_threshold_:.2f}",
        )
        return self._finish_unit_square(
            ax,
            figure,
            1.05,
            f"recall ({pos} found)",
            f"precision (predicted {pos} that are {pos})",
            f"Precision-recall curve, positive class {pos}",
            "lower left",
        )


class ThresholdDisplay(_CurveDisplay):
    """Precision, recall, F1 and balanced accuracy against the decision threshold.

    Each metric is counted exactly at the 201 thresholds ``np.linspace(0, 1, 201)``
    (positive when ``y_prob >= t``). Precision where nothing is predicted positive is
    1.0 by convention (no positive prediction is wrong), so the precision curve ends at
    1.0 above the largest probability. A dashed vertical line marks ``threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels (1 = ``classes[1]``); both must occur.
    y_prob : array-like of shape (n,)
        Probability of ``classes[1]``.
    classes : sequence of str
        The negative and positive class names.
    threshold : float
        The chosen decision threshold.

    Attributes
    ----------
    thresholds_ : numpy.ndarray of shape (201,)
        The thresholds evaluated.
    curves_ : dict of str -> numpy.ndarray
        ``"precision"``, ``"recall"``, ``"F1"`` and ``"balanced accuracy"`` at each
        threshold (precision and recall of the positive class).
    figure_ : matplotlib.figure.Figure
        Set by :meth:`plot`.
    ax_ : matplotlib.axes.Axes
        Set by :meth:`plot`.
    threshold_line_ : matplotlib.lines.Line2D
        The vertical line at ``threshold``; set by :meth:`plot`.
    """

    def _compute(self) -> None:
        self.thresholds_ = np.linspace(0.0, 1.0, 201)
        t = self.thresholds_
        n_pos = int(self.y_true.sum())
        n_neg = len(self.y_true) - n_pos
        # images with y_prob >= t: those not strictly below t in the sorted probabilities
        positives = np.sort(self.y_prob[self.y_true == 1])
        negatives = np.sort(self.y_prob[self.y_true == 0])
        tp = n_pos - np.searchsorted(positives, t, side="left")
        fp = n_neg - np.searchsorted(negatives, t, side="left")
        predicted = tp + fp
        precision = np.divide(tp, predicted, out=np.ones(len(t)), where=predicted > 0)
        recall = tp / n_pos
        self.curves_ = {
            "precision": precision,
            "recall": recall,
            "F1": 2 * tp / (tp + fp + n_pos),  # 2tp / (2tp + fp + fn)
            "balanced accuracy": (recall + (n_neg - fp) / n_neg) / 2,
        }

    def plot(self, ax: Any = None) -> ThresholdDisplay:
        """Draw the four metric curves and the threshold line.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into this axes; a new :class:`~matplotlib.figure.Figure` when omitted.

        Returns
        -------
        ThresholdDisplay
            ``self``, with ``figure_``, ``ax_`` and ``threshold_line_`` set.
        """
        figure, ax = _axes(ax, (7.0, 4.5))
        pos = self.classes[1]
        for (name, values), style in zip(self.curves_.items(), ["-", "-", "-", "-."]):
            ax.plot(self.thresholds_, values, linestyle=style, label=name)
        self.threshold_line_ = ax.axvline(
            self.threshold, color="k", linestyle="--", label=f"threshold {self.threshold:.2f}"
        )
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(-0.02, 1.04)
        ax.set_xlabel(f"threshold on P({pos}) (predict {pos} when P >= threshold)")
        ax.set_ylabel("score")
        ax.set_title(f"Metrics against the threshold (positive class {pos})")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
        self.ax_, self.figure_ = ax, figure
        return self
