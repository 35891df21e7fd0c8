"""Stage 4, features: the frozen backbone's pass over images, and the feature cache.

Owns: :mod:`~binaryvision.features.cache` (features by image content, backbone weights and
preprocessing, in memory and on disk) and :mod:`~binaryvision.features.extract` (the
fused backbone run over images, cached; the same pass flags unreadable files).

May import: :mod:`binaryvision.data`, :mod:`binaryvision.transforms`,
:mod:`binaryvision.backbones`, :mod:`binaryvision.distributed`,
:mod:`binaryvision.persistence`, :mod:`binaryvision.exceptions`. It runs the work through
the :class:`~binaryvision.Trainer` it is handed, without importing :mod:`binaryvision.training`.
"""
