"""Adapters over torchvision's classification models and its weights API.

The pretrained weights are downloaded by torch hub into ``$TORCH_HOME/hub/checkpoints``
on a machine with internet, and read from there afterwards (offline included). A local
state dict can be passed as ``weights=`` instead.
"""

from __future__ import annotations

import os
import urllib.error
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from ..exceptions import WeightsNotFoundError
from ._base import Backbone, DataConfig, load_weights, split_into_groups
from ._registry import register_backbone

__all__ = ["TorchvisionBackbone", "download_weights"]


def download_weights(url: str, progress: bool = True) -> dict[str, torch.Tensor]:
    """Return the state dict at ``url``, from the torch hub cache or downloaded into it.

    Raises
    ------
    WeightsNotFoundError
        The file is not cached and cannot be downloaded; the message says where to put it.
    """
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    file_name = os.path.basename(urlparse(url).path)
    try:
        return torch.hub.load_state_dict_from_url(
            url,
            model_dir=str(cache_dir),
            map_location="cpu",
            progress=progress,
            check_hash=True,
            weights_only=True,  # a weights file never runs code
        )
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise WeightsNotFoundError(
            f"Could not get pretrained weights from {url} ({exc.__class__.__name__}: {exc}). "
            f"On a machine without internet, download that file elsewhere and copy it to "
            f"{cache_dir / file_name}, or pass weights='path/to/{file_name}', or use "
            "pretrained=False."
        ) from exc


class TorchvisionBackbone(Backbone):
    """A torchvision classification model with its classifier removed.

    Parameters
    ----------
    features : torch.nn.Module
        Maps images to a feature map or to pooled features.
    units : list of torch.nn.Module
        The feature extractor's stages in input order, split into layer groups.
    num_features : int
        Width of the pooled features.
    data_config : DataConfig
        Preprocessing taken from the weights' own transforms.
    """

    def __init__(
        self,
        features: nn.Module,
        units: list[nn.Module],
        num_features: int,
        data_config: DataConfig,
    ) -> None:
        super().__init__()
        self.features = features
        self._units = units
        self.num_features = num_features
        self.data_config = data_config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features ``(N, num_features)``."""
        out = self.features(x)
        return out.mean(dim=(2, 3)) if out.ndim == 4 else out.flatten(1)

    def layer_groups(self) -> list[list[nn.Module]]:
        """Three contiguous groups of stages."""
        return split_into_groups(self._units, 3)


def _data_config(weights_enum: torchvision.models.WeightsEnum) -> DataConfig:
    t = weights_enum.transforms()
    crop, resize = t.crop_size[0], t.resize_size[0]
    return DataConfig(
        input_size=crop,
        mean=tuple(t.mean),
        std=tuple(t.std),
        interpolation=t.interpolation.value,
        crop_pct=crop / resize,
    )


def _adapter(name: str, split: Callable[[nn.Module], tuple[nn.Module, list[nn.Module], int]]):
    def factory(pretrained: bool = True, weights: str | None = None) -> TorchvisionBackbone:
        weights_enum = torchvision.models.get_model_weights(name).DEFAULT
        model = torchvision.models.get_model(name, weights=None)
        if weights is not None:
            load_weights(model, weights)
        elif pretrained:
            model.load_state_dict(download_weights(weights_enum.url))
        features, units, num_features = split(model)
        backbone = TorchvisionBackbone(features, units, num_features, _data_config(weights_enum))
        backbone.pretrained = pretrained or weights is not None
        return backbone

    factory.__doc__ = (
        f"torchvision {name} with weights {weights_enum_name(name)} (downloaded once)."
    )
    return factory


def weights_enum_name(name: str) -> str:
    """Name of the default weights of a torchvision model, for docs and messages."""
    return str(torchvision.models.get_model_weights(name).DEFAULT)


def _resnet(model: nn.Module) -> tuple[nn.Module, list[nn.Module], int]:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    units = [stem, model.layer1, model.layer2, model.layer3, model.layer4]
    return nn.Sequential(*units), units, model.fc.in_features


def _features_attr(width: Callable[[nn.Module], int]):
    def split(model: nn.Module) -> tuple[nn.Module, list[nn.Module], int]:
        return model.features, list(model.features.children()), width(model)

    return split


for _name, _split in {
    "resnet18": _resnet,
    "resnet34": _resnet,
    "resnet50": _resnet,
    "mobilenet_v3_small": _features_attr(lambda m: m.classifier[0].in_features),
    "mobilenet_v3_large": _features_attr(lambda m: m.classifier[0].in_features),
    "efficientnet_b0": _features_attr(lambda m: m.classifier[1].in_features),
    "convnext_tiny": _features_attr(lambda m: m.classifier[2].in_features),
}.items():
    _factory = _adapter(_name, _split)
    register_backbone(_name, description=_factory.__doc__ or "")(_factory)
