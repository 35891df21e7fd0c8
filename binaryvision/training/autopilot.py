"""The accuracy autopilot: after the frozen head, try more within a time budget, keep what helps.

The frozen-feature head is always the first step. Then, while the budget allows, each
candidate is scored on the same cross-fitting folds of the training images as the frozen
head (never on the validation images, which only early-stop), and kept only when its
out-of-fold log loss beats the frozen head's by more than one standard error of the
paired per-image difference: a candidate that only matches the frozen head within noise
is dropped. The one candidate so far, measured on hot dog and generated photo sets
(bench/accuracy.py), is **multi-resolution features**: the same frozen backbone run at
1.25 times its input size as well, the two feature vectors side by side in the head.
It costs one more backbone pass at that size (about 1.6 times the first) at fit and at
prediction. Fine-tuning is not a candidate on the CPU (2 epochs of 789 photos took 308 s
on 2 cores); ``fine_tune_epochs`` remains the way to ask for it.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import torch

from .. import distributed
from ..exceptions import BinaryVisionWarning
from ..features.extract import make_extractor
from ..transforms import Transforms
from .cross_fit import CrossFit, cross_fit_logits

__all__ = ["SIZE_FACTOR", "candidate_size", "resolve_budget", "try_candidates"]

#: the second input size of the multi-resolution candidate, relative to the backbone's
SIZE_FACTOR = 1.25
#: ``time_budget="auto"``: the whole fit may take this many times the frozen path
AUTO_FACTOR = 3.0
#: ... and at least this many seconds (small data sets: the candidates cost little)
AUTO_MINIMUM = 30.0


def candidate_size(input_size: int) -> int:
    """The multi-resolution candidate's input size: 1.25x, rounded to a multiple of 32
    (and at least 8 pixels more, for tiny inputs)."""
    return max(int(32 * round(input_size * SIZE_FACTOR / 32)), input_size + 8)


def resolve_budget(time_budget: Any, frozen_seconds: float) -> float | None:
    """Seconds the whole fit may take (None: the autopilot is off)."""
    if time_budget is None:
        return None
    if time_budget == "auto":
        return max(AUTO_FACTOR * frozen_seconds, AUTO_MINIMUM)
    return float(time_budget)


def _log_losses(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-image binary log loss of raw logits (numerically stable)."""
    z = np.asarray(logits, dtype=float)
    return np.logaddexp(0.0, z) - y * z


def score(cross_fit: CrossFit, y: np.ndarray) -> dict:
    """Out-of-fold log loss and accuracy of a cross-fitted head."""
    losses = _log_losses(cross_fit.logits, y)
    return {
        "cv_log_loss": round(float(losses.mean()), 5),
        "cv_accuracy": round(float(((cross_fit.logits >= 0) == (y == 1)).mean()), 5),
    }


def _better(candidate: CrossFit, frozen: CrossFit, y: np.ndarray) -> tuple[bool, float, float]:
    """Whether ``candidate`` beats ``frozen`` beyond noise: the mean paired log-loss gain and
    its standard error."""
    gain = _log_losses(frozen.logits, y) - _log_losses(candidate.logits, y)
    se = float(gain.std(ddof=1) / math.sqrt(len(gain))) if len(gain) > 1 else math.inf
    return float(gain.mean()) > se, float(gain.mean()), se


