"""binaryvision: binary image classification in three lines.

>>> from binaryvision import ImageBinaryClassifier
>>> clf = ImageBinaryClassifier().fit("data/dragons")          # doctest: +SKIP
>>> clf.predict_proba(["new.jpg"])                              # doctest: +SKIP
"""

from ._version import __version__
from .backbones import Backbone, DataConfig, create_backbone, list_backbones, register_backbone
from .classifier import ImageBinaryClassifier
from .data import load_image
from .decisions import Calibrator, ThresholdChoice
from .exceptions import (
    BinaryVisionError,
    BinaryVisionWarning,
    DataError,
    DataWarning,
    ImageDecodeError,
    InvalidParameterError,
    ModelFileError,
    NotFittedError,
    TrainingError,
    UnknownBackboneError,
    WeightsNotFoundError,
)
from .outputs.plots import (
    ConfidenceDisplay,
    ConfusionMatrixDisplay,
    PRCurveDisplay,
    ReliabilityDisplay,
    ROCCurveDisplay,
    ThresholdDisplay,
)
from .outputs.report import EvaluationReport
from .training import Callback, EarlyStopping, History, LRFindResult, Trainer, TrainState
from .transforms import Transforms, build_transforms

__all__ = [
    "Backbone",
    "BinaryVisionError",
    "BinaryVisionWarning",
    "Calibrator",
    "Callback",
    "ConfidenceDisplay",
    "ConfusionMatrixDisplay",
    "DataConfig",
    "DataError",
    "DataWarning",
    "EarlyStopping",
    "EvaluationReport",
    "History",
    "ImageBinaryClassifier",
    "ImageDecodeError",
    "InvalidParameterError",
    "LRFindResult",
    "ModelFileError",
    "NotFittedError",
    "PRCurveDisplay",
    "ROCCurveDisplay",
    "ReliabilityDisplay",
    "ThresholdChoice",
    "ThresholdDisplay",
    "Trainer",
    "TrainState",
    "TrainingError",
    "Transforms",
    "UnknownBackboneError",
    "WeightsNotFoundError",
    "__version__",
    "build_transforms",
    "create_backbone",
    "list_backbones",
    "load_image",
    "register_backbone",
]
