"""scikit-learn compatibility of ImageBinaryClassifier.

scikit-learn's own checks that need no data are called directly. The checks that fit on
numeric tables (``X`` of shape ``(n, features)``) cannot apply to an image classifier, so
their intent is re-done below on image paths with the tiny backbone: idempotent fit,
pickling, subset and order invariance, clone, fit returning self, labels from
``classes_``, parameters left alone by fit, and the model-selection tools.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from conftest import tiny, write_class_tree
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils import estimator_checks
from sklearn.utils.validation import check_is_fitted

from binaryvision import Callback, ImageBinaryClassifier, NotFittedError, Trainer

NAME = "ImageBinaryClassifier"


def cpu_tiny(**kwargs) -> ImageBinaryClassifier:
    """conftest's tiny() pinned to the CPU, where float32 results are reproducible."""
    kwargs.setdefault("trainer", Trainer(device="cpu", num_workers=0, progress=False))
    return tiny(**kwargs)


# ============================================================================ sklearn's checks

#: Checks that never fit on numeric data. Of the rest, the tabular-fit ones
#: (check_dont_overwrite_parameters, check_fit_check_is_fitted, check_fit_idempotent,
#: check_estimators_pickle, check_methods_subset_invariance, ...) are re-done on images below.
DATA_FREE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimators_unfitted",  # calls predict* on a numeric array, before any fit
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
]

KNOWN_FAILURES: dict[str, str] = {}


def _check_params():
    for name in DATA_FREE_CHECKS:
        marks = []
        if not hasattr(estimator_checks, name):
            marks.append(pytest.mark.skip(reason=f"{name} is not in this scikit-learn"))
        elif name in KNOWN_FAILURES:
            marks.append(
                pytest.mark.xfail(strict=True, raises=AssertionError, reason=KNOWN_FAILURES[name])
            )
        yield pytest.param(name, marks=marks, id=name)


ESTIMATORS = {
    "defaults": lambda: ImageBinaryClassifier(),
    "tiny-with-trainer": tiny,
}


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("check_name", list(_check_params()))
def test_sklearn_data_free_check(check_name, estimator):
    """One of scikit-learn's own estimator checks, called as check(name, estimator)."""
    check = getattr(estimator_checks, check_name)
    check(NAME, ESTIMATORS[estimator]())


def test_unfitted_error_is_caught_as_sklearns(tmp_path):
    """``except sklearn.exceptions.NotFittedError`` catches an unfitted predict."""
    with pytest.raises(SklearnNotFittedError):
        ImageBinaryClassifier().predict([str(tmp_path / "a.png")])


# ============================================================================ image versions


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """Training paths and labels (20 per class), plus held-out test paths and labels.

    20 per class, because the frozen random-init tiny backbone needs that many for the
    linear head to beat chance reliably in each half of a 2-fold split.
    """
    root = tmp_path_factory.mktemp("sk")
    train = write_class_tree(root / "train", 20, seed=5)
    test = write_class_tree(root / "test", 5, seed=6)

    def listing(folder: Path) -> tuple[list[str], np.ndarray]:
        files = sorted(folder.rglob("*.png"))
        return [str(f) for f in files], np.array([f.parent.name for f in files])

    X, y = listing(train)
    X_test, y_test = listing(test)
    return {"X": X, "y": y, "X_test": X_test, "y_test": y_test}


@pytest.fixture(scope="module")
def fitted(data) -> ImageBinaryClassifier:
    """A tiny classifier fitted on the list of training paths."""
    return cpu_tiny().fit(data["X"], data["y"])


def fresh(clf: ImageBinaryClassifier) -> ImageBinaryClassifier:
    """A copy with no feature cache, so every prediction is computed from the images."""
    return pickle.loads(pickle.dumps(clf))


def outputs(clf: ImageBinaryClassifier, X: list) -> dict[str, np.ndarray]:
    return {
        "predict": clf.predict(X),
        "predict_proba": clf.predict_proba(X),
        "decision_function": clf.decision_function(X),
    }


