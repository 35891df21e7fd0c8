"""ImageBinaryClassifier inside scikit-learn's tools, on image paths and uint8 arrays (issue 6).

``X`` is a list of image paths (str) or a uint8 array ``(n, H, W, 3)`` of the same images;
``y`` holds the string labels ``"cat"`` / ``"dog"``. Every tool is used the way its
documentation shows, with ``n_jobs=1`` (the machines running the suite have 2 cores).

``valid_size`` inside cross-validation: each fit holds out part of *its* training fold
(stratified) for early stopping and calibration, so a fold of the 40-image set shrinks
twice. The grid search over ``lr`` and the pipelines use ``valid_size=0``: every training
image trains the head, nothing is held out, the probabilities are the raw sigmoid and a
refit sees exactly ``len(X)`` training images. The head-hyperparameter and
``cross_validate`` tests (and the clone test, outside CV) use ``valid_size=0.25``: of a
3-fold training fold of ~27 images,
7 are held out (at least 3 per class) and 10 per class train the head, above the 5 per
class below which the classifier warns (a DataWarning, an error in this suite). The other
tools keep the default 0.2 (a 2-fold training fold of 20 images: 4 held out, 8 per class
for the head).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from conftest import tiny, write_class_tree
from PIL import Image
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    RocCurveDisplay,
    confusion_matrix,
    f1_score,
    make_scorer,
    roc_auc_score,
)
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from binaryvision import ImageBinaryClassifier, Trainer

try:  # scikit-learn >= 1.5 (the package supports >= 1.3)
    from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV
except ImportError:
    FixedThresholdClassifier = TunedThresholdClassifierCV = None
try:  # scikit-learn >= 1.6
    from sklearn.frozen import FrozenEstimator
except ImportError:
    FrozenEstimator = None

needs_threshold_classifiers = pytest.mark.skipif(
    TunedThresholdClassifierCV is None, reason="scikit-learn < 1.5 has no threshold classifiers"
)

KINDS = ["paths", "array"]
SCORINGS = ["accuracy", "roc_auc", "neg_log_loss"]


def cpu_tiny(**kwargs) -> ImageBinaryClassifier:
    """conftest's tiny() on the CPU (bitwise reproducible), fewer epochs at a higher lr.

    The frozen random-init tiny backbone separates the two synthetic classes (ROC-AUC 1 in
    every fold), but with 6 epochs at conftest's lr=0.3 the head's bias lags and some folds
    answer one class at threshold 0.5; lr=1.0 gets there in 6 epochs in every fold.
    """
    kwargs.setdefault("trainer", Trainer(device="cpu", num_workers=0, progress=False))
    kwargs.setdefault("epochs", 6)
    kwargs.setdefault("lr", 1.0)
    return tiny(**kwargs)


def folds(n_splits: int) -> StratifiedKFold:
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=0)


def load_array(paths) -> np.ndarray:
    """Decode image files into one uint8 array (n, H, W, 3)."""
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def to_paths(names, root: str) -> list[str]:
    """Relative image names to full paths (the first step of a pipeline)."""
    return [os.path.join(root, name) for name in names]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    """40 training images (20 per class) and 12 test images, as paths and as arrays."""
    root = tmp_path_factory.mktemp("interplay")
    write_class_tree(root / "train", 20, seed=11)
    write_class_tree(root / "test", 6, seed=12)

    def listing(folder: Path) -> tuple[list[str], np.ndarray]:
        files = sorted(folder.rglob("*.png"))
        return [str(f) for f in files], np.array([f.parent.name for f in files])

    X, y = listing(root / "train")
    X_test, y_test = listing(root / "test")
    return {
        "root": str(root),
        "y": y,
        "y_test": y_test,
        "paths": (X, X_test),
        "array": (load_array(X), load_array(X_test)),
    }


def take(X, index):
    """Rows of a list or an array."""
    return X[index] if isinstance(X, np.ndarray) else [X[i] for i in index]


def weights(clf: ImageBinaryClassifier) -> dict[str, torch.Tensor]:
    return clf.model_.state_dict()


def assert_same_weights(a: ImageBinaryClassifier, b: ImageBinaryClassifier) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert different == []


# ============================================================================ clone


@pytest.mark.parametrize("kind", KINDS)
def test_clone_unfitted_and_fitted(images, kind):
    """clone() gives an unfitted twin with equal parameters, which fits to the same weights."""
    X, X_test = images[kind]
    original = cpu_tiny(random_state=3, valid_size=0.25)
    unfitted_twin = clone(original)
    assert unfitted_twin is not original
    assert joblib.hash(unfitted_twin.get_params()) == joblib.hash(original.get_params())
    assert unfitted_twin.trainer is not original.trainer  # parameters are copied, not shared

    original.fit(X, images["y"])
    fitted_twin = clone(original)
    assert not [a for a in vars(fitted_twin) if a.endswith("_") and not a.startswith("_")]
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(fitted_twin)
    with pytest.raises(SklearnNotFittedError):
        fitted_twin.predict_proba(X_test)
    assert joblib.hash(fitted_twin.get_params()) == joblib.hash(original.get_params())

    for twin in (unfitted_twin, fitted_twin):
        twin.fit(X, images["y"])
        assert_same_weights(twin, original)
        assert twin.threshold_ == original.threshold_
        np.testing.assert_array_equal(twin.predict_proba(X_test), original.predict_proba(X_test))
    other_seed = clone(original).set_params(random_state=4).fit(X, images["y"])
    assert any(  # the comparison above can tell two fits apart
        not torch.equal(v, weights(original)[k]) for k, v in weights(other_seed).items()
    )


# ============================================================================ grid search


def assert_finite_results(search: GridSearchCV, metrics: list[str], n_splits: int) -> None:
    n = len(search.cv_results_["params"])
    for metric in metrics:
        for key in [f"mean_test_{metric}"] + [f"split{i}_test_{metric}" for i in range(n_splits)]:
            values = np.asarray(search.cv_results_[key], dtype=float)
            assert values.shape == (n,), key
            assert np.isfinite(values).all(), (key, values)


@pytest.mark.parametrize("scoring", SCORINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_grid_search_over_lr(images, kind, scoring):
    """GridSearchCV over lr, each scoring, refit=True: a grid value wins and the refit predicts."""
    X, X_test = images[kind]
    grid = {"lr": [0.3, 1.0]}
    search = GridSearchCV(
        cpu_tiny(valid_size=0),
        grid,
        scoring=scoring,
        cv=folds(2),
        refit=True,
        n_jobs=1,
        error_score="raise",
    )
    search.fit(X, images["y"])
    assert search.best_params_ in [{"lr": v} for v in grid["lr"]]
    assert_finite_results(search, ["score"], 2)
    assert np.isfinite(search.best_score_)
    floor = {"accuracy": 0.75, "roc_auc": 0.85, "neg_log_loss": -np.log(2)}[scoring]  # coin: ln 2
    assert search.best_score_ >= floor, search.cv_results_["mean_test_score"]
    best = search.best_estimator_
    check_is_fitted(best)
    assert best.lr == search.best_params_["lr"]
    assert best.n_train_ == len(X)  # refit on every image (valid_size=0)
    predicted = search.predict(X_test)
    assert set(predicted.tolist()) <= {"cat", "dog"}
    assert np.mean(predicted == images["y_test"]) >= 0.75
    proba = search.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_grid_search_over_head_hyperparameters(images):
    """epochs, dropout and weight_decay, 3 stratified folds, three metrics, a held-out part."""
    X, X_test = images["paths"]
    grid = [{"epochs": [3, 8]}, {"dropout": [0.0, 0.5]}, {"weight_decay": [0.0, 0.1]}]
    search = GridSearchCV(
        cpu_tiny(valid_size=0.25),
        grid,
        scoring=SCORINGS,
        refit="neg_log_loss",
        cv=folds(3),
        n_jobs=1,
        error_score="raise",
    )
    search.fit(X, images["y"])
    candidates = [{name: v} for part in grid for name, values in part.items() for v in values]
    assert len(search.cv_results_["params"]) == len(candidates) == 6
    assert search.best_params_ in candidates
    assert_finite_results(search, SCORINGS, 3)
    assert search.cv_results_["mean_test_accuracy"].max() >= 0.75
    assert search.cv_results_["mean_test_roc_auc"].max() >= 0.85
    best = search.best_estimator_
    check_is_fitted(best)
    assert {k: best.get_params()[k] for k in search.best_params_} == search.best_params_
    assert best.n_train_ + best.n_valid_ == len(X) and best.n_valid_ == 10
    # the refit's decisions came from held-out evidence (calibration="auto" then fits a
    # temperature or keeps the raw sigmoid, as the check says)
    assert best.calibration_report_["n_images"] > 0 and "note" in best.calibration_report_
    assert search.score(X_test, images["y_test"]) > -np.log(2)  # refit metric: neg_log_loss
    assert np.mean(search.predict(X_test) == images["y_test"]) >= 0.75


# ============================================================================ cross-validation


def test_cross_val_score_and_cross_validate_on_paths(images):
    """cross_val_score scores each fold; cross_validate returns fitted per-fold estimators."""
    X, _ = images["paths"]
    y = images["y"]
    scores = cross_val_score(cpu_tiny(), X, y, cv=folds(3), n_jobs=1, error_score="raise")
    assert scores.shape == (3,)
    assert np.all(scores >= 0.75), scores

    estimator = cpu_tiny(valid_size=0.25)
    result = cross_validate(
        estimator,
        X,
        y,
        cv=folds(3),
        scoring=SCORINGS,
        return_estimator=True,
        return_indices=True,
        n_jobs=1,
        error_score="raise",
    )
    fitted = result["estimator"]
    assert len(fitted) == 3 and len({id(e) for e in fitted}) == 3
    assert all(e is not estimator for e in fitted)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(estimator)  # the estimator passed in is left unfitted
    for metric in SCORINGS:
        assert np.isfinite(result[f"test_{metric}"]).all(), result
    for k, (clf, train, test) in enumerate(
        zip(fitted, result["indices"]["train"], result["indices"]["test"])
    ):
        check_is_fitted(clf)
        assert clf.n_train_ + clf.n_valid_ == len(train)
        X_fold, y_fold = take(X, test), y[test]
        assert clf.score(X_fold, y_fold) == pytest.approx(result["test_accuracy"][k])
        auc = roc_auc_score(y_fold == "dog", clf.decision_function(X_fold))
        assert auc == pytest.approx(result["test_roc_auc"][k])


# ============================================================================ pipeline


def test_pipeline_maps_names_to_paths(images):
    """FunctionTransformer (relative names to paths) then the classifier, through a Pipeline."""
    X, X_test = images["paths"]
    root = images["root"]
    names = [os.path.relpath(p, root) for p in X]
    names_test = [os.path.relpath(p, root) for p in X_test]
    step = FunctionTransformer(functools.partial(to_paths, root=root))
    pipe = make_pipeline(step, cpu_tiny(valid_size=0))
    assert pipe.fit(names, images["y"]) is pipe
    direct = cpu_tiny(valid_size=0).fit(X, images["y"])
    np.testing.assert_array_equal(pipe.predict(names_test), direct.predict(X_test))
    np.testing.assert_allclose(pipe.predict_proba(names_test), direct.predict_proba(X_test))
    np.testing.assert_allclose(pipe.decision_function(names_test), direct.decision_function(X_test))
    assert pipe.score(names_test, images["y_test"]) == direct.score(X_test, images["y_test"])
    assert pipe.score(names_test, images["y_test"]) >= 0.75
    assert list(pipe.classes_) == ["cat", "dog"]


def test_pipeline_loads_images_into_an_array(images):
    """FunctionTransformer decoding paths into a uint8 array, then the classifier."""
    X, X_test = images["paths"]
    pipe = make_pipeline(FunctionTransformer(load_array), cpu_tiny(valid_size=0))
    pipe.fit(X, images["y"])
    direct = cpu_tiny(valid_size=0).fit(images["array"][0], images["y"])
    np.testing.assert_allclose(pipe.predict_proba(X_test), direct.predict_proba(images["array"][1]))
    assert pipe.score(X_test, images["y_test"]) >= 0.75


def test_grid_search_through_pipeline(images):
    """GridSearchCV reaches the classifier's parameters through the pipeline (step__param)."""
    X, X_test = images["paths"]
    pipe = make_pipeline(FunctionTransformer(load_array), cpu_tiny(valid_size=0))
    search = GridSearchCV(
        pipe,
        {"imagebinaryclassifier__lr": [0.3, 1.0]},
        scoring="roc_auc",
        cv=folds(2),
        n_jobs=1,
        error_score="raise",
    )
    search.fit(X, images["y"])
    assert search.best_params_["imagebinaryclassifier__lr"] in (0.3, 1.0)
    best = search.best_estimator_[-1]
    assert best.lr == search.best_params_["imagebinaryclassifier__lr"]
    check_is_fitted(best)
    assert search.score(X_test, images["y_test"]) >= 0.85


