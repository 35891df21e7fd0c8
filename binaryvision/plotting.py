"""Display objects that draw what a fitted classifier does (headless, never ``plt.show``).

Figures are built with :class:`matplotlib.figure.Figure` directly, so no pyplot state,
backend or window is involved: save them with ``display.figure_.savefig("out.png")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import load_image

__all__ = ["ConfidenceDisplay"]


class ConfidenceDisplay:
    """Image grids of where a classifier is confident, wrong or unsure, plus a histogram.

    Views (rows): random correct, random incorrect, most confident correct per class,
    most confident wrong per true class, and most uncertain (probability closest to
    0.5). Each image is titled with its probability of the positive class; green titles
    are correct predictions, red ones wrong. The last row is a histogram of predicted
    probabilities per true class with the threshold marked.

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
    ) -> None:
        self.items = list(items)
        self.probabilities = np.asarray(probabilities, dtype=float)
        self.targets = np.asarray(targets, dtype=int)
        self.classes = [str(c) for c in classes]
        self.threshold = float(threshold)
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
        # confidence in the predicted class: p for positive predictions, 1 - p otherwise
        return [
            ("Random correct", sample(correct)),
            ("Random incorrect", sample(~correct)),
            (f"Most confident correct: {neg}", top(correct & (t == 0), p)),
            (f"Most confident correct: {pos}", top(correct & (t == 1), -p)),
            (f"Most confident wrong: true {neg}, predicted {pos}", top(~correct & (t == 0), -p)),
            (f"Most confident wrong: true {pos}, predicted {neg}", top(~correct & (t == 1), p)),
            ("Most uncertain (closest to 0.5)", top(np.ones_like(correct), np.abs(p - 0.5))),
        ]

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
        root.suptitle(
            f"Probability shown: P({pos}); threshold {self.threshold:.2f}; "
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
                    f"{self.probabilities[i]:.3f} ({self.classes[self.targets[i]]})",
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
        hist.legend(fontsize="small")
        self.ax_hist_ = hist
        self.figure_ = figure
        return self
