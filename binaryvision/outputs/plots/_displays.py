"""Display objects that draw what a fitted classifier does (headless, never ``plt.show``).

Figures are built with :class:`matplotlib.figure.Figure` directly, so no pyplot state,
backend or window is involved: save them with ``display.figure_.savefig("out.png")``.

Like scikit-learn's ``*Display`` objects, each display stores its data in ``__init__``,
draws with :meth:`plot` (returning ``self`` with ``figure_`` and ``ax_`` set) and has a
``from_predictions`` class method that does both. ``y_true`` holds 0/1 labels, where 1
is the positive class ``classes[1]``, and ``y_prob`` the probability of ``classes[1]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...data.decode import load_image
from ...decisions.metrics import NEVER_POSITIVE, expected_calibration_error
from ...exceptions import InvalidParameterError

__all__ = [
    "ConfidenceDisplay",
    "ConfusionMatrixDisplay",
    "PRCurveDisplay",
    "ROCCurveDisplay",
    "ReliabilityDisplay",
    "ThresholdDisplay",
]


# ---------------------------------------------------------------------- shared helpers
def _check_predictions(
    y_true: Any,
    y_prob: Any,
    *,
    names: tuple[str, str] = ("y_true", "y_prob"),
    both_classes: bool = False,
    extra: Mapping[str, tuple[Any, str]] | None = None,
) -> tuple[Any, ...]:
    """Check labels, probabilities and optional per-image arrays; return them as arrays.

    Parameters
    ----------
    y_true, y_prob : array-like of shape (n,)
        0/1 labels and positive-class probabilities.
    names : (str, str)
        The argument names of ``y_true`` and ``y_prob``, used in error messages.
    both_classes : bool
        Require both labels to be present (ROC, PR and threshold curves need them).
    extra : mapping of name -> (array-like or None, kind), optional
        More per-image arrays; ``kind`` is ``"probability"`` (in [0, 1]), ``"mask"``
        (bool or 0/1) or ``"nonnegative"`` (finite and >= 0). ``None`` values are
        passed through.

    Returns
    -------
    tuple
        ``y_true`` as int, ``y_prob`` as float, then each ``extra`` array in order.

    Raises
    ------
    InvalidParameterError
        Naming the argument, what was expected and what was found.
    """
    true_name, prob_name = names

    def one_d(name: str, value: Any) -> np.ndarray:
        array = np.asarray(value)
        if array.ndim != 1:
            raise InvalidParameterError(
                f"{name} must be 1-D with one value per image; got shape {array.shape}."
            )
        return array

    def numeric(name: str, array: np.ndarray, expected: str) -> np.ndarray:
        if array.dtype.kind not in "biuf":
            raise InvalidParameterError(
                f"{name} must hold {expected}; got dtype {array.dtype} "
                f"(first values {array[:3].tolist()})."
            )
        return array.astype(float)

    def probability(name: str, value: Any) -> np.ndarray:
        array = numeric(name, one_d(name, value), "probabilities in [0, 1]")
        bad = ~((array >= 0) & (array <= 1))  # NaN counts as bad
        if bad.any():
            raise InvalidParameterError(
                f"{name} must hold probabilities in [0, 1]; got {int(bad.sum())} value(s) "
                f"outside, e.g. {array[bad][:3].tolist()}."
            )
        return array

    def labels(name: str, value: Any, expected: str) -> np.ndarray:
        array = numeric(name, one_d(name, value), expected)
        bad = ~np.isin(array, [0.0, 1.0])
        if bad.any():
            raise InvalidParameterError(
                f"{name} must hold {expected}; got values {np.unique(array[bad])[:5].tolist()}."
            )
        return array.astype(int)

    y_true = labels(true_name, y_true, "0/1 labels (1 = positive class)")
    y_prob = probability(prob_name, y_prob)
    if len(y_true) != len(y_prob):
        raise InvalidParameterError(
            f"{true_name} and {prob_name} must have the same length; "
            f"got {len(y_true)} and {len(y_prob)}."
        )
    if len(y_true) == 0:
        raise InvalidParameterError(f"{true_name} must hold at least one image; got 0.")
    if both_classes and len(np.unique(y_true)) < 2:
        raise InvalidParameterError(
            f"{true_name} must hold both labels 0 and 1 for this curve; "
            f"got only {int(y_true[0])} ({len(y_true)} images)."
        )
    out: list[Any] = [y_true, y_prob]
    for name, (value, kind) in (extra or {}).items():
        if value is None:
            out.append(None)
            continue
        if kind == "probability":
            array = probability(name, value)
        elif kind == "mask":
            array = labels(name, value, "booleans (one per image)").astype(bool)
        else:
            array = numeric(name, one_d(name, value), "non-negative numbers")
            bad = ~(np.isfinite(array) & (array >= 0))
            if bad.any():
                raise InvalidParameterError(
                    f"{name} must hold finite non-negative numbers; got {array[bad][:3].tolist()}."
                )
        if len(array) != len(y_prob):
            raise InvalidParameterError(
                f"{name} must have one value per image like {prob_name} ({len(y_prob)}); "
                f"got {len(array)}."
            )
        out.append(array)
    return tuple(out)


def _check_classes(classes: Sequence[Any]) -> list[str]:
    """The two class names as strings (negative first)."""
    names = [str(c) for c in classes]
    if len(names) != 2:
        raise InvalidParameterError(
            f"classes must hold two names (negative, positive); got {list(classes)!r}."
        )
    return names


def _check_threshold(threshold: Any) -> float:
    """A decision threshold as a float in [0, 1] (or just above 1: "never positive")."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 <= value <= NEVER_POSITIVE:
        raise InvalidParameterError(f"threshold must be a float in [0, 1]; got {threshold!r}.")
    return value


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """``(figure, axes)``: the given axes and its figure, or a new constrained figure."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def _counts(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> tuple[int, ...]:
    """``(tp, fp, fn, tn)`` when predicting positive for ``y_prob >= threshold``."""
    predicted = y_prob >= threshold
    positive = y_true == 1
    tp = int(np.sum(predicted & positive))
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))
    tn = int(np.sum(~predicted & ~positive))
    return tp, fp, fn, tn


# ---------------------------------------------------------------------- image grids
class ConfidenceDisplay:
    """Image grids of where a classifier is confident, wrong or unsure, plus a histogram.

    Views (rows): random correct, random incorrect, most confident correct per class,
    most confident wrong per true class, and most uncertain (probability closest to
    0.5); then, when given, the abstained images (most uncertain first) and the images
    with the largest test-time-augmentation spread. Each image is titled with its
    probability of the positive class (and its spread, when given, as ``0.812 ± 0.034``);
    green titles are correct predictions, red ones wrong. The last row is a histogram of
    predicted probabilities per true class with the threshold marked.

    Parameters
    ----------
    items : sequence
        The images (paths, PIL images or arrays), in the order of ``probabilities``.
    probabilities : array-like of shape (n,)
        Probability of the positive class ``classes[1]``.
    targets : array-like of shape (n,)
        True labels as 0 (``classes[0]``) or 1 (``classes[1]``).
    classes : sequence of str
        The two class names.
    threshold : float
        Decision threshold on the positive-class probability.
    n_images : int
        Images per view.
    random_state : int, optional
        Seed of the random views.
    abstained : array-like of bool, shape (n,), optional
        Images whose conformal prediction set holds both labels; adds the view
        "Abstained (both labels plausible)".
    spread : array-like of float, shape (n,), optional
        Standard deviation of the probability across test-time-augmentation views; adds
        it to the image titles and adds the view "Largest TTA spread".

    Attributes
    ----------
    views_ : list of (str, numpy.ndarray)
        Each view's title and the indices of the images it shows.
    figure_ : matplotlib.figure.Figure
        Set by :meth:`plot`.
    image_axes_ : list of list of matplotlib.axes.Axes
        One list of image axes per view; set by :meth:`plot`.
    ax_hist_ : matplotlib.axes.Axes
        The histogram axes; set by :meth:`plot`.
    """

    def __init__(
        self,
        items: Sequence[Any],
        probabilities: Any,
        targets: Any,
        classes: Sequence[str],
        threshold: float = 0.5,
        n_images: int = 4,
        random_state: int | None = 0,
        *,
        abstained: Any = None,
        spread: Any = None,
    ) -> None:
        self.items = list(items)
        self.targets, self.probabilities, self.abstained, self.spread = _check_predictions(
            targets,
            probabilities,
            names=("targets", "probabilities"),
            extra={"abstained": (abstained, "mask"), "spread": (spread, "nonnegative")},
        )
        if len(self.items) != len(self.probabilities):
            raise InvalidParameterError(
                f"items must have one image per probability ({len(self.probabilities)}); "
                f"got {len(self.items)}."
            )
        self.classes = _check_classes(classes)
        self.threshold = _check_threshold(threshold)
        self.n_images = int(n_images)
        self.random_state = random_state
        self.views_ = self._views()

    @classmethod
    def from_estimator(
        cls, estimator: Any, X: Any, y: Any = None, **kwargs: Any
    ) -> ConfidenceDisplay:
        """Predict with a fitted classifier and draw the display (see ``plot_confidence``)."""
        return estimator.plot_confidence(X, y, **kwargs)

    def _views(self) -> list[tuple[str, np.ndarray]]:
        p, t, k = self.probabilities, self.targets, self.n_images
        predicted = (p >= self.threshold).astype(int)
        correct = predicted == t
        rng = np.random.default_rng(self.random_state)

        def sample(mask: np.ndarray) -> np.ndarray:
            index = np.flatnonzero(mask)
            return np.sort(rng.choice(index, size=min(k, len(index)), replace=False))

        def top(mask: np.ndarray, key: np.ndarray) -> np.ndarray:
            index = np.flatnonzero(mask)
            return index[np.argsort(key[index], kind="stable")][:k]

        neg, pos = self.classes
        uncertainty = np.abs(p - 0.5)
        everything = np.ones_like(correct)
        # confidence in the predicted class: p for positive predictions, 1 - p otherwise
        views = [
            ("Random correct", sample(correct)),
            ("Random incorrect", sample(~correct)),
            (f"Most confident correct: {neg}", top(correct & (t == 0), p)),
            (f"Most confident correct: {pos}", top(correct & (t == 1), -p)),
            (f"Most confident wrong: true {neg}, predicted {pos}", top(~correct & (t == 0), -p)),
            (f"Most confident wrong: true {pos}, predicted {neg}", top(~correct & (t == 1), p)),
            ("Most uncertain (closest to 0.5)", top(everything, uncertainty)),
        ]
        if self.abstained is not None:
            views.append(("Abstained (both labels plausible)", top(self.abstained, uncertainty)))
        if self.spread is not None:
            views.append(("Largest TTA spread", top(everything, -self.spread)))
        return views

    def _image_title(self, i: int) -> str:
        spread = "" if self.spread is None else f" ± {self.spread[i]:.3f}"
        return f"{self.probabilities[i]:.3f}{spread} ({self.classes[self.targets[i]]})"

    def plot(self, ax: Any = None) -> ConfidenceDisplay:
        """Draw the views and the histogram.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw inside this axes' area (it is replaced by the grid). A new
            :class:`~matplotlib.figure.Figure` is made when omitted.

        Returns
        -------
        ConfidenceDisplay
            ``self``, with ``figure_``, ``image_axes_`` and ``ax_hist_`` set.
        """
        from matplotlib.figure import Figure

        rows = len(self.views_)
        if ax is None:
            figure = Figure(
                figsize=(2.6 * max(self.n_images, 3), 2.5 * rows + 3.2), layout="constrained"
            )
            root = figure
        else:
            figure = ax.figure
            root = figure.add_subfigure(ax.get_subplotspec())
            ax.remove()
        subfigures = root.subfigures(rows + 1, 1, height_ratios=[1.0] * rows + [1.3])
        pos = self.classes[1]
        shown = f"P({pos})" if self.spread is None else f"P({pos}) ± TTA std"
        root.suptitle(
            f"Probability shown: {shown}; threshold {self.threshold:.2f}; "
            "green = correct, red = wrong",
            fontsize="large",
        )
        self.image_axes_ = []
        for sub, (title, index) in zip(subfigures[:rows], self.views_):
            sub.suptitle(f"{title} ({len(index)})", fontsize="medium", fontweight="bold")
            axes = list(np.atleast_1d(sub.subplots(1, self.n_images)))
            for a in axes:
                a.set_axis_off()
            if len(index) == 0:
                sub.text(
                    0.5,
                    0.45,
                    "no image in this view",
                    ha="center",
                    va="center",
                    fontsize="large",
                    color="0.4",
                )
            for a, i in zip(axes, index):
                image = load_image(self.items[i])
                image.thumbnail((192, 192))
                a.imshow(np.asarray(image))
                ok = int(self.probabilities[i] >= self.threshold) == self.targets[i]
                a.set_title(
                    self._image_title(i),
                    fontsize="small",
                    color="tab:green" if ok else "tab:red",
                )
            self.image_axes_.append(axes[: len(index)])
        hist = subfigures[rows].subplots()
        bins = np.linspace(0.0, 1.0, 21)
        for label, name in enumerate(self.classes):
            hist.hist(
                self.probabilities[self.targets == label],
                bins=bins,
                alpha=0.6,
                label=f"true {name} ({int((self.targets == label).sum())})",
                color=f"C{label}",
            )
        hist.axvline(
            self.threshold, color="k", linestyle="--", label=f"threshold {self.threshold:.2f}"
        )
        hist.set_xlabel(f"predicted P({pos})")
        hist.set_ylabel("images")
        hist.set_title("Predicted probabilities by true class")
        # the bars of a good model sit at 0 and 1, where "best" often put the legend
        hist.legend(loc="upper center", fontsize="small")
        self.ax_hist_ = hist
        self.figure_ = figure
        return self


# ---------------------------------------------------------------------- calibration
class ReliabilityDisplay:
    """Reliability diagram: how often the positive class occurs at each predicted probability.

    The top axes plot, per equal-width bin of predicted probability, the fraction of
    positives against the mean predicted probability
    (:func:`sklearn.calibration.calibration_curve`, ``strategy="uniform"``), with the
    diagonal of perfect calibration; the curves are labelled with their expected
    calibration error (:func:`binaryvision.metrics.expected_calibration_error`, same
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