# ============================================================================ thresholds


@needs_threshold_classifiers
@pytest.mark.parametrize("scoring", ["balanced_accuracy", "f1"])
def test_tuned_threshold_classifier_cv(images, scoring):
    """TunedThresholdClassifierCV tunes a finite threshold on predict_proba and predicts by it.

    With string labels, "f1" needs its positive label: make_scorer(f1_score, pos_label=...),
    as for any scikit-learn classifier.
    """
    X, X_test = images["paths"]
    scorer = make_scorer(f1_score, pos_label="dog") if scoring == "f1" else scoring
    tuned = TunedThresholdClassifierCV(
        cpu_tiny(), scoring=scorer, cv=folds(2), store_cv_results=True, n_jobs=1
    )
    tuned.fit(X, images["y"])
    assert np.isfinite(tuned.best_threshold_) and 0.0 <= tuned.best_threshold_ <= 1.0
    assert tuned.best_score_ >= 0.75
    assert np.isfinite(tuned.cv_results_["scores"]).all()
    inner = tuned.estimator_
    assert isinstance(inner, ImageBinaryClassifier)
    check_is_fitted(inner)
    p_dog = inner.predict_proba(X_test)[:, list(inner.classes_).index("dog")]
    expected = np.where(p_dog >= tuned.best_threshold_, "dog", "cat")
    np.testing.assert_array_equal(tuned.predict(X_test), expected)
    assert np.mean(tuned.predict(X_test) == images["y_test"]) >= 0.75


