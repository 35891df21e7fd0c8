"""LabelIssuesDisplay: the most suspect training images with their given label and the belief."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...data.decode import load_image
from ...exceptions import InvalidParameterError

__all__ = ["LabelIssuesDisplay"]

_FLAG_WORDS = {"model": "belief", "neighbours": "neighbours"}


class LabelIssuesDisplay:
    """A grid of the images a :class:`~binaryvision.outputs.label_issues.LabelIssues` ranks first.

    Each image is titled with its given label, the model's out-of-fold belief and the
    share of its nearest images that carry its label. Red titles are the suspect ones,
    with a last line that names what flagged them: the model's belief, the neighbours,
    or both (:meth:`~binaryvision.outputs.label_issues.LabelIssues.flagged_by`).

    Parameters
    ----------
    issues : LabelIssues
        The ranking to show.
    n_images : int
        How many of its first images to draw.
    """

    def __init__(self, issues: Any, n_images: int = 12) -> None:
        if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
            raise InvalidParameterError(f"n_images must be an int >= 1; got {n_images!r}.")
        self.issues = issues
        self.n_images = min(n_images, len(issues))

    def plot(self, ax: Any = None) -> LabelIssuesDisplay:
        """Draw the grid (inside ``ax``'s area when given); sets ``figure_`` and ``axes_``."""
        from matplotlib.figure import Figure

        n = max(self.n_images, 1)
        cols = min(n, 6)
        rows = math.ceil(n / cols)
        if ax is None:
            root = figure = Figure(figsize=(2.5 * cols, 3.1 * rows + 0.8), layout="constrained")
        else:
            figure = ax.figure
            root = figure.add_subfigure(ax.get_subplotspec())
            ax.remove()
        root.suptitle(
            "Suspected label errors: given label, out-of-fold belief, neighbour agreement"
            "\n(red: flagged by the belief, by the neighbours, or by both)",
            fontsize="large",
        )
        axes = list(np.atleast_1d(root.subplots(rows, cols)).ravel())
        for a in axes:
            a.set_axis_off()
        issues = self.issues
        for i, a in zip(range(self.n_images), axes):
            image = load_image(issues.items[i])
            image.thumbnail((192, 192))
            a.imshow(np.asarray(image))
            lines = [
                f"given: {issues.given[i]}",
                f"belief: {issues.believed[i]} {max(issues.p_given[i], 1 - issues.p_given[i]):.2f}",
            ]
            if issues.agreement is not None:
                lines.append(f"neighbours agree: {issues.agreement[i]:.0%}")
            flags = issues.flagged_by(i)
            if flags:
                lines.append("flagged by: " + " + ".join(_FLAG_WORDS[f] for f in flags))
            a.set_title(
                "\n".join(lines),
                fontsize="small",
                color="tab:red" if issues.suspect[i] else "tab:green",
            )
        if self.n_images == 0:
            axes[0].text(0.5, 0.5, "no images", ha="center", va="center", color="0.4")
        self.axes_ = axes[: self.n_images]
        self.figure_ = figure
        return self
