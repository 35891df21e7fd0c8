"""Saving and loading fitted classifiers: the ``.bv`` file's metadata, both ways.

The container (safetensors tensors + one JSON document, written atomically, never
unpickled) is :mod:`binaryvision.persistence`; this module decides what goes in the JSON
and rebuilds a classifier from it. What it needs of a classifier it reads from the object
it is handed (:meth:`~binaryvision.ImageBinaryClassifier.save` and ``.load`` call it).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch

from .. import _version, distributed
from ..decisions import Calibrator, ThresholdChoice
from ..exceptions import InvalidParameterError, ModelFileError
from ..persistence import read_model_file, write_model_file
from ..training.model import BinaryModel
from ..transforms import DataConfig

__all__ = ["load_classifier", "save_classifier"]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value


def save_classifier(clf: Any, path: str | os.PathLike) -> None:
    """Write fitted ``clf`` to ``path`` (process 0 only under torchrun; the others wait)."""
    params = {
        k: v
        for k, v in clf.get_params().items()
        if isinstance(v, (str, int, float, bool, type(None), dict))
    }
    params.pop("trainer", None)
    meta = {
        "library_version": _version.__version__,
        "torch_version": torch.__version__,
        "backbone": clf.backbone_name_,
        "classes": [_plain(c) for c in clf.classes_],
        "threshold": clf.threshold_,
        "positive_class": _plain(clf.positive_class_),
        "calibration": None if clf.calibrator_ is None else clf.calibrator_.to_dict(),
        "calibration_report": clf.calibration_report_,
        "conformal_scores": (
            None if clf.conformal_scores_ is None else clf.conformal_scores_.tolist()
        ),
        "threshold_choice": (
            None if clf.threshold_choice_ is None else dataclasses.asdict(clf.threshold_choice_)
        ),
        "class_counts": {str(k): v for k, v in clf.class_counts_.items()},
        "data_config": clf.data_config_.to_dict(),
        "params": params,
        "history": clf.history_,
        "n_train": clf.n_train_,
        "n_valid": clf.n_valid_,
        "lr": clf.lr_,
        "extra_sizes": list(getattr(clf.model_, "extra_sizes", ())),
        "selection": getattr(clf, "selection_", None),
    }
    if distributed.is_main_process():
        write_model_file(path, clf.model_.state_dict(), meta)
    distributed.barrier()


def load_classifier(cls: type, path: str | os.PathLike, backbone: Any = None) -> Any:
    """A fitted ``cls`` (the classifier class) rebuilt from the file at ``path``."""
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
        sizes = tuple(int(v) for v in meta.get("extra_sizes", []))
        model = BinaryModel(module, float(params.get("dropout", 0.0)), sizes)
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
    clf.positive_class_ = clf._match_class(
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
    clf.selection_ = meta.get("selection")
    return clf