@needs_threshold_classifiers
@pytest.mark.parametrize(
    "frozen",
    [
        pytest.param(False, id="refit"),
        pytest.param(
            True,
            id="frozen",
            marks=pytest.mark.skipif(FrozenEstimator is None, reason="scikit-learn < 1.6"),
        ),
    ],
)
def test_fixed_threshold_classifier(images, frozen):
    """FixedThresholdClassifier applies its threshold to predict_proba, refitted or frozen."""
    X, X_test = images["paths"]
    base = cpu_tiny().fit(X, images["y"])
    p_dog = base.predict_proba(X_test)[:, 1]
    threshold = float(np.sort(p_dog)[3:5].mean())  # 8 of 12 test images at or above it
    estimator = FrozenEstimator(base) if frozen else clone(base)
    fixed = FixedThresholdClassifier(estimator, threshold=threshold).fit(X, images["y"])
    predicted = fixed.predict(X_test)
    np.testing.assert_array_equal(predicted, np.where(p_dog >= threshold, "dog", "cat"))
    assert (predicted == "dog").sum() == 8  # not the classifier's own 0.5 answer
    np.testing.assert_allclose(fixed.predict_proba(X_test)[:, 1], p_dog)


# ============================================================================ calibration


@pytest.mark.parametrize("kind", KINDS)
def test_calibrated_classifier_cv(images, kind):
    """CalibratedClassifierCV(cv=2) fits one classifier and one calibrator per fold."""
    X, X_test = images[kind]
    calibrated = CalibratedClassifierCV(cpu_tiny(), cv=folds(2), n_jobs=1)
    calibrated.fit(X, images["y"])
    assert list(calibrated.classes_) == ["cat", "dog"]
    assert len(calibrated.calibrated_classifiers_) == 2
    for member in calibrated.calibrated_classifiers_:
        assert isinstance(member.estimator, ImageBinaryClassifier)
        check_is_fitted(member.estimator)
    proba = calibrated.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(images["y_test"] == "dog", proba[:, 1]) >= 0.85
    assert calibrated.score(X_test, images["y_test"]) >= 0.75


