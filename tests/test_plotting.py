"""Plots are drawn headless and inspected through their artists."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from conftest import make_image

from binaryvision import ConfidenceDisplay
from binaryvision.lr_finder import LRFindResult


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
