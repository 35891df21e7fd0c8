"""Benchmark: does calibrating help new photos? Raw sigmoid, a temperature always, and
``calibration="auto"`` (a temperature only where its cross-validation over the out-of-fold
logits lowers their Brier score), on random draws of hot dog's photos, for both heads the
autopilot chooses between. One JSON object on stdout.

    python bench/calibration_draws.py [--per-class 25 50 150 400] [--draws 20]
                                      [--heads l2 frozen] [--data PATH]

Every photo of ``train/`` and ``valid/`` is pooled and passed once through the default
backbone (a fit of every photo with ``time_budget=None``, which fills the feature cache).
For each size and draw, ``per_class`` photos of each class are drawn, and each head is
fitted on them as a fit does, out-of-fold logits included:

* ``l2``: the L2 head (``training.probe``, the autopilot's first candidate) cross-fitted
  with 5 folds; the calibrations fitted from its out-of-fold logits by
  ``decisions.held_out.fit_decisions``;
* ``frozen``: ``ImageBinaryClassifier(time_budget=None)``, the early-stopped frozen head
  (its ``valid_size`` split included), ``"auto"`` as the fit decides it, the temperature
  fitted on the same out-of-fold logits.

Each is scored by log loss and ECE on every photo not drawn. The JSON has, per head and
size, the mean and worst test log loss of each calibration, the number of draws in which
each is worse than the raw sigmoid, and how often ``"auto"`` kept a temperature.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import HOTDOG, emit, load_average, log, source_version
from generalization import pool
from sklearn.metrics import log_loss

NAMES = ("raw", "temperature", "auto")


def scores(y: np.ndarray, probabilities: dict) -> dict:
    from binaryvision.decisions.metrics import expected_calibration_error

    return {
        name: {
            "log_loss": round(float(log_loss(y, p, labels=[0, 1])), 5),
            "ece": round(expected_calibration_error(y, p), 5),
        }
        for name, p in probabilities.items()
    }


def draw(y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in (0, 1)]
    drawn = np.concatenate(picked)
    return drawn, np.setdiff1d(np.arange(len(y)), drawn)


def l2_draw(X: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> dict:
    from binaryvision.decisions.calibration import Calibrator, sigmoid
    from binaryvision.decisions.held_out import fit_decisions
    from binaryvision.training.cross_fit import fold_indices
    from binaryvision.training.probe import cross_fit_probe

    drawn, test = draw(y, per_class, seed)
    probe = cross_fit_probe(X[drawn], y[drawn], fold_indices(y[drawn], 5, seed))
    z, z_test = probe.cross_fit.logits, X[test] @ probe.weight + probe.bias
    auto = fit_decisions(z, y[drawn], "auto", 0.5, probe.cross_fit.folds)
    probabilities = {
        "raw": sigmoid(z_test),
        "temperature": Calibrator("temperature").fit(z, y[drawn]).transform(z_test),
        "auto": auto.probabilities(z_test),
    }
    return {**scores(y[test], probabilities), "kept": auto.calibrator is not None}


def frozen_draw(paths: np.ndarray, labels: np.ndarray, y, per_class: int, seed: int) -> dict:
    from binaryvision import ImageBinaryClassifier
    from binaryvision.decisions.calibration import Calibrator, sigmoid

    drawn, test = draw(y, per_class, seed)
    clf = ImageBinaryClassifier(time_budget=None, random_state=seed, verbose=0)
    clf.fit(list(paths[drawn]), list(labels[drawn]))
    data, z, _ = clf._label_evidence  # the out-of-fold logits the fit calibrated from
    y_fit = (np.asarray(data.labels) == clf.classes_[1]).astype(int)
    z_test = clf.decision_function(list(paths[test]))
    probabilities = {
        "raw": sigmoid(z_test),
        "temperature": Calibrator("temperature").fit(z, y_fit).transform(z_test),
        "auto": sigmoid(z_test) if clf.calibrator_ is None else clf.calibrator_.transform(z_test),
    }
    return {**scores(y[test], probabilities), "kept": clf.calibrator_ is not None}


def summary(draws: list[dict]) -> dict:
    raw = np.array([d["raw"]["log_loss"] for d in draws])
    out: dict = {"draws": len(draws)}
    for name in NAMES:
        losses = np.array([d[name]["log_loss"] for d in draws])
        out[name] = {
            "mean_log_loss": round(float(losses.mean()), 4),
            "worst_log_loss": round(float(losses.max()), 4),
            "mean_ece": round(float(np.mean([d[name]["ece"] for d in draws])), 4),
            "draws_worse_than_raw": int((losses > raw + 1e-9).sum()),
        }
    out["auto_kept_a_temperature"] = int(sum(d["kept"] for d in draws))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[25, 50, 150, 400])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--heads", nargs="+", default=["l2", "frozen"], choices=["l2", "frozen"])
    parser.add_argument("--data", type=Path, default=HOTDOG)
    args = parser.parse_args()
    from binaryvision import ImageBinaryClassifier

    started, load_start = time.perf_counter(), load_average()
    paths, labels = pool(args.data)
    y = (labels == np.unique(labels)[1]).astype(int)
    everything = ImageBinaryClassifier(time_budget=None, verbose=0).fit(list(paths), list(labels))
    X = everything._extractor.features(list(paths), everything._make_trainer(), "features")
    X = X.numpy().astype(np.float64)
    log(f"features of {len(y)} photos in {time.perf_counter() - started:.1f} s")
    results: dict = {}
    for head in args.heads:
        for per_class in args.per_class:
            if head == "l2":
                draws = [l2_draw(X, y, per_class, s) for s in range(args.draws)]
            else:
                draws = [frozen_draw(paths, labels, y, per_class, s) for s in range(args.draws)]
            results.setdefault(head, {})[str(per_class)] = summary(draws)
            log(f"{head}, {per_class} per class: {results[head][str(per_class)]}")
    emit(
        {
            "bench": "calibration_draws",
            "source": source_version(),
            "photos": len(y),
            "heads": results,
            "seconds": round(time.perf_counter() - started, 1),
            "load_average_start_end": [load_start, load_average()],
        }
    )


if __name__ == "__main__":
    main()