# ============================================================================ displays


def test_roc_and_confusion_matrix_displays_from_estimator(images):
    """RocCurveDisplay and ConfusionMatrixDisplay.from_estimator accept a list of paths."""
    from matplotlib.figure import Figure

    X, X_test = images["paths"]
    y_test = images["y_test"]
    clf = cpu_tiny().fit(X, images["y"])
    figure = Figure()
    ax_roc, ax_cm = figure.subplots(1, 2)
    roc = RocCurveDisplay.from_estimator(clf, X_test, y_test, ax=ax_roc)
    expected_auc = roc_auc_score(y_test == "dog", clf.predict_proba(X_test)[:, 1])
    assert roc.roc_auc == pytest.approx(expected_auc)
    assert roc.roc_auc >= 0.85
    assert roc.ax_ is ax_roc and roc.line_ is not None
    cm = ConfusionMatrixDisplay.from_estimator(clf, X_test, y_test, ax=ax_cm)
    np.testing.assert_array_equal(
        cm.confusion_matrix, confusion_matrix(y_test, clf.predict(X_test), labels=["cat", "dog"])
    )
    assert list(cm.display_labels) == ["cat", "dog"]
    assert cm.confusion_matrix.sum() == len(X_test)


# ============================================================================ feature cache


def test_grid_search_runs_the_backbone_once_per_image(tmp_path, monkeypatch):
    """A 3-fold GridSearchCV of 4 candidates reuses backbone features across its 13 fits.

    The backbone is a custom nn.Module with a forward hook counting the images it sees
    (the hook travels with the module through clone's and fit's deep copies). Without a
    cache shared by the clones every fit would run its whole training fold and test fold
    through the backbone: 13 x 40 images. The bound 2 x 40 only holds when they share.
    """
    root = write_class_tree(tmp_path / "fresh", 20, seed=99)  # images no other test uses
    files = sorted(root.rglob("*.png"))
    X, y = [str(f) for f in files], np.array([f.parent.name for f in files])
    n_distinct = len(X)

    seen = {"images": 0, "calls": 0}

    def count(module, inputs, output):
        batch = inputs[0]
        if batch.any():  # ModuleBackbone measures num_features on a batch of zeros: not data
            seen["images"] += batch.shape[0]
            seen["calls"] += 1

    with torch.random.fork_rng(devices=[]):  # the test leaves the global RNG alone
        torch.manual_seed(0)
        module = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2),
            torch.nn.ReLU(),
        )
    module.register_forward_hook(count)

    predicted_rows = {"rows": 0}  # a second count: rows out of Trainer.predict_logits
    original = Trainer.predict_logits

    def counting_predict_logits(self, model, loader, **kwargs):
        out = original(self, model, loader, **kwargs)
        predicted_rows["rows"] += len(out[0] if isinstance(out, tuple) else out)
        return out

    monkeypatch.setattr(Trainer, "predict_logits", counting_predict_logits)

    clf = cpu_tiny(backbone=module, pretrained=False, image_size=32, epochs=3, valid_size=0.25)
    grid = {"lr": [0.1, 0.3], "dropout": [0.0, 0.3]}
    search = GridSearchCV(clf, grid, cv=folds(3), n_jobs=1, error_score="raise")
    search.fit(X, y)
    n_fits = 4 * 3 + 1
    print(
        f"\nfeature cache: {n_fits} fits on {n_distinct} distinct images ran "
        f"{seen['images']} images through the backbone in {seen['calls']} forward calls "
        f"({seen['images'] / n_distinct:.2f} per image; {predicted_rows['rows']} rows from "
        f"Trainer.predict_logits); without sharing: about {n_fits * n_distinct}"
    )
    check_is_fitted(search.best_estimator_)
    assert seen["images"] >= n_distinct  # the hook saw every image at least once
    assert seen["images"] <= 2 * n_distinct
