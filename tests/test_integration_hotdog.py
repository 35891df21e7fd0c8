"""Integration tests on the real hot-dog photos with the pretrained default backbone."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import HOTDOG, needs_hotdog, run_exported_file
from sklearn.metrics import log_loss

from binaryvision import BinaryVisionWarning, ImageBinaryClassifier, Trainer
from binaryvision.backbones import create_backbone
from binaryvision.backbones.efficientnet_lite import efficientnet_lite_weights_path
from binaryvision.data import ImageDataset, as_image_set, find_images
from binaryvision.decisions.metrics import ece_of_a_calibrated_model
from binaryvision.export import graph_inputs, read_export_metadata
from binaryvision.transforms import build_transforms

pytestmark = [pytest.mark.slow, needs_hotdog]


def test_imagenet_head_recognises_hot_dogs():
    """The architecture and weights are right: ImageNet class 934 is 'hotdog'."""
    backbone = create_backbone("efficientnet_lite0").eval()
    state = torch.load(efficientnet_lite_weights_path("efficientnet_lite0"), weights_only=True)
    files = find_images(HOTDOG / "valid" / "hot_dog")
    config = backbone.data_config
    tf = build_transforms(type(config)(**{**config.to_dict(), "input_size": 224}), "none")
    loader = Trainer(progress=False, num_workers=0).loader(
        ImageDataset(files, None, tf.eval, min_size=tf.decode_size), 16
    )
    features = Trainer(progress=False).predict_logits(backbone, loader)
    top1 = (features @ state["_fc.weight"].T + state["_fc.bias"]).argmax(1)
    assert (top1 == 934).float().mean() >= 0.7


@pytest.fixture(scope="module")
def decisions():
    """Issue 3's measurements: everything tuned on a split of train/, measured on valid/.

    One estimator refitted with set_params, so its feature cache runs the backbone once
    per photo; it ends fitted on the whole data set for the tests below.
    """
    clf = ImageBinaryClassifier(random_state=0, verbose=0).fit(HOTDOG / "train")
    out = {"report": clf.evaluate(HOTDOG / "valid", coverage=0.9), "selection": clf.selection_}
    valid = as_image_set(HOTDOG / "valid")
    mask = clf.predict_set(valid.items, coverage=0.9, return_mask=True)
    truth = np.searchsorted(clf.classes_, valid.labels)
    out["coverage"] = float(mask[np.arange(len(truth)), truth].mean())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BinaryVisionWarning)
        clf.set_params(threshold={"precision": 0.95}).fit(HOTDOG / "train")
    out["precision_choice"], out["precision_warnings"] = clf.threshold_choice_, caught
    out["precision"] = clf.evaluate(HOTDOG / "valid").precision
    train = as_image_set(HOTDOG / "train")
    rng = np.random.default_rng(0)
    other = np.flatnonzero(train.labels != "hot_dog")
    keep = np.sort(np.r_[np.flatnonzero(train.labels == "hot_dog"), rng.choice(other, 39, False)])
    for weight in (None, "balanced"):
        clf.set_params(threshold=0.5, class_weight=weight)
        clf.fit([train.items[i] for i in keep], train.labels[keep])
        out[f"balanced_accuracy_{weight}"] = clf.evaluate(HOTDOG / "valid").balanced_accuracy
    out["model"] = clf.set_params(class_weight=None).fit(HOTDOG)
    return out


def test_calibration_holds_on_unseen_photos(decisions):
    report = decisions["report"]
    # ECE on 209 photos is mostly sampling noise (about 0.045 for a perfectly calibrated
    # model): the test is that it is no larger than such a model would show 19 times in 20
    _, p95 = ece_of_a_calibrated_model(report.y_prob)
    assert report.ece <= p95
    # and the calibrated probabilities score no worse than the raw ones (calibration="auto"
    # keeps the raw sigmoid where cross-validation finds no gain: then they are the same)
    raw = report.y_prob if report.y_prob_uncalibrated is None else report.y_prob_uncalibrated
    assert report.log_loss <= log_loss(report.y_true, raw) + 1e-4


def test_the_autopilot_tries_every_candidate_and_keeps_the_best_on_real_photos(decisions):
    # the default fit on train/ alone: the choice never saw a valid/ photo
    selection, report = decisions["selection"], decisions["report"]
    steps = {c["name"]: c for c in selection["candidates"]}
    assert list(steps) == ["frozen_head", "l2_head", "multi_resolution_320px"]
    assert all("cv_log_loss" in c for c in steps.values())  # "auto" afforded them all here
    kept = steps[selection["kept"]]
    assert [c["kept"] for c in steps.values()].count(True) == 1 and kept["kept"]
    assert kept["cv_log_loss"] <= steps["frozen_head"]["cv_log_loss"]
    assert report.accuracy >= 0.945  # issue 13: at least 0.945 on each seed
    assert selection["kept"] in str(report)


def test_precision_target_carries_over_to_unseen_photos(decisions):
    choice = decisions["precision_choice"]
    if choice.met:
        assert abs(decisions["precision"] - 0.95) <= 0.03
    else:  # the alternative the issue allows: say why, loudly
        assert any("not reached" in str(w.message) for w in decisions["precision_warnings"])


def test_conformal_coverage_holds_on_unseen_photos(decisions):
    assert 0.87 <= decisions["coverage"] <= 0.97


def test_balanced_class_weight_helps_the_rare_class(decisions):
    assert decisions["balanced_accuracy_balanced"] > decisions["balanced_accuracy_None"]


@pytest.fixture(scope="module")
def hotdog_model(decisions):
    return decisions["model"]


def test_default_fit_reaches_093_validation_accuracy(hotdog_model):
    assert hotdog_model.score(HOTDOG / "valid") >= 0.93
    assert list(hotdog_model.classes_) == ["hot_dog", "not_hot_dog"]


def test_saved_model_predicts_the_same(hotdog_model, tmp_path):
    files = find_images(HOTDOG / "valid" / "hot_dog")[:16]
    hotdog_model.save(tmp_path / "hotdog.bv")
    loaded = ImageBinaryClassifier.load(tmp_path / "hotdog.bv")
    np.testing.assert_allclose(
        loaded.predict_proba(files), hotdog_model.predict_proba(files), atol=1e-4
    )


def test_confidence_plot_on_real_photos(hotdog_model):
    display = hotdog_model.plot_confidence(HOTDOG / "valid")
    titles = [a.get_title() for row in display.image_axes_ for a in row]
    assert len(display.image_axes_) == 7 and titles
    assert all(0.0 <= float(t.split()[0]) <= 1.0 for t in titles)
    wrong = display.image_axes_[4] + display.image_axes_[5]
    assert all(a.title.get_color() == "tab:red" for a in wrong)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_default_model_exports_and_reproduces_predict_proba(hotdog_model, tmp_path, fmt):
    # whichever candidate the autopilot kept (on hot dog, usually the multi-resolution one)
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="ONNX export needs binaryvision[export]")
        pytest.importorskip("onnx", reason="ONNX export needs binaryvision[export]")
    files = find_images(HOTDOG / "valid" / "not_hot_dog")[:12]
    path = hotdog_model.export(tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt"))
    meta = read_export_metadata(path)
    feeds = graph_inputs(meta, files)
    assert len(feeds) == 1 + len(hotdog_model.model_.extra_sizes)
    got = run_exported_file(path, fmt, feeds)
    np.testing.assert_allclose(got, hotdog_model.predict_proba(files), rtol=0, atol=1e-4)
