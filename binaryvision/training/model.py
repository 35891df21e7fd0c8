"""The network that is trained: a backbone and a one-logit head."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BinaryModel"]


class BinaryModel(nn.Module):
    """A backbone followed by a one-logit head: images ``(N, 3, S, S)`` to logits ``(N,)``.

    Parameters
    ----------
    backbone : Backbone
        Maps images to ``(N, backbone.num_features)`` features.
    dropout : float
        Dropout before the linear head.
    extra_sizes : tuple of int
        Further input sizes whose features sit beside the backbone's own in the head's
        input (the autopilot's multi-resolution model). Such a model runs through its
        feature pass (:mod:`binaryvision.features.extract`), not :meth:`forward`.
    """

    def __init__(
        self, backbone: nn.Module, dropout: float = 0.0, extra_sizes: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.extra_sizes = tuple(int(s) for s in extra_sizes)
        n_features = backbone.num_features * (1 + len(self.extra_sizes))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return one logit per image."""
        if self.extra_sizes:
            raise TypeError(
                f"This model reads features at {len(self.extra_sizes) + 1} input sizes; run it "
                "through ImageBinaryClassifier.predict_proba, not on one image batch."
            )
        return self.head(self.backbone(x)).squeeze(-1)


class _Head(nn.Module):
    """The head alone, used on cached features: ``(N, F)`` to ``(N,)`` logits."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x).squeeze(-1)
