"""Tests of calibrators and split-conformal prediction sets.

They live in binaryvision.decisions.calibration and binaryvision.decisions.conformal.

Expectations come from generated data with known parameters, brute force written here,
or properties (monotonicity, round trips, coverage guarantees).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binaryvision.decisions.calibration import (
    CALIBRATION_METHODS,
    Calibrator,
    cross_validate,
    make_calibrator,
    sigmoid,
)
from binaryvision.decisions.conformal import conformal_quantile, conformal_scores, prediction_sets
from binaryvision.decisions.held_out import fit_decisions
from binaryvision.exceptions import InvalidParameterError, ModelFileError
from binaryvision.training.cross_fit import fold_indices, fold_numbers


def expit(z: np.ndarray) -> np.ndarray:
    """The logistic function, written independently (fine for moderate logits)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean Bernoulli negative log-likelihood of ``sigmoid(z / T)``."""
    s = z / temperature
    return float(np.mean(np.logaddexp(0.0, s) - y * s))


def logistic_data(n: int, slope: float, intercept: float, seed: int, scale: float = 2.0):
    """Scores ``s ~ N(0, scale)`` and labels ``y ~ Bernoulli(sigmoid(slope * s + intercept))``."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, scale, n)
    y = (rng.random(n) < expit(slope * s + intercept)).astype(int)
    return s, y


def fitted(method: str, seed: int = 0) -> Calibrator:
    s, y = logistic_data(2000, 1.0, 0.3, seed)
    return Calibrator(method).fit(2.5 * s, y)


both_classes = st.lists(
    st.tuples(st.floats(-8, 8), st.integers(0, 1)), min_size=2, max_size=80
).filter(lambda pairs: len({label for _, label in pairs}) == 2)


# ---------------------------------------------------------------------- temperature
@pytest.mark.parametrize("t_true", [0.5, 1.0, 2.0, 4.0])
def test_temperature_recovers_the_true_temperature(t_true):
    s, y = logistic_data(20000, 1.0, 0.0, seed=int(t_true * 10))
    calibrator = Calibrator("temperature").fit(t_true * s, y)
    assert calibrator.params_["temperature"] == pytest.approx(t_true, rel=0.10)


@pytest.mark.parametrize("t_true", [0.5, 3.0])
def test_fitted_temperature_minimises_the_nll(t_true):
    s, y = logistic_data(5000, 1.0, 0.0, seed=7)
    z = t_true * s
    t = Calibrator("temperature").fit(z, y).params_["temperature"]
    assert nll(z, y, t) <= nll(z, y, 0.9 * t)
    assert nll(z, y, t) <= nll(z, y, 1.1 * t)
    assert nll(z, y, t) <= nll(z, y, 0.99 * t)
    assert nll(z, y, t) <= nll(z, y, 1.01 * t)


@given(both_classes)
@settings(deadline=None)
def test_fitted_temperature_is_no_worse_than_a_grid_of_temperatures(pairs):
    z = np.array([a for a, _ in pairs])
    y = np.array([b for _, b in pairs], dtype=float)
    t = Calibrator("temperature").fit(z, y).params_["temperature"]
    assert 0.25 <= t <= 20.0
    grid = np.geomspace(0.25, 20.0, 400)
    best = min(nll(z, y, g) for g in grid)
    # the bounded search stops within ~1e-5 of log T; near a bound the NLL can still slope
    assert nll(z, y, t) <= best + 1e-4 * (1 + abs(best))


@given(
    both_classes,
    st.lists(st.floats(-1e4, 1e4, allow_subnormal=False), min_size=1, max_size=50),
)
@settings(deadline=None)
def test_temperature_never_changes_the_side_of_one_half(pairs, logits):
    z_fit = np.array([a for a, _ in pairs])
    y = np.array([b for _, b in pairs])
    calibrator = Calibrator("temperature").fit(z_fit, y)
    z = np.array(logits)
    p = calibrator.transform(z)
    assert np.all((p - 0.5) * z >= 0)
    clear = np.abs(z) >= 1e-6
    assert np.array_equal(np.sign(p - 0.5)[clear], np.sign(z)[clear])
    assert np.all(calibrator.transform(np.zeros(3)) == 0.5)


