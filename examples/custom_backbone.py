"""Your own feature extractor: register a backbone once, then use it by name.

    python examples/custom_backbone.py --data PATH     # PATH/train/<class>/, PATH/valid/<class>/
    python examples/custom_backbone.py                 # a generated SYNTHETIC image set
    python examples/custom_backbone.py --fast          # fewer images and epochs (CI)

A backbone is a ``binaryvision.Backbone``: an ``nn.Module`` whose ``forward`` maps images
``(N, 3, H, W)`` to feature vectors ``(N, num_features)`` and which carries

- ``data_config``: a ``DataConfig`` (input size, mean, std, resize filter, crop); the
  classifier builds its resizing and normalisation from it and never assumes ImageNet
  statistics;
- ``num_features``: the width of the feature vector (the head's input);
- ``pretrained``: whether the weights are already trained;
- ``layer_groups()``: groups of modules from the input side to the output side, which get
  increasing learning rates when fine-tuning (``layer_lr_ratio``).

This script:

1. writes ``SmallConvNet``, a hand-written backbone with its own ``DataConfig``, and
   registers a factory for it under the name ``small_convnet`` with ``register_backbone``
   (a name registered twice is an error);
2. fits ``ImageBinaryClassifier("small_convnet")``: the head on cached features, then
   ``fine_tune_epochs`` of training the whole network with one learning rate per layer
   group (the network starts from random weights, so most of the learning happens there);
3. prints the evaluation report of valid/;
4. saves the model (the file records the name ``small_convnet``) and loads it back: any
   process that has registered the name (imported this module) can load it.

On the generated set (80 + 40 images per class), the default run reaches about 0.96
validation accuracy in under 4 minutes on 2 CPU cores.

A torchvision model works the same way: wrap its convolutional part, e.g.
``ModuleBackbone(torchvision.models.mobilenet_v3_small().features, DataConfig(input_size=128),
pretrained=False)``, and return that from the factory. Without registering, any
``nn.Module`` can also be passed directly: ``ImageBinaryClassifier(backbone=module)``
(loading that model then needs ``ImageBinaryClassifier.load(path, backbone=module)``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from binaryvision import (
    Backbone,
    DataConfig,
    ImageBinaryClassifier,
    Trainer,
    list_backbones,
    register_backbone,
)
from binaryvision.datasets import make_shapes


class SmallConvNet(Backbone):
    """Three conv-BN-ReLU-pool blocks on 64 px images, global average pooling: 64 features."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.block1 = block(3, width)
        self.block2 = block(width, 2 * width)
        self.block3 = block(2 * width, 4 * width)
        self.num_features = 4 * width
        self.pretrained = False
        # how images must be prepared for this network: 64 px, pixels scaled to about [-2, 2]
        self.data_config = DataConfig(
            input_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), crop_pct=1.0
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features ``(N, 64)``."""
        return self.block3(self.block2(self.block1(x))).mean(dim=(2, 3))

    def layer_groups(self) -> list[list[nn.Module]]:
        """One group per block, input side first."""
        return [[self.block1], [self.block2], [self.block3]]


@register_backbone("small_convnet", has_weights=False)
def small_convnet(pretrained: bool = False, weights: str | None = None) -> SmallConvNet:
    """Three-block CNN on 64 px images, random init (examples/custom_backbone.py)."""
    model = SmallConvNet()
    if weights is not None:  # ImageBinaryClassifier("small_convnet", weights="trained.safetensors")
        model.load_state_dict(load_file(weights))
        model.pretrained = True
    return model


def main(argv: list[str] | None = None) -> int:
    """Fit, evaluate, save and reload a classifier on the registered backbone."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, help="folder with train/ and valid/ (default: SYNTHETIC images)"
    )
    parser.add_argument("--out", type=Path, default=Path("custom-backbone-out"))
    parser.add_argument("--fine-tune-epochs", type=int, help="default 8, 1 with --fast")
    parser.add_argument("--fast", action="store_true", help="fewer images and epochs (CI)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    fine_tune_epochs = args.fine_tune_epochs
    if fine_tune_epochs is None:
        fine_tune_epochs = 1 if args.fast else 8

    data = args.data
    if data is None:
        n_train, n_valid = (16, 8) if args.fast else (80, 40)
        data = make_shapes(args.out / "synthetic", n_train=n_train, n_valid=n_valid, size=96)
        print(f"SYNTHETIC data (circles vs squares, generated) in {data}")

    # 1. the registered name is usable everywhere a backbone name is
    print(f"registered backbones: {', '.join(list_backbones())}")

    # 2. head on cached features, then the whole network with one learning rate per group
    clf = ImageBinaryClassifier(
        "small_convnet",
        epochs=3,
        lr=0.05,
        fine_tune_epochs=fine_tune_epochs,
        fine_tune_lr=0.01,
        layer_lr_ratio=0.1,
        batch_size=16,
        random_state=0,
        verbose=0 if args.fast else 1,
        trainer=Trainer(num_workers=0) if args.fast else None,
    )
    clf.fit(data)
    print(f"input {clf.data_config_.input_size} px, mean {clf.data_config_.mean}")

    # 3. the evaluation report of the validation images
    report = clf.evaluate(data / "valid")
    print(report)
    print(f"validation accuracy {report.accuracy:.3f}")

    # 4. save and load by name
    clf.save(args.out / "custom_backbone.bv")
    loaded = ImageBinaryClassifier.load(args.out / "custom_backbone.bv")
    same = np.allclose(
        loaded.predict_proba(data / "valid"), clf.predict_proba(data / "valid"), atol=1e-6
    )
    print(f"reloaded backbone {loaded.backbone!r}; predictions agree: {same}")
    print(f"model in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
