"""Plots are drawn headless and inspected through their artists."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from conftest import make_image

from binaryvision import ConfidenceDisplay
from binaryvision.training.lr_finder import LRFindResult


@pytest.fixture
def display_data():
    rng = np.random.default_rng(0)
    items = [np.asarray(make_image(i % 2, rng)) for i in range(20)]
    targets = np.array([i % 2 for i in range(20)])
    p = np.where(targets == 1, 0.8, 0.2)
    p[[0, 2]] = [0.9, 0.55]  # class-0 images predicted positive: wrong
    p[[1]] = [0.05]  # a class-1 image predicted negative: wrong
    p[4] = 0.49  # the most uncertain
    return items, p, targets


def test_views_select_the_right_images(display_data):
    items, p, t = display_data
    views = dict(ConfidenceDisplay(items, p, t, ["cat", "dog"], n_images=3).views_)
    assert list(views["Most confident wrong: true cat, predicted dog"]) == [0, 2]
    assert list(views["Most confident wrong: true dog, predicted cat"]) == [1]
    assert views["Most uncertain (closest to 0.5)"][0] == 4
    assert set(views["Random incorrect"]) == {0, 1, 2}
    assert all(((p[i] >= 0.5) == t[i]) for i in views["Random correct"])
    assert all(t[i] == 0 and p[i] < 0.5 for i in views["Most confident correct: cat"])


def test_plot_draws_panels_with_probability_titles(display_data):
    items, p, t = display_data
    backend = matplotlib.get_backend()
    display = ConfidenceDisplay(items, p, t, ["cat", "dog"], n_images=4).plot()
    assert matplotlib.get_backend() == backend  # no backend switch, no window
    assert len(display.image_axes_) == 7
    for (_title, index), axes in zip(display.views_, display.image_axes_):
        assert len(axes) == len(index)
        for a, i in zip(axes, index):
            assert a.get_title().startswith(f"{p[i]:.3f}")
            assert a.title.get_color() == ("tab:green" if (p[i] >= 0.5) == t[i] else "tab:red")
    bars = [patch for patch in display.ax_hist_.patches]
    assert sum(b.get_height() for b in bars) == len(p)
    assert display.ax_hist_.get_xlabel() == "predicted P(dog)"


def test_plot_into_given_axes(display_data):
    from matplotlib.figure import Figure

    items, p, t = display_data
    fig = Figure()
    ax = fig.add_subplot()
    display = ConfidenceDisplay(items, p, t, ["cat", "dog"], n_images=2).plot(ax=ax)
    assert display.figure_ is fig
    assert ax not in fig.axes


def test_lr_plot_marks_suggestions():
    lrs = np.geomspace(1e-5, 1, 50)
    losses = (np.log10(lrs) + 2.5) ** 2 + 1
    result = LRFindResult(lrs, losses).plot()
    assert result.ax_.get_xscale() == "log"
    labels = [line.get_label() for line in result.ax_.get_lines()]
    assert len(labels) == 4 and any("(suggested)" in label for label in labels)


def test_plot_confidence_from_classifier(fitted_tiny):
    clf, root = fitted_tiny
    display = clf.plot_confidence(root / "valid", n_images=3)
    assert display.figure_ is not None
    n = sum(len(a) for a in display.image_axes_)
    assert n > 0
    assert "P(viserion)" in display.figure_._suptitle.get_text()


# ---------------------------------------------------------------------- new displays
# Hand-checked example: 4 negatives, 4 positives; at threshold 0.5 the predicted
# positives are the images with p >= 0.5: negatives 0.6 (one false positive),
# positives 0.7, 0.9 and 0.5 (three true positives; 0.3 is a false negative).
Y_SMALL = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P_SMALL = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.3, 0.9, 0.5])
TP, FP, FN, TN = 3, 1, 1, 3


def _legend_labels(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _line(ax, prefix):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith(prefix)]
    return line


def _hand_ece(y, p, n_bins):
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (p >= lo) & ((p < hi) if b < n_bins - 1 else (p <= hi))
        if inside.any():
            total += inside.sum() * abs(y[inside].mean() - p[inside].mean())
    return total / len(y)


def test_reliability_display_before_and_after_calibration():
    from binaryvision.outputs import plots as plotting

    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 4000)
    y = (rng.uniform(0, 1, 4000) < p).astype(int)  # p is calibrated, p**3 is not
    display = plotting.ReliabilityDisplay.from_predictions(
        y, p, y_prob_uncalibrated=p**3, classes=["cat", "dog"], n_bins=10
    )
    assert display.ece_ == pytest.approx(_hand_ece(y, p, 10))
    assert display.ece_uncalibrated_ == pytest.approx(_hand_ece(y, p**3, 10))
    assert display.ece_ < 0.05 < display.ece_uncalibrated_
    assert len(display.figure_.axes) == 2
    assert display.ax_hist_.get_shared_x_axes().joined(display.ax_, display.ax_hist_)
    labels = _legend_labels(display.ax_)
    assert "perfectly calibrated" in labels
    assert f"after calibration (ECE {display.ece_:.3f})" in labels
    assert f"before calibration (ECE {display.ece_uncalibrated_:.3f})" in labels
    assert display.ax_.get_xlabel() == "mean predicted P(dog)"
    assert display.ax_.get_ylabel() == "fraction of dog"
    assert "P(dog)" in display.ax_.get_title() and "cat" in display.ax_.get_title()
    # the "after" curve: per non-empty tenth, mean probability and fraction of dogs
    bins = np.minimum((p * 10).astype(int), 9)
    after = _line(display.ax_, "after")
    expected_x = [p[bins == b].mean() for b in range(10)]
    expected_y = [y[bins == b].mean() for b in range(10)]
    np.testing.assert_allclose(after.get_xdata(), expected_x)
    np.testing.assert_allclose(after.get_ydata(), expected_y)
    # the filled histogram of the calibrated probabilities has one bar per bin
    from matplotlib.patches import Rectangle

    bars = [patch for patch in display.ax_hist_.patches if isinstance(patch, Rectangle)]
    heights = [bar.get_height() for bar in bars]
    assert heights == [np.sum(bins == b) for b in range(10)]
    assert len(display.ax_hist_.patches) > len(bars)  # the "before" step outline


def test_reliability_display_without_uncalibrated():
    from binaryvision.outputs.plots import ReliabilityDisplay

    display = ReliabilityDisplay.from_predictions(Y_SMALL, P_SMALL, classes=["cat", "dog"])
    assert display.ece_uncalibrated_ is None
    labels = _legend_labels(display.ax_)
    assert len(labels) == 2 and not any("before" in label for label in labels)
    assert display.ece_ == pytest.approx(_hand_ece(Y_SMALL, P_SMALL, 15))


def test_roc_display_perfect_separation_has_auc_one():
    from binaryvision.outputs.plots import ROCCurveDisplay

    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    display = ROCCurveDisplay.from_predictions(y, p, classes=["cat", "dog"])
    assert display.roc_auc_ == 1.0
    assert "AUC = 1.000" in display.line_.get_label()
    assert (display.fpr_at_threshold_, display.tpr_at_threshold_) == (0.0, 1.0)


def test_roc_display_operating_point_and_auc():
    from binaryvision.outputs.plots import ROCCurveDisplay

    display = ROCCurveDisplay.from_predictions(
        Y_SMALL, P_SMALL, classes=["cat", "dog"], threshold=0.5
    )
    # AUC = share of (positive, negative) pairs ranked correctly
    pairs = [
        (pp > pn) + 0.5 * (pp == pn) for pp in P_SMALL[Y_SMALL == 1] for pn in P_SMALL[Y_SMALL == 0]
    ]
    assert display.roc_auc_ == pytest.approx(np.mean(pairs))
    assert f"AUC = {np.mean(pairs):.3f}" in display.line_.get_label()
    assert display.fpr_at_threshold_ == FP / (FP + TN)
    assert display.tpr_at_threshold_ == TP / (TP + FN)
    assert list(display.point_.get_xdata()) == [FP / (FP + TN)]
    assert list(display.point_.get_ydata()) == [TP / (TP + FN)]
    assert display.point_.get_marker() == "o"
    assert display.point_.get_label() == "threshold 0.50: TPR 0.75, FPR 0.25"
    labels = _legend_labels(display.ax_)
    assert len(labels) == 3 and any(label.startswith("chance") for label in labels)
    assert "dog" in display.ax_.get_title()


def test_pr_display_average_precision_prevalence_and_point():
    from binaryvision.outputs.plots import PRCurveDisplay

    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.45, 0.8, 0.4, 0.6, 0.7, 0.9])
    display = PRCurveDisplay.from_predictions(y, p, classes=["cat", "dog"], threshold=0.5)
    # AP without ties: mean over positives of the precision at that positive's rank
    ranked = y[np.argsort(-p)]
    hits = np.cumsum(ranked)
    ap = np.mean([hits[k] / (k + 1) for k in range(len(y)) if ranked[k]])
    assert display.average_precision_ == pytest.approx(ap)
    assert f"AP = {ap:.3f}" in display.line_.get_label()
    # at 0.5: predicted positive are 0.8 (a cat), 0.6, 0.7, 0.9 (dogs); 0.4 is a missed dog
    assert display.precision_at_threshold_ == 3 / 4
    assert display.recall_at_threshold_ == 3 / 4
    assert list(display.point_.get_xdata()) == [3 / 4]  # recall on x
    assert list(display.point_.get_ydata()) == [3 / 4]
    chance = _line(display.ax_, "chance")
    assert chance.get_label() == "chance (prevalence 0.40)"
    assert list(chance.get_ydata()) == [0.4, 0.4]
    assert display.ax_.get_xlabel().startswith("recall")


def test_pr_display_precision_is_one_when_nothing_is_positive():
    from binaryvision.outputs.plots import PRCurveDisplay

    display = PRCurveDisplay(Y_SMALL, P_SMALL, threshold=0.95)
    assert display.precision_at_threshold_ == 1.0
    assert display.recall_at_threshold_ == 0.0


def test_threshold_display_curves_and_threshold_line():
    from binaryvision.outputs.plots import ThresholdDisplay

    display = ThresholdDisplay.from_predictions(
        Y_SMALL, P_SMALL, classes=["cat", "dog"], threshold=0.45
    )
    assert len(display.thresholds_) == 201
    assert display.thresholds_[0] == 0.0 and display.thresholds_[-1] == 1.0
    for i in [0, 50, 60, 100, 130, 180, 200]:
        t = display.thresholds_[i]
        pred = [pi >= t for pi in P_SMALL]
        tp = sum(pr and yi == 1 for pr, yi in zip(pred, Y_SMALL))
        fp = sum(pr and yi == 0 for pr, yi in zip(pred, Y_SMALL))
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / 4
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        balanced = (recall + (4 - fp) / 4) / 2
        assert display.curves_["precision"][i] == pytest.approx(precision)
        assert display.curves_["recall"][i] == pytest.approx(recall)
        assert display.curves_["F1"][i] == pytest.approx(f1)
        assert display.curves_["balanced accuracy"][i] == pytest.approx(balanced)
    assert display.curves_["precision"][-1] == 1.0  # nothing is >= 1.0: convention
    line = _line(display.ax_, "threshold")
    assert line.get_label() == "threshold 0.45"
    assert list(line.get_xdata()) == [0.45, 0.45]
    assert line.get_linestyle() == "--"
    labels = _legend_labels(display.ax_)
    assert labels[:4] == ["precision", "recall", "F1", "balanced accuracy"]
    for name, values in display.curves_.items():
        np.testing.assert_array_equal(_line(display.ax_, name).get_ydata(), values)


def test_confusion_matrix_display_counts_and_texts():
    from binaryvision.outputs.plots import ConfusionMatrixDisplay

    abstained = np.zeros(len(Y_SMALL), dtype=bool)
    abstained[[3, 7]] = True
    display = ConfusionMatrixDisplay.from_predictions(
        Y_SMALL, P_SMALL, classes=["cat", "dog"], threshold=0.5, abstained=abstained
    )
    np.testing.assert_array_equal(display.matrix_, [[TN, FP], [FN, TP]])
    texts = [[t.get_text() for t in row] for row in display.text_]
    assert texts == [["3\n(75%)", "1\n(25%)"], ["1\n(25%)", "3\n(75%)"]]
    assert display.ax_.get_title() == "threshold 0.50, 2 abstained"
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["cat", "dog"]
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == ["cat", "dog"]
    assert (display.ax_.get_xlabel(), display.ax_.get_ylabel()) == ("predicted", "true")
    assert len(display.ax_.get_images()) == 1


def test_confusion_matrix_display_uneven_rows_without_abstention():
    from binaryvision.outputs.plots import ConfusionMatrixDisplay

    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1])
    p = np.array([0.2, 0.3, 0.8, 0.9, 0.9, 0.1, 0.1, 0.1, 0.6])
    # cats: 2 right, 1 wrong; dogs: 3 right (0.9, 0.9, 0.6), 3 wrong
    display = ConfusionMatrixDisplay.from_predictions(y, p)
    np.testing.assert_array_equal(display.matrix_, [[2, 1], [3, 3]])
    assert display.text_[0, 0].get_text() == "2\n(67%)"
    assert display.text_[1, 1].get_text() == "3\n(50%)"
    assert display.ax_.get_title() == "threshold 0.50"


@pytest.mark.parametrize(
    "name", ["ReliabilityDisplay", "ROCCurveDisplay", "PRCurveDisplay", "ThresholdDisplay"]
)
def test_displays_draw_into_given_axes(name):
    from matplotlib.figure import Figure

    from binaryvision.outputs import plots as plotting

    fig = Figure()
    left, right = fig.subplots(1, 2)
    display = getattr(plotting, name).from_predictions(Y_SMALL, P_SMALL, ax=right)
    assert display.figure_ is fig
    assert display.ax_.get_figure(root=True) is fig
    assert left in fig.axes and display.ax_.get_lines()
    if name == "ReliabilityDisplay":
        assert right not in fig.axes  # its area was split into curve and histogram
        assert display.ax_hist_.get_figure(root=True) is fig
    else:
        assert display.ax_ is right


def test_confusion_matrix_draws_into_given_axes():
    from matplotlib.figure import Figure

    from binaryvision.outputs.plots import ConfusionMatrixDisplay

    fig = Figure()
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay.from_predictions(Y_SMALL, P_SMALL, ax=ax)
    assert display.figure_ is fig and display.ax_ is ax
    assert len(ax.get_images()) == 1


def test_displays_new_figure_is_constrained_and_headless():
    from matplotlib.figure import Figure

    from binaryvision.outputs.plots import ROCCurveDisplay

    backend = matplotlib.get_backend()
    display = ROCCurveDisplay.from_predictions(Y_SMALL, P_SMALL)
    assert isinstance(display.figure_, Figure)
    assert display.figure_.get_layout_engine().__class__.__name__ == "ConstrainedLayoutEngine"
    assert matplotlib.get_backend() == backend


@pytest.mark.parametrize(
    "name",
    [
        "ReliabilityDisplay",
        "ROCCurveDisplay",
        "PRCurveDisplay",
        "ThresholdDisplay",
        "ConfusionMatrixDisplay",
    ],
)
@pytest.mark.parametrize(
    ("y_true", "y_prob", "words"),
    [
        ([0, 1, 1], [0.2, 0.7], ["y_true", "y_prob", "same length", "3", "2"]),
        ([0, 2, 1], [0.2, 0.7, 0.4], ["y_true", "0/1", "2"]),
        ([0, 1, 1], [0.2, 1.5, 0.4], ["y_prob", "[0, 1]", "1.5"]),
        ([0, 1, 1], [0.2, float("nan"), 0.4], ["y_prob", "[0, 1]", "nan"]),
    ],
)
def test_displays_reject_bad_input(name, y_true, y_prob, words):
    from binaryvision import InvalidParameterError
    from binaryvision.outputs import plots as plotting

    with pytest.raises(InvalidParameterError) as info:
        getattr(plotting, name)(y_true, y_prob)
    for word in words:
        assert word in str(info.value)


def test_displays_reject_bad_optional_arrays():
    from binaryvision import InvalidParameterError
    from binaryvision.outputs.plots import ConfusionMatrixDisplay, ReliabilityDisplay

    with pytest.raises(InvalidParameterError, match=r"y_prob_uncalibrated .*\[0, 1\]"):
        ReliabilityDisplay(Y_SMALL, P_SMALL, y_prob_uncalibrated=P_SMALL - 0.3)
    with pytest.raises(InvalidParameterError, match=r"abstained .*8.*got 3"):
        ConfusionMatrixDisplay(Y_SMALL, P_SMALL, abstained=[True, False, True])


def test_curves_need_both_classes():
    from binaryvision import InvalidParameterError
    from binaryvision.outputs.plots import ROCCurveDisplay

    with pytest.raises(InvalidParameterError, match="y_true must hold both labels"):
        ROCCurveDisplay([1, 1, 1], [0.2, 0.5, 0.9])


def test_new_displays_are_exported():
    from binaryvision.outputs import plots as plotting

    for name in [
        "ReliabilityDisplay",
        "ROCCurveDisplay",
        "PRCurveDisplay",
        "ThresholdDisplay",
        "ConfusionMatrixDisplay",
    ]:
        assert name in plotting.__all__ and callable(getattr(plotting, name).from_predictions)


# ---------------------------------------------------------------------- confidence extras
def test_confidence_abstained_and_spread_views(display_data):
    items, p, t = display_data
    abstained = np.zeros(len(p), dtype=bool)
    abstained[[3, 4, 2, 1]] = True  # |p - 0.5|: 0.3, 0.01, 0.05, 0.45
    spread = np.linspace(0.0, 0.19, len(p))  # largest at the end
    spread[5] = 0.5
    display = ConfidenceDisplay(
        items, p, t, ["cat", "dog"], n_images=3, abstained=abstained, spread=spread
    )
    titles = [title for title, _ in display.views_]
    uncertain = titles.index("Most uncertain (closest to 0.5)")
    assert titles[uncertain + 1] == "Abstained (both labels plausible)"
    assert titles[uncertain + 2] == "Largest TTA spread"
    views = dict(display.views_)
    assert list(views["Abstained (both labels plausible)"]) == [4, 2, 3]
    assert list(views["Largest TTA spread"]) == [5, 19, 18]


def test_confidence_spread_titles_and_extra_rows(display_data):
    items, p, t = display_data
    spread = np.full(len(p), 0.034)
    abstained = np.abs(p - 0.5) < 0.1
    display = ConfidenceDisplay(
        items, p, t, ["cat", "dog"], n_images=2, abstained=abstained, spread=spread
    ).plot()
    assert len(display.image_axes_) == 9
    for (_title, index), axes in zip(display.views_, display.image_axes_):
        assert len(axes) == len(index)
        for a, i in zip(axes, index):
            assert a.get_title() == f"{p[i]:.3f} ± 0.034 ({['cat', 'dog'][t[i]]})"
    names = [sub._suptitle.get_text() for sub in display.figure_.subfigs if sub._suptitle]
    assert "Abstained (both labels plausible) (2)" in names
    assert "Largest TTA spread (2)" in names


def test_confidence_rejects_misaligned_extras(display_data):
    from binaryvision import InvalidParameterError

    items, p, t = display_data
    with pytest.raises(InvalidParameterError, match="spread"):
        ConfidenceDisplay(items, p, t, ["cat", "dog"], spread=np.ones(3))
    with pytest.raises(InvalidParameterError, match="abstained"):
        ConfidenceDisplay(items, p, t, ["cat", "dog"], abstained=np.ones(len(p) + 1, bool))
