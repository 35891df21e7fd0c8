"""The reliability diagram: predicted probabilities against observed frequencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...decisions.metrics import expected_calibration_error
from ...exceptions import InvalidParameterError
from ._common import _check_classes, _check_predictions

__all__ = ["ReliabilityDisplay"]


# ---------------------------------------------------------------------- calibration
class ReliabilityDisplay:
    """Reliability diagram: how often the positive class occurs at each predicted probability.

    The top axes plot, per equal-width bin of predicted probability, the fraction of
    positives against the mean predicted probability
    (:func:`sklearn.calibration.calibration_curve`, ``strategy="uniform"``), with the
    diagonal of perfect calibration; the curves are labelled with their expected
    calibration error (:func:`binaryvision.decisions.metrics.expected_calibration_error`, same
    bins). The bottom axes show a histogram of the probabilities with the same bins, so
    the reader sees which parts of the curve rest on many images.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 labels (1 = ``classes[1]``).
    y_prob : array-like of shape (n,)
        Probability of ``classes[1]``, after calibration.
    y_prob_uncalibrated : array-like of shape (n,), optional
        The same probabilities before calibration, drawn as a second curve.
    classes : sequence of str
        The negative and positive class names.
    n_bins : int
        Number of equal-width bins on [0, 1].

    Attributes
    ----------
    ece_ : float
        Expected calibration error of ``y_prob``.
    ece_uncalibrated_ : float or None
        Expected calibration error of ``y_prob_uncalibrated``, when given.
    figure_ : matplotlib.figure.Figure
        Set by :meth:`plot`.
    ax_ : matplotlib.axes.Axes
        The reliability-curve axes; set by :meth:`plot`.
    ax_hist_ : matplotlib.axes.Axes
        The histogram axes below it (sharing x); set by :meth:`plot`.
    """

    def __init__(
        self,
        y_true: Any,
        y_prob: Any,
        *,
        y_prob_uncalibrated: Any = None,
        classes: Sequence[str] = ("0", "1"),
        n_bins: int = 15,
    ) -> None:
        self.y_true, self.y_prob, self.y_prob_uncalibrated = _check_predictions(
            y_true,
            y_prob,
            extra={"y_prob_uncalibrated": (y_prob_uncalibrated, "probability")},
        )
        self.classes = _check_classes(classes)
        if int(n_bins) != n_bins or n_bins < 1:
            raise InvalidParameterError(f"n_bins must be a positive integer; got {n_bins!r}.")
        self.n_bins = int(n_bins)
        self.ece_ = expected_calibration_error(self.y_true, self.y_prob, n_bins=self.n_bins)
        self.ece_uncalibrated_ = (
            None
            if self.y_prob_uncalibrated is None
            else expected_calibration_error(
                self.y_true, self.y_prob_uncalibrated, n_bins=self.n_bins
            )
        )

    @classmethod
    def from_predictions(
        cls,
        y_true: Any,
        y_prob: Any,
        *,
        y_prob_uncalibrated: Any = None,
        classes: Sequence[str] = ("0", "1"),
        n_bins: int = 15,
        ax: Any = None,
    ) -> ReliabilityDisplay:
        """Build the display from labels and probabilities and draw it.

        Parameters
        ----------
        y_true, y_prob, y_prob_uncalibrated, classes, n_bins
            As for :class:`ReliabilityDisplay`.
        ax : matplotlib.axes.Axes, optional
            As for :meth:`plot`.

        Returns
        -------
        ReliabilityDisplay
        """
        display = cls(
            y_true, y_prob, y_prob_uncalibrated=y_prob_uncalibrated, classes=classes, n_bins=n_bins
        )
        return display.plot(ax=ax)

    def plot(self, ax: Any = None) -> ReliabilityDisplay:
        """Draw the reliability curves and the histogram.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw inside this axes' area (it is replaced by the two axes of the display).
            A new :class:`~matplotlib.figure.Figure` is made when omitted.

        Returns
        -------
        ReliabilityDisplay
            ``self``, with ``figure_``, ``ax_`` and ``ax_hist_`` set.
        """
        from matplotlib.figure import Figure
        from sklearn.calibration import calibration_curve

        if ax is None:
            figure = Figure(figsize=(6.0, 6.8), layout="constrained")
            root = figure
        else:
            figure = ax.figure
            root = figure.add_subfigure(ax.get_subplotspec())
            ax.remove()
        curve_ax, hist_ax = root.subplots(2, 1, sharex=True, height_ratios=[3.0, 1.0])
        neg, pos = self.classes
        bins = np.linspace(0.0, 1.0, self.n_bins + 1)
        curve_ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", label="perfectly calibrated")
        calibrated = self.y_prob_uncalibrated is not None
        series = [("after calibration" if calibrated else "model", self.y_prob, self.ece_, "C0")]
        if calibrated:
            series.insert(
                0, ("before calibration", self.y_prob_uncalibrated, self.ece_uncalibrated_, "C1")
            )
        for name, prob, ece, color in series:
            fraction, mean = calibration_curve(
                self.y_true, prob, pos_label=1, n_bins=self.n_bins, strategy="uniform"
            )
            curve_ax.plot(mean, fraction, marker="o", color=color, label=f"{name} (ECE {ece:.3f})")
            after = color == "C0"
            hist_ax.hist(
                prob,
                bins=bins,
                color=color,
                histtype="bar" if after else "step",
                alpha=0.6 if after else 1.0,
                linewidth=1.5,
                label=name,
            )
        curve_ax.set_xlim(0.0, 1.0)
        curve_ax.set_ylim(-0.02, 1.02)
        curve_ax.set_xlabel(f"mean predicted P({pos})")
        curve_ax.set_ylabel(f"fraction of {pos}")
        curve_ax.xaxis.set_tick_params(labelbottom=True)
        curve_ax.set_title(f"Reliability of P({pos}) ({neg} vs {pos}; {self.n_bins} bins)")
        curve_ax.legend(loc="upper left", fontsize="small")
        curve_ax.grid(alpha=0.3)
        hist_ax.set_xlabel(f"predicted P({pos})")
        hist_ax.set_ylabel("images")
        self.ax_, self.ax_hist_, self.figure_ = curve_ax, hist_ax, figure
        return self
