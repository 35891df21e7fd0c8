"""The ``binaryvision`` command: a second front over the estimator, like the classifier module.

``binaryvision fit|predict|evaluate|lr-find|plot|info``; see ``binaryvision --help``.
"""

from ._main import build_parser, find_prediction_images, main

__all__ = ["build_parser", "find_prediction_images", "main"]
