"""Tests of ECE, threshold rules and the evaluation report.

They live in binaryvision.decisions.metrics, binaryvision.decisions.thresholds and
binaryvision.outputs.report.

Every expected value is derived independently of the code under test: by a brute-force
loop written here, by scikit-learn called here, or by hand on tiny arrays.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from binaryvision.decisions.metrics import ece_of_a_calibrated_model, expected_calibration_error
from binaryvision.decisions.thresholds import check_threshold_rule, choose_threshold
from binaryvision.exceptions import InvalidParameterError
from binaryvision.outputs.report import EvaluationReport

N_BINS = 15
#: The 16 bin edges of 15 equal-width bins on [0, 1] (the same floats sklearn uses).
EDGES = np.linspace(0.0, 1.0, N_BINS + 1)


# ---------------------------------------------------------------------- strategies
def probabilities(exclude_one: bool = False) -> st.SearchStrategy[float]:
    """Probabilities in [0, 1], often exactly on a bin edge or a round value (ties)."""
    edges = [float(e) for e in EDGES if not (exclude_one and e == 1.0)]
    rounds = [0.0, 0.25, 0.5, 0.75] + ([] if exclude_one else [1.0])
    return st.one_of(
        st.floats(0.0, 1.0, exclude_max=exclude_one),
        st.sampled_from(edges),
        st.sampled_from(rounds),
    )


@st.composite
def labelled(
    draw, min_size: int = 1, max_size: int = 60, both: bool = False, exclude_one: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_prob)``: 0/1 labels and probabilities; ``both`` forces both classes."""
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, 1), probabilities(exclude_one)),
            min_size=min_size,
            max_size=max_size,
        )
    )
    y = np.array([a for a, _ in pairs], dtype=int)
    p = np.array([b for _, b in pairs], dtype=float)
    if both:
        extra = draw(st.tuples(probabilities(exclude_one), probabilities(exclude_one)))
        y = np.concatenate([y, [0, 1]])
        p = np.concatenate([p, extra])
    return y, p


# ---------------------------------------------------------------------- brute force
def bin_of(prob: float) -> int:
    """Bin index of one probability: bin i is (EDGES[i], EDGES[i + 1]], bin 0 also holds 0.

    A probability exactly on an inner edge belongs to the bin on its left.
    """
    for i in range(N_BINS):
        if prob <= EDGES[i + 1]:
            return i
    raise AssertionError(f"probability {prob} is above 1")


def brute_bins(y: np.ndarray, p: np.ndarray) -> list[list[int]]:
    """Sample indices of each of the 15 bins."""
    members: list[list[int]] = [[] for _ in range(N_BINS)]
    for j, prob in enumerate(p):
        members[bin_of(float(prob))].append(j)
    return members


def brute_ece(y: np.ndarray, p: np.ndarray) -> float:
    """ECE by a plain loop over the 15 bins."""
    total = 0.0
    for idx in brute_bins(y, p):
        if idx:
            frac_pos = sum(float(y[j]) for j in idx) / len(idx)
            mean_prob = sum(float(p[j]) for j in idx) / len(idx)
            total += len(idx) / len(y) * abs(frac_pos - mean_prob)
    return total


