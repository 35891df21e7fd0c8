"""Display objects (scikit-learn style): ``Display(...).plot(ax=)`` keeps ``figure_`` and ``ax_``.

Display objects draw what a fitted classifier does (headless, never ``plt.show``).
Figures are built with :class:`matplotlib.figure.Figure` directly, so no pyplot state,
backend or window is involved: save them with ``display.figure_.savefig("out.png")``.

Like scikit-learn's ``*Display`` objects, each display stores its data in ``__init__``,
draws with :meth:`plot` (returning ``self`` with ``figure_`` and ``ax_`` set) and has a
``from_predictions`` class method that does both. ``y_true`` holds 0/1 labels, where 1
is the positive class ``classes[1]``, and ``y_prob`` the probability of ``classes[1]``.

Owns: :mod:`~binaryvision.outputs.plots.confidence` (image grids),
:mod:`~binaryvision.outputs.plots.reliability` (the reliability diagram),
:mod:`~binaryvision.outputs.plots.curves` (ROC, precision-recall, metrics against the
threshold), :mod:`~binaryvision.outputs.plots.confusion` (the confusion matrix) and
:mod:`~binaryvision.outputs.plots._common` (the checks and helpers they share).
"""

from .confidence import ConfidenceDisplay
from .confusion import ConfusionMatrixDisplay
from .curves import PRCurveDisplay, ROCCurveDisplay, ThresholdDisplay
from .reliability import ReliabilityDisplay

__all__ = [
    "ConfidenceDisplay",
    "ConfusionMatrixDisplay",
    "PRCurveDisplay",
    "ROCCurveDisplay",
    "ReliabilityDisplay",
    "ThresholdDisplay",
]
