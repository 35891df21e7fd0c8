"""Benchmark: does the default (``time_budget="auto"``) stay at least as accurate as the frozen
head on photo sets other than hot dog's fixed split? One JSON line per set and seed.

    python bench/generalization.py [--sets resplit small imbalanced upside_down]
                                   [--seeds 0 1 2] [--data PATH]

No other photo set is on this machine and nothing can be downloaded, so the sets are made
from hot dog's 998 photos (``train/`` and ``valid/`` pooled), each a different task or
regime than the one the defaults were designed on:

* ``resplit``: fresh stratified splits, about 798 photos to fit and 200 to test (other
  photos than ``valid/``, so nothing tuned on ``valid/`` carries over); seed ``k`` tests
  on fold ``k % 5`` of one 5-fold split, so seeds 0 to 4 test every photo once, and a
  last line then gives the ECE over all of them (998 predictions, about half the noise
  of 209);
* ``small``: 25 photos per class to fit, the other 948 to test;
* ``imbalanced``: 320 photos of one class and 80 of the other to fit (4:1), and the
  rest in the same proportion to test (the probabilities are calibrated to the training
  images' class balance; a test set with another balance would measure that shift);
* ``upside_down``: another task on the same photos: upright against rotated by 180
  degrees (each photo in one class only), 600 to fit and 398 to test.

For each set and seed the default fit runs first with no feature cached (as a new user's
first fit; its time budget is then honest), then ``time_budget=None`` (the frozen head
alone with a temperature always: the library's behaviour before the autopilot and
``calibration="auto"``) on the same photos. The JSON has
both: accuracy, balanced accuracy, log loss, ECE, the candidate kept, and the default's
seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import HOTDOG

SETS = ("resplit", "small", "imbalanced", "upside_down")


def pool(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every photo of ``data/train`` and ``data/valid`` with its class folder's name."""
    from binaryvision.data.sources import find_images

    paths, labels = [], []
    for part in ("train", "valid"):
        for cls in sorted(p.name for p in (data / part).iterdir() if p.is_dir()):
            found = find_images(data / part / cls)
            paths += found
            labels += [cls] * len(found)
    return np.array(paths), np.array(labels)


def split(name: str, paths, labels, seed: int, scratch: Path):
    """(fit paths, fit labels, test paths, test labels) of one generated set."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    if name == "upside_down":
        from PIL import Image, ImageOps

        order = rng.permutation(len(paths))
        new_paths, new_labels = [], []
        for rank, i in enumerate(order):
            target = scratch / f"{rank:04d}.jpg"
            with Image.open(paths[i]) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                flipped = rank % 2 == 1
                (im.rotate(180) if flipped else im).save(target, quality=90)
            new_paths.append(str(target))
            new_labels.append("upside_down" if flipped else "upright")
        paths, labels = np.array(new_paths), np.array(new_labels)
        classes = np.unique(labels)
        n_fit = {c: 300 for c in classes}
    elif name == "resplit":
        from sklearn.model_selection import StratifiedKFold

        folds = StratifiedKFold(5, shuffle=True, random_state=0).split(paths, labels)
        fit, test = list(folds)[seed % 5]
        return paths[fit], labels[fit], paths[test], labels[test]
    elif name == "small":
        n_fit = {c: 25 for c in classes}
    elif name == "imbalanced":
        major = classes[seed % 2]
        n_fit = {c: 320 if c == major else 80 for c in classes}
    else:
        raise ValueError(f"--sets: unknown set {name!r}; expected one of {SETS}")
    fit = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[: n_fit[c]] for c in classes]
    )
    test = np.setdiff1d(np.arange(len(paths)), fit)
    if name == "imbalanced":  # the test photos in the same 4:1 proportion as the fit's
        minor = rng.permutation(test[labels[test] != major])
        test = np.sort(
            np.r_[test[labels[test] == major], minor[: np.sum(labels[test] == major) // 4]]
        )
    return paths[fit], labels[fit], paths[test], labels[test]


def measure(clf, paths, labels) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """Accuracy, balanced accuracy, log loss and ECE of a fitted model on test photos, and
    the labels (0/1) and positive-class probabilities they came from."""
    report = clf.evaluate(list(paths), list(labels))
    m = report.metrics
    keys = ("accuracy", "balanced_accuracy", "log_loss", "ece")
    return {k: round(float(m[k]), 4) for k in keys}, (report.y_true, report.y_prob)


def run(name: str, data: Path, seed: int) -> tuple[dict, dict]:
    """One set, one seed: the default's first fit, then the frozen head on the same photos."""
    from binaryvision import ImageBinaryClassifier
    from binaryvision.features.cache import shared_cache

    with tempfile.TemporaryDirectory() as scratch:
        fit_x, fit_y, test_x, test_y = split(name, *pool(data), seed, Path(scratch))
        shared_cache().clear()  # the default's fit is a first fit, features not cached
        started = time.perf_counter()
        auto = ImageBinaryClassifier(random_state=seed, verbose=0).fit(list(fit_x), list(fit_y))
        seconds = time.perf_counter() - started
        # the library before the autopilot: the frozen head, a temperature always
        frozen = ImageBinaryClassifier(
            random_state=seed, verbose=0, time_budget=None, calibration="temperature"
        )
        frozen.fit(list(fit_x), list(fit_y))
        row = {"set": name, "seed": seed, "n_fit": len(fit_x), "n_test": len(test_x)}
        predictions = {}
        for key, clf in (("default", auto), ("frozen_head", frozen)):
            row[key], predictions[key] = measure(clf, test_x, test_y)
        row["default"].update(kept=auto.selection_["kept"], seconds=round(seconds, 1))
        row["default"]["calibration"] = auto.calibration_report_["note"]
    return row, predictions


def pooled(name: str, seeds: list[int], predictions: list[dict]) -> dict:
    """ECE and log loss over the test photos of every seed, with a calibrated model's ECE."""
    from sklearn.metrics import log_loss

    from binaryvision.decisions.metrics import ece_of_a_calibrated_model, expected_calibration_error

    row: dict = {"set": f"{name}_pooled", "seeds": seeds}
    for key in ("default", "frozen_head"):
        y = np.concatenate([p[key][0] for p in predictions])
        p = np.concatenate([p[key][1] for p in predictions])
        floor, floor95 = ece_of_a_calibrated_model(p)
        row[key] = {
            "n": len(y),
            "accuracy": round(float(((p >= 0.5) == (y == 1)).mean()), 4),
            "log_loss": round(float(log_loss(y, p, labels=[0, 1])), 4),
            "ece": round(float(expected_calibration_error(y, p)), 4),
            "ece_if_calibrated": [round(floor, 4), round(floor95, 4)],
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", type=Path, default=HOTDOG)
    args = parser.parse_args()
    for name in args.sets:
        predictions = []
        for seed in args.seeds:
            row, kept = run(name, args.data, seed)
            predictions.append(kept)
            print(json.dumps(row), flush=True)
        if name == "resplit" and len(args.seeds) > 1:
            print(json.dumps(pooled(name, args.seeds, predictions)), flush=True)


if __name__ == "__main__":
    main()
