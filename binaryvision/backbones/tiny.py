"""``tiny_cnn``: a small random-init CNN for fast tests, docs and examples."""

from __future__ import annotations

import torch
from torch import nn

from ._base import Backbone, DataConfig, load_weights
from ._registry import register_backbone

__all__ = ["TinyCNN"]


class TinyCNN(Backbone):
    """Three conv-BN-ReLU blocks and global pooling: 32 px input, 32 features.

    It has no pretrained weights; it exists so tests and examples run in seconds.
    """

    def __init__(self, width: int = 8) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        self.stem = block(3, width)
        self.stage1 = block(width, 2 * width)
        self.stage2 = block(2 * width, 4 * width)
        self.num_features = 4 * width
        self.data_config = DataConfig(
            input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features ``(N, 32)``."""
        return self.stage2(self.stage1(self.stem(x))).mean(dim=(2, 3))

    def layer_groups(self) -> list[list[nn.Module]]:
        """One group per block."""
        return [[self.stem], [self.stage1], [self.stage2]]


@register_backbone("tiny_cnn", has_weights=False)
def tiny_cnn(pretrained: bool = False, weights: str | None = None) -> TinyCNN:
    """Tiny random-init CNN (32 px) for tests and quick experiments; no pretrained weights."""
    model = TinyCNN()
    if weights is not None:
        load_weights(model, weights)
        model.pretrained = True
    return model
