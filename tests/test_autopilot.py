"""The accuracy autopilot (time_budget), cross-fitting and suspected label errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HOTDOG, needs_hotdog, tiny, write_class_tree

from binaryvision import BinaryVisionWarning, ImageBinaryClassifier, InvalidParameterError
from binaryvision.training import autopilot
from binaryvision.training.cross_fit import CrossFit, fold_indices


@pytest.fixture
def tree(tmp_path):
    write_class_tree(tmp_path / "train", 20, ("a", "b"), seed=3)
    write_class_tree(tmp_path / "valid", 8, ("a", "b"), seed=4)
    return tmp_path


@pytest.mark.parametrize("bad", [0, -5, "fast", True, float("nan")])
def test_time_budget_that_is_not_a_positive_number_is_refused(tree, bad):
    with pytest.raises(InvalidParameterError, match=r"time_budget=") as info:
        tiny(time_budget=bad).fit(tree)
    assert isinstance(info.value, ValueError)


def test_a_budget_below_the_frozen_path_runs_it_and_warns_once(tree):
    with pytest.warns(BinaryVisionWarning, match="less than the frozen-feature path") as caught:
        clf = tiny(time_budget=1e-4).fit(tree)
    assert len([w for w in caught if "time_budget" in str(w.message)]) == 1
    assert clf.selection_["kept"] == "frozen_head" and clf.model_.extra_sizes == ()
    assert clf.selection_["candidates"][1]["kept"] is False


def test_time_budget_none_is_the_frozen_head_alone(tree):
    clf = tiny(time_budget=None).fit(tree)
    assert clf.selection_["kept"] == "frozen_head"
    assert [c["name"] for c in clf.selection_["candidates"]] == ["frozen_head"]
    assert "off" in clf.selection_["note"]


def _cross_fit(logits):
    return CrossFit(logits=np.asarray(logits, dtype=float), folds=np.zeros(len(logits)), n_folds=5)


def test_a_candidate_is_kept_only_when_its_out_of_fold_log_loss_is_lower():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    frozen = _cross_fit(np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.5, 400))
    sharper = _cross_fit(np.where(y == 1, 3.0, -3.0) + rng.normal(0, 1.5, 400))
    keep, gain, se = autopilot._better(sharper, frozen, y)
    assert keep and gain > 0 and 0 < se < gain
    assert not autopilot._better(frozen, sharper, y)[0]
    assert not autopilot._better(_cross_fit(frozen.logits.copy()), frozen, y)[0]  # a tie


def test_auto_budget_and_candidate_size():
    assert autopilot.resolve_budget("auto", 20.0) == 60.0
    assert autopilot.resolve_budget("auto", 1.0) == autopilot.AUTO_MINIMUM
    assert autopilot.resolve_budget(None, 20.0) is None
    assert autopilot.candidate_size(256) == 320 and autopilot.candidate_size(224) == 288


def test_folds_are_stratified_and_shrink_for_a_tiny_class():
    y = np.array([0] * 10 + [1] * 3)
    folds = fold_indices(y, 5, seed=0)
    assert len(folds) == 3
    held = np.concatenate([b for _, b in folds])
    assert sorted(held.tolist()) == list(range(13))
    assert fold_indices(np.array([0, 0, 0, 1]), 5, 0) == []


def test_auto_fit_reproduces_with_an_int_random_state_and_survives_a_file(tree, tmp_path):
    first = tiny(time_budget="auto").fit(tree)
    second = tiny(time_budget="auto").fit(tree)
    assert first.selection_["kept"] == second.selection_["kept"]
    for (k, a), b in zip(first.model_.state_dict().items(), second.model_.state_dict().values()):
        assert torch_equal(a, b), k
    files = sorted((tree / "valid").rglob("*.png"))
    np.testing.assert_array_equal(first.predict_proba(files), second.predict_proba(files))
    first.save(tmp_path / "m.bv")
    loaded = ImageBinaryClassifier.load(tmp_path / "m.bv")
    assert loaded.selection_ == first.selection_
    assert loaded.model_.extra_sizes == first.model_.extra_sizes
    np.testing.assert_allclose(loaded.predict_proba(files), first.predict_proba(files), atol=1e-7)
    assert "model chosen at fit" in str(first.evaluate(tree / "valid"))


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def swap_validation_labels(tree) -> None:
    for name in ("a", "b"):
        (tree / "valid" / name).rename(tree / "valid" / f"{name}_tmp")
    (tree / "valid" / "a_tmp").rename(tree / "valid" / "b")
    (tree / "valid" / "b_tmp").rename(tree / "valid" / "a")


def test_the_validation_images_only_early_stop_the_frozen_head(tree):
    clf = tiny(time_budget="auto").fit(tree)
    swap_validation_labels(tree)  # the same training images, nonsense validation labels
    swapped = tiny(time_budget="auto").fit(tree)
    # the candidates after the frozen head are judged on train/ alone: the same evidence
    scores = [(c["name"], c.get("cv_log_loss")) for c in clf.selection_["candidates"][1:]]
    again = [(c["name"], c.get("cv_log_loss")) for c in swapped.selection_["candidates"][1:]]
    assert scores == again and len(scores) == 2
    assert clf.calibration_report_["n_images"] == swapped.calibration_report_["n_images"] == 40


def test_the_folds_heads_stop_where_the_early_stopped_final_head_stopped(tree):
    """Nonsense validation labels stop the final head after its first epoch; the fold
    heads that give the out-of-fold logits must stop there too, or their logits (trained
    for every epoch) are several times larger than the final head's that they calibrate."""
    swap_validation_labels(tree)
    clf = tiny(calibration=None).fit(tree)
    losses = [e["valid_loss"] for e in clf.history_]
    assert len(losses) < clf.epochs and int(np.argmin(losses)) == 0  # stopped, kept epoch 1
    data, oof, _ = clf._label_evidence
    final = clf.decision_function(data.items)
    ratio = np.abs(oof).mean() / np.abs(final).mean()
    assert 0.4 < ratio < 2.0  # all 10 epochs: 3.0


