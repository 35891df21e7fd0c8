"""Feature extractors: a registry of named backbones plus the contract for your own.

>>> from binaryvision.backbones import list_backbones, create_backbone
>>> "efficientnet_lite0" in list_backbones()
True
>>> create_backbone("tiny_cnn").num_features
32
"""

from . import efficientnet_lite, tiny, torchvision_models  # noqa: F401  (register the families)
from ._base import Backbone, DataConfig, ModuleBackbone, split_into_groups
from ._registry import create_backbone, list_backbones, register_backbone

__all__ = [
    "Backbone",
    "DataConfig",
    "ModuleBackbone",
    "create_backbone",
    "list_backbones",
    "register_backbone",
    "split_into_groups",
]
