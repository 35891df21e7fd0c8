"""The accuracy autopilot: after the frozen head, try more within a time budget, keep what helps.

The frozen-feature head is always the first step. Then, while the budget allows, each
candidate is scored on the same cross-fitting folds as the frozen head, over every image
fit may learn from (the training images, and those a ``valid_size`` split held out; never
a ``valid/`` folder's), and replaces the model kept so far only when its out-of-fold log
loss is lower (the paired per-image gain and its standard error are in ``selection_``);
a costlier candidate must beat the cheaper one kept before it. The candidates, in order
of cost, measured on hot dog (bench/accuracy.py) and on photo sets made from its photos
(bench/generalization.py):

1. ``l2_head``: the L2-regularized logistic regression of :mod:`~binaryvision.training.probe`
   on the same features, its strength chosen out of fold. No backbone pass; a few seconds.
2. ``multi_resolution_<size>px``: the same frozen backbone run at 1.25 times its input
   size as well, the two feature vectors side by side under an L2 head. One more backbone
   pass at that size (about 1.5 times the first) at fit and at prediction.

Fine-tuning is not a candidate on the CPU (2 epochs of 789 photos took 308 s on 2 cores);
``fine_tune_epochs`` remains the way to ask for it.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any

import numpy as np
import torch

from .. import distributed
from ..exceptions import BinaryVisionWarning
from ..features.extract import make_extractor
from ..transforms import Transforms
from .cross_fit import CrossFit, fold_indices, log_losses
from .probe import ProbeFit, cross_fit_probe

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


def score(cross_fit: CrossFit, y: np.ndarray) -> dict:
    """Out-of-fold log loss and accuracy of a cross-fitted head."""
    losses = log_losses(cross_fit.logits, y)
    return {
        "cv_log_loss": round(float(losses.mean()), 5),
        "cv_accuracy": round(float(((cross_fit.logits >= 0) == (y == 1)).mean()), 5),
    }


def _better(candidate: CrossFit, frozen: CrossFit, y: np.ndarray) -> tuple[bool, float, float]:
    """Whether ``candidate`` has the lower out-of-fold log loss than ``frozen`` on the same
    images and folds; the mean paired per-image gain and its standard error.

    The point estimate decides, not a one-standard-error margin: on hot dog (three seeds,
    two layouts) the multi-resolution gain was -0.002 to +0.017 with standard errors of
    0.005 to 0.007; a one-SE rule rejected it in four of the six runs, and in the three
    of those where the gain was positive it added 1.0 to 1.4 points of validation
    accuracy. Worse than the frozen head, a kept candidate can be only within noise,
    which the standard error in ``selection_`` shows."""
    gain = log_losses(frozen.logits, y) - log_losses(candidate.logits, y)
    se = float(gain.std(ddof=1) / math.sqrt(len(gain))) if len(gain) > 1 else math.inf
    return float(gain.mean()) > 0.0, float(gain.mean()), se


def _entry(name: str, probe: ProbeFit, y: np.ndarray, seconds: float) -> dict:
    return {
        "name": name,
        **score(probe.cross_fit, y),
        "seconds": round(seconds, 2),
        "strength": probe.strength,
        "cv_log_loss_by_strength": {str(k): v for k, v in probe.cv_log_loss.items()},
    }


def _judge(entry: dict, candidate: CrossFit, current: CrossFit, current_name: str, y) -> bool:
    """Whether ``candidate`` replaces ``current``; its verdict written into ``entry``."""
    keep, gain, se = _better(candidate, current, y)
    entry["cv_log_loss_gain"], entry["gain_standard_error"] = round(gain, 5), round(se, 5)
    entry["compared_with"], entry["kept"] = current_name, keep
    entry["note"] = (
        f"kept: lower out-of-fold log loss than {current_name}"
        if keep
        else f"dropped: out-of-fold log loss not lower than {current_name}'s"
    )
    return keep


def _try_probe(
    entry: dict,
    features: torch.Tensor,
    y: np.ndarray,
    folds: list,
    pos_weight: float | None,
    deadline: float | None,
    kept: tuple,
    tic: float | None = None,
) -> ProbeFit | None:
    """Cross-fit an L2 head on ``features`` and judge it against the ``kept`` model, the
    figures and verdict written into ``entry``; the head when it replaces that model."""
    tic = time.perf_counter() if tic is None else tic
    probe = cross_fit_probe(features.numpy(), y, folds, pos_weight, deadline=deadline)
    if probe is None:
        entry.update(kept=False, note="stopped: the budget ran out")
        return None
    entry.update(_entry(entry["name"], probe, y, time.perf_counter() - tic))
    return probe if _judge(entry, probe.cross_fit, kept[1], kept[0], y) else None


def try_candidates(
    clf: Any,
    *,
    started: float,
    frozen: CrossFit | None,
    extractor: Any,
    transforms: Transforms,
    items: list,
    features: torch.Tensor,
    y_fit: torch.Tensor,
    trainer: Any,
    seed: int,
    pos_weight: float | None,
    checkpoint: Any = None,
) -> tuple[dict, Any, ProbeFit | None, torch.Tensor]:
    """Run the candidates the budget allows on ``items`` (every image fit may learn from;
    ``features`` are their frozen features). The selection record, the kept candidate's
    feature pass (None: the frozen one), its L2 head (None: the frozen head) and the
    features of ``items`` it reads."""
    frozen_seconds = time.perf_counter() - started
    budget = resolve_budget(clf.time_budget, frozen_seconds)
    y = y_fit.numpy().astype(int)
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
    reason = _why_not(clf, budget, frozen)
    if reason is not None:
        record["note"] = reason
        return record, None, None, features
    _announce(trainer, record["candidates"][0])
    folds = fold_indices(y, clf.cv, seed)
    # a number is a limit on seconds; "auto" is judged on relative cost (reproducible)
    deadline = None if clf.time_budget == "auto" else started + budget
    kept: tuple[str, CrossFit, Any, ProbeFit | None] = ("frozen_head", frozen, None, None)
    if time.perf_counter() - started >= budget:
        record["candidates"].append(
            {"name": "l2_head", "kept": False, "note": "skipped: the budget is spent"}
        )
        _announce(trainer, record["candidates"][-1])
    else:  # 1. the L2 head on the same features: no backbone pass, a few seconds
        entry = {"name": "l2_head"}
        record["candidates"].append(entry)
        probe = _try_probe(entry, features, y, folds, pos_weight, deadline, kept)
        if probe is not None:
            kept = ("l2_head", probe.cross_fit, None, probe)
        _announce(trainer, entry)
    multi, entry = _multi_resolution(
        clf, record, extractor, transforms, items, budget, started, checkpoint
    )
    if multi is not None:  # 2. features at a second size beside the first, with the L2 head
        tic = time.perf_counter()  # its seconds include the second feature pass
        wide = multi.features(items, trainer, "autopilot features")
        probe = _try_probe(entry, wide, y, folds, pos_weight, deadline, kept, tic)
        if probe is not None:
            kept = (entry["name"], probe.cross_fit, multi, probe)
            features = wide
    _announce(trainer, entry)
    _remember(checkpoint, kept[0])
    record["kept"] = kept[0]
    for candidate in record["candidates"]:
        if candidate.get("kept") and candidate["name"] != kept[0]:
            later = "" if candidate["name"] == "frozen_head" else ", which did better still"
            candidate["note"] = f"replaced by {kept[0]}{later}"
        candidate["kept"] = candidate["name"] == kept[0]
    _say(trainer, f"kept {kept[0]}")
    return record, kept[2], kept[3], features


def _say(trainer: Any, text: str) -> None:
    """One line on stderr, beside the epoch lines (``verbose >= 1``)."""
    if getattr(trainer, "progress", False) and distributed.is_main_process():
        print(f"[autopilot] {text}", file=sys.stderr, flush=True)


def _announce(trainer: Any, entry: dict) -> None:
    """A step's figures and verdict, as soon as it is judged."""
    figures = " ".join(
        f"{k}={entry[k]}" for k in ("cv_log_loss", "cv_accuracy", "seconds") if k in entry
    )
    _say(trainer, f"{entry['name']} {figures}: {entry['note']}")


