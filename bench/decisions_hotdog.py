"""Benchmark: calibration, tuned thresholds, conformal sets and class weights on hot dogs.

    python bench/decisions_hotdog.py [--data PATH] [--seeds 0 1 2]

Everything that is tuned (the calibrator, the threshold, the conformal scores) is fitted
on a validation split taken from ``train/`` only; every figure is measured on ``valid/``,
which no fit ever sees. Prints one JSON line per seed and a summary; asserts nothing.

Figures, per seed:
  * ECE (15 equal-width bins), Brier score and log loss on valid/, before and after
    temperature scaling (and the ECE after Platt and isotonic, for comparison), with a
    bootstrap 90% interval of the ECE drop (ECE on 209 photos is a noisy figure);
  * the threshold tuned for a target precision of 0.95, and the precision and recall it
    gives on valid/;
  * the empirical coverage of ``predict_set(coverage=0.9)`` on valid/, and how many
    images got both labels;
  * balanced accuracy on valid/ of a model trained on an imbalanced subset of train/
    (every hot dog, one tenth of the others), unweighted and with class_weight="balanced".
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import log_loss

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hotdog"


def run(data: Path, seed: int) -> dict:
    from binaryvision import BinaryVisionWarning, ImageBinaryClassifier
    from binaryvision.data import as_image_set
    from binaryvision.decisions.metrics import expected_calibration_error as ece

    train, valid = data / "train", data / "valid"
    out: dict = {"seed": seed}
    started = time.perf_counter()
    # One estimator, refitted with set_params: its per-image feature cache means the
    # backbone runs once per photo for the whole benchmark.
    clf = ImageBinaryClassifier(random_state=seed, verbose=0).fit(train)
    out["first_fit_seconds"] = round(time.perf_counter() - started, 1)
    report = clf.evaluate(valid)
    out["valid_accuracy"] = round(report.accuracy, 4)
    out["ece_before"] = round(report.ece_uncalibrated, 4)
    out["ece_after"] = round(report.ece, 4)
    out["brier_before"] = round(report.brier_uncalibrated, 4)
    out["brier_after"] = round(report.brier, 4)
    out["temperature"] = round(clf.calibrator_.params_["temperature"], 3)
    out["log_loss_before"] = round(log_loss(report.y_true, report.y_prob_uncalibrated), 4)
    out["log_loss_after"] = round(report.log_loss, 4)
    # ECE on 209 photos is noisy: a bootstrap interval of (before - after) shows how much
    diffs = []
    boot = np.random.default_rng(seed)
    for _ in range(1000):
        i = boot.integers(0, len(report.y_true), len(report.y_true))
        y, before, after = report.y_true[i], report.y_prob_uncalibrated[i], report.y_prob[i]
        diffs.append(ece(y, before) - ece(y, after))
    out["ece_drop_90pct_interval"] = [round(float(q), 4) for q in np.quantile(diffs, [0.05, 0.95])]

    sets = clf.predict_set(valid, coverage=0.9, return_mask=True)
    labelled = as_image_set(valid)
    truth = np.array([list(clf.classes_).index(v) for v in labelled.labels])
    out["coverage_at_0.9"] = round(float(sets[np.arange(len(truth)), truth].mean()), 4)
    out["both_labels_at_0.9"] = int(sets.all(axis=1).sum())

    for method in ("platt", "isotonic"):
        clf.set_params(calibration=method).fit(train)
        out[f"ece_{method}"] = round(clf.evaluate(valid).ece, 4)

    clf.set_params(calibration="temperature", threshold={"precision": 0.95})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BinaryVisionWarning)
        clf.fit(train)
    report = clf.evaluate(valid)
    out["precision_target"] = 0.95
    out["precision_threshold"] = round(clf.threshold_, 4)
    out["precision_target_met_on_split"] = clf.threshold_choice_.met
    out["precision_on_valid"] = round(report.precision, 4)
    out["recall_on_valid"] = round(report.recall, 4)
    out["precision_warning"] = [str(w.message) for w in caught] or None

    # imbalanced subset of train/: every hot dog, one tenth of the others
    data_train = as_image_set(train)
    rng = np.random.default_rng(seed)
    hot = [i for i, v in enumerate(data_train.labels) if v == "hot_dog"]
    other = [i for i, v in enumerate(data_train.labels) if v != "hot_dog"]
    keep = sorted(hot + rng.choice(other, size=len(other) // 10, replace=False).tolist())
    items = [data_train.items[i] for i in keep]
    labels = [data_train.labels[i] for i in keep]
    out["imbalanced_counts"] = {"hot_dog": len(hot), "not_hot_dog": len(other) // 10}
    for weight in (None, "balanced"):
        clf.set_params(threshold=0.5, class_weight=weight).fit(items, labels)
        report = clf.evaluate(valid)
        key = "unweighted" if weight is None else "balanced"
        out[f"imbalanced_{key}_balanced_accuracy"] = round(report.balanced_accuracy, 4)
        out[f"imbalanced_{key}_recall_not_hot_dog"] = round(report.recall, 4)
    out["total_seconds"] = round(time.perf_counter() - started, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        rows.append(run(args.data, seed))
        print(json.dumps(rows[-1]), flush=True)
    if len(rows) > 1:
        keys = [k for k, v in rows[0].items() if isinstance(v, float) and k != "seed"]
        summary = {k: [r[k] for r in rows] for k in keys}
        print(json.dumps({"summary": {k: [min(v), max(v)] for k, v in summary.items()}}))


if __name__ == "__main__":
    main()
