"""Deploy without binaryvision: ONNX and TorchScript files that give ``predict_proba``'s numbers.

The public home of :mod:`binaryvision.outputs.export`, where the code lives:
:func:`preprocess` builds the exported graph's exact input (:func:`graph_inputs`
every input, by name, for a multi-resolution model's graph), :func:`read_export_metadata`
reads the JSON stored in the file, and :meth:`ImageBinaryClassifier.export
<binaryvision.ImageBinaryClassifier.export>` writes it.
"""

# the public names are the implementation module's __all__, listed once, there
from .outputs.export import *  # noqa: F403
from .outputs.export import __all__  # noqa: F401