def test_temperature_transform_by_hand():
    calibrator = Calibrator.from_dict({"method": "temperature", "temperature": 2.0})
    z = np.array([-4.0, 0.0, 2.0, 6.0])
    assert calibrator.transform(z) == pytest.approx(expit(z / 2.0), abs=1e-15)


# ---------------------------------------------------------------------- platt
@pytest.mark.parametrize(("slope", "intercept"), [(0.6, -0.8), (2.0, 0.5), (1.0, 0.0)])
def test_platt_recovers_slope_and_intercept(slope, intercept):
    s, y = logistic_data(20000, slope, intercept, seed=11)
    params = Calibrator("platt").fit(s, y).params_
    assert params["slope"] == pytest.approx(slope, rel=0.10)
    assert params["intercept"] == pytest.approx(intercept, abs=0.10)


def test_platt_transform_by_hand():
    calibrator = Calibrator.from_dict({"method": "platt", "slope": 0.5, "intercept": -1.0})
    z = np.array([-2.0, 0.0, 2.0, 10.0])
    assert calibrator.transform(z) == pytest.approx(expit(0.5 * z - 1.0), abs=1e-15)


# ---------------------------------------------------------------------- isotonic
@given(both_classes, st.lists(st.floats(-50, 50), min_size=2, max_size=60))
@settings(deadline=None)
def test_isotonic_is_monotone_and_in_unit_interval(pairs, logits):
    z_fit = np.array([a for a, _ in pairs])
    y = np.array([b for _, b in pairs])
    calibrator = Calibrator("isotonic").fit(z_fit, y)
    z = np.sort(np.array(logits))
    p = calibrator.transform(z)
    assert np.all(np.isfinite(p))
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p) >= 0)


def test_isotonic_on_separable_data_is_a_step():
    z = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    y = np.array([0, 0, 0, 1, 1, 1])
    calibrator = Calibrator("isotonic").fit(z, y)
    assert calibrator.transform(z) == pytest.approx([0, 0, 0, 1, 1, 1])
    assert calibrator.transform([-100.0, 100.0]) == pytest.approx([0, 1])  # clipped


# ---------------------------------------------------------------------- all methods
@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_to_dict_from_dict_round_trip(method):
    calibrator = fitted(method)
    state = json.loads(json.dumps(calibrator.to_dict()))
    assert state["method"] == method
    again = Calibrator.from_dict(state)
    z = np.linspace(-12, 12, 97)
    assert np.array_equal(again.transform(z), calibrator.transform(z))
    assert again.method == method
    assert method in repr(again)


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"temperature": 1.5},
        {"method": "temperature"},
        {"method": "temperature", "temp": 1.5},
        {"method": "temperature", "temperature": 1.5, "slope": 1.0},
        {"method": "platt", "slope": 1.0},
        {"method": "isotonic", "x": [0.0, 1.0]},
        {"method": "bogus", "temperature": 1.0},
        {"method": None},
    ],
    ids=repr,
)
def test_from_dict_with_bad_or_missing_keys_raises_model_file_error(state):
    with pytest.raises(ModelFileError):
        Calibrator.from_dict(state)


def test_from_dict_does_not_modify_its_argument():
    state = {"method": "temperature", "temperature": 1.5}
    Calibrator.from_dict(state)
    assert state == {"method": "temperature", "temperature": 1.5}


@pytest.mark.parametrize("method", ["beta", "Temperature", "", None, 1])
def test_unknown_method_raises(method):
    with pytest.raises(InvalidParameterError, match="calibration"):
        Calibrator(method)


def test_make_calibrator():
    assert make_calibrator(None) is None
    assert make_calibrator("platt").method == "platt"
    with pytest.raises(InvalidParameterError):
        make_calibrator("beta")


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
@pytest.mark.parametrize("y", [[0, 0, 0], [1, 1, 1], []], ids=["zeros", "ones", "empty"])
def test_fit_with_one_class_raises(method, y):
    with pytest.raises(InvalidParameterError, match="both classes"):
        Calibrator(method).fit(np.linspace(-1, 1, len(y)), y)


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_transform_is_finite_for_huge_logits(method):
    calibrator = fitted(method)
    z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        p = calibrator.transform(z)
    assert np.all(np.isfinite(p))
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p) >= 0)
    assert p[0] < 0.01 and p[-1] > 0.99


