"""Suspected label errors: training images ranked by how unlikely their given label is.

Made by :meth:`ImageBinaryClassifier.label_issues
<binaryvision.ImageBinaryClassifier.label_issues>` from out-of-fold probabilities: each
image is judged by heads that never trained on it, so a mislabelled photo cannot vouch for
its own label (the idea of confident learning, Northcutt et al., 2021, in its simplest
form: rank by the calibrated probability of the given label).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from .plots.label_issues import LabelIssuesDisplay

__all__ = ["LabelIssues"]


@dataclasses.dataclass
class LabelIssues:
    """Images ranked by the out-of-fold probability of their given label, lowest first.

    Attributes
    ----------
    items : list
        The images (paths, PIL images or arrays), most suspect first.
    given, believed : list
        The label each image was given, and the one the model finds more likely.
    p_given : numpy.ndarray
        Calibrated out-of-fold probability of the given label.
    suspect : numpy.ndarray of bool
        Whether the model believes the other label (``p_given < 0.5``).
    """

    items: list
    given: list
    believed: list
    p_given: np.ndarray
    suspect: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.p_given = np.asarray(self.p_given, dtype=float)
        self.suspect = self.p_given < 0.5

    @classmethod
    def rank(cls, items: list, labels: Any, p_positive: Any, classes: Any, n: int | None):
        """Rank ``items`` by ``p(given label)`` from the positive-class probabilities.

        ``classes`` is ``(negative, positive)``; ``n`` keeps the first ``n`` (None: all).
        """
        negative, positive = classes
        p_pos = np.asarray(p_positive, dtype=float)
        is_pos = np.array([v == positive or str(v) == str(positive) for v in list(labels)])
        p_given = np.where(is_pos, p_pos, 1.0 - p_pos)
        order = np.argsort(p_given, kind="stable")[: None if n is None else n]
        other = [negative if pos else positive for pos in is_pos]
        return cls(
            items=[items[i] for i in order],
            given=[labels[i] for i in order],
            believed=[labels[i] if p_given[i] >= 0.5 else other[i] for i in order],
            p_given=p_given[order],
        )

    def __len__(self) -> int:
        return len(self.items)

    def reason(self, i: int) -> str:
        """Why image ``i`` is listed, in words."""
        p = self.p_given[i]
        if not self.suspect[i]:
            return f"given {self.given[i]!r}, which the model agrees with ({p:.2f})"
        return (
            f"given {self.given[i]!r}, but held-out heads give that {p:.2f} and believe "
            f"{self.believed[i]!r} ({1 - p:.2f})"
        )

    def to_list(self) -> list[dict]:
        """One dict per image: ``item`` (a path, or the in-memory image's rank), ``given``,
        ``believed``, ``p_given``, ``suspect`` and ``reason``."""
        return [
            {
                "item": os.fspath(it) if isinstance(it, (str, os.PathLike)) else f"#{i}",
                "given": self.given[i],
                "believed": self.believed[i],
                "p_given": float(self.p_given[i]),
                "suspect": bool(self.suspect[i]),
                "reason": self.reason(i),
            }
            for i, it in enumerate(self.items)
        ]

    def __str__(self) -> str:
        n = int(self.suspect.sum())
        lines = [f"{len(self)} images ranked by P(given label), {n} the model disagrees with:"]
        for row in self.to_list()[:20]:
            lines.append(f"  {row['p_given']:.3f}  {row['item']}: {row['reason']}")
        return "\n".join(lines)

    def plot(self, n_images: int = 12, ax: Any = None) -> Any:
        """Show the first ``n_images``: each photo, its given label and the model's belief.

        Returns a :class:`~binaryvision.outputs.plots.label_issues.LabelIssuesDisplay`
        with ``figure_``.
        """
        return LabelIssuesDisplay(self, n_images).plot(ax=ax)
