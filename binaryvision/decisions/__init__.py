"""Stage 6, decisions: from logits to calibrated probabilities, labels and prediction sets.

Owns: :mod:`~binaryvision.decisions.calibration` (temperature, Platt, isotonic),
:mod:`~binaryvision.decisions.thresholds` (the operating point),
:mod:`~binaryvision.decisions.conformal` (split-conformal sets) and
:mod:`~binaryvision.decisions.metrics` (ECE, Brier and the other numbers).

May import: :mod:`binaryvision.exceptions` only: decisions work on numbers, not images.
"""