def test_sigmoid_is_finite_and_correct():
    z = np.array([-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        p = sigmoid(z)
    assert p[1:-1] == pytest.approx(expit(z[1:-1]), rel=1e-12, abs=1e-15)
    assert p[0] == 0.0 and p[-1] == 1.0


# ---------------------------------------------------------------------- conformal
def brute_quantile(scores: list[float], coverage: float) -> float:
    """The ``ceil((n + 1) * coverage)``-th smallest score, by counting and sorting."""
    n = len(scores)
    rank = 1
    while rank < (n + 1) * coverage:
        rank += 1
    return math.inf if rank > n else sorted(scores)[rank - 1]


@given(
    st.lists(st.floats(0, 1), min_size=0, max_size=60),
    st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
)
def test_conformal_quantile_equals_brute_force(scores, coverage):
    assert conformal_quantile(scores, coverage) == brute_quantile(scores, coverage)


def test_conformal_quantile_by_hand():
    scores = [0.5, 0.1, 0.4, 0.2, 0.3, 0.9, 0.8, 0.7, 0.6]  # n = 9
    assert conformal_quantile(scores, 0.9) == 0.9  # ceil(10 * 0.9) = 9th smallest
    assert conformal_quantile(scores, 0.5) == 0.5  # 5th smallest
    assert conformal_quantile(scores, 0.95) == math.inf  # ceil(9.5) = 10 > 9
    assert conformal_quantile([], 0.5) == math.inf


@pytest.mark.parametrize("coverage", [0, 1, 0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.9", None])
def test_coverage_outside_the_open_unit_interval_raises(coverage):
    with pytest.raises(InvalidParameterError, match="coverage"):
        conformal_quantile([0.1, 0.2, 0.3], coverage)


def test_conformal_scores_by_hand():
    got = conformal_scores([1, 0, 1, 0], [0.9, 0.2, 0.3, 0.6])
    # 1 - P(true label): 0.1, 0.2, 0.7, 0.6, sorted
    assert got == pytest.approx([0.1, 0.2, 0.6, 0.7])


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=50),
    st.one_of(st.floats(0, 1), st.just(math.inf)),
)
def test_prediction_sets_are_never_empty_and_hold_the_argmax(probs, quantile):
    sets = prediction_sets(probs, quantile)
    assert sets.shape == (len(probs), 2) and sets.dtype == bool
    for p1, member in zip(probs, sets):
        assert member.any()
        argmax = 1 if p1 >= 0.5 else 0
        assert member[argmax]
        # a label is in the set when its score 1 - P(label) <= quantile, or it is the argmax
        for label, prob in ((0, 1.0 - p1), (1, p1)):
            assert member[label] == ((1.0 - prob <= quantile) or label == argmax)
    if quantile == math.inf:
        assert sets.all()


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_split_conformal_coverage_guarantee(coverage):
    # a calibrated model: p ~ U(0, 1), y ~ Bernoulli(p); calibration and test images are
    # exchangeable, so the marginal coverage is at least `coverage`
    rng = np.random.default_rng(12345)
    n_cal, n_test, reps = 500, 500, 300
    covered = []
    for _ in range(reps):
        p_cal = rng.random(n_cal)
        y_cal = (rng.random(n_cal) < p_cal).astype(int)
        p_test = rng.random(n_test)
        y_test = (rng.random(n_test) < p_test).astype(int)
        q = conformal_quantile(conformal_scores(y_cal, p_cal), coverage)
        sets = prediction_sets(p_test, q)
        covered.append(np.mean(sets[np.arange(n_test), y_test]))
    mean = float(np.mean(covered))
    assert mean >= coverage - 0.01
    assert mean <= coverage + 0.06


def test_separable_validation_set_cannot_push_temperature_to_zero():
    """All validation images right: the likelihood keeps falling as T -> 0; T stops at 0.25."""
    z = np.array([-4.0, -3.0, -2.5, 2.0, 3.0, 5.0])
    y = np.array([0, 0, 0, 1, 1, 1], dtype=float)
    t = Calibrator("temperature").fit(z, y).params_["temperature"]
    assert t == pytest.approx(0.25, rel=1e-3)
    assert nll(z, y, 0.1) < nll(z, y, t)  # the unbounded optimum would be sharper still


# ---------------------------------------------------------------------- calibration="auto"
def test_cross_validate_equals_a_brute_force_temperature_per_fold():
    s, y = logistic_data(300, 1.0, 0.0, seed=3)
    z, folds = 2.0 * s, np.arange(300) % 4  # over-confident by 2x
    grid = np.exp(np.linspace(np.log(0.25), np.log(20.0), 4001))
    p = np.empty(300)
    for k in range(4):
        fit, held = folds != k, folds == k
        t = grid[np.argmin([nll(z[fit], y[fit], t) for t in grid])]
        p[held] = expit(z[held] / t)
    log_loss = lambda q: -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))  # noqa: E731
    check = cross_validate("temperature", z, y, folds)
    assert check["n_folds"] == 4
    assert check["cv_log_loss_raw"] == pytest.approx(log_loss(expit(z)), abs=1e-5)
    assert check["cv_log_loss_calibrated"] == pytest.approx(log_loss(p), abs=2e-4)
    assert check["cv_brier_raw"] == pytest.approx(np.mean((expit(z) - y) ** 2), abs=1e-5)
    assert check["cv_brier_calibrated"] == pytest.approx(np.mean((p - y) ** 2), abs=2e-4)


