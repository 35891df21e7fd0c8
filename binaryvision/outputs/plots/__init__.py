"""Display objects (scikit-learn style): ``Display(...).plot(ax=)`` keeps ``figure_`` and ``ax_``."""

from ._displays import (
    ConfidenceDisplay,
    ConfusionMatrixDisplay,
    PRCurveDisplay,
    ReliabilityDisplay,
    ROCCurveDisplay,
    ThresholdDisplay,
)

__all__ = [
    "ConfidenceDisplay",
    "ConfusionMatrixDisplay",
    "PRCurveDisplay",
    "ROCCurveDisplay",
    "ReliabilityDisplay",
    "ThresholdDisplay",
]
