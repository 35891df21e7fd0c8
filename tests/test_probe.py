"""The L2 head (training/probe.py): the same optimum as scikit-learn, folded into nn.Linear."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny, write_class_tree
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from binaryvision.training.cross_fit import fold_indices
from binaryvision.training.probe import STRENGTHS, cross_fit_probe, fit_probe, set_head


def _data(n: int, p: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 5, p) + rng.normal(size=p) * 3
    X[:, :5] += y[:, None] * 1.5  # five informative features on their own scales
    return X, y


@pytest.mark.parametrize("shape", [(60, 200), (200, 20)])  # more features than images, fewer
def test_the_l2_head_is_scikit_learns_regression_on_standardized_features(shape):
    X, y = _data(*shape)
    w, b = fit_probe(X, y, 0.05)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, tol=1e-8, max_iter=5000))
    reference.fit(X, y)
    np.testing.assert_allclose(X @ w + b, reference.decision_function(X), atol=2e-3)


def test_a_positive_weight_counts_positives_more():
    X, y = _data(120, 30, seed=1)
    w, b = fit_probe(X, y, 0.05)
    w2, b2 = fit_probe(X, y, 0.05, pos_weight=5.0)
    assert np.mean(X @ w2 + b2) > np.mean(X @ w + b) + 0.3  # leans towards the positive class


def test_the_strength_search_finds_the_grid_minimum_and_evidence_is_out_of_fold():
    X, y = _data(150, 60, seed=2)
    folds = fold_indices(y, 5, seed=0)
    probe = cross_fit_probe(X, y, folds)

    def oof(strength):
        z = np.empty(len(y))
        for fit, held in folds:
            w, b = fit_probe(X[fit], y[fit], strength)
            z[held] = X[held] @ w + b
        return z

    losses = {s: np.mean(np.logaddexp(0, oof(s)) - y * oof(s)) for s in STRENGTHS}
    assert probe.strength == min(losses, key=losses.get)
    assert len(probe.cv_log_loss) < len(STRENGTHS)  # the walk fitted only some strengths
    np.testing.assert_allclose(probe.cross_fit.logits, oof(probe.strength), atol=1e-9)
    # the final head learns from every image: it fits them better than the folds predict them
    full = X @ probe.weight + probe.bias
    assert np.mean(np.logaddexp(0, full) - y * full) < losses[probe.strength]


def test_the_final_head_has_the_fold_heads_penalty_per_image():
    # C multiplies a sum of losses: on all 150 images the folds' C (fit on 120 each) would
    # regularize each image less and give larger logits than the ones that calibrate it
    X, y = _data(150, 60, seed=4)
    probe = cross_fit_probe(X, y, fold_indices(y, 5, seed=0))
    full = X @ probe.weight + probe.bias
    scaled = make_pipeline(
        StandardScaler(), LogisticRegression(C=probe.strength * 120 / 150, tol=1e-8, max_iter=5000)
    ).fit(X, y)
    np.testing.assert_allclose(full, scaled.decision_function(X), atol=2e-3)
    w, b = fit_probe(X, y, probe.strength)  # the folds' C on every image: a different head
    assert np.abs(X @ w + b).mean() > np.abs(full).mean() + 0.01


def test_set_head_writes_the_solution_into_the_linear_layer():
    X, y = _data(40, 8, seed=3)
    probe = cross_fit_probe(X, y, fold_indices(y, 4, 0))
    head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(8, 1)).eval()
    set_head(head, probe)
    out = head(torch.from_numpy(X).float()).squeeze(-1).detach().numpy()
    np.testing.assert_allclose(out, X @ probe.weight + probe.bias, rtol=1e-4, atol=1e-4)


def test_a_kept_l2_head_predicts_what_its_record_says(tmp_path):
    root = write_class_tree(tmp_path / "d", 24, ("a", "b"), seed=11)
    clf = tiny(time_budget="auto", valid_size=0.25).fit(root)
    names = [c["name"] for c in clf.selection_["candidates"]]
    assert names[:2] == ["frozen_head", "l2_head"]
    l2 = clf.selection_["candidates"][1]
    assert l2["strength"] in STRENGTHS and "gain_standard_error" in l2
    assert [c["kept"] for c in clf.selection_["candidates"]].count(True) == 1
    # the out-of-fold evidence covers the images the valid_size split held out as well
    assert clf.calibration_report_["n_images"] == 48


def test_a_deadline_that_has_passed_stops_the_search():
    import time

    X, y = _data(60, 20, seed=4)
    folds = fold_indices(y, 3, 0)
    assert cross_fit_probe(X, y, folds, deadline=time.perf_counter() - 1.0) is None
    assert cross_fit_probe(X, y, folds, deadline=time.perf_counter() + 600.0) is not None
