"""Benchmark: accuracy and calibration of the default fit on hot dog. One JSON line per seed.

    python bench/accuracy.py [--data PATH] [--seeds 0 1 2] [--time-budget auto]

Fits on ``train/`` only (the validation photos are never seen by fit) and evaluates on
``valid/``: accuracy, balanced accuracy, ECE (15 bins), log loss before and after
calibration with 1,000-sample bootstrap 95% intervals, seconds, and the candidate kept.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HOTDOG)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--time-budget", default="auto")
    args = parser.parse_args()
    from binaryvision import ImageBinaryClassifier
    from binaryvision.features.cache import shared_cache

    budget = None if args.time_budget == "none" else args.time_budget
    budget = budget if budget in (None, "auto") else float(budget)
    for seed in args.seeds:
        shared_cache().clear()  # first fit, features not cached
        started = time.perf_counter()
        clf = ImageBinaryClassifier(random_state=seed, verbose=0, time_budget=budget)
        clf.fit(args.data / "train")
        seconds = time.perf_counter() - started
        report = clf.evaluate(args.data / "valid")
        m, y = report.metrics, report.y_true
        raw = report.y_prob_uncalibrated
        rng = np.random.default_rng(seed)
        row = {
            "data": args.data.name,
            "seed": seed,
            "time_budget": args.time_budget,
            "accuracy": round(m["accuracy"], 4),
            "balanced_accuracy": round(m["balanced_accuracy"], 4),
            "ece": round(m["ece"], 4),
            "log_loss": round(m["log_loss"], 4),
            "log_loss_ci95": _interval(y, report.y_prob, rng),
            "log_loss_uncalibrated": None if raw is None else round(log_loss(y, raw), 4),
            "log_loss_uncalibrated_ci95": None if raw is None else _interval(y, raw, rng),
            "seconds": round(seconds, 1),
            "kept": clf.selection_["kept"] if clf.selection_ else None,
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
