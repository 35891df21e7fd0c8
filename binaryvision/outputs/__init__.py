"""Stage 7, outputs: what a fitted model gives back to people and to other programs.

Owns: :mod:`~binaryvision.outputs.report` (the evaluation report),
:mod:`~binaryvision.outputs.plots` (Display objects), :mod:`~binaryvision.outputs.model_file`
(saving and loading ``.bv`` files) and :mod:`~binaryvision.outputs.export` (ONNX and
TorchScript).

May import: every earlier stage. Never the estimator: what it needs of a fitted
classifier it reads from the object it is handed.
"""
