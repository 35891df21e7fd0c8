"""ImageBinaryClassifier: from a folder of photos to a trained, saved binary classifier."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import numbers
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from . import _version, distributed
from .backbones import Backbone, DataConfig, ModuleBackbone, create_backbone
from .backbones.fuse import fuse_for_inference
from .data import (
    ImageDataset,
    ImageSet,
    as_image_set,
    check_two_classes,
    load_image,
    scan_images,
    split_fit_data,
)
from .data.identity import content_key
from .decisions.calibration import (
    CALIBRATION_METHODS,
    Calibrator,
    conformal_quantile,
    conformal_scores,
    prediction_sets,
    sigmoid,
)
from .decisions.metrics import (
    EvaluationReport,
    ThresholdChoice,
    brier_score,
    check_threshold_rule,
    choose_threshold,
    expected_calibration_error,
)
from .exceptions import (
    BinaryVisionWarning,
    DataError,
    DataWarning,
    ImageDecodeError,
    InvalidParameterError,
    ModelFileError,
    NotFittedError,
)
from .features.cache import model_key, shared_cache
from .outputs.model_file import _plain
from .training.callbacks import EarlyStopping, History
from .training.checkpoint import Checkpointer, fingerprint
from .training.lr_finder import SUGGESTERS, LRFindResult, lr_range_test
from .training.model import BinaryModel, _Head
from .training.trainer import Trainer
from .transforms import AUGMENT_PRESETS, Transforms, TTAView, build_transforms, tta_views
from .transforms import on_device as device_data

__all__ = ["ImageBinaryClassifier"]


class ImageBinaryClassifier(ClassifierMixin, BaseEstimator):
    """A binary image classifier on a pretrained CNN, with the scikit-learn API.

    Training has two phases, as in fastai's transfer-learning recipe. First the backbone
    is frozen: every image is decoded and run through it once, and a one-logit head is
    trained on those cached features (fast, even on a laptop CPU). Then, if
    ``fine_tune_epochs > 0``, the whole network is unfrozen and trained on augmented
    images with discriminative learning rates per layer group and a one-cycle schedule.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="efficientnet_lite0"
        A name from :func:`~binaryvision.list_backbones`, a
        :class:`~binaryvision.backbones.Backbone`, or any ``nn.Module`` mapping images to
        features (wrapped in :class:`~binaryvision.backbones.ModuleBackbone`).
    pretrained : bool, default=True
        Start from pretrained weights (the default backbone's ImageNet weights come with
        the package and work offline).
    weights : str or path, optional
        A local state-dict file to load into the backbone instead of its default weights.
    transforms : {"none", "light", "standard"} or Transforms, default="standard"
        Train-time augmentation preset used while fine-tuning, or a
        :class:`~binaryvision.transforms.Transforms` pair for full control. Sizes and
        normalisation always come from the backbone's data config.
    image_size : int, optional
        Side of the square network input in pixels; default: the backbone's
        ``data_config.input_size`` (256 for EfficientNet-Lite0).
    epochs : int, default=10
        Maximum epochs of the head on frozen features.
    lr : float or "auto", default=0.01
        Peak learning rate of the head (one-cycle schedule). ``"auto"`` runs
        :meth:`lr_find` inside :meth:`fit` and uses its suggestion.
    batch_size : int, default=64
        Mini-batch size for training.
    weight_decay : float, default=0.01
        AdamW weight decay.
    dropout : float, default=0.2
        Dropout before the head's linear layer.
    fine_tune_epochs : int, default=0
        Epochs of training the unfrozen network on augmented images after the head phase.
    fine_tune_lr : float, optional
        Peak learning rate of the head while fine-tuning; default ``lr / 10``.
    layer_lr_ratio : float, default=0.01
        Learning rate of the earliest layer group divided by the head's; the groups in
        between are spaced geometrically (discriminative learning rates).
    valid_size : float or int, default=0.2
        Fraction (or count) of the training images held out, stratified, for validation
        when the data has no ``valid/`` folder. ``0`` disables validation (and early
        stopping).
    early_stopping : bool, default=True
        Stop when the validation loss has not improved for ``patience`` epochs and restore
        the best weights.
    patience : int, default=3
        Epochs without improvement before early stopping.
    threshold : float, str or dict, default=0.5
        The operating point: :meth:`predict` answers ``positive_class`` when its
        calibrated probability is at least ``threshold_``. A float is used as it is; a
        rule is tuned on the validation images after training: ``"f1"`` (balance
        precision and recall), ``"youden"`` (maximise sensitivity + specificity, fair to
        both classes), ``{"precision": 0.95}`` (the lowest threshold whose precision
        reaches the target: as many positives found as that precision allows),
        ``{"recall": 0.9}`` (the highest threshold that still finds 90% of positives) or
        ``{"fp_cost": 1, "fn_cost": 5}`` (minimise the total cost of mistakes). When a
        target cannot be reached a :class:`~binaryvision.BinaryVisionWarning` says so and
        ``threshold_choice_.message`` explains. See :mod:`binaryvision.metrics`.
    calibration : {"temperature", "platt", "isotonic"} or None, default="temperature"
        How the validation images calibrate the probabilities after training (see
        :mod:`binaryvision.calibration`): one temperature (safe default), Platt scaling
        (also corrects a shifted base rate) or isotonic regression (needs hundreds of
        validation images). ``None`` keeps the raw sigmoid. Needs validation images:
        with ``valid_size=0`` nothing is calibrated.
    positive_class : label, optional
        The class whose probability the threshold, precision, recall and the logit refer
        to; default ``classes_[1]`` (the second in sorted order). ``predict_proba``
        columns stay in ``classes_`` order whatever this is.
    class_weight : "balanced", dict or None, default=None
        Weight the loss by class: ``"balanced"`` weights each class inversely to its
        frequency in the training split (a ``pos_weight`` of ``n_negative / n_positive``
        in the loss), so a rare class is not ignored; a dict maps each of the two labels
        to its weight. Use it when one class is much rarer, then read balanced accuracy
        and PR-AUC (see :meth:`evaluate`).
    on_bad_image : {"skip", "raise"}, default="skip"
        What :meth:`fit` does with files that cannot be used as images (truncated,
        empty, not an image, refused size). Every image is decoded once before training;
        ``"skip"`` leaves the bad ones out, lists them in ``fit_report_`` and warns once
        (a :class:`~binaryvision.exceptions.DataWarning`); ``"raise"`` raises
        :class:`~binaryvision.ImageDecodeError` naming the first one.
    max_bad_fraction : float, default=0.01
        With ``on_bad_image="skip"``, more unreadable files than this fraction raises a
        :class:`~binaryvision.DataError` instead: that many broken files usually means
        the wrong folder.
    cache_dir : str or path, optional
        Also keep the frozen-backbone features on disk, in this folder, so that later
        processes (another script, a notebook restart, cross-validation in worker
        processes) reuse them. Within a process they are always cached in memory and
        shared by every estimator, clones included. Features are keyed by a hash of the
        image bytes, the backbone's weights and the preprocessing, so a stale entry is
        never used. See :mod:`binaryvision.cache`.
    trainer : Trainer, optional
        Engineering settings (device, precision, workers, callbacks). Default
        ``Trainer()``: CUDA if available, else CPU.
    random_state : int, numpy.random.RandomState or None, default=None
        Seeds the validation split, shuffling, head initialisation and augmentation,
        through local generators only. An int makes CPU fits bitwise reproducible.
    verbose : int, default=1
        0 is silent; 1 shows progress bars (plain lines when not on a terminal).

    Attributes
    ----------
    classes_ : numpy.ndarray of shape (2,)
        The class labels, sorted: the column order of :meth:`predict_proba`.
    positive_class_ : label
        The positive class (``positive_class`` or ``classes_[1]``).
    model_ : BinaryModel
        The trained network (backbone and head), in eval mode, on the CPU.
    history_ : list of dict
        One entry per epoch: phase, epoch, train_loss, valid_loss, valid_accuracy, lr,
        seconds.
    threshold_ : float
        The decision threshold on the calibrated probability of ``positive_class_``,
        used by :meth:`predict` (tuned when ``threshold`` is a rule).
    threshold_choice_ : ThresholdChoice or None
        How ``threshold_`` was chosen: rule, whether a target was met, the value reached
        on the validation images, and a message. None without validation images.
    calibrator_ : Calibrator or None
        The fitted calibration map, applied by :meth:`predict_proba`.
    calibration_report_ : dict or None
        On the validation images: ``n_images``, ``method``, ``ece_before``,
        ``ece_after``, ``brier_before``, ``brier_after`` (ECE with 15 equal-width bins).
        Measured on the images the calibrator was fitted on, so optimistic: evaluate on
        other images with :meth:`evaluate`.
    conformal_scores_ : numpy.ndarray or None
        Sorted nonconformity scores of the validation images, used by
        :meth:`predict_set`.
    class_counts_ : dict
        Number of training images per class (training split only).
    fit_report_ : dict
        What :meth:`fit` found: ``n_found`` images, ``n_used``, ``skipped`` (a list of
        ``{"path", "reason"}`` for unreadable files) and ``ignored`` (hidden entries such
        as ``.ipynb_checkpoints`` and ``.DS_Store``, and non-image files, never used as
        images or classes). User files are only read, never modified.
    lr_ : float
        The head learning rate actually used (differs from ``lr`` when it is ``"auto"``).
    data_config_ : DataConfig
        The preprocessing of the fitted model.
    backbone_name_ : str
        Registry name of the backbone, or ``"custom"``.

    Examples
    --------
    >>> from binaryvision import ImageBinaryClassifier
    >>> clf = ImageBinaryClassifier().fit("data/dragons")   # doctest: +SKIP
    >>> clf.predict_proba(["new.jpg"])                       # doctest: +SKIP
    array([[0.03, 0.97]])
    """

    def __init__(
        self,
        backbone: str | nn.Module = "efficientnet_lite0",
        *,
        pretrained: bool = True,
        weights: str | os.PathLike | None = None,
        transforms: str | Transforms = "standard",
        image_size: int | None = None,
        epochs: int = 10,
        lr: float | str = 0.01,
        batch_size: int = 64,
        weight_decay: float = 0.01,
        dropout: float = 0.2,
        fine_tune_epochs: int = 0,
        fine_tune_lr: float | None = None,
        layer_lr_ratio: float = 0.01,
        valid_size: float = 0.2,
        early_stopping: bool = True,
        patience: int = 3,
        threshold: float | str | dict = 0.5,
        calibration: str | None = "temperature",
        positive_class: Any = None,
        class_weight: str | dict | None = None,
        on_bad_image: str = "skip",
        max_bad_fraction: float = 0.01,
        cache_dir: str | os.PathLike | None = None,
        trainer: Trainer | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 1,
    ) -> None:
        self.backbone = backbone
        self.pretrained = pretrained
        self.weights = weights
        self.transforms = transforms
        self.image_size = image_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_lr = fine_tune_lr
        self.layer_lr_ratio = layer_lr_ratio
        self.valid_size = valid_size
        self.early_stopping = early_stopping
        self.patience = patience
        self.threshold = threshold
        self.calibration = calibration
        self.positive_class = positive_class
        self.class_weight = class_weight
        self.on_bad_image = on_bad_image
        self.max_bad_fraction = max_bad_fraction
        self.cache_dir = cache_dir
        self.trainer = trainer
        self.random_state = random_state
        self.verbose = verbose

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
        if self.calibration is not None and self.calibration not in CALIBRATION_METHODS:
            fail("calibration", f"one of {CALIBRATION_METHODS} or None")
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
        if not is_int(self.patience) or self.patience < 1:
            fail("patience", "an int >= 1")
        if self.trainer is not None and not isinstance(self.trainer, Trainer):
            fail("trainer", "None or a binaryvision.Trainer")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, os.PathLike)):
            fail("cache_dir", "None or a folder path")
        if not is_int(self.verbose):
            fail("verbose", "an int (0 = silent)")

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(...) first, or "
                f"{type(self).__name__}.load('model.bv')."
            )

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

    @staticmethod
    @contextlib.contextmanager
    def _local_rng(
        trainer: Trainer, seed: int, cpu_state: torch.Tensor | None = None
    ) -> Iterator[None]:
        """Seed torch's RNGs for a block and restore the caller's RNG state afterwards.

        ``cpu_state`` continues the CPU generator from a state saved in an earlier block.
        """
        device = trainer.resolved_device()
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            if cpu_state is not None:
                torch.set_rng_state(cpu_state)
            yield

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

    def _targets(self, labels: np.ndarray) -> np.ndarray:
        unknown = sorted({str(v) for v in labels.tolist()} - {str(c) for c in self.classes_})
        if unknown:
            raise InvalidParameterError(
                f"y holds labels {unknown} that are not among the fitted classes "
                f"{list(self.classes_)}."
            )
        return self._is_positive(labels).astype(np.float32)

    def _is_positive(self, labels: np.ndarray) -> np.ndarray:
        pos = self.positive_class_
        return np.array([v == pos or str(v) == str(pos) for v in labels.tolist()], dtype=bool)

    @staticmethod
    def _match_class(value: Any, classes: np.ndarray, name: str) -> Any:
        """The element of ``classes`` equal to ``value`` (or to its str form)."""
        for c in classes:
            if c == value or str(c) == str(value):
                return c
        raise InvalidParameterError(
            f"{name} must be one of the classes {list(classes)}; got {value!r}."
        )

    def _pos_weight(self, y_train: torch.Tensor) -> float | None:
        """``pos_weight`` of the loss from ``class_weight`` (None when unweighted)."""
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            n_pos = float(y_train.sum())
            return (len(y_train) - n_pos) / max(n_pos, 1.0)
        weights = {
            self._match_class(k, self.classes_, f"{type(self).__name__}(class_weight=...) key"): w
            for k, w in self.class_weight.items()
        }
        if len(weights) != 2:
            raise InvalidParameterError(
                f"{type(self).__name__}(class_weight=...) must give a weight to both classes "
                f"{list(self.classes_)}; got {self.class_weight!r}."
            )
        pos = self._pos_index()
        return float(weights[self.classes_[pos]]) / float(weights[self.classes_[1 - pos]])

    def _pos_index(self) -> int:
        """Column of ``positive_class_`` in ``classes_`` (and in :meth:`predict_proba`)."""
        return 0 if self._is_positive(self.classes_[:1])[0] else 1

    def _loss(self, trainer: Trainer) -> nn.Module:
        pos_weight = getattr(self, "_pos_weight_value", None)
        weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float32)
        return nn.BCEWithLogitsLoss(pos_weight=weight).to(trainer.resolved_device())

    # ------------------------------------------------------------------ feature cache
    def _features(
        self,
        backbone: Backbone,
        model_key: str,
        items: list,
        transforms: Transforms,
        trainer: Trainer,
        desc: str,
        view: str = "identity",
    ) -> torch.Tensor:
        """Backbone features of ``items`` (eval transform, then the TTA ``view``), cached."""
        cache = shared_cache()
        view_key = model_key if view == "identity" else f"{model_key}/{view}"
        keys = [(view_key, content_key(item)) for item in items]
        found = [cache.get(k, backbone.num_features, self.cache_dir) for k in keys]
        if distributed.active():  # one list everywhere: missing if missing on any process
            flags = torch.tensor([f is None for f in found], dtype=torch.float32)
            found = [None if m else f for f, m in zip(found, distributed.any_rows(flags))]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            mine = [missing[j] for j in distributed.shard(len(missing))]
            features, _ = self._run_backbone(
                backbone, model_key, [items[i] for i in mine], transforms, trainer, desc, view
            )
            if distributed.active():
                features = distributed.gather_rows(
                    features.reshape(len(mine), backbone.num_features), len(missing)
                )
            disk = self.cache_dir if distributed.is_main_process() else None
            for i, f in zip(missing, features):
                cache.put(keys[i], f, disk)
                found[i] = f
        if not items:
            return torch.empty(0, backbone.num_features)
        return torch.stack(found)

    def _run_backbone(
        self,
        backbone: Backbone,
        model_key: str,
        items: list,
        transforms: Transforms,
        trainer: Trainer,
        desc: str,
        view: str = "identity",
        flag_errors: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused backbone over ``items`` (decoded as for features): outputs and targets
        (NaN targets flag undecodable items when ``flag_errors``)."""
        dataset = ImageDataset(
            items,
            None,
            self._view_transform(transforms, view),
            min_size=transforms.decode_size,
            flag_errors=flag_errors,
        )
        loader = trainer.loader(
            dataset,
            trainer.resolved_inference_batch_size(),
            workers=trainer.resolved_workers(inference=True),
        )
        fast = self._fused_backbone(backbone, model_key)
        return trainer.predict_logits(fast, loader, desc=desc, with_targets=True)

    def _probe_features(
        self, backbone: Backbone, model_key: str, items: list, transforms: Transforms, trainer
    ) -> list[str]:
        """Compute (and cache) the features of ``items``; why each failed, "" if it did not.

        Feature extraction decodes every image anyway, so it doubles as the scan before
        training: a file that cannot be decoded gets a blank image and is flagged, then its
        reason is found by decoding it alone once more.
        """
        cache, dim = shared_cache(), backbone.num_features
        reasons, todo, keys = [""] * len(items), [], {}
        for i, item in enumerate(items):
            try:
                key = (model_key, content_key(item))
            except OSError as exc:  # vanished or unreadable file
                reasons[i] = f"the file cannot be read ({exc.strerror or exc})"
                continue
            if cache.get(key, dim, self.cache_dir) is None:
                todo.append(i)
                keys[i] = key
        if not todo:
            return reasons
        features, flags = self._run_backbone(
            backbone, model_key, [items[i] for i in todo], transforms, trainer, "features",
            flag_errors=True,
        )  # fmt: skip
        for j, i in enumerate(todo):
            if torch.isnan(flags[j]):
                try:
                    load_image(items[i], min_size=transforms.decode_size)
                except ImageDecodeError as exc:
                    reasons[i] = exc.reason
            else:
                cache.put(keys[i], features[j], self.cache_dir)
        return reasons

    @staticmethod
    def _view_transform(transforms: Transforms, view: str) -> Any:
        return transforms.eval if view == "identity" else TTAView(transforms.eval, view)

    def _fused_backbone(self, backbone: Backbone, model_key: str) -> nn.Module:
        fused = getattr(self, "_fused", None)
        if fused is None or fused[0] != model_key:
            self._fused = (model_key, fuse_for_inference(backbone))
        return self._fused[1]

    @staticmethod
    def _backbone_key(transforms: Transforms, backbone: Backbone) -> str:
        """Identifies frozen features: the backbone's weights and the eval preprocessing."""
        return model_key(backbone, f"{transforms.eval!r}|decode={transforms.decode_size}")

    # ================================================================== public API
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> ImageBinaryClassifier:
        """Train on images.

        Parameters
        ----------
        X : str, path, list or numpy.ndarray
            A folder ``PATH`` with ``train/<class>/`` and ``valid/<class>/`` subfolders
            (``valid`` is used for validation), a folder with one subfolder per class
            (a stratified ``valid_size`` split is held out), or a list of image paths /
            PIL images / a uint8 array ``(n, H, W, 3)`` together with ``y``.
        y : array-like, optional
            Labels for the list and array forms of ``X``; any two distinct values.
        checkpoint_dir : str or path, optional
            Folder for a training checkpoint (``checkpoint.bvckpt``), replaced atomically
            at the end of every epoch; see :mod:`binaryvision.checkpoint`.
        resume : bool, default=False
            Continue from the checkpoint in ``checkpoint_dir`` when there is one (finished
            phases are skipped; the running one continues after its last completed epoch).
            Without a checkpoint the fit starts from the beginning. Needs the same
            parameters, images and callbacks as the interrupted fit.

        Returns
        -------
        ImageBinaryClassifier
            ``self``, fitted.

        Raises
        ------
        DataError
            The data does not hold exactly two classes, is empty, or a file is not an image.
        """
        self._check_params()
        if resume and checkpoint_dir is None:
            raise InvalidParameterError(
                "fit(resume=True) needs checkpoint_dir=..., the folder the interrupted fit "
                "wrote its checkpoint to."
            )
        data = as_image_set(X, y, allow_seed_layout=True)
        if data.labels is None:
            raise InvalidParameterError(
                f"fit needs labels: X={data.source!r} is a flat list or folder of images and y "
                "is None. Put the images in one subfolder per class, or pass y."
            )
        check_two_classes(
            data.labels if data.valid is None else np.concatenate([data.labels, data.valid.labels]),
            data.source,
        )  # fail fast, before any decoding
        seed = self._seed()
        trainer = self._make_trainer()
        trainer.setup()  # joins the torchrun process group, if any
        with self._local_rng(trainer, seed):
            backbone = self._make_backbone()
            transforms = self._make_transforms(backbone.data_config)
            model_key = self._backbone_key(transforms, backbone)
            model = BinaryModel(backbone, self.dropout)
            backbone.eval().requires_grad_(False)
            rng_after_init = torch.get_rng_state()
        probe = None
        if self.epochs > 0 and not distributed.active():
            # the frozen features decode every image anyway: they double as the scan

            def probe(items: list) -> list[str]:
                return self._probe_features(backbone, model_key, items, transforms, trainer)

        data, fit_report = self._drop_bad_images(data, probe)
        all_labels = (
            data.labels if data.valid is None else np.concatenate([data.labels, data.valid.labels])
        )
        classes = check_two_classes(all_labels, data.source)
        if data.valid is not None:
            check_two_classes(data.valid.labels, data.valid.source)
        positive = self._match_class(
            classes[1] if self.positive_class is None else self.positive_class,
            classes,
            f"{type(self).__name__}(positive_class=...)",
        )
        train, valid = split_fit_data(data, self.valid_size, seed)
        if valid is None and not isinstance(self.threshold, numbers.Real):
            raise InvalidParameterError(
                f"{type(self).__name__}(threshold={self.threshold!r}) is tuned on validation "
                "images, and there are none (valid_size=0). Set valid_size > 0, add a valid/ "
                "folder, or use a float threshold."
            )
        for name in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, name)  # refitting forgets the previous fit
        self.classes_ = classes
        self.positive_class_ = positive
        self.fit_report_ = fit_report
        y_train = torch.from_numpy(self._targets(train.labels))
        y_valid = None if valid is None else torch.from_numpy(self._targets(valid.labels))
        self._check_balance(train.labels)
        self._pos_weight_value = self._pos_weight(y_train)
        history = History()
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = Checkpointer(
                checkpoint_dir, self._fit_fingerprint(train, valid, seed), resume
            )
        # both restored after; the RNG continues from where building the model left it
        with self._local_rng(trainer, seed, rng_after_init), trainer.determinism():
            lr = self.lr
            if self.epochs > 0:
                f_train = self._features(
                    backbone, model_key, train.items, transforms, trainer, "features (train)"
                )
                f_valid = (
                    None
                    if valid is None
                    else self._features(
                        backbone, model_key, valid.items, transforms, trainer, "features (valid)"
                    )
                )
                if lr == "auto" and checkpoint is not None and "lr" in checkpoint.extra:
                    lr = checkpoint.extra["lr"]  # the resumed fit uses the lr it found before
                if lr == "auto":
                    lr = self._head_range_test(model, f_train, y_train, trainer, seed).suggestion
                if checkpoint is not None:
                    checkpoint.extra["lr"] = float(lr)
                self._fit_head(
                    model,
                    f_train,
                    y_train,
                    f_valid,
                    y_valid,
                    float(lr),
                    trainer,
                    history,
                    seed,
                    checkpoint,
                )
                distributed.broadcast_module(model.head)  # bitwise equal on every process
            if self.fine_tune_epochs > 0:
                self._fine_tune(
                    model,
                    train,
                    y_train,
                    valid,
                    y_valid,
                    transforms,
                    trainer,
                    history,
                    seed,
                    float(lr if lr != "auto" else 1e-2),
                    checkpoint,
                )

        model.cpu().eval()
        self.model_ = model
        self.history_ = history.epochs
        self.lr_ = float(lr) if lr != "auto" else float("nan")
        self.data_config_ = backbone.data_config
        self.transforms_ = transforms
        self.backbone_name_ = self.backbone if isinstance(self.backbone, str) else "custom"
        self.n_train_ = len(train)
        self.n_valid_ = 0 if valid is None else len(valid)
        self._predict_key = (
            model_key if self.fine_tune_epochs == 0 else self._backbone_key(transforms, backbone)
        )
        self._calibrate(valid, y_valid)
        return self

    def _fit_fingerprint(self, train: ImageSet, valid: ImageSet | None, seed: int) -> str:
        """Identifies a fit for resuming: its parameters, seed and exact images and labels."""
        params = {  # how training runs (trainer, verbose) does not change the result
            k: v
            for k, v in self.get_params(deep=False).items()
            if k not in ("verbose", "trainer", "random_state")
        }
        images = [
            [content_key(item) for item in part.items] + [repr(v) for v in part.labels]
            for part in (train, valid)
            if part is not None
        ]
        return fingerprint({"params": params, "seed": seed, "images": images})

    def _scan(self, items: list, probe: Any = None) -> list[str]:
        """Decode every item once (cached); the reason each cannot be used, "" if it can.

        ``probe(items) -> reasons`` replaces the plain decoding pass (feature extraction
        that also reports failures).
        """
        cache = shared_cache().scan_reasons  # by image content, shared like the features
        keys: list = []
        for item in items:
            try:
                keys.append(content_key(item))
            except OSError:  # vanished or unreadable entry: let the scan say why
                keys.append(("uncached", id(item)))
        todo = [i for i, k in enumerate(keys) if k not in cache]
        if todo and probe is not None:
            for i, reason in zip(todo, probe([items[i] for i in todo])):
                cache[keys[i]] = reason
        elif todo:
            workers = self._make_trainer().resolved_workers()
            # decoded at reduced size (JPEG draft), as feature extraction will; under
            # torchrun each process scans its share and all get the same full answer
            mine = [todo[j] for j in distributed.shard(len(todo))]
            found = dict(scan_images([items[i] for i in mine], min_size=256, workers=workers))
            reasons = distributed.gather_lists([found.get(j, "") for j in range(len(mine))])
            for i, reason in zip(todo, reasons):
                cache[keys[i]] = reason
        return [cache[k] for k in keys]

    def _drop_bad_images(self, data: ImageSet, probe: Any = None) -> tuple[ImageSet, dict]:
        """Decode every image once; apply ``on_bad_image`` to the unreadable ones."""
        parts = [data] if data.valid is None else [data, data.valid]
        items = [item for part in parts for item in part.items]
        reasons = self._scan(items, probe)
        bad = [
            (os.fspath(item) if isinstance(item, (str, os.PathLike)) else None, i, r)
            for i, (item, r) in enumerate(zip(items, reasons))
            if r
        ]
        report = {
            "n_found": len(items),
            "n_used": len(items) - len(bad),
            "skipped": [
                {"path": path or f"<in-memory image #{i}>", "reason": r} for path, i, r in bad
            ],
            "ignored": [path for part in parts for path in part.ignored],
        }
        if not bad:
            return data, report
        if self.on_bad_image == "raise":
            path, _, reason = bad[0]
            raise ImageDecodeError(path, reason)
        listing = "; ".join(f"{e['path']}: {e['reason']}" for e in report["skipped"][:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        if len(bad) > self.max_bad_fraction * len(items):
            raise DataError(
                f"{len(bad)} of the {len(items)} images in {data.source!r} cannot be read "
                f"({100 * len(bad) / len(items):.1f}%, more than max_bad_fraction="
                f"{self.max_bad_fraction}). Is this the right folder? {listing}{more}. Raise "
                "max_bad_fraction to skip them anyway."
            )
        warnings.warn(
            f"Skipped {len(bad)} of {len(items)} images that cannot be read (listed in "
            f"fit_report_['skipped']): {listing}{more}.",
            DataWarning,
            stacklevel=3,
        )
        offset, kept = 0, []
        for part in parts:
            ok = [i for i in range(len(part)) if not reasons[offset + i]]
            offset += len(part)
            kept.append(part.subset(ok))
            kept[-1].source, kept[-1].ignored = part.source, part.ignored
        if len(kept) == 2:
            kept[0].valid = kept[1]
        return kept[0], report

    def _check_balance(self, labels: np.ndarray) -> None:
        """Record the class counts; warn when the minority class is tiny."""
        counts = {
            c: int(n) for c, n in zip(self.classes_, [(labels == c).sum() for c in self.classes_])
        }
        self.class_counts_ = {(c.item() if hasattr(c, "item") else c): n for c, n in counts.items()}
        minority = min(counts, key=counts.get)
        n_min, n = counts[minority], sum(counts.values())
        if n_min < 0.05 * n or (n_min < 5 and n_min < 0.3 * n):
            hint = (
                ""
                if self.class_weight is not None
                else " Consider class_weight='balanced', and read balanced accuracy and PR-AUC."
            )
            warnings.warn(
                f"Only {n_min} of the {n} training images are {minority!r} "
                f"({100 * n_min / n:.1f}%): the model may learn to ignore that class, and "
                f"its metrics will be noisy. Add images of {minority!r} if you can.{hint}",
                DataWarning,
                stacklevel=3,
            )
        elif n_min < 5:
            warnings.warn(
                f"Only {n_min} training images of {minority!r} ({n} in all): too few for a "
                "reliable model or reliable metrics. Aim for at least 20 images per class.",
                DataWarning,
                stacklevel=3,
            )

    def _calibrate(self, valid: ImageSet | None, y_valid: torch.Tensor | None) -> None:
        """Fit the calibrator, tune the threshold and keep conformal scores (validation images)."""
        self.calibrator_ = None
        self.calibration_report_ = None
        self.conformal_scores_ = None
        self.threshold_choice_ = None
        self.threshold_ = float(self.threshold) if isinstance(self.threshold, numbers.Real) else 0.5
        if valid is None:
            return
        z = self._raw_logits(valid.items)[0]
        y = y_valid.numpy().astype(int)
        if self.calibration is not None and len(np.unique(y)) == 2:
            self.calibrator_ = Calibrator(self.calibration).fit(z, y)
        raw, p = sigmoid(z), self._calibrated(z)
        self.calibration_report_ = {
            "n_images": len(y),
            "method": None if self.calibrator_ is None else self.calibration,
            "ece_before": expected_calibration_error(y, raw),
            "ece_after": expected_calibration_error(y, p),
            "brier_before": brier_score(y, raw),
            "brier_after": brier_score(y, p),
        }
        choice = choose_threshold(y, p, self.threshold)
        if not choice.met:
            warnings.warn(
                BinaryVisionWarning(f"threshold={self.threshold!r}: {choice.message}"), stacklevel=3
            )
        self.threshold_choice_ = choice
        self.threshold_ = choice.threshold
        self.conformal_scores_ = conformal_scores(y, p)

    def _head_loaders(self, f_train, y_train, f_valid, y_valid, trainer, seed):
        generator = torch.Generator().manual_seed(seed)
        batch_size = min(self.batch_size, len(f_train))
        train_loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(f_train, y_train),
            batch_size=batch_size,
            shuffle=True,
            generator=generator,
            drop_last=len(f_train) > batch_size,
        )
        valid_loader = (
            None
            if f_valid is None
            else torch.utils.data.DataLoader(
                torch.utils.data.TensorDataset(f_valid, y_valid), batch_size=512
            )
        )
        return train_loader, valid_loader

    def _phase_callbacks(self, history: History, valid_loader: Any) -> list:
        """History always; early stopping first (it restores weights) when there is validation."""
        if self.early_stopping and valid_loader is not None:
            return [EarlyStopping("valid_loss", patience=self.patience), history]
        return [history]

    def _fit_head(
        self, model, f_train, y_train, f_valid, y_valid, lr, trainer, history, seed, checkpoint=None
    ):
        head = _Head(model.head)
        train_loader, valid_loader = self._head_loaders(
            f_train, y_train, f_valid, y_valid, trainer, seed
        )
        optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=self.epochs * len(train_loader)
        )
        callbacks = self._phase_callbacks(history, valid_loader)
        trainer.fit(
            head,
            train_loader,
            valid_loader,
            optimizer,
            scheduler,
            self.epochs,
            self._loss(trainer),
            phase="head",
            callbacks=callbacks,
            checkpoint=checkpoint,
        )

    def _head_range_test(self, model, f_train, y_train, trainer, seed, **kwargs) -> LRFindResult:
        head = _Head(model.head)
        loader, _ = self._head_loaders(f_train, y_train, None, None, trainer, seed)
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=self.weight_decay)
        return lr_range_test(trainer, head, loader, optimizer, nn.BCEWithLogitsLoss(), **kwargs)

    def _fine_tune_parts(self, model, train, y_train, transforms, trainer, seed, lr, shard=False):
        backbone = model.backbone
        backbone.requires_grad_(True)
        groups = [*backbone.layer_groups(), [model.head]]
        head_lr = float(self.fine_tune_lr or lr / 10)
        n = len(groups)
        lrs = [head_lr * self.layer_lr_ratio ** ((n - 1 - i) / max(n - 1, 1)) for i in range(n)]
        param_groups = [
            {"params": [p for m in g for p in m.parameters()], "lr": lr_i}
            for g, lr_i in zip(groups, lrs)
        ]
        optimizer = torch.optim.AdamW(param_groups, lr=head_lr, weight_decay=self.weight_decay)
        batch_size = min(self.batch_size, len(train))
        generator = torch.Generator().manual_seed(seed + 1)
        # drop_last avoids a trailing batch of one image, which batch norm cannot train on
        drop_last = len(train) > batch_size
        shard_seed = seed + 1 if shard else None
        preset = self._device_preset(trainer, len(train), backbone.data_config)
        if preset is None:
            dataset = ImageDataset(train.items, y_train.numpy(), transforms.train)
            loader = trainer.loader(
                dataset,
                batch_size,
                shuffle=True,
                generator=generator,
                drop_last=drop_last,
                shard_seed=shard_seed,
            )
        else:
            sampler, batch_size = trainer.shard(range(len(train)), batch_size, True, shard_seed)
            loader = device_data.DeviceLoader(
                device_data.store_images(train.items, backbone.data_config, preset, trainer),
                y_train.numpy(),
                backbone.data_config,
                preset,
                batch_size,
                shuffle=True,
                generator=generator,
                drop_last=drop_last,
                sampler=sampler,
            )
        return optimizer, loader, lrs

    def _device_preset(self, trainer: Trainer, n_images: int, config: Any) -> str | None:
        """The augmentation preset to fine-tune with from images kept on the device, or
        None for the DataLoader path (``Trainer(data_on_device=...)``)."""
        if not isinstance(self.transforms, str):
            if trainer.data_on_device is True:
                raise InvalidParameterError(
                    "Trainer(data_on_device=True) augments on the device with the "
                    f"transforms presets {AUGMENT_PRESETS}; this classifier has its own "
                    "Transforms. Use Trainer(data_on_device=False) (or 'auto') with them."
                )
            return None
        n_bytes = device_data.stored_bytes(n_images, config, self.transforms)
        return self.transforms if trainer.resolved_data_on_device(n_bytes) else None

    def _fine_tune(
        self,
        model,
        train,
        y_train,
        valid,
        y_valid,
        transforms,
        trainer,
        history,
        seed,
        lr,
        checkpoint=None,
    ):
        optimizer, loader, lrs = self._fine_tune_parts(
            model, train, y_train, transforms, trainer, seed, lr, shard=True
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lrs, total_steps=self.fine_tune_epochs * len(loader)
        )
        valid_loader = None
        if valid is not None and isinstance(loader, device_data.DeviceLoader):
            valid_loader = device_data.DeviceLoader(
                device_data.store_images(valid.items, loader.config, "none", trainer),
                y_valid.numpy(),
                loader.config,
                "none",
                trainer.resolved_inference_batch_size(),
            )
        elif valid is not None:
            valid_loader = trainer.loader(
                ImageDataset(
                    valid.items, y_valid.numpy(), transforms.eval, min_size=transforms.decode_size
                ),
                trainer.resolved_inference_batch_size(),
                workers=trainer.resolved_workers(inference=True),
            )
        callbacks = self._phase_callbacks(history, valid_loader)
        trainer.fit(
            model,
            loader,
            valid_loader,
            optimizer,
            scheduler,
            self.fine_tune_epochs,
            self._loss(trainer),
            phase="fine_tune",
            callbacks=callbacks,
            checkpoint=checkpoint,
        )
        model.backbone.requires_grad_(False)

    def lr_find(
        self,
        X: Any,
        y: Any = None,
        *,
        stage: str = "head",
        start_lr: float = 1e-5,
        end_lr: float = 10.0,
        num_steps: int = 100,
        method: str = "valley",
    ) -> LRFindResult:
        """Run the learning-rate range test and suggest a learning rate.

        The classifier's hyperparameters are left unchanged: apply the suggestion with
        ``clf.set_params(lr=result.suggestion)``. Weights, optimizer and random state are
        restored after the sweep; features computed here are reused by :meth:`fit`.

        Parameters
        ----------
        X, y
            Training data, as for :meth:`fit` (the validation part is not used).
        stage : {"head", "fine_tune"}
            Sweep the head on frozen features (the ``lr`` of :meth:`fit`) or the whole
            unfrozen network on augmented images (the ``fine_tune_lr``).
        start_lr, end_lr : float
            Bounds of the exponential sweep; the suggestion lies between them.
        num_steps : int
            Number of mini-batches tried.
        method : {"valley", "steep", "minimum"}
            Rule behind ``result.suggestion``; every rule's value is in
            ``result.suggestions``.

        Returns
        -------
        LRFindResult
            ``.lrs``, ``.losses``, ``.suggestion``, ``.suggestions`` and ``.plot(ax=None)``.
        """
        if stage not in ("head", "fine_tune"):
            raise InvalidParameterError(
                f"lr_find(stage=...) must be 'head' or 'fine_tune'; got {stage!r}."
            )
        if method not in SUGGESTERS:
            raise InvalidParameterError(
                f"lr_find(method=...) must be one of {sorted(SUGGESTERS)}; got {method!r}."
            )
        self._check_params()
        data = as_image_set(X, y, allow_seed_layout=True)
        if data.labels is None:
            raise InvalidParameterError("lr_find needs labelled data, as fit does.")
        classes = check_two_classes(data.labels, data.source)
        y_train = torch.from_numpy((data.labels == classes[1]).astype(np.float32))
        seed = self._seed()
        trainer = self._make_trainer()
        sweep = {"start_lr": start_lr, "end_lr": end_lr, "num_steps": num_steps, "method": method}
        with self._local_rng(trainer, seed):
            backbone = self._make_backbone()
            transforms = self._make_transforms(backbone.data_config)
            model = BinaryModel(backbone, self.dropout)
            backbone.eval().requires_grad_(False)
            if stage == "head":
                features = self._features(
                    backbone,
                    self._backbone_key(transforms, backbone),
                    data.items,
                    transforms,
                    trainer,
                    "features",
                )
                return self._head_range_test(model, features, y_train, trainer, seed, **sweep)
            optimizer, loader, _ = self._fine_tune_parts(
                model, data, y_train, transforms, trainer, seed, 1.0
            )
            return lr_range_test(trainer, model, loader, optimizer, nn.BCEWithLogitsLoss(), **sweep)

    def _prediction_key(self) -> str:
        """Feature-cache key of the fitted backbone (hashed once after :meth:`load`)."""
        if self._predict_key is None:
            self._predict_key = self._backbone_key(self.transforms_, self.model_.backbone)
        return self._predict_key

    def _raw_logits(self, items: list, tta: int = 0) -> np.ndarray:
        """Uncalibrated logits of ``positive_class_``, one row per TTA view: ``(views, n)``."""
        trainer = self._make_trainer()
        rows = []
        for view in tta_views(tta):
            desc = "features" if view == "identity" else f"features ({view})"
            features = self._features(
                self.model_.backbone,
                self._prediction_key(),
                items,
                self.transforms_,
                trainer,
                desc,
                view=view,
            )
            with torch.inference_mode():
                logits = _Head(self.model_.head).eval()(features)
            rows.append(logits.double().numpy().reshape(-1))
        return np.stack(rows)

    def _calibrated(self, logits: np.ndarray) -> np.ndarray:
        if getattr(self, "calibrator_", None) is None:
            return sigmoid(logits)
        return self.calibrator_.transform(logits)

    def _positive_proba(
        self, X: Any, tta: int = 0, on_bad_image: str = "raise"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated P(positive), its spread over TTA views, and the mean raw logit."""
        self._check_fitted()
        data = as_image_set(X)
        if on_bad_image not in ("raise", "nan"):
            raise InvalidParameterError(
                f"on_bad_image must be 'raise' or 'nan'; got {on_bad_image!r}."
            )
        if on_bad_image == "nan":
            backbone, key = self.model_.backbone, self._prediction_key()

            def probe(items: list) -> list[str]:  # the feature pass doubles as the check
                return self._probe_features(
                    backbone, key, items, self.transforms_, self._make_trainer()
                )

            reasons = self._scan(data.items, probe)
            good = [i for i, r in enumerate(reasons) if not r]
            if len(good) < len(reasons):
                bad = [
                    f"{data.items[i] if isinstance(data.items[i], (str, os.PathLike)) else f'<in-memory image #{i}>'}: {r}"
                    for i, r in enumerate(reasons)
                    if r
                ]
                more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
                warnings.warn(
                    f"{len(bad)} of {len(reasons)} images cannot be read; their rows are NaN: "
                    f"{'; '.join(bad[:3])}{more}.",
                    DataWarning,
                    stacklevel=3,
                )
            p, spread, mean = (np.full((len(reasons),), np.nan) for _ in range(3))
            if good:
                sub = self._positive_proba([data.items[i] for i in good], tta)
                for out, values in zip((p, spread, mean), sub):
                    out[good] = values
            return p, spread, mean
        logits = self._raw_logits(data.items, tta)
        mean = logits.mean(axis=0)
        spread = self._calibrated(logits).std(axis=0) if len(logits) > 1 else np.zeros_like(mean)
        return self._calibrated(mean), spread, mean

    def _columns(self, p_pos: np.ndarray) -> np.ndarray:
        """``(n, 2)`` probabilities in ``classes_`` order from P(positive)."""
        out = np.empty((len(p_pos), 2))
        pos = self._pos_index()
        out[:, pos], out[:, 1 - pos] = p_pos, 1.0 - p_pos
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """Uncalibrated logit of ``classes_[1]`` for each image, shape ``(n,)``.

        Follows scikit-learn: larger means more ``classes_[1]``, whatever
        ``positive_class`` is. Ranking metrics (ROC-AUC) can use it directly; for
        probabilities use :meth:`predict_proba`, which is calibrated.
        """
        self._check_fitted()
        logits = self._raw_logits(as_image_set(X).items)[0]
        return logits if self._pos_index() == 1 else -logits

    def predict_proba(
        self, X: Any, *, tta: int = 0, return_std: bool = False, on_bad_image: str = "raise"
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Calibrated class probabilities, shape ``(n, 2)``, columns in ``classes_`` order.

        Parameters
        ----------
        X : str, path, list or numpy.ndarray
            A folder (flat, or with class subfolders), one image path, a list of paths or
            PIL images, or a uint8 array ``(n, H, W, 3)``.
        tta : int, default=0
            Test-time augmentation: average the logits of this many deterministic views
            (identity, horizontal flip, central zoom, zoom + flip, four corner crops; see
            :data:`binaryvision.transforms.TTA_VIEWS`) before calibrating. 0 or 1: none.
            Costs one backbone pass per view.
        return_std : bool, default=False
            Also return, per image, the standard deviation of the calibrated
            positive-class probability across the views: an uncertainty signal (zero
            when ``tta <= 1``).
        on_bad_image : {"raise", "nan"}, default="raise"
            ``"raise"``: a file that cannot be read as an image raises
            :class:`~binaryvision.ImageDecodeError` naming it. ``"nan"``: its row is NaN,
            the other images are predicted, and one
            :class:`~binaryvision.exceptions.DataWarning` lists the unreadable files and
            why (the feature pass doubles as that check).

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, numpy.ndarray)
            Rows sum to 1 (NaN rows for unreadable images with ``on_bad_image="nan"``);
            with ``return_std``, also the spread of shape ``(n,)``.
        """
        p, spread, _ = self._positive_proba(X, tta, on_bad_image)
        proba = self._columns(p)
        return (proba, spread) if return_std else proba

    def predict(
        self,
        X: Any,
        *,
        tta: int = 0,
        coverage: float | None = None,
        uncertain_label: Any = "uncertain",
    ) -> np.ndarray:
        """Predicted label per image: ``positive_class_`` where its probability >= ``threshold_``.

        Parameters
        ----------
        X
            Images, as for :meth:`predict_proba`.
        tta : int, default=0
            Test-time views to average (see :meth:`predict_proba`).
        coverage : float, optional
            Abstain: images whose conformal prediction set at this coverage holds both
            labels (see :meth:`predict_set`) get ``uncertain_label`` instead of a class.
        uncertain_label : default="uncertain"
            The value returned for abstentions.

        Returns
        -------
        numpy.ndarray of shape (n,)
            Class labels (an object array holding ``uncertain_label`` too when
            ``coverage`` is given).
        """
        p, _, _ = self._positive_proba(X, tta)
        positive = p >= self.threshold_
        pos = self._pos_index()
        labels = self.classes_[np.where(positive, pos, 1 - pos)]
        if coverage is None:
            return labels
        labels = labels.astype(object)
        labels[self._prediction_sets(p, coverage).all(axis=1)] = uncertain_label
        return labels

    def _prediction_sets(self, p_pos: np.ndarray, coverage: float) -> np.ndarray:
        """Membership ``(n, 2)`` in ``classes_`` order."""
        if getattr(self, "conformal_scores_", None) is None:
            raise InvalidParameterError(
                "Prediction sets need validation images kept from fit, and this model has none "
                "(it was fitted with valid_size=0, or loaded from an older file). Refit with "
                "valid_size > 0 or a valid/ folder."
            )
        n = len(self.conformal_scores_)
        q = conformal_quantile(self.conformal_scores_, coverage)
        if not np.isfinite(q):
            # the smallest n whose conformal rank ceil((n + 1) * coverage) exists, computed
            # with the very formula conformal_quantile uses
            needed = next(k for k in range(1, 10**7) if math.ceil((k + 1) * coverage) <= k)
            warnings.warn(
                BinaryVisionWarning(
                    f"coverage={coverage} needs at least {needed} "
                    f"validation images and the model kept {n}: every prediction set holds both "
                    "labels. Lower coverage or fit with more validation images."
                ),
                stacklevel=3,
            )
        member = prediction_sets(p_pos, q)  # columns: negative, positive
        return member if self._pos_index() == 1 else member[:, ::-1]

    def predict_set(
        self, X: Any, coverage: float = 0.9, *, tta: int = 0, return_mask: bool = False
    ) -> list | np.ndarray:
        """Split-conformal prediction sets: the labels each image plausibly has.

        With probability at least ``coverage``, a new image's true label is in its set
        (marginally over images like the validation ones, which the model kept from
        :meth:`fit`; Vovk et al., Angelopoulos & Bates). A set with both labels means the
        model cannot tell at that coverage: abstain, or ask a person. Sets are never
        empty (the most probable label is always in). The guarantee is for ``tta=0``,
        the setting the validation scores were computed with.

        Parameters
        ----------
        X
            Images, as for :meth:`predict_proba`.
        coverage : float, default=0.9
            Target probability that the set holds the true label, in (0, 1). Higher
            coverage means more two-label sets.
        tta : int, default=0
            Test-time views to average.
        return_mask : bool, default=False
            Return a boolean ``(n, 2)`` membership array in ``classes_`` order instead
            of a list of sets.

        Returns
        -------
        list of set or numpy.ndarray
            ``[{"hotdog"}, {"hotdog", "not_hotdog"}, ...]`` or the mask.
        """
        p, _, _ = self._positive_proba(X, tta)
        member = self._prediction_sets(p, coverage)
        if return_mask:
            return member
        return [{c for c, m in zip(self.classes_.tolist(), row) if m} for row in member]

    def evaluate(
        self, X: Any, y: Any = None, *, tta: int = 0, coverage: float | None = None
    ) -> EvaluationReport:
        """Every binary metric on labelled images, in one report.

        Accuracy, balanced accuracy, precision, recall, F1, MCC, ROC-AUC, average
        precision (PR-AUC), log loss, Brier score, ECE (15 bins, before and after
        calibration), the confusion matrix at ``threshold_`` and, with ``coverage``, the
        number of abstentions. All computed by :mod:`sklearn.metrics`.

        Parameters
        ----------
        X, y
            Labelled images, as for :meth:`score`. Use images the model did not see in
            :meth:`fit` (neither for training nor as validation) for honest figures.
        tta : int, default=0
            Test-time views to average.
        coverage : float, optional
            Also count abstentions of conformal sets at this coverage.

        Returns
        -------
        EvaluationReport
            ``print(report)`` for a summary; ``report.to_dict()``; attributes per metric
            (``report.roc_auc``); ``report.plot_reliability()`` and the other plots.
        """
        self._check_fitted()
        data, labels = self._labelled(X, y)
        targets = self._targets(labels).astype(int)
        p, _, mean_logit = self._positive_proba(data.items, tta)
        pos = self._pos_index()
        abstained = None if coverage is None else self._prediction_sets(p, coverage).all(axis=1)
        return EvaluationReport(
            classes=[str(self.classes_[1 - pos]), str(self.classes_[pos])],
            y_true=targets,
            y_prob=p,
            threshold=self.threshold_,
            y_prob_uncalibrated=None if self.calibrator_ is None else sigmoid(mean_logit),
            abstained=abstained,
            coverage=coverage,
        )

    def _labelled(self, X: Any, y: Any) -> tuple[ImageSet, np.ndarray]:
        data = as_image_set(X, y)
        if data.labels is None:
            raise InvalidParameterError(
                "This needs labels: pass y, or X as a folder with one subfolder per class."
            )
        return data, data.labels

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy on ``X`` (labels from ``y`` or from ``X``'s class subfolders)."""
        from sklearn.metrics import accuracy_score

        self._check_fitted()
        data, labels = self._labelled(X, y)
        self._targets(labels)  # refuses labels outside classes_
        predicted = self.predict(data.items)
        return float(
            accuracy_score(labels.astype(str), predicted.astype(str), sample_weight=sample_weight)
        )

    def plot_confidence(
        self,
        X: Any,
        y: Any = None,
        *,
        n_images: int = 4,
        tta: int = 0,
        coverage: float | None = None,
        random_state: int | None = 0,
        ax: Any = None,
    ) -> Any:
        """Show where the model is confident, wrong or unsure.

        Draws the five views of the fastai tutorial (random correct, random incorrect,
        most confident correct per class, most confident wrong per class, most
        uncertain), each image titled with its probability of the positive class, plus a
        histogram of predicted probabilities per true class. With ``coverage``, a view of
        the images the model abstains on; with ``tta > 1``, titles show the spread across
        views and a view of the images with the largest spread.

        Parameters
        ----------
        X, y
            Labelled images, as for :meth:`score`.
        n_images : int
            Images per view.
        tta : int, default=0
            Test-time views to average (see :meth:`predict_proba`).
        coverage : float, optional
            Show the images whose conformal prediction set holds both labels.
        random_state : int, optional
            Seed for the two random views.
        ax : matplotlib.axes.Axes, optional
            Draw into this axes' area instead of a new figure.

        Returns
        -------
        ConfidenceDisplay
            With ``.figure_`` (a matplotlib Figure) and ``.plot(ax=None)``.
        """
        from .outputs.plots import ConfidenceDisplay

        self._check_fitted()
        data, labels = self._labelled(X, y)
        targets = self._targets(labels)
        p, spread, _ = self._positive_proba(data.items, tta)
        pos = self._pos_index()
        display = ConfidenceDisplay(
            items=data.items,
            probabilities=p,
            targets=targets.astype(int),
            classes=[str(self.classes_[1 - pos]), str(self.classes_[pos])],
            threshold=self.threshold_,
            n_images=n_images,
            random_state=random_state,
            abstained=None if coverage is None else self._prediction_sets(p, coverage).all(1),
            spread=spread if tta > 1 else None,
        )
        return display.plot(ax=ax)

    # ================================================================== persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one safetensors file (atomically).

        The file holds the weights and JSON metadata: classes, backbone, preprocessing,
        threshold, hyperparameters, library and torch versions, format version. It is
        read by :meth:`load` without unpickling anything. Under distributed training only
        process 0 writes; the others wait until the file is complete.
        """
        from .persistence import write_model_file

        self._check_fitted()
        params = {
            k: v
            for k, v in self.get_params().items()
            if isinstance(v, (str, int, float, bool, type(None), dict))
        }
        params.pop("trainer", None)
        meta = {
            "library_version": _version.__version__,
            "torch_version": torch.__version__,
            "backbone": self.backbone_name_,
            "classes": [_plain(c) for c in self.classes_],
            "threshold": self.threshold_,
            "positive_class": _plain(self.positive_class_),
            "calibration": None if self.calibrator_ is None else self.calibrator_.to_dict(),
            "calibration_report": self.calibration_report_,
            "conformal_scores": (
                None if self.conformal_scores_ is None else self.conformal_scores_.tolist()
            ),
            "threshold_choice": (
                None
                if self.threshold_choice_ is None
                else dataclasses.asdict(self.threshold_choice_)
            ),
            "class_counts": {str(k): v for k, v in self.class_counts_.items()},
            "data_config": self.data_config_.to_dict(),
            "params": params,
            "history": self.history_,
            "n_train": self.n_train_,
            "n_valid": self.n_valid_,
            "lr": self.lr_,
        }
        if distributed.is_main_process():
            write_model_file(path, self.model_.state_dict(), meta)
        distributed.barrier()

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, backbone: nn.Module | None = None
    ) -> ImageBinaryClassifier:
        """Load a model written by :meth:`save` (no pickle is ever read).

        Parameters
        ----------
        path : str or path
            The model file.
        backbone : torch.nn.Module, optional
            Required when the model was trained on a custom module: an instance of the same
            architecture (its weights are replaced by the saved ones).
        """
        from .persistence import read_model_file

        tensors, meta = read_model_file(path)
        if meta.get("kind") == "checkpoint":
            raise ModelFileError(
                f"{os.fspath(path)!r} is a training checkpoint, not a model. Pass its folder "
                "to fit(X, checkpoint_dir=..., resume=True) to finish training, then save."
            )
        missing = {"backbone", "classes", "threshold", "data_config"} - set(meta)
        if missing:
            raise ModelFileError(
                f"{os.fspath(path)!r} is not a complete binaryvision model: its metadata lacks "
                f"{sorted(missing)}."
            )
        params = dict(meta.get("params", {}))
        name = meta["backbone"]
        if name == "custom":
            if backbone is None:
                raise InvalidParameterError(
                    f"{os.fspath(path)!r} was trained on a custom backbone module; pass an instance "
                    "of the same architecture: ImageBinaryClassifier.load(path, backbone=module)."
                )
            params["backbone"] = backbone
        params.update(pretrained=False, weights=None)
        valid = cls._get_param_names()
        clf = cls(**{k: v for k, v in params.items() if k in valid})
        with torch.random.fork_rng(devices=[]):  # random init, overwritten: keep the caller's RNG
            module = clf._make_backbone()
            model = BinaryModel(module, float(params.get("dropout", 0.0)))
        module.data_config = DataConfig.from_dict(meta["data_config"])
        try:
            model.load_state_dict(tensors)
        except RuntimeError as exc:
            raise ModelFileError(
                f"{os.fspath(path)!r} does not match backbone {name!r}: {str(exc)[:300]}"
            ) from None
        model.eval().requires_grad_(False)
        clf.pretrained = bool(meta.get("params", {}).get("pretrained", True))
        clf.weights = meta.get("params", {}).get("weights")
        clf.model_ = model
        clf.classes_ = np.array(meta["classes"], dtype=object)
        clf.threshold_ = float(meta["threshold"])
        clf.positive_class_ = cls._match_class(
            meta.get("positive_class", clf.classes_[1]), clf.classes_, "positive_class"
        )
        calibration = meta.get("calibration")
        clf.calibrator_ = None if calibration is None else Calibrator.from_dict(calibration)
        clf.calibration_report_ = meta.get("calibration_report")
        scores = meta.get("conformal_scores")
        clf.conformal_scores_ = None if scores is None else np.asarray(scores, dtype=float)
        choice = meta.get("threshold_choice")
        clf.threshold_choice_ = None if choice is None else ThresholdChoice(**choice)
        clf.class_counts_ = dict(meta.get("class_counts", {}))
        clf.history_ = list(meta.get("history", []))
        clf.lr_ = float(meta.get("lr", float("nan")))
        clf.data_config_ = module.data_config
        clf.transforms_ = clf._make_transforms(module.data_config)
        clf.backbone_name_ = name
        clf.n_train_ = int(meta.get("n_train", 0))
        clf.n_valid_ = int(meta.get("n_valid", 0))
        clf._predict_key = None
        return clf

    def export(
        self,
        path: str | os.PathLike,
        format: str | None = None,
        *,
        opset: int = 17,
        verify: bool | None = None,
    ) -> Any:
        """Write the fitted network and its calibration as an ONNX or TorchScript model.

        The exported graph takes a float32 batch ``(N, 3, S, S)`` (RGB, ``S =
        data_config_.input_size``, any ``N``) that is already preprocessed exactly as
        :meth:`predict_proba` does it: decoded with :func:`binaryvision.load_image`
        ``(path, min_size=R)``, the shorter side resized to ``R = round(S / crop_pct)``
        (antialiased), centre-cropped to ``S``, scaled to ``[0, 1]`` and normalised with
        ``data_config_.mean`` and ``.std``. :func:`binaryvision.export.preprocess` does all
        of it. Its output ``probabilities`` is float32 ``(N, 2)`` in ``classes_`` order:
        the numbers ``predict_proba(X)`` returns (``tta=0``), calibration included
        (temperature, Platt and isotonic are all part of the graph). The preprocessing,
        classes, positive class, threshold, calibration and library version are stored in
        the file as JSON (ONNX ``metadata_props["binaryvision"]``; TorchScript extra file
        ``binaryvision.json``); read them with
        :func:`binaryvision.export.read_export_metadata`. The file is written atomically.

        Parameters
        ----------
        path : str or path
            Where to write. With ``format=None`` the suffix selects the format: ``.onnx``
            for ONNX; ``.pt``, ``.ts`` or ``.torchscript`` for TorchScript.
        format : {"onnx", "torchscript"}, optional
            The format, whatever the suffix of ``path``.
        opset : int, default=17
            ONNX opset version (ONNX only; at least 13).
        verify : bool, optional
            Before writing, run the exported model on random inputs (with another batch
            size than the one traced) and compare with PyTorch within 1e-4. None (default):
            whenever the runtime is installed (TorchScript always; ONNX with
            ``onnxruntime``). True: require it. False: skip.

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        NotFittedError
            Before :meth:`fit` or :meth:`load`.
        InvalidParameterError
            ``format`` is unknown, or ``path``'s suffix names no format and ``format`` is
            None.
        ImportError
            ONNX without the ``onnx`` package (``pip install "binaryvision[export]"``), or
            ``verify=True`` without ``onnxruntime``.
        binaryvision.export.ExportError
            The exported model does not reproduce this one; nothing is written.

        Examples
        --------
        >>> clf.export("model.onnx")                                   # doctest: +SKIP
        >>> import onnxruntime
        >>> from binaryvision.export import preprocess
        >>> session = onnxruntime.InferenceSession("model.onnx")       # doctest: +SKIP
        >>> session.run(None, {"images": preprocess(clf, ["a.jpg"])})[0]  # doctest: +SKIP
        array([[0.03, 0.97]], dtype=float32)
        >>> clf.export("model.pt")              # TorchScript: torch.jit.load("model.pt")
        ... # doctest: +SKIP
        """
        from .outputs.export import export_model

        return export_model(self, path, format, opset=opset, verify=verify)

    def __getstate__(self) -> dict:
        """Pickle support (trusted use only); caches are dropped."""
        state = dict(self.__dict__)
        for key in ("_fused",):
            state.pop(key, None)
        return state

    def __sklearn_is_fitted__(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "model_")