def test_auto_fits_the_temperature_that_over_confident_logits_need():
    s, y = logistic_data(2000, 1.0, 0.0, seed=4)
    decisions = fit_decisions(3.0 * s, y, "auto", 0.5, fold_numbers(fold_indices(y, 5, 0), 2000))
    report = decisions.calibration_report
    assert report["method"] == "temperature" and report["asked"] == "auto"
    assert decisions.calibrator.params_["temperature"] == pytest.approx(3.0, rel=0.1)
    assert report["cv_brier_calibrated"] < report["cv_brier_raw"] - 0.01
    assert report["cv_log_loss_calibrated"] < report["cv_log_loss_raw"] - 0.05
    assert report["note"].startswith("temperature ")


def test_auto_keeps_the_raw_sigmoid_where_a_temperature_would_sharpen_a_mistake():
    """Twenty clear images and one the model leans against: the temperature fitted on all
    of them sharpens (T about 0.5), and on the fold that holds the mistake out it is
    sharper still (nothing there to stop it) and turns that mistake into a confident
    one. Cross-validation sees it; the raw sigmoid is kept."""
    z = np.array([2.0] * 10 + [-2.0] * 10 + [-1.0])
    y = np.array([1] * 10 + [0] * 10 + [1])
    folds = np.arange(21) % 5
    assert Calibrator("temperature").fit(z, y).params_["temperature"] < 0.6
    decisions = fit_decisions(z, y, "auto", 0.5, folds)
    report = decisions.calibration_report
    assert decisions.calibrator is None and report["method"] is None
    assert report["cv_brier_calibrated"] > report["cv_brier_raw"]
    assert report["note"].startswith("raw sigmoid")
    np.testing.assert_allclose(decisions.probabilities(z), expit(z))
    assert report["ece_after"] == report["ece_before"]


def test_auto_with_a_single_image_of_a_class_keeps_the_raw_sigmoid():
    y = np.array([0, 0, 0, 1])
    folds = fold_numbers(fold_indices(y, 5, 0), 4)  # none: one image cannot be split
    decisions = fit_decisions(np.array([-1.0, -2.0, 0.5, 3.0]), y, "auto", 0.5, folds)
    assert decisions.calibrator is None
    assert "too few images" in decisions.calibration_report["note"]


def test_auto_with_held_out_images_of_one_class_says_so():
    decisions = fit_decisions(np.array([-1.0, -2.0, 0.5]), np.array([0, 0, 0]), "auto", 0.5)
    assert decisions.calibrator is None and decisions.calibration_report["method"] is None
    assert "one class" in decisions.calibration_report["note"]
