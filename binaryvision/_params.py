"""The classifier's hyperparameters: their checks, and what is built from them.

:class:`~binaryvision.ImageBinaryClassifier` inherits :class:`_ParamMethods`: the
validation of every constructor argument (run by ``fit``, as scikit-learn does, never by
``__init__``) and the builders the stages are handed: the seed, the backbone, the
transforms, the trainer, the loss weight and the feature pass. The parameters themselves
and their documentation are on the class, in :mod:`binaryvision.classifier`.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .backbones import Backbone, ModuleBackbone, create_backbone
from .data.bad_images import scan_reasons
from .decisions import CALIBRATION_CHOICES, check_threshold_rule
from .exceptions import InvalidParameterError
from .features.cache import shared_cache
from .features.extract import FeatureExtractor, make_extractor
from .training.trainer import Trainer
from .transforms import AUGMENT_PRESETS, DataConfig, Transforms, build_transforms

__all__: list[str] = []


class _ParamMethods:
    """Checks of the hyperparameters and the builders made from them."""

    # ================================================================== validation
    def _check_params(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise InvalidParameterError(
                f"{type(self).__name__}({name}=...) must be {expected}; got {getattr(self, name)!r}."
            )

        def is_int(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        if not isinstance(self.backbone, (str, nn.Module)):
            fail("backbone", "a registered name (see list_backbones()) or a torch.nn.Module")
        if not (isinstance(self.transforms, Transforms) or self.transforms in AUGMENT_PRESETS):
            fail("transforms", f"one of {AUGMENT_PRESETS} or a Transforms object")
        for name in ("epochs", "fine_tune_epochs"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "an int >= 0")
        if self.epochs == 0 and self.fine_tune_epochs == 0:
            fail("epochs", "> 0 when fine_tune_epochs is 0 (nothing would be trained)")
        if self.lr != "auto" and not (isinstance(self.lr, numbers.Real) and 0 < self.lr < 100):
            fail("lr", "'auto' or a float in (0, 100)")
        if self.fine_tune_lr is not None and not (
            isinstance(self.fine_tune_lr, numbers.Real) and self.fine_tune_lr > 0
        ):
            fail("fine_tune_lr", "None or a float > 0")
        if self.image_size is not None and (not is_int(self.image_size) or self.image_size < 8):
            fail("image_size", "None or an int >= 8")
        if not is_int(self.batch_size) or self.batch_size < 1:
            fail("batch_size", "an int >= 1")
        for name, low, high in (
            ("weight_decay", 0, 10),
            ("dropout", 0, 0.99),
            ("layer_lr_ratio", 1e-6, 1),
            ("max_bad_fraction", 0, 1),
        ):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not low <= value <= high:
                fail(name, f"a float in [{low}, {high}]")
        if (
            not isinstance(self.valid_size, numbers.Real)
            or self.valid_size < 0
            or (not is_int(self.valid_size) and self.valid_size >= 1)
        ):
            fail("valid_size", "a fraction in [0, 1) or an int count of images")
        if self.on_bad_image not in ("skip", "raise"):
            fail("on_bad_image", "'skip' or 'raise'")
        check_threshold_rule(self.threshold, f"{type(self).__name__}(threshold=...)")
        if self.calibration is not None and self.calibration not in CALIBRATION_CHOICES:
            fail("calibration", f"one of {CALIBRATION_CHOICES} or None")
        if self.class_weight is not None and self.class_weight != "balanced":
            weights = self.class_weight
            if not (
                isinstance(weights, Mapping)
                and len(weights) == 2
                and all(
                    isinstance(w, numbers.Real) and not isinstance(w, bool) and 0 < w < np.inf
                    for w in weights.values()
                )
            ):
                fail(
                    "class_weight", "None, 'balanced' or a dict {label: weight > 0} of both classes"
                )
        budget = self.time_budget
        if budget is not None and budget != "auto":
            if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or not budget > 0:
                fail("time_budget", "'auto', None (the frozen head alone) or seconds > 0")
        if self.cv is not None and (not is_int(self.cv) or self.cv < 2):
            fail("cv", "None or an int >= 2 (the number of cross-fitting folds)")
        if not is_int(self.patience) or self.patience < 1:
            fail("patience", "an int >= 1")
        if self.trainer is not None and not isinstance(self.trainer, Trainer):
            fail("trainer", "None or a binaryvision.Trainer")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, os.PathLike)):
            fail("cache_dir", "None or a folder path")
        if not is_int(self.verbose):
            fail("verbose", "an int (0 = silent)")

    # ================================================================== building blocks
    def _seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        if isinstance(rs, numbers.Integral):
            return int(rs)
        raise InvalidParameterError(
            f"{type(self).__name__}(random_state=...) must be None, an int or a "
            f"numpy.random.RandomState; got {rs!r}."
        )

    def _make_backbone(self) -> Backbone:
        if isinstance(self.backbone, str):
            weights = None if self.weights is None else os.fspath(self.weights)
            module = create_backbone(self.backbone, pretrained=self.pretrained, weights=weights)
        else:
            module = copy.deepcopy(self.backbone)  # the user's module is never trained in place
            if not isinstance(module, Backbone):
                module = ModuleBackbone(module, pretrained=self.pretrained)
        if self.image_size is not None:
            module.data_config = dataclasses.replace(module.data_config, input_size=self.image_size)
        return module

    def _make_transforms(self, config: DataConfig) -> Transforms:
        if isinstance(self.transforms, Transforms):
            return self.transforms
        return build_transforms(config, self.transforms)

    def _make_trainer(self) -> Trainer:
        trainer = copy.copy(self.trainer) if self.trainer is not None else Trainer()
        if self.verbose <= 0:
            trainer.progress = False
        return trainer

    @staticmethod
    def _match_class(value: Any, classes: np.ndarray, name: str) -> Any:
        """The element of ``classes`` equal to ``value`` (or to its str form)."""
        for c in classes:
            if c == value or str(c) == str(value):
                return c
        raise InvalidParameterError(
            f"{name} must be one of the classes {list(classes)}; got {value!r}."
        )

    def _pos_weight(
        self, y_train: torch.Tensor, classes: np.ndarray, positive: Any
    ) -> float | None:
        """``pos_weight`` of the loss from ``class_weight`` (None when unweighted)."""
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            n_pos = float(y_train.sum())
            return (len(y_train) - n_pos) / max(n_pos, 1.0)
        name = f"{type(self).__name__}(class_weight=...)"
        weights = {
            self._match_class(k, classes, f"{name} key"): w for k, w in self.class_weight.items()
        }
        if len(weights) != 2:
            raise InvalidParameterError(
                f"{name} must give a weight to both classes {list(classes)}; got "
                f"{self.class_weight!r}."
            )
        pos = 0 if classes[0] == positive or str(classes[0]) == str(positive) else 1
        return float(weights[classes[pos]]) / float(weights[classes[1 - pos]])

    def _feature_pass(self) -> FeatureExtractor:
        """The fitted backbone's feature pass (its key hashed once after :meth:`load`)."""
        if self._extractor is None:
            sizes = getattr(self.model_, "extra_sizes", ())
            self._extractor = make_extractor(
                self.model_.backbone, self.transforms_, self.cache_dir, sizes
            )
        return self._extractor

    def _scan(self, items: list, probe: Any = None) -> list[str]:
        """Why each item cannot be used ("" if it can), decoded once per image content."""
        workers = 0 if probe is not None else self._make_trainer().resolved_workers()
        return scan_reasons(items, shared_cache().scan_reasons, probe, workers)