def assert_outputs_equal(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for method in a:
        if method == "predict":
            np.testing.assert_array_equal(a[method], b[method], err_msg=method)
        else:
            np.testing.assert_allclose(a[method], b[method], rtol=1e-5, atol=atol, err_msg=method)


def test_fit_returns_self_and_is_fitted_only_after_fit(data):
    """check_estimators_fit_returns_self and check_fit_check_is_fitted, on images."""
    clf = cpu_tiny()
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(clf)
    assert clf.fit(data["X"], data["y"]) is clf
    check_is_fitted(clf)


def test_fit_idempotent_with_same_random_state(data):
    """check_fit_idempotent on images: refitting, or a fresh twin, predicts identically."""
    clf = cpu_tiny(random_state=7)
    first = outputs(clf.fit(data["X"], data["y"]), data["X_test"])
    again = outputs(clf.fit(data["X"], data["y"]), data["X_test"])
    twin = outputs(cpu_tiny(random_state=7).fit(data["X"], data["y"]), data["X_test"])
    assert_outputs_equal(first, again, atol=1e-9)
    assert_outputs_equal(first, twin, atol=1e-9)


def test_pickle_round_trip_predicts_the_same(fitted, data):
    """check_estimators_pickle on images: every prediction method and attribute survive."""
    twin = pickle.loads(pickle.dumps(fitted))
    assert_outputs_equal(outputs(twin, data["X_test"]), outputs(fitted, data["X_test"]))
    assert list(twin.classes_) == list(fitted.classes_)
    assert twin.threshold_ == fitted.threshold_
    assert joblib.hash(twin.get_params()) == joblib.hash(fitted.get_params())


@pytest.mark.parametrize("fine_tune_epochs", [0, 1], ids=["frozen-features", "fine-tuned"])
def test_subset_and_order_invariance(data, fine_tune_epochs):
    """check_methods_subset_invariance and check_methods_sample_order_invariance on images."""
    clf = cpu_tiny(fine_tune_epochs=fine_tune_epochs).fit(data["X"], data["y"])
    X = data["X_test"]
    full = outputs(fresh(clf), X)
    single = fresh(clf)  # one image per call: every call computes a batch of one
    one_by_one = [outputs(single, [x]) for x in X]
    for method in full:
        rows = np.concatenate([o[method] for o in one_by_one])
        assert_outputs_equal({method: rows}, {method: full[method]})
    subset = [1, 4, 6]
    assert_outputs_equal(
        outputs(fresh(clf), [X[i] for i in subset]), {k: v[subset] for k, v in full.items()}
    )
    reversed_ = outputs(fresh(clf), X[::-1])
    assert_outputs_equal(reversed_, {k: v[::-1] for k, v in full.items()})


def test_clone_of_fitted_is_unfitted_with_same_params(fitted, data):
    """clone() gives an unfitted estimator with equal parameters."""
    twin = clone(fitted)
    assert not [a for a in vars(twin) if a.endswith("_") and not a.startswith("_")]
    with pytest.raises(NotFittedError):
        twin.predict(data["X_test"])
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(twin)
    assert joblib.hash(twin.get_params(deep=True)) == joblib.hash(fitted.get_params(deep=True))


@pytest.mark.parametrize("kind", ["str", "int", "bool"])
def test_predict_returns_labels_from_classes(data, fitted, kind):
    """check_classifiers_classes on images: classes_ are the sorted labels, predict uses them."""
    y, y_test = data["y"], data["y_test"]
    if kind == "str":
        clf = fitted
    else:
        mapping = {"int": {"cat": 7, "dog": -3}, "bool": {"cat": True, "dog": False}}[kind]
        y = np.array([mapping[v] for v in y])
        y_test = np.array([mapping[v] for v in y_test])
        clf = cpu_tiny().fit(data["X"], y)
    assert list(clf.classes_) == sorted(set(y.tolist()))
    predicted = clf.predict(data["X_test"])
    assert predicted.shape == (len(data["X_test"]),)
    assert set(predicted.tolist()) <= set(clf.classes_.tolist())
    assert np.mean(predicted == y_test) >= 0.75  # the two synthetic classes are easy


def test_get_params_holds_no_fitted_state(fitted):
    """get_params(deep=True) is the constructor arguments only, unchanged by fit."""
    params = fitted.get_params(deep=True)
    assert set(params) == set(ImageBinaryClassifier._get_param_names())
    learned = [v for k, v in vars(fitted).items() if k.endswith("_") and not k.startswith("_")]
    assert learned  # the check below compares against something
    scalars = (str, int, float, bool, type(None))  # shared immutables prove nothing
    shared = [k for k, v in params.items() if not isinstance(v, scalars)]
    assert not [k for k in shared if any(params[k] is x for x in learned)]
    assert joblib.hash(params) == joblib.hash(cpu_tiny().get_params(deep=True))


class Recorder(Callback):
    """A user callback: it may see events, but fit must not add it twice or drop it."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, trainer, state):
        self.epochs += 1


def test_fit_does_not_modify_user_inputs(data):
    """Fit leaves X, y, the trainer, the backbone module and public attributes alone."""
    X = list(data["X"])
    y = data["y"].copy()
    X_before, y_before = list(X), y.copy()
    callback = Recorder()
    callbacks = [callback]
    trainer = Trainer(device="cpu", num_workers=0, progress=True, callbacks=callbacks)
    trainer_before = copy.copy(vars(trainer))
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    weights_before = {k: v.clone() for k, v in module.state_dict().items()}
    clf = cpu_tiny(
        backbone=module, pretrained=False, image_size=32, fine_tune_epochs=1, trainer=trainer
    )
    public_before = {k: v for k, v in vars(clf).items() if not k.startswith("_")}
    clf.fit(X, y)
    assert callback.epochs > 0  # the user's callback was used
    assert X == X_before and all(type(x) is str for x in X)
    np.testing.assert_array_equal(y, y_before)
    assert y.dtype == y_before.dtype
    assert vars(trainer) == trainer_before  # progress still True, same callbacks list
    assert trainer.callbacks is callbacks and callbacks == [callback]
    assert module.training and all(p.requires_grad for p in module.parameters())
    assert all(torch.equal(weights_before[k], v) for k, v in module.state_dict().items())
    # check_dont_overwrite_parameters: fit only adds attributes ending or starting with "_".
    public_after = {
        k: v for k, v in vars(clf).items() if not k.startswith("_") and not k.endswith("_")
    }
    assert public_after.keys() == public_before.keys()
    assert [k for k in public_before if public_after[k] is not public_before[k]] == []


def test_prediction_leaves_public_state_unchanged(fitted, data):
    """check_dict_unchanged on images, for public and fitted attributes."""
    clf = fresh(fitted)

    def public_state() -> str:
        return joblib.hash({k: v for k, v in vars(clf).items() if not k.startswith("_")})

    before = public_state()
    outputs(clf, data["X_test"])
    clf.score(data["X_test"], data["y_test"])
    assert public_state() == before


def test_decision_function_ranks_like_predict_proba(fitted, data):
    """check_decision_proba_consistency on images."""
    scores = fitted.decision_function(data["X_test"])
    proba = fitted.predict_proba(data["X_test"])[:, 1]
    assert len(set(scores.tolist())) > 1  # not a constant model
    np.testing.assert_array_equal(rankdata(scores), rankdata(proba))


# ============================================================================ model selection


def test_cross_val_score_on_image_paths(data):
    """cross_val_score works on a plain list of paths; the easy classes score well."""
    scores = cross_val_score(cpu_tiny(), data["X"], data["y"], cv=2, error_score="raise")
    assert scores.shape == (2,)
    assert np.all(scores >= 0.75), scores


def test_grid_search_on_image_paths(data):
    """GridSearchCV over lr fits, picks a candidate, and refits on all images."""
    search = GridSearchCV(cpu_tiny(), {"lr": [0.1, 0.3]}, cv=2, error_score="raise")
    search.fit(data["X"], data["y"])
    assert len(search.cv_results_["params"]) == 2
    assert search.best_params_["lr"] in (0.1, 0.3)
    assert search.best_score_ >= 0.75
    best = search.best_estimator_
    assert best.lr == search.best_params_["lr"]
    assert list(best.classes_) == ["cat", "dog"]
    assert best.n_train_ + best.n_valid_ == len(data["X"])  # refit on all the images
    assert search.score(data["X_test"], data["y_test"]) >= 0.75