# ------------------------------------------------------------------ label issues
def test_flipped_labels_rank_first_among_label_issues(tmp_path):
    rng = np.random.default_rng(5)
    root = write_class_tree(tmp_path / "data", 30, ("a", "b"), seed=7)
    files = sorted(root.rglob("*.png"))
    labels = np.array([f.parent.name for f in files], dtype=object)
    flipped = rng.choice(len(files), 4, replace=False)
    labels[flipped] = np.where(labels[flipped] == "a", "b", "a")
    clf = tiny(valid_size=0).fit(files, labels)
    issues = clf.label_issues(n=8)
    top = {str(p) for p in issues.items[:8]}
    assert sum(str(files[i]) in top for i in flipped) >= 3
    assert np.all(np.diff(issues.p_given) >= 0)
    first = issues.to_list()[0]
    assert first["suspect"] and first["given"] != first["believed"] and "believe" in first["reason"]
    # the same ranking from the images passed again: cached features, fresh cross-fit
    again = clf.label_issues(files, labels, n=8)
    assert {str(p) for p in again.items[:8]} & {str(files[i]) for i in flipped}
    display = issues.plot(n_images=6)
    assert len(display.axes_) == 6 and display.figure_ is not None


def test_each_suspect_label_names_the_signal_that_flagged_it(tmp_path):
    from binaryvision.outputs.label_issues import LabelIssues

    root = write_class_tree(tmp_path / "data", 2, ("a", "b"), seed=3)
    items = sorted(root.rglob("*.png"))
    # model only, neighbours only, both, neither: (p_given, agreement) per image
    issues = LabelIssues(
        items=items,
        given=["a", "a", "b", "b"],
        believed=["b", "a", "a", "b"],
        p_given=[0.2, 0.9, 0.1, 0.8],
        agreement=[0.8, 0.3, 0.1, 0.9],
    )
    assert [issues.flagged_by(i) for i in range(4)] == [
        ["model"],
        ["neighbours"],
        ["model", "neighbours"],
        [],
    ]
    assert issues.suspect.tolist() == [True, True, True, False]
    reasons = [row["reason"] for row in issues.to_list()]
    assert "believe 'b'" in reasons[0] and "only" not in reasons[0]
    assert "agree" in reasons[1] and "only 30%" in reasons[1]
    assert "believe 'a'" in reasons[2] and "and only 10%" in reasons[2]
    assert "only" not in reasons[3] and "agree" in reasons[3]
    titles = [a.get_title() for a in issues.plot(n_images=4).axes_]
    assert titles[0].endswith("flagged by: belief")
    assert titles[1].endswith("flagged by: neighbours")
    assert titles[2].endswith("flagged by: belief + neighbours")
    assert "flagged" not in titles[3]
    # without neighbour agreement only the model can flag an image
    alone = LabelIssues(items=items[:2], given=["a", "b"], believed=["a", "a"], p_given=[0.7, 0.4])
    assert [alone.flagged_by(i) for i in range(2)] == [[], ["model"]]
    assert "nearest" not in alone.reason(1)
    nobody = LabelIssues(items=items[:1], given=["a"], believed=["b"], p_given=[0.1], agreement=[0])
    assert nobody.reason(0).endswith("and none of its nearest images carry that label")


def test_label_issues_without_x_needs_a_cross_fitted_fit(tree):
    clf = tiny(cv=None).fit(tree)
    with pytest.raises(InvalidParameterError, match="label_issues"):
        clf.label_issues()


@pytest.mark.slow
@needs_hotdog
def test_ten_flipped_hotdog_labels_rank_in_the_top_20():
    files = sorted((HOTDOG / "train").rglob("*.jpg"))
    labels = np.array([f.parent.name for f in files], dtype=object)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(files), 10, replace=False)
    classes = sorted(set(labels))
    labels[flipped] = [classes[1] if v == classes[0] else classes[0] for v in labels[flipped]]
    clf = ImageBinaryClassifier(random_state=0, verbose=0).fit(files, labels)  # the defaults
    issues = clf.label_issues(n=20)
    top = {str(p) for p in issues.items}
    found = sum(str(files[i]) in top for i in flipped)
    print(f"{found} of the 10 flipped labels in the top 20 (kept {clf.selection_['kept']})")
    assert found >= 8
    assert issues.suspect[: min(found, 5)].all()


def test_a_numeric_budget_estimates_the_second_pass_from_the_first_fits_scan(tree):
    from binaryvision.features.cache import shared_cache

    shared_cache().clear()  # a first fit: the scan computes the frozen features
    clf = tiny(time_budget=600).fit(tree)
    multi = clf.selection_["candidates"][2]
    assert multi["name"].startswith("multi_resolution")
    assert multi["estimated_seconds"] >= 0 and "cv_log_loss" in multi  # estimated, then run
