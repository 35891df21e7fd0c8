"""The ``binaryvision`` command: a second front over the estimator, like the classifier module.

``binaryvision fit|predict|evaluate|lr-find|plot|info``; see ``binaryvision --help``.
"""

from ._main import main
from .arguments import build_parser
from .commands import find_prediction_images

__all__ = ["build_parser", "find_prediction_images", "main"]
