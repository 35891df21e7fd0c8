"""The feature cache: the backbone runs once per image, across refits, clones and processes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import tiny, write_class_tree
from sklearn.base import clone

from binaryvision.data.identity import content_key
from binaryvision.features.cache import FeatureCache, model_key, shared_cache
from binaryvision.training import Trainer


@pytest.fixture
def counted(monkeypatch):
    """Counts the images that go through Trainer.predict_logits (the backbone pass)."""
    seen = []
    real = Trainer.predict_logits

    def counting(self, model, loader, **kwargs):
        out = real(self, model, loader, **kwargs)
        seen.append(len(out[0] if isinstance(out, tuple) else out))
        return out

    monkeypatch.setattr(Trainer, "predict_logits", counting)
    shared_cache().clear()
    return seen


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    write_class_tree(root / "train", 10, ("a", "b"), seed=21)
    write_class_tree(root / "valid", 5, ("a", "b"), seed=22)
    return root


def test_second_fit_lr_find_and_clones_never_rerun_the_backbone(data, counted):
    clf = tiny(epochs=2).fit(data)
    assert sum(counted) == 30  # every image once
    counted.clear()
    clf.set_params(lr=0.05, epochs=3, dropout=0.5).fit(data)
    clone(clf).fit(data)
    clf.lr_find(data / "train", num_steps=10)
    tiny(epochs=1, weight_decay=0.1).fit(data)  # a new estimator with the same backbone
    clf.predict_proba(data / "valid")
    assert counted == []


def test_another_seed_of_a_random_backbone_is_another_model(data, counted):
    tiny(epochs=1, random_state=0).fit(data)
    counted.clear()
    tiny(epochs=1, random_state=1).fit(data)  # tiny_cnn's random init differs: new features
    assert sum(counted) == 30


def test_fine_tuned_backbone_gets_its_own_features(data, counted):
    clf = tiny(epochs=1, fine_tune_epochs=1).fit(data)
    counted.clear()
    clf.predict_proba(data / "train")
    assert sum(counted) == 20  # the fine-tuned weights: computed once ...
    counted.clear()
    p = clf.predict_proba(data / "train")
    assert counted == []  # ... then cached
    shared_cache().clear()
    np.testing.assert_allclose(clf.predict_proba(data / "train"), p, atol=1e-6)


def test_disk_cache_serves_a_new_process_and_survives_damage(data, tmp_path, counted):
    cache_dir = tmp_path / "cache"
    clf = tiny(epochs=1, cache_dir=cache_dir).fit(data)
    expected = clf.predict_proba(data / "valid")
    files = sorted(cache_dir.rglob("*.f32"))
    assert len(files) == 30
    dim = clf.model_.backbone.num_features
    assert all(f.stat().st_size == 4 * dim for f in files)
    assert not list(cache_dir.rglob("*.bvtmp"))

    shared_cache().clear()  # as in a new process: only the disk is left
    counted.clear()
    again = tiny(epochs=1, cache_dir=cache_dir).fit(data)
    assert counted == []
    np.testing.assert_array_equal(again.predict_proba(data / "valid"), expected)

    files[0].write_bytes(files[0].read_bytes()[:10])  # a damaged entry is recomputed
    files[1].write_bytes(np.full(dim, np.nan, dtype="<f4").tobytes())
    shared_cache().clear()
    counted.clear()
    tiny(epochs=1, cache_dir=cache_dir).fit(data)
    assert sum(counted) == 2
    assert files[0].stat().st_size == 4 * dim


def test_keys_follow_content_not_names(data, tmp_path):
    src = sorted((data / "train" / "a").iterdir())[0]
    copy = tmp_path / "renamed.png"
    shutil.copy(src, copy)
    assert content_key(copy) == content_key(src)
    other = sorted((data / "train" / "a").iterdir())[1]
    assert content_key(other) != content_key(src)
    copy.write_bytes(other.read_bytes())  # edited in place: new content, new key
    assert content_key(copy) == content_key(other)


def test_model_key_changes_with_any_weight_or_the_preprocessing():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    key = model_key(net, "resize 32")
    assert model_key(net, "resize 32") == key
    assert model_key(net, "resize 64") != key
    with torch.no_grad():
        net[0].bias[1] += 1e-7
    assert model_key(net, "resize 32") != key


def test_memory_is_bounded_least_recently_used_first():
    cache = FeatureCache(max_bytes=3 * 16)  # three vectors of 4 float32
    for i in range(3):
        cache.put(("m", str(i)), torch.full((4,), float(i)))
    assert cache.get(("m", "0"), 4) is not None  # 0 is now the most recent
    cache.put(("m", "3"), torch.zeros(4))
    assert cache.get(("m", "1"), 4) is None
    assert all(cache.get(("m", k), 4) is not None for k in ("0", "2", "3"))
    assert len(cache) == 3


def test_cache_dir_is_validated():
    from binaryvision import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="cache_dir"):
        tiny(cache_dir=3).fit([np.zeros((8, 8, 3), np.uint8)] * 4, [0, 1, 0, 1])
