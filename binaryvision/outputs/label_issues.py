"""Suspected label errors: training images ranked by how unlikely their given label is.

Made by :meth:`ImageBinaryClassifier.label_issues
<binaryvision.ImageBinaryClassifier.label_issues>` from two kinds of evidence that never
let an image vouch for its own label: the share of its nearest neighbours in feature space
that carry the same label (neighbour consistency, as in Zhu et al., 2022, "Detecting
corrupted labels without training a model"), and the out-of-fold probability of the given
label (confident learning, Northcutt et al., 2021, in its simplest form). Neighbours rank
first and the probability breaks their ties: on hot dog that finds more flipped labels
than the probability alone (:func:`~binaryvision.training.cross_fit.neighbour_agreement`).
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
    """Images ranked by neighbour agreement with their label, then by the out-of-fold
    probability of that label, lowest first.

    Attributes
    ----------
    items : list
        The images (paths, PIL images or arrays), most suspect first.
    given, believed : list
        The label each image was given, and the one the model finds more likely.
    p_given : numpy.ndarray
        Calibrated out-of-fold probability of the given label.
    agreement : numpy.ndarray or None
        Share of the image's nearest other images that carry its label (None: not known).
    suspect : numpy.ndarray of bool
        Whether the model believes the other label (``p_given < 0.5``) or most
        neighbours carry it (``agreement < 0.5``); :meth:`flagged_by` says which.
    """

    items: list
    given: list
    believed: list
    p_given: np.ndarray
    agreement: np.ndarray | None = None
    suspect: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.p_given = np.asarray(self.p_given, dtype=float)
        self.suspect = self.p_given < 0.5
        if self.agreement is not None:
            self.agreement = np.asarray(self.agreement, dtype=float)
            self.suspect = self.suspect | (self.agreement < 0.5)

    @classmethod
    def rank(
        cls,
        items: list,
        labels: Any,
        p_positive: Any,
        classes: Any,
        n: int | None,
        agreement: Any = None,
    ):
        """Rank ``items`` by ``agreement`` (when given), then by ``p(given label)`` from the
        positive-class probabilities.

        ``classes`` is ``(negative, positive)``; ``n`` keeps the first ``n`` (None: all).
        """
        negative, positive = classes
        p_pos = np.asarray(p_positive, dtype=float)
        is_pos = np.array([v == positive or str(v) == str(positive) for v in list(labels)])
        p_given = np.where(is_pos, p_pos, 1.0 - p_pos)
        keys = (p_given,) if agreement is None else (p_given, np.asarray(agreement, float))
        order = np.lexsort(keys)[: None if n is None else n]  # the last key sorts first
        other = [negative if pos else positive for pos in is_pos]
        return cls(
            items=[items[i] for i in order],
            given=[labels[i] for i in order],
            believed=[labels[i] if p_given[i] >= 0.5 else other[i] for i in order],
            p_given=p_given[order],
            agreement=None if agreement is None else np.asarray(agreement, float)[order],
        )

    def __len__(self) -> int:
        return len(self.items)

    def flagged_by(self, i: int) -> list[str]:
        """Which signals make image ``i`` suspect: ``"model"`` (the held-out heads believe
        the other label), ``"neighbours"`` (most of its nearest images carry the other
        label), both, or none (an empty list: listed only for its rank)."""
        flags = ["model"] if self.p_given[i] < 0.5 else []
        if self.agreement is not None and self.agreement[i] < 0.5:
            flags.append("neighbours")
        return flags

    def reason(self, i: int) -> str:
        """Why image ``i`` is listed, in words, naming the signal that flagged it."""
        p, given, flags = self.p_given[i], self.given[i], self.flagged_by(i)
        if "model" in flags:
            said = (
                f"given {given!r}, but held-out heads give that {p:.2f} and believe "
                f"{self.believed[i]!r} ({1 - p:.2f})"
            )
        else:
            said = f"given {given!r}, which held-out heads agree with ({p:.2f})"
        if self.agreement is None:
            return said
        share = f"{self.agreement[i]:.0%} of its nearest images carry that label"
        if "neighbours" in flags:
            share = "none" + share[share.index(" of") :] if self.agreement[i] == 0 else share
            only = "" if self.agreement[i] == 0 else "only "
            return f"{said}, {'and' if 'model' in flags else 'but'} {only}{share}"
        return f"{said}; {share}"

    def to_list(self) -> list[dict]:
        """One dict per image: ``item`` (a path, or the in-memory image's rank), ``given``,
        ``believed``, ``p_given``, ``agreement``, ``suspect``, ``flagged_by`` and ``reason``."""
        return [
            {
                "item": os.fspath(it) if isinstance(it, (str, os.PathLike)) else f"#{i}",
                "given": self.given[i],
                "believed": self.believed[i],
                "p_given": float(self.p_given[i]),
                "agreement": None if self.agreement is None else float(self.agreement[i]),
                "suspect": bool(self.suspect[i]),
                "flagged_by": self.flagged_by(i),
                "reason": self.reason(i),
            }
            for i, it in enumerate(self.items)
        ]

    def __str__(self) -> str:
        n = int(self.suspect.sum())
        lines = [f"{len(self)} images ranked by how unlikely their label is, {n} suspect:"]
        for row in self.to_list()[:20]:
            lines.append(f"  {row['p_given']:.3f}  {row['item']}: {row['reason']}")
        return "\n".join(lines)

    def plot(self, n_images: int = 12, ax: Any = None) -> Any:
        """Show the first ``n_images``: each photo, its given label and the model's belief.

        Returns a :class:`~binaryvision.outputs.plots.label_issues.LabelIssuesDisplay`
        with ``figure_``.
        """
        return LabelIssuesDisplay(self, n_images).plot(ax=ax)
