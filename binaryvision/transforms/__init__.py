"""Stage 2, transforms: images to network inputs, from a backbone's data config.

Owns: :mod:`~binaryvision.transforms.config` (:class:`DataConfig`: size, normalisation,
crop), :mod:`~binaryvision.transforms.presets` (the evaluation transform and the
augmentation presets), :mod:`~binaryvision.transforms.tta` (test-time views) and
:mod:`~binaryvision.transforms.on_device` (images decoded once and augmented a batch at a
time on the device).

May import: :mod:`binaryvision.data`, :mod:`binaryvision.exceptions`.
"""

from .config import DataConfig
from .presets import AUGMENT_PRESETS, Transforms, build_transforms
from .tta import MAX_TTA_VIEWS, TTA_VIEWS, TTAView, tta_views

__all__ = [
    "AUGMENT_PRESETS",
    "MAX_TTA_VIEWS",
    "TTA_VIEWS",
    "DataConfig",
    "TTAView",
    "Transforms",
    "build_transforms",
    "tta_views",
]