def try_candidates(
    clf: Any,
    *,
    started: float,
    frozen: CrossFit | None,
    extractor: Any,
    transforms: Transforms,
    train: Any,
    valid: Any,
    y_train: torch.Tensor,
    lr: float,
    trainer: Any,
    seed: int,
    pos_weight: float | None,
    checkpoint: Any = None,
) -> tuple[dict, Any, CrossFit | None]:
    """Run the candidates the budget allows; the selection record, and the kept
    candidate's feature pass and cross-fit (None, None when the frozen head is kept)."""
    frozen_seconds = time.perf_counter() - started
    budget = resolve_budget(clf.time_budget, frozen_seconds)
    y = y_train.numpy().astype(int)
    record = {
        "time_budget": clf.time_budget,
        "budget_seconds": None if budget is None else round(budget, 1),
        "kept": "frozen_head",
        "candidates": [
            {
                "name": "frozen_head",
                "seconds": round(frozen_seconds, 2),
                **({} if frozen is None else score(frozen, y)),
                "kept": True,
                "note": "the first step, kept unless a candidate beats it",
            }
        ],
    }
    if budget is not None and clf.time_budget != "auto" and frozen_seconds > budget:
        warnings.warn(
            BinaryVisionWarning(
                f"time_budget={clf.time_budget} s is less than the frozen-feature path took "
                f"({frozen_seconds:.1f} s): fitted that path alone. Raise time_budget, or "
                "use 'auto', to let fit try more."
            ),
            stacklevel=4,
        )
    reason = _why_not(clf, budget, frozen, transforms, extractor)
    if reason is not None:
        record["note"] = reason
        return record, None, None
    size = candidate_size(extractor.backbone.data_config.input_size)
    multi = make_extractor(extractor.backbone, transforms, clf.cache_dir, (size,), reuse=extractor)
    part = multi.parts[1]
    items = train.items + ([] if valid is None else valid.items)
    missing = part.n_missing(items)
    ratio = (size / extractor.backbone.data_config.input_size) ** 2
    entry = {"name": f"multi_resolution_{size}px"}
    record["candidates"].append(entry)
    decided = None if checkpoint is None else checkpoint.extra.get("autopilot")
    if decided is not None:  # a resumed fit makes the choice the interrupted one made
        fits, why = decided != "frozen_head", "as the interrupted fit chose"
    elif clf.time_budget == "auto":
        # relative to the frozen pass, so the choice does not depend on the machine's speed
        fits = ratio * missing <= (AUTO_FACTOR - 1) * len(items)
        why = f"needs {ratio * missing / max(len(items), 1):.2f} frozen passes more"
    elif missing and extractor.seconds_per_image is None:
        fits, why = False, "its cost is unknown (the frozen features were all cached)"
    else:
        estimate = (extractor.seconds_per_image or 0.0) * ratio * missing
        entry["estimated_seconds"] = round(estimate, 1)
        fits, why = frozen_seconds + estimate <= budget, f"needs about {estimate:.0f} s more"
    if not fits:
        entry.update(kept=False, note=f"skipped: {why}")
        _remember(checkpoint, "frozen_head")
        return record, None, None
    tic = time.perf_counter()
    views = [multi.features(train.items, trainer, "autopilot features (train)")]
    trial = cross_fit_logits(clf, views, y_train, lr, trainer, seed, pos_weight, clf.cv)
    entry.update(score(trial, y), seconds=round(time.perf_counter() - tic, 2))
    keep, gain, se = _better(trial, frozen, y)
    entry["cv_log_loss_gain"], entry["gain_standard_error"] = round(gain, 5), round(se, 5)
    entry["kept"] = keep
    entry["note"] = (
        "kept: lower out-of-fold log loss beyond one standard error"
        if keep
        else "dropped: not better than the frozen head beyond noise"
    )
    if not keep:
        _remember(checkpoint, "frozen_head")
        return record, None, None
    _remember(checkpoint, entry["name"])
    record["kept"] = entry["name"]
    record["candidates"][0]["kept"] = False
    return record, multi, trial


def _remember(checkpoint: Any, kept: str) -> None:
    if checkpoint is not None:
        checkpoint.extra["autopilot"] = kept


def _why_not(clf: Any, budget: float | None, frozen: Any, transforms: Any, extractor: Any):
    """Why the autopilot tries nothing (None when it may)."""
    if budget is None:
        return "autopilot off (time_budget=None)"
    if frozen is None:
        return "no cross-fitting evidence (cv=None, or a class with fewer than 2 images)"
    if clf.fine_tune_epochs > 0:
        return "fine-tuning asked for (fine_tune_epochs > 0): no candidate is tried"
    if not isinstance(clf.transforms, str):
        return "custom Transforms: the multi-resolution candidate needs a preset"
    if distributed.active():
        return "under torchrun the candidates are not timed alike on every process: off"
    return None
