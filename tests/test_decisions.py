"""The classifier's decisions: calibration, thresholds, positive class, abstention, TTA,
class weights and the evaluation report, on small generated image folders."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image, tiny, write_class_tree
from sklearn.base import clone
from sklearn.metrics import accuracy_score

from binaryvision import (
    BinaryVisionWarning,
    Calibrator,
    DataWarning,
    EvaluationReport,
    ImageBinaryClassifier,
    InvalidParameterError,
)
from binaryvision.data import as_image_set
from binaryvision.decisions.calibration import sigmoid
from binaryvision.decisions.thresholds import choose_threshold
from binaryvision.persistence import read_model_file, write_model_file


def valid_targets(clf, folder: Path) -> np.ndarray:
    labels = as_image_set(folder).labels
    return np.array([v == clf.positive_class_ for v in labels], dtype=int)


@pytest.fixture(scope="module")
def noisy_tree(tmp_path_factory) -> Path:
    """train/ and valid/ where a few images sit in the wrong class folder."""
    root = tmp_path_factory.mktemp("noisy") / "data"
    rng = np.random.default_rng(7)
    for split, n in (("train", 20), ("valid", 14)):
        for k, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                kind = k if i >= 3 else 1 - k  # 3 mislabelled images per class
                make_image(kind, rng).save(folder / f"{name}_{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def fitted_noisy(noisy_tree):
    return tiny(calibration="temperature").fit(noisy_tree), noisy_tree


# ---------------------------------------------------------------------- calibration
def test_a_temperature_is_fitted_on_out_of_fold_logits(fitted_noisy):
    clf, root = fitted_noisy
    assert isinstance(clf.calibrator_, Calibrator) and clf.calibrator_.method == "temperature"
    logits = clf.decision_function(root / "valid")
    proba = clf.predict_proba(root / "valid")
    np.testing.assert_allclose(proba[:, 1], clf.calibrator_.transform(logits), atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    report = clf.calibration_report_
    # cross-fitted (cv=5): every training image, none of the validation images
    assert report["n_images"] == clf.n_train_ == 40 and report["method"] == "temperature"
    assert len(clf.conformal_scores_) == clf.n_train_


def test_the_default_calibration_is_a_temperature_only_where_cross_validation_favours_it(
    noisy_tree,
):
    clf = tiny().fit(noisy_tree)
    assert clf.get_params()["calibration"] == "auto"
    report = clf.calibration_report_
    assert report["asked"] == "auto" and report["n_folds"] == 5
    data, oof, _ = clf._label_evidence
    y = (data.labels == clf.positive_class_).astype(int)
    # the raw figure of the check is the log loss of the out-of-fold logits themselves
    raw = -np.mean(y * np.log(sigmoid(oof)) + (1 - y) * np.log(1 - sigmoid(oof)))
    assert report["cv_log_loss_raw"] == pytest.approx(raw, abs=1e-5)
    assert report["cv_brier_raw"] == pytest.approx(np.mean((sigmoid(oof) - y) ** 2), abs=1e-5)
    helped = report["cv_brier_calibrated"] < report["cv_brier_raw"]
    assert (clf.calibrator_ is not None) == helped
    assert report["method"] == ("temperature" if helped else None)
    logits = clf.decision_function(noisy_tree / "valid")
    expected = clf.calibrator_.transform(logits) if helped else sigmoid(logits)
    np.testing.assert_allclose(clf.predict_proba(noisy_tree / "valid")[:, 1], expected)


def test_calibration_on_the_validation_images_with_cv_none(noisy_tree):
    clf, root = tiny(cv=None, calibration="temperature").fit(noisy_tree), noisy_tree
    logits = clf.decision_function(root / "valid")
    proba = clf.predict_proba(root / "valid")
    report = clf.calibration_report_
    assert report["n_images"] == 28 and report["method"] == "temperature"
    # the temperature is fitted by maximum likelihood on these images: NLL cannot rise
    y = valid_targets(clf, root / "valid")
    nll = lambda p: -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))  # noqa: E731
    assert nll(proba[:, 1]) <= nll(sigmoid(logits)) + 1e-9


def test_calibration_none_keeps_the_raw_sigmoid(noisy_tree):
    clf = tiny(calibration=None).fit(noisy_tree)
    assert clf.calibrator_ is None
    logits = clf.decision_function(noisy_tree / "valid")
    np.testing.assert_allclose(
        clf.predict_proba(noisy_tree / "valid")[:, 1], sigmoid(logits), atol=1e-12
    )
    assert clf.evaluate(noisy_tree / "valid").y_prob_uncalibrated is None


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_other_calibrators_are_used_by_predict_proba(noisy_tree, method):
    clf = tiny(calibration=method).fit(noisy_tree)
    assert clf.calibrator_.method == method
    logits = clf.decision_function(noisy_tree / "valid")
    np.testing.assert_allclose(
        clf.predict_proba(noisy_tree / "valid")[:, 1], clf.calibrator_.transform(logits)
    )


def test_no_validation_and_no_cross_fitting_means_no_calibration_and_no_sets(class_tree):
    clf = tiny(valid_size=0, cv=None).fit(class_tree)
    assert clf.calibrator_ is None and clf.conformal_scores_ is None
    assert clf.threshold_ == 0.5
    with pytest.raises(InvalidParameterError, match="valid_size"):
        clf.predict_set(class_tree)


def test_cross_fitting_calibrates_and_tunes_without_validation_images(class_tree):
    clf = tiny(valid_size=0, threshold="f1", calibration="temperature").fit(class_tree)
    assert clf.n_valid_ == 0 and clf.calibrator_ is not None
    assert clf.calibration_report_["n_images"] == clf.n_train_ == 24
    # the threshold is the rule's choice on the calibrated out-of-fold probabilities
    data, oof, _ = clf._label_evidence
    y = (data.labels == "dog").astype(int)
    expected = choose_threshold(y, clf.calibrator_.transform(oof), "f1")
    assert clf.threshold_ == pytest.approx(expected.threshold)
    assert clf.predict_set(class_tree, 0.8, return_mask=True).any(axis=1).all()


@pytest.mark.parametrize(
    "bad", ["sigmoid", 1, {"precision": 2.0}, "f2", {"fp_cost": 0, "fn_cost": 0}]
)
def test_bad_calibration_or_threshold_is_refused_before_training(class_tree, bad):
    name = "calibration" if bad in ("sigmoid", 1) else "threshold"
    with pytest.raises(InvalidParameterError, match=rf"{name}="):
        tiny(**{name: bad}).fit(class_tree)


# ---------------------------------------------------------------------- thresholds
@pytest.mark.parametrize(
    "rule", ["f1", "youden", {"recall": 0.8}, {"fp_cost": 1, "fn_cost": 4}, {"precision": 0.6}]
)
def test_threshold_rules_are_tuned_on_the_validation_images(fitted_noisy, rule):
    clf, root = fitted_noisy
    clf = clone(clf).set_params(threshold=rule, cv=None).fit(root)
    p = clf.predict_proba(root / "valid")[:, 1]
    expected = choose_threshold(valid_targets(clf, root / "valid"), p, rule)
    assert clf.threshold_ == pytest.approx(expected.threshold)
    assert clf.threshold_choice_.met
    items = as_image_set(root / "valid").items
    expected_labels = np.where(p >= clf.threshold_, "dog", "cat")
    assert list(clf.predict(items)) == list(expected_labels)


def test_unreachable_precision_target_warns_and_says_why(tmp_path):
    root = tmp_path / "swapped"
    write_class_tree(root / "train", 12, ("cat", "dog"), seed=1)
    # validation folders swapped: the images that look most like dogs are labelled cat, so
    # no threshold gives a precision above the share of dogs, one half
    write_class_tree(root / "valid", 8, ("dog", "cat"), seed=2)
    with pytest.warns(BinaryVisionWarning, match="not reached") as caught:
        clf = tiny(threshold={"precision": 0.9}, cv=None).fit(root)
    assert "precision" in str(caught[0].message)
    assert not clf.threshold_choice_.met
    assert clf.threshold_choice_.achieved <= 0.5 + 1e-9


def test_tuned_threshold_needs_validation_images_without_cross_fitting(class_tree):
    with pytest.raises(InvalidParameterError, match="valid_size=0"):
        tiny(threshold="f1", valid_size=0, cv=None).fit(class_tree)


# ---------------------------------------------------------------------- positive class
def test_positive_class_changes_what_the_threshold_refers_to(noisy_tree):
    clf = tiny(positive_class="cat", threshold=0.8).fit(noisy_tree)
    assert clf.positive_class_ == "cat"
    assert list(clf.classes_) == ["cat", "dog"]  # column order unchanged
    proba = clf.predict_proba(noisy_tree / "valid")
    items = as_image_set(noisy_tree / "valid").items
    assert list(clf.predict(items)) == list(np.where(proba[:, 0] >= 0.8, "cat", "dog"))
    # decision_function still scores classes_[1], as scikit-learn expects
    logits = clf.decision_function(items)
    assert np.all((logits > 0) == (proba[:, 1] > 0.5))
    report = clf.evaluate(noisy_tree / "valid")
    assert report.classes == ["dog", "cat"]
    np.testing.assert_allclose(report.y_prob, proba[:, 0])


def test_unknown_positive_class_names_the_parameter(class_tree):
    with pytest.raises(InvalidParameterError, match=r"positive_class.*bird"):
        tiny(positive_class="bird").fit(class_tree)


# ---------------------------------------------------------------------- class weights
def imbalanced_tree(root: Path, n_major: int, n_minor: int) -> Path:
    write_class_tree(root, n_major, ("cat",), seed=5)
    rng = np.random.default_rng(6)
    (root / "dog").mkdir()
    for i in range(n_minor):
        make_image(1, rng).save(root / "dog" / f"dog_{i:03d}.png")
    return root


def test_balanced_class_weight_pushes_scores_towards_the_rare_class(tmp_path):
    root = imbalanced_tree(tmp_path / "imb", 40, 6)
    kwargs = dict(calibration=None, valid_size=0, epochs=3, lr=0.05)
    plain = tiny(**kwargs).fit(root)
    weighted = tiny(class_weight="balanced", **kwargs).fit(root)
    assert plain.class_counts_ == {"cat": 40, "dog": 6}
    items = as_image_set(root).items
    # same seed, same data: only the loss weight differs, and it favours "dog" (rare)
    assert weighted.decision_function(items).mean() > plain.decision_function(items).mean()
    same = tiny(class_weight={"cat": 1.0, "dog": 40 / 6}, **kwargs).fit(root)
    np.testing.assert_allclose(
        same.decision_function(items), weighted.decision_function(items), rtol=1e-5, atol=1e-5
    )


def test_class_weight_must_name_both_classes(class_tree):
    with pytest.raises(InvalidParameterError, match="class_weight"):
        tiny(class_weight={"cat": 1.0, "bird": 2.0}).fit(class_tree)
    with pytest.raises(InvalidParameterError, match="class_weight"):
        tiny(class_weight="auto").fit(class_tree)


def test_tiny_minority_class_warns_with_advice(tmp_path):
    root = imbalanced_tree(tmp_path / "tiny", 30, 3)
    with pytest.warns(DataWarning, match=r"Only 3 of the 33 .*class_weight='balanced'"):
        tiny(valid_size=0).fit(root)


# ---------------------------------------------------------------------- abstention
def test_prediction_sets_are_never_empty_and_grow_with_coverage(fitted_noisy):
    clf, root = fitted_noisy
    items = as_image_set(root / "valid").items
    masks = [clf.predict_set(items, c, return_mask=True) for c in (0.5, 0.8, 0.95)]
    for small, large in zip(masks, masks[1:]):
        assert np.all(large | ~small)  # small is a subset of large
    sets = clf.predict_set(items, 0.8)
    assert all(s and s <= {"cat", "dog"} for s in sets)
    assert [s == {"cat", "dog"} for s in sets] == list(masks[1].all(axis=1))


def test_predict_abstains_exactly_on_two_label_sets(fitted_noisy):
    clf, root = fitted_noisy
    items = as_image_set(root / "valid").items
    both = clf.predict_set(items, 0.95, return_mask=True).all(axis=1)
    predicted = clf.predict(items, coverage=0.95, uncertain_label="?")
    assert list(predicted == "?") == list(both)
    plain = clf.predict(items)
    assert list(predicted[~both]) == list(plain[~both])
    report = clf.evaluate(root / "valid", coverage=0.95)
    assert report.n_abstained == int(both.sum())


def test_too_few_validation_images_for_the_coverage_warns(class_tree):
    clf = tiny(valid_size=4, cv=None).fit(class_tree)
    with pytest.warns(BinaryVisionWarning, match="at least 19"):
        sets = clf.predict_set(class_tree, 0.95, return_mask=True)
    assert sets.all()


# ---------------------------------------------------------------------- TTA
def test_tta_with_flip_is_invariant_to_flipping_the_input(fitted_tiny):
    clf, _ = fitted_tiny
    rng = np.random.default_rng(0)
    images = np.stack([np.asarray(make_image(i % 2, rng, size=32)) for i in range(6)])
    flipped = images[:, :, ::-1].copy()
    p, spread = clf.predict_proba(images, tta=2, return_std=True)
    p_flipped = clf.predict_proba(flipped, tta=2)
    np.testing.assert_allclose(p, p_flipped, atol=1e-5)
    assert spread.shape == (6,) and np.all(spread >= 0)
    # one view is no augmentation; two views differ from it for a non-symmetric net
    np.testing.assert_allclose(clf.predict_proba(images, tta=1), clf.predict_proba(images))
    assert not np.allclose(p, clf.predict_proba(images), atol=1e-7)


def test_tta_spread_is_the_std_of_the_view_probabilities(fitted_tiny):
    clf, _ = fitted_tiny
    rng = np.random.default_rng(1)
    images = np.stack([np.asarray(make_image(i % 2, rng, size=32)) for i in range(4)])
    _, spread = clf.predict_proba(images, tta=2, return_std=True)
    p_id = clf.predict_proba(images)[:, 1]
    p_flip = clf.predict_proba(images[:, :, ::-1].copy())[:, 1]
    np.testing.assert_allclose(spread, np.abs(p_id - p_flip) / 2, atol=1e-5)


def test_bad_tta_names_the_parameter(fitted_tiny):
    clf, root = fitted_tiny
    with pytest.raises(InvalidParameterError, match="tta"):
        clf.predict_proba(root / "valid", tta=20)


# ---------------------------------------------------------------------- the report
def test_evaluate_matches_predict_and_sklearn(fitted_noisy):
    clf, root = fitted_noisy
    report = clf.evaluate(root / "valid")
    assert isinstance(report, EvaluationReport)
    data = as_image_set(root / "valid")
    predicted = clf.predict(data.items)
    assert report.accuracy == pytest.approx(accuracy_score(data.labels, predicted))
    assert report.threshold == clf.threshold_
    (tn, fp), (fn, tp) = report.confusion_matrix
    assert tp == int(np.sum((predicted == "dog") & (data.labels == "dog")))
    assert report.ece_uncalibrated != report.ece
    text = str(report)
    assert "28 images: 14 cat, 14 dog" in text and "ROC-AUC" in text
    json.dumps(report.to_dict())  # plain values only


def test_report_plots_draw_from_the_classifier(fitted_noisy):
    clf, root = fitted_noisy
    report = clf.evaluate(root / "valid", coverage=0.9)
    reliability = report.plot_reliability()
    labels = [line.get_label() for line in reliability.ax_.get_lines()]
    assert any(f"{report.ece:.3f}" in label and "after" in label for label in labels)
    assert any(f"{report.ece_uncalibrated:.3f}" in label for label in labels)
    roc = report.plot_roc()
    assert roc.roc_auc_ == pytest.approx(report.roc_auc)
    confusion = report.plot_confusion_matrix()
    assert confusion.matrix_.tolist() == report.confusion_matrix
    assert f"{report.n_abstained} abstained" in confusion.ax_.get_title()


def test_plot_confidence_shows_abstentions_and_tta_spread(fitted_noisy):
    clf, root = fitted_noisy
    display = clf.plot_confidence(root / "valid", coverage=0.95, tta=2, n_images=2)
    titles = [title for title, _ in display.views_]
    assert "Abstained (both labels plausible)" in titles
    assert "Largest TTA spread" in titles
    shown = [a.get_title() for axes in display.image_axes_ for a in axes]
    assert shown and all("±" in t for t in shown)


# ---------------------------------------------------------------------- persistence
def test_save_load_keeps_every_decision(fitted_noisy, tmp_path):
    clf, root = fitted_noisy
    clf = clone(clf).set_params(threshold="f1", calibration="platt").fit(root)
    clf.save(tmp_path / "m.bv")
    loaded = ImageBinaryClassifier.load(tmp_path / "m.bv")
    items = as_image_set(root / "valid").items
    np.testing.assert_allclose(loaded.predict_proba(items), clf.predict_proba(items), atol=1e-6)
    assert loaded.threshold_ == clf.threshold_ and loaded.threshold == "f1"
    assert loaded.threshold_choice_ == clf.threshold_choice_
    assert loaded.calibrator_.params_ == clf.calibrator_.params_
    assert loaded.predict_set(items, 0.9) == clf.predict_set(items, 0.9)
    assert loaded.calibration_report_ == clf.calibration_report_


def test_model_files_without_decision_metadata_still_load(fitted_tiny, tmp_path):
    clf, root = fitted_tiny
    clf.save(tmp_path / "new.bv")
    tensors, meta = read_model_file(tmp_path / "new.bv")
    for key in ("positive_class", "calibration", "conformal_scores", "threshold_choice"):
        meta.pop(key)
    write_model_file(tmp_path / "old.bv", tensors, meta)
    old = ImageBinaryClassifier.load(tmp_path / "old.bv")
    assert old.calibrator_ is None and old.positive_class_ == "viserion"
    logits = old.decision_function(root / "valid")
    np.testing.assert_allclose(old.predict_proba(root / "valid")[:, 1], sigmoid(logits))


def test_dict_threshold_survives_clone_and_get_params():
    clf = ImageBinaryClassifier(threshold={"precision": 0.9}, class_weight={"a": 1, "b": 2})
    copy = clone(clf)
    assert copy.get_params()["threshold"] == {"precision": 0.9}
    assert copy.get_params()["class_weight"] == {"a": 1, "b": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert copy.threshold is not clf.threshold  # clone copies, never shares
