"""ImageBinaryClassifier: the estimator, a thin front over the stages that do the work.

This module keeps the hyperparameters and their checks, and the methods that train
(:meth:`~ImageBinaryClassifier.fit`, :meth:`~ImageBinaryClassifier.lr_find`) or move a
fitted model in and out of files, each handing its work to the stage that owns it. The
methods of a fitted model (predictions, evaluation, plots) are in :mod:`binaryvision._predict`,
which the class inherits. See the "Architecture" page of the documentation.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from ._params import _ParamMethods
from ._predict import _PredictMethods
from .data import as_image_set, check_two_classes
from .decisions.held_out import fit_decisions
from .exceptions import InvalidParameterError
from .outputs.export import export_model
from .outputs.model_file import load_classifier, save_classifier
from .training.cross_fit import fold_indices, fold_numbers
from .training.fit import find_lr, fit_model
from .training.lr_finder import SUGGESTERS, LRFindResult
from .training.trainer import Trainer
from .transforms import Transforms

__all__ = ["ImageBinaryClassifier"]


class ImageBinaryClassifier(_PredictMethods, _ParamMethods, ClassifierMixin, BaseEstimator):
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
    time_budget : "auto", float or None, default="auto"
        Seconds the whole :meth:`fit` may take. After the frozen-feature head (always the
        first step) the autopilot tries what the budget allows, cheapest first: an L2
        logistic-regression head whose strength the folds choose (``"l2_head"``), then
        features at 1.25x the input size beside the first ones. One is kept when its
        out-of-fold log loss is lower than the model kept before it; ``selection_`` says
        what was tried. ``"auto"``: up to three times the frozen path's cost. ``None``:
        the frozen head alone. A budget below the frozen path runs that path and warns.
    cv : int or None, default=5
        Folds of cross-fitting over the images fit learns from (a ``valid_size`` split
        too): each fold's head trains on the others' cached features, so every image gets
        an out-of-fold logit, which fits the calibration, threshold and conformal scores,
        ranks :meth:`label_issues` and judges the autopilot. None, or fine-tuning: the
        validation images are used instead.
    threshold : float, str or dict, default=0.5
        The operating point: :meth:`predict` answers ``positive_class`` when its
        calibrated probability is at least ``threshold_``. A float is used as it is; a
        rule is tuned on held-out evidence after training (see ``cv``): ``"f1"`` (balance
        precision and recall), ``"youden"`` (maximise sensitivity + specificity, fair to
        both classes), ``{"precision": 0.95}`` (the lowest threshold whose precision
        reaches the target: as many positives found as that precision allows),
        ``{"recall": 0.9}`` (the highest threshold that still finds 90% of positives) or
        ``{"fp_cost": 1, "fn_cost": 5}`` (minimise the total cost of mistakes). When a
        target cannot be reached a :class:`~binaryvision.BinaryVisionWarning` says so and
        ``threshold_choice_.message`` explains. See :mod:`binaryvision.decisions.thresholds`.
    calibration : {"auto", "temperature", "platt", "isotonic"} or None, default="auto"
        How held-out evidence (see ``cv``) calibrates the probabilities after training (see
        :mod:`binaryvision.decisions.calibration`): ``"auto"`` fits one temperature when its
        cross-validation over that evidence lowers the Brier score, else keeps the raw sigmoid;
        a temperature always, Platt scaling (also corrects a shifted base rate) or isotonic
        regression (needs hundreds of held-out images). ``None`` keeps the raw sigmoid.
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
        never used. See :mod:`binaryvision.features.cache`.
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
        on the held-out evidence (see ``cv``), and a message. None without any.
    calibrator_ : Calibrator or None
        The fitted calibration map, applied by :meth:`predict_proba`.
    calibration_report_ : dict or None
        On the held-out evidence: ``n_images``, ``method``, ``ece_before``, ``ece_after``,
        ``brier_before``, ``brier_after`` (ECE, 15 bins). Measured where the calibrator
        was fitted, so optimistic: :meth:`evaluate` on other images.
    conformal_scores_ : numpy.ndarray or None
        Sorted nonconformity scores of the held-out evidence, for :meth:`predict_set`.
    class_counts_ : dict
        Number of training images per class (training split only).
    fit_report_ : dict
        What :meth:`fit` found: ``n_found`` images, ``n_used``, ``skipped`` (a list of
        ``{"path", "reason"}`` for unreadable files) and ``ignored`` (hidden entries such
        as ``.ipynb_checkpoints`` and ``.DS_Store``, and non-image files, never used as
        images or classes). User files are only read, never modified.
    selection_ : dict or None
        What the autopilot did (see ``time_budget``): ``kept``, ``budget_seconds`` and
        ``candidates``, each with ``seconds``, out-of-fold ``cv_log_loss`` and
        ``cv_accuracy``, the paired gain and its standard error, ``kept`` and a
        ``note``. None when fine-tuning.
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
        time_budget: float | str | None = "auto",
        cv: int | None = 5,
        threshold: float | str | dict = 0.5,
        calibration: str | None = "auto",
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
        self.time_budget = time_budget
        self.cv = cv
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

    # ================================================================== training
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
            at the end of every epoch; see :mod:`binaryvision.training.checkpoint`.
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
        labels = (
            data.labels if data.valid is None else np.concatenate([data.labels, data.valid.labels])
        )
        check_two_classes(labels, data.source)  # fail fast, before any decoding
        seed = self._seed()
        trainer = self._make_trainer()
        trainer.setup()  # joins the torchrun process group, if any
        for name in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, name)  # refitting forgets the previous fit
        fitted = fit_model(self, data, seed, trainer, checkpoint_dir, resume)
        self.classes_, self.positive_class_ = fitted.classes, fitted.positive
        self.fit_report_, self.class_counts_ = fitted.fit_report, fitted.class_counts
        self.model_, self.history_, self.lr_ = fitted.model, fitted.history, fitted.lr
        self.transforms_, self.data_config_ = fitted.transforms, fitted.model.backbone.data_config
        self.backbone_name_ = self.backbone if isinstance(self.backbone, str) else "custom"
        self.n_train_ = len(fitted.train)
        self.n_valid_ = 0 if fitted.valid is None else len(fitted.valid)
        self._extractor, self.selection_ = fitted.extractor, fitted.selection
        self._fit_decisions(fitted)
        return self

    def _fit_decisions(self, fitted: Any) -> None:
        """Calibrator, threshold, conformal scores: from out-of-fold or validation logits."""
        z = y = folds = self._label_evidence = None
        if (cross := fitted.cross_fit) is not None:
            z, y, folds = cross.logits, self._targets(fitted.evidence.labels), cross.folds
            self._label_evidence = (fitted.evidence, z, fitted.agreement)
        elif fitted.valid is not None:  # cv=None: folds of the validation images for "auto"
            z, y = self._raw_logits(fitted.valid.items)[0], self._targets(fitted.valid.labels)
            folds = fold_numbers(fold_indices(y, 5, self._seed()), len(y))
        decisions = fit_decisions(z, y, self.calibration, self.threshold, folds)
        self.calibrator_ = decisions.calibrator
        self.calibration_report_ = decisions.calibration_report
        self.conformal_scores_ = decisions.conformal_scores
        self.threshold_choice_ = decisions.threshold_choice
        self.threshold_ = decisions.threshold

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
        sweep = {"start_lr": start_lr, "end_lr": end_lr, "num_steps": num_steps, "method": method}
        return find_lr(self, data, stage, self._seed(), self._make_trainer(), sweep)

    # ================================================================== files
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one safetensors file (atomically).

        The file holds the weights and JSON metadata: classes, backbone, preprocessing,
        threshold, hyperparameters, library and torch versions, format version. It is
        read by :meth:`load` without unpickling anything. Under distributed training only
        process 0 writes; the others wait until the file is complete.
        """
        self._check_fitted()
        save_classifier(self, path)

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
        clf = load_classifier(cls, path, backbone)
        clf._extractor = None
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

        The graph takes float32 batches ``(N, 3, S, S)`` (one per input size) prepared as
        :meth:`predict_proba` does it (:func:`binaryvision.export.graph_inputs`) and
        outputs ``probabilities``, float32 ``(N, 2)`` in ``classes_`` order: the numbers
        ``predict_proba(X)`` returns, calibration included. Preprocessing, classes,
        threshold and calibration are stored in the file as JSON
        (:func:`binaryvision.export.read_export_metadata`). Written atomically. The
        "Exporting to ONNX and TorchScript" page of the user guide has the details.

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
        >>> clf.export("model.pt")              # TorchScript: torch.jit.load("model.pt")
        ... # doctest: +SKIP
        """
        return export_model(self, path, format, opset=opset, verify=verify)

    def __sklearn_is_fitted__(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "model_")
