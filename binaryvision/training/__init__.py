"""Stage 5, training: the network, the loop and the fitting phases.

Owns: :mod:`~binaryvision.training.model` (backbone + one-logit head),
:mod:`~binaryvision.training.trainer` (:class:`Trainer`: device, precision, workers, the
loop), with :mod:`~binaryvision.training.runtime` (how it resolves devices, precision,
workers and loaders) and :mod:`~binaryvision.training.inference` (the prediction pass),
:mod:`~binaryvision.training.callbacks`, :mod:`~binaryvision.training.checkpoint`
(resumable fits), :mod:`~binaryvision.training.lr_finder`,
:mod:`~binaryvision.training.phases` (the head on cached features, fine-tuning) and
:mod:`~binaryvision.training.fit` (one whole fit, in order).

May import: every earlier stage (data, transforms, backbones, features),
:mod:`binaryvision.distributed`, :mod:`binaryvision.persistence`,
:mod:`binaryvision.exceptions`.
"""

from .callbacks import Callback, EarlyStopping, History, TrainState
from .lr_finder import LRFindResult
from .model import BinaryModel
from .trainer import Trainer

__all__ = [
    "BinaryModel",
    "Callback",
    "EarlyStopping",
    "History",
    "LRFindResult",
    "TrainState",
    "Trainer",
]
