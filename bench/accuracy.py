"""Benchmark: accuracy and calibration of the default fit. One JSON line per data set, layout, seed.

    python bench/accuracy.py [--data PATH ...] [--seeds 0 1 2] [--time-budget auto]
                             [--layout train-only folders]

Each PATH holds ``train/`` and ``valid/`` with one subfolder per class (default: hot dog).
Layout ``train-only`` fits on ``train/`` alone, so fit never sees a validation photo;
``folders`` fits on PATH itself, as the README does, and ``valid/`` then early-stops the
frozen head (nothing else: the autopilot and the decisions use out-of-fold evidence from
``train/``). Both are evaluated on ``valid/``: accuracy, balanced accuracy, ECE (15 bins,
the library's positive-class form, and the top-label form of Guo et al.), the ECE a
perfectly calibrated model with the same predictions would show (mean and 95th
percentile: the noise in that figure), log loss before and after calibration with
1,000-sample bootstrap 95% intervals, seconds of the first fit (features not cached), and
the candidate kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import HOTDOG
from sklearn.metrics import log_loss


def _interval(y, p, rng) -> list[float]:
    values = []
    for _ in range(1000):
        idx = rng.integers(0, len(y), len(y))
        values.append(log_loss(y[idx], p[idx], labels=[0, 1]))
    return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]


def _top_label_ece(y, p, n_bins: int = 15) -> float:
    """Guo et al.'s form: bins of max(p, 1 - p), accuracy of the predicted label in each."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    conf, correct = np.maximum(p, 1 - p), ((p >= 0.5) == (y == 1)).astype(float)
    bins = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], conf)
    gap = np.bincount(bins, correct - conf, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[HOTDOG])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--time-budget", default="auto")
    parser.add_argument("--layout", nargs="+", default=["train-only", "folders"])
    args = parser.parse_args()
    for data in args.data:
        for layout in args.layout:
            for seed in args.seeds:
                print(json.dumps(run(data, layout, seed, args.time_budget)), flush=True)


def run(data: Path, layout: str, seed: int, time_budget: str) -> dict:
    """Fit once (features not cached) and measure on ``data/valid``."""
    from binaryvision import ImageBinaryClassifier
    from binaryvision.decisions.metrics import ece_of_a_calibrated_model
    from binaryvision.features.cache import shared_cache

    budget = None if time_budget == "none" else time_budget
    budget = budget if budget in (None, "auto") else float(budget)
    shared_cache().clear()  # first fit, features not cached
    started = time.perf_counter()
    clf = ImageBinaryClassifier(random_state=seed, verbose=0, time_budget=budget)
    clf.fit(data / "train" if layout == "train-only" else data)
    seconds = time.perf_counter() - started
    report = clf.evaluate(data / "valid")
    m, y = report.metrics, report.y_true
    raw = report.y_prob_uncalibrated
    rng = np.random.default_rng(seed)
    floor, floor95 = ece_of_a_calibrated_model(report.y_prob)
    return {
        "data": data.name,
        "layout": layout,
        "seed": seed,
        "time_budget": time_budget,
        "accuracy": round(m["accuracy"], 4),
        "balanced_accuracy": round(m["balanced_accuracy"], 4),
        "ece": round(m["ece"], 4),
        "ece_if_calibrated": [round(floor, 4), round(floor95, 4)],
        "ece_top_label": round(_top_label_ece(y, report.y_prob), 4),
        "log_loss": round(m["log_loss"], 4),
        "log_loss_ci95": _interval(y, report.y_prob, rng),
        "log_loss_uncalibrated": None if raw is None else round(log_loss(y, raw), 4),
        "log_loss_uncalibrated_ci95": None if raw is None else _interval(y, raw, rng),
        "seconds": round(seconds, 1),
        "kept": clf.selection_["kept"] if clf.selection_ else None,
        "calibration": clf.calibration_report_.get("note", clf.calibration_report_["method"]),
    }


if __name__ == "__main__":
    main()
