"""The confidence display: image grids of confident, wrong and unsure predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...data.decode import load_image
from ...exceptions import InvalidParameterError
from ._common import _check_classes, _check_predictions, _check_threshold

__all__ = ["ConfidenceDisplay"]


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