def counts_at(y: np.ndarray, p: np.ndarray, t: float) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` when predicting positive for ``p >= t``."""
    pred = p >= t
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    return tp, fp, fn, tn


def precision_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    tp, fp, _, _ = counts_at(y, p, t)
    return tp / (tp + fp)


def recall_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    tp, _, fn, _ = counts_at(y, p, t)
    return tp / (tp + fn)


def unique_probs(p: np.ndarray) -> list[float]:
    return sorted({float(v) for v in p})


# ---------------------------------------------------------------------- ECE
@given(labelled())
def test_ece_equals_brute_force_loop_over_15_bins(data):
    y, p = data
    assert expected_calibration_error(y, p) == pytest.approx(brute_ece(y, p), abs=1e-12)


@pytest.mark.parametrize("k", range(1, N_BINS))
def test_probability_on_an_inner_edge_belongs_to_the_left_bin(k):
    # one sample exactly on edge k, labelled positive, alone in its bin; if it were put
    # in the right-hand bin with the other sample, the ECE would differ
    edge = float(EDGES[k])
    right = float((EDGES[k] + EDGES[k + 1]) / 2)
    y = np.array([1, 0])
    p = np.array([edge, right])
    # left bin: |1 - edge|, right bin: |0 - right|, each weighted 1/2
    expected = 0.5 * abs(1 - edge) + 0.5 * abs(0 - right)
    merged = abs(0.5 - (edge + right) / 2)  # what the right-bin convention would give
    assert expected != pytest.approx(merged)
    assert expected_calibration_error(y, p) == pytest.approx(expected, abs=1e-12)


@given(labelled(both=True))
@settings(deadline=None)  # many sklearn calls per example
def test_ece_agrees_with_sklearn_calibration_curve(data):
    y, p = data
    prob_true, prob_pred = calibration_curve(y, p, n_bins=N_BINS, strategy="uniform")
    members = [idx for idx in brute_bins(y, p) if idx]
    # sklearn drops empty bins: the non-empty ones line up with the brute-force binning
    assert len(members) == len(prob_true) == len(prob_pred)
    for idx, frac, mean in zip(members, prob_true, prob_pred):
        assert frac == pytest.approx(np.mean(y[idx]), abs=1e-12)
        assert mean == pytest.approx(np.mean(p[idx]), abs=1e-12)
    counts = np.array([len(idx) for idx in members])
    from_sklearn = float(np.sum(counts * np.abs(prob_true - prob_pred)) / len(y))
    assert expected_calibration_error(y, p) == pytest.approx(from_sklearn, abs=1e-12)


@given(st.lists(st.tuples(st.integers(1, 12), st.integers(0, 12)), min_size=1, max_size=8))
def test_ece_is_zero_on_perfectly_calibrated_data(groups):
    # each group: n images all predicted k/n, of which exactly k are positive; a bin is a
    # union of such groups, so its fraction of positives equals its mean probability
    y, p = [], []
    for n, k in groups:
        k = min(k, n)
        y += [1] * k + [0] * (n - k)
        p += [k / n] * n
    assert expected_calibration_error(np.array(y), np.array(p)) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_hand_computed_example():
    # bin 0 ([0, 1/15]): probs 0.0, 0.05 with labels 0, 1 -> |0.5 - 0.025| * 2/4
    # bin 14 ((14/15, 1]): probs 1.0, 1.0 with labels 1, 1 -> 0
    y = [0, 1, 1, 1]
    p = [0.0, 0.05, 1.0, 1.0]
    assert expected_calibration_error(y, p) == pytest.approx(0.475 * 0.5)


def test_ece_is_positive_when_miscalibrated():
    assert expected_calibration_error([0, 0], [0.9, 0.9]) == pytest.approx(0.9)


def test_ece_length_mismatch_names_both_arguments():
    with pytest.raises(InvalidParameterError) as info:
        expected_calibration_error([0, 1, 1], [0.2, 0.8])
    message = str(info.value)
    assert "y_true" in message and "y_prob" in message


# ---------------------------------------------------------------------- threshold rules
@given(labelled(both=True))
@settings(deadline=None)  # many sklearn calls per example
def test_f1_rule_is_at_least_the_f1_of_every_unique_probability(data):
    y, p = data
    choice = choose_threshold(y, p, "f1")
    chosen = skm.f1_score(y, p >= choice.threshold, zero_division=0.0)
    best = max(skm.f1_score(y, p >= t, zero_division=0.0) for t in unique_probs(p))
    assert chosen >= best - 1e-12
    assert choice.met
    assert choice.achieved == pytest.approx(chosen)


@given(labelled(both=True))
def test_youden_rule_is_at_least_the_j_of_every_unique_probability(data):
    y, p = data

    def youden(t: float) -> float:
        tp, fp, fn, tn = counts_at(y, p, t)
        return tp / (tp + fn) - fp / (fp + tn)

    choice = choose_threshold(y, p, "youden")
    best = max(youden(t) for t in unique_probs(p))
    assert youden(choice.threshold) >= best - 1e-12
    assert choice.achieved == pytest.approx(youden(choice.threshold))


@given(labelled(both=True), st.floats(0.01, 1.0))
def test_precision_rule_is_the_smallest_threshold_reaching_the_target(data, target):
    y, p = data
    choice = choose_threshold(y, p, {"precision": target})
    reaching = [t for t in unique_probs(p) if precision_at(y, p, t) >= target]
    if reaching:
        assert choice.met
        assert choice.threshold == reaching[0]
        assert precision_at(y, p, choice.threshold) >= target
        assert choice.achieved == pytest.approx(precision_at(y, p, choice.threshold))
    else:
        assert not choice.met
        assert "not reached" in choice.message
        # the closest one can get: the best precision among the unique probabilities
        best = max(precision_at(y, p, t) for t in unique_probs(p))
        assert precision_at(y, p, choice.threshold) == pytest.approx(best)


def test_unreachable_precision_is_reported_not_met():
    # the top-scored image is a negative: no threshold has precision 1
    y = np.array([0, 1, 1, 0, 1, 0])
    p = np.array([0.95, 0.9, 0.8, 0.4, 0.3, 0.1])
    choice = choose_threshold(y, p, {"precision": 1.0})
    assert choice.met is False
    assert "not reached" in choice.message
    # best precision by hand: t=0.8 -> 2/3; t=0.3 -> 3/5; t=0.95 -> 0
    assert choice.threshold == 0.8
    assert choice.achieved == pytest.approx(2 / 3)


@given(labelled(both=True), st.floats(0.01, 1.0))
def test_recall_rule_is_the_largest_threshold_reaching_the_target(data, target):
    y, p = data
    choice = choose_threshold(y, p, {"recall": target})
    reaching = [t for t in unique_probs(p) if recall_at(y, p, t) >= target]
    assert reaching  # the lowest probability has recall 1
    assert choice.met
    assert choice.threshold == reaching[-1]
    assert recall_at(y, p, choice.threshold) >= target


def total_cost(y: np.ndarray, pred: np.ndarray, fp_cost: float, fn_cost: float) -> float:
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    return fp_cost * fp + fn_cost * fn


costs = st.tuples(st.floats(0, 10), st.floats(0, 10)).filter(lambda c: c[0] > 0 or c[1] > 0)


@given(labelled(both=True), costs)
def test_cost_rule_minimises_the_total_cost(data, cost):
    y, p = data
    fp_cost, fn_cost = cost
    choice = choose_threshold(y, p, {"fp_cost": fp_cost, "fn_cost": fn_cost})
    chosen = total_cost(y, p >= choice.threshold, fp_cost, fn_cost)
    candidates = [total_cost(y, p >= t, fp_cost, fn_cost) for t in unique_probs(p)]
    candidates.append(total_cost(y, np.zeros(len(y), bool), fp_cost, fn_cost))  # none positive
    candidates.append(total_cost(y, np.ones(len(y), bool), fp_cost, fn_cost))  # all positive
    assert chosen <= min(candidates) * (1 + 1e-12) + 1e-12
    assert choice.achieved == pytest.approx(chosen / len(y), abs=1e-12)


def test_cost_rule_by_hand():
    # a missed positive costs five false alarms; by hand (p >= t is positive):
    # t=0.1: FP 3 -> 3; t=0.2: FP 2 -> 2; t=0.3: FP 1 -> 1; t=0.6: FP 1 + FN 1 -> 6;
    # t=0.9: FN 1 -> 5; none positive: FN 2 -> 10
    y = np.array([0, 1, 0, 1, 0])
    p = np.array([0.1, 0.3, 0.2, 0.9, 0.6])
    choice = choose_threshold(y, p, {"fp_cost": 1, "fn_cost": 5})
    assert choice.threshold == 0.3
    assert choice.achieved == pytest.approx(1 / 5)


def test_cost_rule_predicting_none_with_a_probability_of_one():
    # by hand: all positive -> FP 2 = 2; t=0.5 -> FP 2 + FN 1 = 3; t=1.0 -> FP 1 + FN 1 = 2;
    # none positive -> FN 1 = 1 (the cheapest)
    y = np.array([0, 0, 1])
    p = np.array([1.0, 0.5, 0.2])
    choice = choose_threshold(y, p, {"fp_cost": 1, "fn_cost": 1})
    assert total_cost(y, p >= choice.threshold, 1, 1) == 1
    assert choice.threshold > 1.0 and "never" in choice.message


@given(st.floats(0.0, 1.0))
def test_float_rule_is_returned_as_is(t):
    choice = choose_threshold([0, 1], [0.3, 0.7], t)
    assert choice.threshold == t
    assert choice.met


def test_float_rule_needs_no_tuning_data():
    assert choose_threshold([1, 1], [0.2, 0.9], 0.4).threshold == 0.4


@pytest.mark.parametrize(
    "rule",
    [
        {"precision": 1.5},
        {"precision": 0},
        {"recall": -0.1},
        {"recall": float("nan")},
        "f2",
        {"fp_cost": -1, "fn_cost": 1},
        {"fp_cost": 0, "fn_cost": 0},
        {"fp_cost": 1},
        True,
        1.5,
        -0.1,
        None,
        {"precision": 0.9, "recall": 0.9},
        {"precision": True},
    ],
    ids=repr,
)
def test_invalid_rules_raise_naming_the_parameter(rule):
    with pytest.raises(InvalidParameterError, match="threshold"):
        choose_threshold([0, 1], [0.3, 0.7], rule)
    with pytest.raises(InvalidParameterError, match="my_rule"):
        check_threshold_rule(rule, name="my_rule")


@pytest.mark.parametrize(
    "rule", ["f1", "youden", {"precision": 0.9}, {"recall": 0.9}, {"fp_cost": 1, "fn_cost": 2}]
)
@pytest.mark.parametrize("label", [0, 1])
def test_tuning_on_one_class_raises(rule, label):
    with pytest.raises(InvalidParameterError):
        choose_threshold([label] * 4, [0.1, 0.4, 0.6, 0.9], rule)


def test_check_threshold_rule_normalises_ints_to_floats():
    for rule, expected in [
        ({"precision": 1}, {"precision": 1.0}),
        ({"recall": 1}, {"recall": 1.0}),
        ({"fp_cost": 1, "fn_cost": 5}, {"fp_cost": 1.0, "fn_cost": 5.0}),
        ({"fp_cost": 0, "fn_cost": 3}, {"fp_cost": 0.0, "fn_cost": 3.0}),
    ]:
        got = check_threshold_rule(rule)
        assert got == expected
        assert all(type(v) is float for v in got.values())
    for value in (0, 1):
        got = check_threshold_rule(value)
        assert got == float(value) and type(got) is float
    assert check_threshold_rule(np.float32(0.25)) == 0.25
    assert check_threshold_rule("f1") == "f1"


# ---------------------------------------------------------------------- the report
@given(labelled(both=True, exclude_one=True), st.floats(0.0, 1.0))
@settings(max_examples=50, deadline=None)
def test_report_metrics_equal_sklearn(data, threshold):
    y, p = data
    p = np.clip(p, 0.01, 0.99)  # log loss: keep away from each library's own clipping
    report = EvaluationReport.from_predictions(y, p, threshold=threshold)
    pred = (p >= threshold).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0.0),
        "recall": skm.recall_score(y, pred, zero_division=0.0),
        "f1": skm.f1_score(y, pred, zero_division=0.0),
        "mcc": skm.matthews_corrcoef(y, pred),
        "roc_auc": skm.roc_auc_score(y, p),
        "average_precision": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, p),
        "ece": brute_ece(y, p),
    }
    for name, value in expected.items():
        assert report.metrics[name] == pytest.approx(value, abs=1e-12), name
    tp, fp, fn, tn = counts_at(y, p, threshold)
    assert report.metrics["confusion_matrix"] == [[tn, fp], [fn, tp]]
    assert report.metrics["n_images"] == len(y)
    assert report.metrics["n_0"] == int(np.sum(y == 0))
    assert report.metrics["n_1"] == int(np.sum(y == 1))


def test_report_uncalibrated_metrics():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.2, 0.3, 0.8, 0.6, 0.9, 0.4])
    raw = np.array([0.05, 0.4, 0.99, 0.7, 0.97, 0.6])
    report = EvaluationReport.from_predictions(y, p, y_prob_uncalibrated=raw)
    assert report.ece_uncalibrated == pytest.approx(brute_ece(y, raw), abs=1e-12)
    assert report.brier_uncalibrated == pytest.approx(skm.brier_score_loss(y, raw))
    assert "before calibration" in str(report)


def test_report_str_names_classes_and_counts():
    # by hand at threshold 0.5: tn=3 (0.1, 0.2, 0.3), fp=1 (0.7), fn=1 (0.4), tp=2
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.4, 0.8, 0.9])
    report = EvaluationReport.from_predictions(y, p, classes=("hotdog", "not_hotdog"))
    text = str(report)
    assert "7 images" in text
    assert "4 hotdog" in text and "3 not_hotdog" in text
    assert "positive class: not_hotdog" in text
    assert report.confusion_matrix == [[3, 1], [1, 2]]
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line[:4] == "    "}
    assert rows["hotdog"] == ["3", "1"]
    assert rows["not_hotdog"] == ["1", "2"]
    assert report.n_hotdog == 4 and report.n_not_hotdog == 3


def first_metric_line(report: EvaluationReport) -> str:
    lines = [line for line in str(report).splitlines() if line.startswith("  ")]
    return lines[0].strip()


@pytest.mark.parametrize(
    ("n_neg", "n_pos", "imbalanced"),
    [(30, 10, True), (10, 30, True), (9, 3, True), (20, 10, False), (10, 10, False)],
)
def test_report_leads_with_pr_auc_when_imbalanced(n_neg, n_pos, imbalanced):
    rng = np.random.default_rng(n_neg * 100 + n_pos)
    y = np.array([0] * n_neg + [1] * n_pos)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, len(y)), 0, 1)
    line = first_metric_line(EvaluationReport.from_predictions(y, p))
    if imbalanced:
        assert line.startswith("PR-AUC (average precision)")
    else:
        assert line.split()[0] == "accuracy"


def test_report_to_dict_is_json_serialisable():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    p = np.array([0.1, 0.9, 0.6, 0.4, 0.7, 0.2, 0.55, 0.45])
    report = EvaluationReport.from_predictions(
        y, p, y_prob_uncalibrated=p**2, abstained=[0, 0, 1, 1, 0, 0, 1, 0], coverage=0.9
    )
    back = json.loads(json.dumps(report.to_dict()))
    assert back["accuracy"] == pytest.approx(report.accuracy)
    assert back["confusion_matrix"] == report.confusion_matrix
    assert back["n_abstained"] == 3


def test_report_of_one_class_has_nan_ranking_metrics_and_serialises():
    single = EvaluationReport.from_predictions([1, 1, 1], [0.2, 0.6, 0.9])
    assert math.isnan(single.roc_auc) and math.isnan(single.average_precision)
    assert single.accuracy == pytest.approx(2 / 3)
    back = json.loads(json.dumps(single.to_dict()))
    assert math.isnan(back["roc_auc"])


@given(labelled(min_size=1), st.data())
def test_report_abstained_counts(data, draw):
    y, p = data
    mask = np.array(draw.draw(st.lists(st.booleans(), min_size=len(y), max_size=len(y))))
    report = EvaluationReport.from_predictions(y, p, abstained=mask, coverage=0.8)
    assert report.n_abstained == int(sum(bool(m) for m in mask))
    answered = [(int(y[i]), float(p[i])) for i in range(len(y)) if not mask[i]]
    if answered:
        correct = sum(1 for label, prob in answered if (prob >= 0.5) == (label == 1))
        assert report.accuracy_answered == pytest.approx(correct / len(answered))
    else:
        assert math.isnan(report.accuracy_answered)
    assert f"abstained: {report.n_abstained} of {len(y)}" in str(report)


def test_report_without_abstention_has_zero_abstained():
    report = EvaluationReport.from_predictions([0, 1], [0.2, 0.8])
    assert report.n_abstained == 0
    assert "abstained" not in str(report)


def test_report_attribute_access():
    report = EvaluationReport.from_predictions([0, 1, 0, 1], [0.1, 0.8, 0.6, 0.7])
    # by hand: ranks 0.1 < 0.6 < 0.7 < 0.8; positives 0.7, 0.8 both above both negatives
    assert report.roc_auc == 1.0
    assert report.roc_auc == report.metrics["roc_auc"]
    assert report.accuracy == pytest.approx(0.75)
    with pytest.raises(AttributeError):
        report.no_such_metric  # noqa: B018
    assert not hasattr(report, "no_such_metric")


def test_report_imbalance_ratio():
    assert EvaluationReport.from_predictions([0] * 6 + [1] * 2, [0.5] * 8).imbalance_ratio == 3
    assert EvaluationReport.from_predictions([1, 1], [0.5, 0.5]).imbalance_ratio == math.inf


def test_the_ece_of_a_calibrated_model_separates_noise_from_overconfidence():
    rng = np.random.default_rng(0)
    p = rng.beta(0.4, 0.4, 209)  # mostly confident, like a good classifier's
    mean, p95 = ece_of_a_calibrated_model(p)
    assert 0 < mean < p95 < 0.2
    calibrated = [expected_calibration_error(rng.random(209) < p, p) for _ in range(200)]
    assert np.mean(np.array(calibrated) <= p95) > 0.9  # true labels drawn from p: within
    overconfident = np.where(p > 0.5, 1.0, 0.0) * 0.98 + 0.01
    assert expected_calibration_error(rng.random(209) < p, overconfident) > p95
    assert ece_of_a_calibrated_model(p, random_state=1)[0] == pytest.approx(mean, abs=0.01)
