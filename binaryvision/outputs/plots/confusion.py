"""The confusion matrix display at the decision threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._common import _axes, _check_classes, _check_predictions, _check_threshold

__all__ = ["ConfusionMatrixDisplay"]


# ---------------------------------------------------------------------- confusion matrix
class ConfusionMatrixDisplay:
    """The 2x2 confusion matrix at the decision threshold, counts and row percentages.

    Rows are the true classes, columns the predicted ones; each cell shows its count and
    its share of the row (so the diagonal reads as per-class recall), and is shaded by
    that share. Abstained images, when given, are still counted by their thresholded
    prediction; the title says how many there are.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels (1 = ``classes[1]``).
    y_prob : array-like of shape (n,)
        Probability of ``classes[1]``.
    classes : sequence of str
        The negative and positive class names.
    threshold : float
        Decision threshold: positive when ``y_prob >= threshold``.
    abstained : array-like of bool, shape (n,), optional
        Images whose conformal prediction set holds both labels.

    Attributes
    ----------
    matrix_ : numpy.ndarray of shape (2, 2)
        :func:`sklearn.metrics.confusion_matrix` with ``labels=[0, 1]``.
    figure_ : matplotlib.figure.Figure
        Set by :meth:`plot`.
    ax_ : matplotlib.axes.Axes
        Set by :meth:`plot`.
    text_ : numpy.ndarray of shape (2, 2) of matplotlib.text.Text
        The cell texts; set by :meth:`plot`.
    """

    def __init__(
        self,
        y_true: Any,
        y_prob: Any,
        *,
        classes: Sequence[str] = ("0", "1"),
        threshold: float = 0.5,
        abstained: Any = None,
    ) -> None:
        from sklearn.metrics import confusion_matrix

        self.y_true, self.y_prob, self.abstained = _check_predictions(
            y_true, y_prob, extra={"abstained": (abstained, "mask")}
        )
        self.classes = _check_classes(classes)
        self.threshold = _check_threshold(threshold)
        predicted = (self.y_prob >= self.threshold).astype(int)
        self.matrix_ = confusion_matrix(self.y_true, predicted, labels=[0, 1])

    @classmethod
    def from_predictions(
        cls,
        y_true: Any,
        y_prob: Any,
        *,
        classes: Sequence[str] = ("0", "1"),
        threshold: float = 0.5,
        abstained: Any = None,
        ax: Any = None,
    ) -> ConfusionMatrixDisplay:
        """Build the display from labels and probabilities and draw it.

        Parameters
        ----------
        y_true, y_prob, classes, threshold, abstained
            As for :class:`ConfusionMatrixDisplay`.
        ax : matplotlib.axes.Axes, optional
            As for :meth:`plot`.

        Returns
        -------
        ConfusionMatrixDisplay
        """
        display = cls(y_true, y_prob, classes=classes, threshold=threshold, abstained=abstained)
        return display.plot(ax=ax)

    def plot(self, ax: Any = None) -> ConfusionMatrixDisplay:
        """Draw the matrix.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into this axes; a new :class:`~matplotlib.figure.Figure` when omitted.

        Returns
        -------
        ConfusionMatrixDisplay
            ``self``, with ``figure_``, ``ax_`` and ``text_`` set.
        """
        figure, ax = _axes(ax, (4.8, 4.4))
        rows = self.matrix_.sum(axis=1, keepdims=True)
        share = np.divide(self.matrix_, rows, out=np.zeros(self.matrix_.shape), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        self.text_ = np.empty((2, 2), dtype=object)
        for i in range(2):
            for j in range(2):
                percent = f"\n({share[i, j]:.0%})" if rows[i, 0] else ""
                self.text_[i, j] = ax.text(
                    j,
                    i,
                    f"{self.matrix_[i, j]}{percent}",
                    ha="center",
                    va="center",
                    fontsize="x-large",
                    color="white" if share[i, j] > 0.5 else "black",
                )
        ax.set_xticks([0, 1], self.classes)
        ax.set_yticks([0, 1], self.classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        title = f"threshold {self.threshold:.2f}"
        if self.abstained is not None:
            title += f", {int(self.abstained.sum())} abstained"
        ax.set_title(title)
        self.ax_, self.figure_ = ax, figure
        return self
