"""The public API is what binaryvision/__init__.py exports; this pins it."""

import binaryvision

EXPECTED = {
    "ThresholdDisplay",
    "ThresholdChoice",
    "ReliabilityDisplay",
    "ROCCurveDisplay",
    "PRCurveDisplay",
    "EvaluationReport",
    "DataWarning",
    "ConfusionMatrixDisplay",
    "Calibrator",
    "Backbone",
    "BinaryVisionError",
    "BinaryVisionWarning",
    "Callback",
    "ConfidenceDisplay",
    "DataConfig",
    "DataError",
    "EarlyStopping",
    "History",
    "ImageBinaryClassifier",
    "ImageDecodeError",
    "InvalidParameterError",
    "LRFindResult",
    "ModelFileError",
    "NotFittedError",
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
}


def test_all_is_pinned():
    assert set(binaryvision.__all__) == EXPECTED
    for name in binaryvision.__all__:
        assert getattr(binaryvision, name) is not None


def test_every_public_name_has_a_docstring():
    for name in binaryvision.__all__:
        if name != "__version__":
            assert getattr(binaryvision, name).__doc__, name


def test_errors_subclass_the_builtins_users_catch():
    assert issubclass(binaryvision.DataError, ValueError)
    assert issubclass(binaryvision.NotFittedError, AttributeError)
    assert issubclass(binaryvision.WeightsNotFoundError, FileNotFoundError)
    assert issubclass(binaryvision.UnknownBackboneError, KeyError)
    for name in ("DataError", "NotFittedError", "ModelFileError", "TrainingError"):
        assert issubclass(getattr(binaryvision, name), binaryvision.BinaryVisionError)