def _multi_resolution(clf, record, extractor, transforms, items, budget, started, checkpoint):
    """The multi-resolution feature pass and its record entry, or (None, entry) when the
    budget, the transforms or an interrupted fit's choice rule it out."""
    size = candidate_size(extractor.backbone.data_config.input_size)
    entry: dict = {"name": f"multi_resolution_{size}px"}
    record["candidates"].append(entry)
    if not isinstance(clf.transforms, str):
        entry.update(kept=False, note="skipped: custom Transforms (it needs a preset)")
        return None, entry
    multi = make_extractor(extractor.backbone, transforms, clf.cache_dir, (size,), reuse=extractor)
    missing = multi.parts[1].n_missing(items)
    ratio = (size / extractor.backbone.data_config.input_size) ** 2
    elapsed = time.perf_counter() - started
    decided = None if checkpoint is None else checkpoint.extra.get("autopilot")
    if decided is not None:  # a resumed fit makes the choice the interrupted one made
        fits, why = decided == entry["name"], "as the interrupted fit chose"
    elif clf.time_budget == "auto":
        # relative to the frozen pass, so the choice does not depend on the machine's speed
        fits = ratio * missing <= (AUTO_FACTOR - 1) * len(items)
        why = f"needs {ratio * missing / max(len(items), 1):.2f} frozen passes more"
    elif missing and extractor.seconds_per_image is None:
        fits, why = False, "its cost is unknown (the frozen features were all cached)"
    else:
        estimate = (extractor.seconds_per_image or 0.0) * ratio * missing
        entry["estimated_seconds"] = round(estimate, 1)
        fits, why = elapsed + estimate <= budget, f"needs about {estimate:.0f} s more"
    if not fits:
        entry.update(kept=False, note=f"skipped: {why}")
        return None, entry
    return multi, entry


def _remember(checkpoint: Any, kept: str) -> None:
    if checkpoint is not None:
        checkpoint.extra["autopilot"] = kept


def _why_not(clf: Any, budget: float | None, frozen: Any):
    """Why the autopilot tries nothing (None when it may)."""
    if budget is None:
        return "autopilot off (time_budget=None)"
    if frozen is None:
        return "no cross-fitting evidence (cv=None, or a class with fewer than 2 images)"
    if clf.fine_tune_epochs > 0:
        return "fine-tuning asked for (fine_tune_epochs > 0): no candidate is tried"
    if distributed.active():
        return "under torchrun the candidates are not timed alike on every process: off"
    return None
