"""One fit, start to end: build the network, check the images, train the phases.

:func:`fit_model` is what :meth:`ImageBinaryClassifier.fit
<binaryvision.ImageBinaryClassifier.fit>` hands its work to. It builds the backbone and
head from the classifier's hyperparameters, scans the images once (the frozen feature
pass doubles as that scan), applies ``on_bad_image``, splits off validation images, then
trains the head on cached features and, with ``fine_tune_epochs``, the unfrozen network,
checkpointing every epoch when asked. The decisions (calibration, threshold, conformal
scores) are fitted afterwards by :mod:`binaryvision.decisions`.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..data import ImageSet, check_two_classes, split_fit_data
from ..data.bad_images import drop_bad_images
from ..data.sources import class_counts
from ..exceptions import InvalidParameterError
from ..features.extract import FeatureExtractor
from ..transforms import Transforms
from . import autopilot, phases
from .callbacks import History
from .checkpoint import Checkpointer, fit_fingerprint
from .cross_fit import CrossFit, cross_fit_logits, neighbour_agreement
from .lr_finder import LRFindResult, lr_range_test
from .model import BinaryModel
from .probe import set_head
from .trainer import Trainer

__all__ = ["FitResult", "find_lr", "fit_model"]


@dataclasses.dataclass
class FitResult:
    """What :func:`fit_model` trained, and on which images."""

    model: BinaryModel
    transforms: Transforms
    extractor: FeatureExtractor
    history: list
    lr: float
    classes: np.ndarray
    positive: Any
    train: ImageSet
    valid: ImageSet | None
    fit_report: dict
    class_counts: dict
    cross_fit: CrossFit | None = None
    selection: dict | None = None
    #: the labelled images ``cross_fit``'s logits belong to, in order
    evidence: ImageSet | None = None
    #: per image of ``evidence``: the share of its nearest neighbours with its label
    agreement: np.ndarray | None = None


def _all_labels(data: ImageSet) -> np.ndarray:
    return data.labels if data.valid is None else np.concatenate([data.labels, data.valid.labels])


def fit_model(
    clf: Any,
    data: ImageSet,
    seed: int,
    trainer: Trainer,
    checkpoint_dir: Any = None,
    resume: bool = False,
) -> FitResult:
    """Train the network of ``clf`` (the classifier: hyperparameters and builders) on ``data``.

    ``trainer.setup()`` has run; ``data`` holds exactly two classes (checked before any
    decoding). Torch's RNG is seeded from ``seed`` here and restored afterwards.
    """
    name = type(clf).__name__
    started = time.perf_counter()
    with phases.local_rng(trainer, seed):
        backbone = clf._make_backbone()
        transforms = clf._make_transforms(backbone.data_config)
        previous = getattr(clf, "_extractor", None)
        extractor = FeatureExtractor(backbone, transforms, clf.cache_dir, reuse=previous)
        model = BinaryModel(backbone, clf.dropout)
        backbone.eval().requires_grad_(False)
        rng_after_init = torch.get_rng_state()
    probe = None
    if clf.epochs > 0 and not distributed.active():
        # the frozen features decode every image anyway: they double as the scan
        def probe(items: list) -> list[str]:
            return extractor.probe(items, trainer)

    parts = [data] if data.valid is None else [data, data.valid]
    reasons = clf._scan([item for part in parts for item in part.items], probe)
    data, fit_report = drop_bad_images(data, reasons, clf.on_bad_image, clf.max_bad_fraction)
    classes = check_two_classes(_all_labels(data), data.source)
    if data.valid is not None:
        check_two_classes(data.valid.labels, data.valid.source)
    positive = clf._match_class(
        classes[1] if clf.positive_class is None else clf.positive_class,
        classes,
        f"{name}(positive_class=...)",
    )
    train, valid = split_fit_data(data, clf.valid_size, seed)
    cross_fits = clf.cv is not None and clf.epochs > 0 and clf.fine_tune_epochs == 0
    if valid is None and not cross_fits and not isinstance(clf.threshold, numbers.Real):
        raise InvalidParameterError(
            f"{name}(threshold={clf.threshold!r}) is tuned on validation images, and there "
            "are none (valid_size=0) and no cross-fitting (cv=None, or fine-tuning). Set "
            "valid_size > 0, add a valid/ folder, or use a float threshold."
        )

    def targets(labels: np.ndarray) -> torch.Tensor:
        is_pos = [v == positive or str(v) == str(positive) for v in labels.tolist()]
        return torch.tensor(is_pos, dtype=torch.float32)

    y_train = targets(train.labels)
    y_valid = None if valid is None else targets(valid.labels)
    counts = class_counts(train.labels, classes, clf.class_weight is None)
    pos_weight = clf._pos_weight(y_train, classes, positive)
    history = History()
    checkpoint, cross_fit, selection, evidence, agreement = None, None, None, None, None
    if checkpoint_dir is not None:
        params = {  # how training runs (trainer, verbose) does not change the result
            k: v
            for k, v in clf.get_params(deep=False).items()
            if k not in ("verbose", "trainer", "random_state")
        }
        checkpoint = Checkpointer(
            checkpoint_dir, fit_fingerprint(params, seed, train, valid), resume
        )
    # both restored after; the RNG continues from where building the model left it
    with phases.local_rng(trainer, seed, rng_after_init), trainer.determinism():
        lr = clf.lr
        if clf.epochs > 0:
            f_train = extractor.features(train.items, trainer, "features (train)")
            f_valid = (
                None
                if valid is None
                else extractor.features(valid.items, trainer, "features (valid)")
            )
            if lr == "auto" and checkpoint is not None and "lr" in checkpoint.extra:
                lr = checkpoint.extra["lr"]  # the resumed fit uses the lr it found before
            if lr == "auto":
                lr = phases.head_range_test(clf, model, f_train, y_train, trainer, seed).suggestion
            if checkpoint is not None:
                checkpoint.extra["lr"] = float(lr)
            kept_epoch = phases.fit_head(
                clf, model, f_train, y_train, f_valid, y_valid, float(lr), trainer, history,
                seed, pos_weight, checkpoint,
            )  # fmt: skip
            distributed.broadcast_module(model.head)  # bitwise equal on every process
            # every image fit may learn from: a valid_size split too (not a valid/ folder)
            carved = data.valid is None and valid is not None
            evidence = (
                ImageSet(train.items + valid.items, np.concatenate([train.labels, valid.labels]))
                if carved
                else train
            )
            f_fit = torch.cat([f_train, f_valid]) if carved else f_train
            y_fit = torch.cat([y_train, y_valid]) if carved else y_train
            if cross_fits:
                cross_fit = cross_fit_logits(
                    clf, [f_fit], y_fit, float(lr), trainer, seed, pos_weight, clf.cv, kept_epoch
                )
            if clf.fine_tune_epochs == 0:
                selection, multi, probe, f_fit = autopilot.try_candidates(
                    clf, started=started, frozen=cross_fit, extractor=extractor,
                    transforms=transforms, items=evidence.items, features=f_fit, y_fit=y_fit,
                    trainer=trainer, seed=seed, pos_weight=pos_weight, checkpoint=checkpoint,
                )  # fmt: skip
                if probe is not None:
                    sizes = () if multi is None else tuple(multi.sizes[1:])
                    with phases.local_rng(trainer, seed + 1):
                        model = BinaryModel(backbone, clf.dropout, sizes)
                    set_head(model.head, probe)
                    extractor, cross_fit = multi or extractor, probe.cross_fit
            if cross_fit is not None:
                agreement = neighbour_agreement(f_fit, y_fit.numpy())
        if clf.fine_tune_epochs > 0:
            phases.fine_tune(
                clf, model, train, y_train, valid, y_valid, transforms, trainer, history,
                seed, float(lr if lr != "auto" else 1e-2), pos_weight, checkpoint,
            )  # fmt: skip
            # the weights changed: their features get a new key (hashed on first use)
            extractor = FeatureExtractor(backbone, transforms, clf.cache_dir, reuse=extractor)
    model.cpu().eval()
    return FitResult(
        model=model,
        transforms=transforms,
        extractor=extractor,
        history=history.epochs,
        lr=float(lr) if lr != "auto" else float("nan"),
        classes=classes,
        positive=positive,
        train=train,
        valid=valid,
        fit_report=fit_report,
        class_counts=counts,
        cross_fit=cross_fit,
        selection=selection,
        evidence=evidence,
        agreement=agreement,
    )


def find_lr(
    clf: Any, data: ImageSet, stage: str, seed: int, trainer: Trainer, sweep: dict
) -> LRFindResult:
    """The learning-rate range test of ``clf``'s head (``stage="head"``, on cached features)
    or of the unfrozen network (``"fine_tune"``, on augmented images); nothing is kept."""
    classes = check_two_classes(data.labels, data.source)
    y_train = torch.from_numpy((data.labels == classes[1]).astype(np.float32))
    with phases.local_rng(trainer, seed):
        backbone = clf._make_backbone()
        transforms = clf._make_transforms(backbone.data_config)
        model = BinaryModel(backbone, clf.dropout)
        backbone.eval().requires_grad_(False)
        if stage == "head":
            extractor = FeatureExtractor(backbone, transforms, clf.cache_dir)
            features = extractor.features(data.items, trainer, "features")
            return phases.head_range_test(clf, model, features, y_train, trainer, seed, **sweep)
        optimizer, loader, _ = phases.fine_tune_parts(
            clf, model, data, y_train, transforms, trainer, seed, 1.0
        )
        return lr_range_test(trainer, model, loader, optimizer, nn.BCEWithLogitsLoss(), **sweep)
