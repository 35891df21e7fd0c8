"""Errors and warnings raised by binaryvision.

Every error subclasses :class:`BinaryVisionError` *and* the built-in exception a
user would naturally catch, so ``except ValueError`` keeps working::

    BinaryVisionError(Exception)
    ├── InvalidParameterError(ValueError, TypeError)   a hyperparameter or argument is wrong
    ├── DataError(ValueError)                           the images or labels cannot be used
    │   └── ImageDecodeError                            one file cannot be read as an image
    ├── NotFittedError(sklearn's NotFittedError)        predict/score/save before fit
    ├── UnknownBackboneError(KeyError, ValueError)      a backbone name not in the registry
    ├── WeightsNotFoundError(FileNotFoundError)         pretrained weights missing offline
    ├── ModelFileError(ValueError)                      a model file is corrupt, foreign or too new
    └── TrainingError(RuntimeError)                     training diverged (non-finite loss)

    BinaryVisionWarning(UserWarning)
    └── DataWarning                                     data was usable but odd (skipped files, ...)

Messages follow one pattern: what was expected, what was found, and how to fix it.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "BinaryVisionError",
    "BinaryVisionWarning",
    "DataError",
    "DataWarning",
    "ImageDecodeError",
    "InvalidParameterError",
    "ModelFileError",
    "NotFittedError",
    "TrainingError",
    "UnknownBackboneError",
    "WeightsNotFoundError",
]


class BinaryVisionError(Exception):
    """Base class of every error raised on purpose by binaryvision."""


class InvalidParameterError(BinaryVisionError, ValueError, TypeError):
    """A hyperparameter or argument has a wrong type or value."""


class DataError(BinaryVisionError, ValueError):
    """The images or labels given cannot be used (wrong layout, wrong class count, ...)."""


class ImageDecodeError(DataError):
    """A single file could not be decoded as an image.

    Attributes
    ----------
    path : str or None
        The file that failed, when the image came from a file.
    reason : str
        Why it failed, in words.
    """

    def __init__(self, path: str | None, reason: str | None = None) -> None:
        if reason is None:
            # one argument: an already formatted message, which is how PyTorch re-raises an
            # error from a DataLoader worker process (it keeps the type this way)
            self.path, self.reason = None, str(path)
            super().__init__(str(path))
            return
        self.path = path
        self.reason = reason
        where = f"Cannot read image {path!r}" if path else "Cannot read an in-memory image"
        super().__init__(f"{where}: {reason}")


class NotFittedError(BinaryVisionError, _SklearnNotFittedError):
    """The classifier was used before :meth:`~binaryvision.ImageBinaryClassifier.fit`.

    Also a :class:`sklearn.exceptions.NotFittedError` (hence a ``ValueError`` and an
    ``AttributeError``), so scikit-learn tools and ``except`` clauses written for them
    recognise it.
    """


class UnknownBackboneError(BinaryVisionError, KeyError, ValueError):
    """A backbone name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(BinaryVisionError, FileNotFoundError):
    """Pretrained weights are neither installed nor downloadable."""


class ModelFileError(BinaryVisionError, ValueError):
    """A model file is truncated, corrupt, not a binaryvision file, or from a newer version."""


class TrainingError(BinaryVisionError, RuntimeError):
    """Training could not continue (for example the loss became NaN or infinite)."""


class BinaryVisionWarning(UserWarning):
    """Base class of the warnings binaryvision emits."""


class DataWarning(BinaryVisionWarning):
    """The data was usable but something about it deserves attention."""
