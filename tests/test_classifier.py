"""The estimator contract of ImageBinaryClassifier, on the tiny backbone."""

from __future__ import annotations

import copy
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image, tiny, write_class_tree
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.base import clone

from binaryvision import (
    Callback,
    DataError,
    DataWarning,
    ImageBinaryClassifier,
    ImageDecodeError,
    InvalidParameterError,
    NotFittedError,
    Trainer,
    Transforms,
    build_transforms,
)
from binaryvision.backbones import Backbone, DataConfig
from binaryvision.data import as_image_set
from binaryvision.training import BinaryModel
from binaryvision.training.phases import fine_tune_parts


def sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def weights(clf: ImageBinaryClassifier) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in clf.model_.state_dict().items()}


# ---------------------------------------------------------------- the contract
def test_fit_returns_self_and_sets_learned_state(seed_tree):
    clf = tiny()
    assert clf.fit(seed_tree) is clf
    assert list(clf.classes_) == ["drogon", "viserion"]
    assert clf.threshold_ == 0.5
    assert clf.n_train_ == 24 and clf.n_valid_ == 12  # valid/ used as it is
    assert {"phase", "epoch", "train_loss", "valid_loss", "valid_accuracy"} <= set(clf.history_[0])


def test_learns_separable_synthetic_classes(fitted_tiny):
    clf, root = fitted_tiny
    assert clf.score(root / "valid") >= 0.9


def test_predict_proba_shape_columns_and_predict(fitted_tiny):
    clf, root = fitted_tiny
    files = sorted((root / "valid").rglob("*.png"))
    proba = clf.predict_proba(files)
    assert proba.shape == (len(files), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    predicted = clf.predict(files)
    expected = np.where(proba[:, 1] >= clf.threshold_, "viserion", "drogon")
    assert list(predicted) == list(expected)
    # classes_[1] is the positive class: viserion images score higher on column 1
    is_viserion = np.array(["viserion" in f.name for f in files])
    assert proba[is_viserion, 1].mean() > proba[~is_viserion, 1].mean()


def test_every_input_form_gives_the_same_probabilities(fitted_tiny):
    clf, root = fitted_tiny
    files = sorted((root / "valid" / "drogon").glob("*.png"))[:4]
    images = [Image.open(f).convert("RGB") for f in files]
    array = np.stack([np.asarray(im) for im in images])
    by_path = clf.predict_proba([str(f) for f in files])
    np.testing.assert_allclose(clf.predict_proba(images), by_path, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(array), by_path, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(str(files[0])), by_path[:1], atol=1e-6)
    flat = clf.predict_proba(root / "valid" / "drogon")
    np.testing.assert_allclose(flat[:4], by_path, atol=1e-6)


def test_score_with_y_equals_folder_score(fitted_tiny):
    clf, root = fitted_tiny
    files = sorted((root / "valid").rglob("*.png"))
    y = [f.parent.name for f in files]
    assert clf.score(files, y) == clf.score(root / "valid")
    with pytest.raises(InvalidParameterError, match="not among the fitted classes"):
        clf.score(files, ["wyvern"] * len(files))


def test_fit_on_lists_with_labels_and_stratified_split(class_tree):
    files = sorted(class_tree.rglob("*.png"))
    labels = [f.parent.name for f in files]
    clf = tiny(valid_size=0.25).fit(files, labels)
    assert list(clf.classes_) == ["cat", "dog"]
    assert clf.n_valid_ == 6 and clf.n_train_ == 18


def test_fit_on_uint8_array(class_tree):
    rng = np.random.default_rng(0)
    X = np.stack([np.asarray(make_image(k % 2, rng)) for k in range(20)])
    y = np.array([k % 2 == 1 for k in range(20)])
    clf = tiny(valid_size=0).fit(X, y)
    assert list(clf.classes_) == [False, True]
    assert clf.predict(X).dtype == object and set(clf.predict(X)) <= {False, True}


def test_sklearn_clone_get_set_params():
    clf = tiny(lr=0.02)
    params = clf.get_params()
    assert params["lr"] == 0.02 and params["backbone"] == "tiny_cnn"
    twin = clone(clf)
    assert twin is not clf and twin.get_params()["lr"] == 0.02
    assert clf.set_params(lr=0.5) is clf and clf.lr == 0.5
    with pytest.raises(ValueError):
        clf.set_params(not_a_param=1)


def test_refit_forgets_previous_fit(seed_tree, class_tree):
    clf = tiny().fit(seed_tree)
    clf.fit(class_tree)
    assert list(clf.classes_) == ["cat", "dog"]


def test_reproducible_with_integer_random_state(class_tree):
    a = weights(tiny(fine_tune_epochs=1).fit(class_tree))
    b = weights(tiny(fine_tune_epochs=1).fit(class_tree))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fit_does_not_touch_global_rng_or_user_files(class_tree):
    before = sha256_tree(class_tree)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    tiny().fit(class_tree)
    assert torch.equal(torch.get_rng_state(), state)
    assert sha256_tree(class_tree) == before


def test_user_backbone_module_is_not_trained_in_place(class_tree):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    before = {k: v.clone() for k, v in module.state_dict().items()}
    clf = tiny(backbone=module, pretrained=False, fine_tune_epochs=1).fit(class_tree)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert clf.backbone_name_ == "custom"


# ---------------------------------------------------------------- plug points
class StopAfterTwo(Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, trainer, state):
        self.events.append("fit_start")

    def on_batch_end(self, trainer, state):
        self.events.append("batch_end")

    def on_epoch_end(self, trainer, state):
        self.events.append("epoch_end")
        if state.epoch == 2:
            state.stop_training = True


def test_callback_sees_events_and_stops_training(class_tree):
    cb = StopAfterTwo()
    clf = tiny(
        epochs=10,
        early_stopping=False,
        trainer=Trainer(num_workers=0, progress=False, callbacks=[cb]),
    ).fit(class_tree)
    assert cb.events[0] == "fit_start"
    assert cb.events.count("epoch_end") == 2
    assert "batch_end" in cb.events
    assert len(clf.history_) == 2


class CountingTrainer(Trainer):
    steps = 0

    def train_step(self, model, batch, optimizer, loss_fn, scaler):
        type(self).steps += 1
        return super().train_step(model, batch, optimizer, loss_fn, scaler)


def test_trainer_subclass_overrides_the_step(class_tree):
    CountingTrainer.steps = 0
    tiny(
        epochs=3, early_stopping=False, trainer=CountingTrainer(num_workers=0, progress=False)
    ).fit(class_tree)
    assert CountingTrainer.steps >= 3


def test_auto_workers_leave_inference_cores_to_torch(monkeypatch):
    """On the CPU, inference passes get only the cores torch's threads leave free."""
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    cpu = Trainer(device="cpu")
    assert cpu.resolved_workers() == 7  # fine-tuning and decode-only passes
    assert cpu.resolved_workers(inference=True) == 0
    monkeypatch.setattr(torch, "get_num_threads", lambda: 5)
    assert cpu.resolved_workers(inference=True) == 3
    monkeypatch.setattr(Trainer, "resolved_device", lambda self: torch.device("cuda", 0))
    assert Trainer().resolved_workers(inference=True) == 7  # a GPU computes elsewhere
    assert Trainer(num_workers=2).resolved_workers(inference=True) == 2


def test_custom_transforms_object_is_used(class_tree):
    calls = []
    base = build_transforms(
        DataConfig(input_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0), "none"
    )

    def eval_tf(image):
        calls.append(image.size)
        return base.eval(image)

    clf = tiny(transforms=Transforms(train=base.train, eval=eval_tf)).fit(class_tree)
    assert len(calls) == 24  # every image went through the custom eval transform once
    assert clf.transforms_.eval is eval_tf


class MyBackbone(Backbone):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.num_features = 6
        self.data_config = DataConfig(input_size=24, crop_pct=1.0)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_own_backbone_subclass(class_tree, tmp_path):
    clf = tiny(backbone=MyBackbone(), pretrained=False).fit(class_tree)
    assert clf.data_config_.input_size == 24
    clf.save(tmp_path / "m.bv")
    with pytest.raises(InvalidParameterError, match="custom backbone"):
        ImageBinaryClassifier.load(tmp_path / "m.bv")
    loaded = ImageBinaryClassifier.load(tmp_path / "m.bv", backbone=MyBackbone())
    files = sorted(class_tree.rglob("*.png"))[:5]
    np.testing.assert_allclose(loaded.predict_proba(files), clf.predict_proba(files), atol=1e-5)


# ---------------------------------------------------------------- fine-tuning, lr_find
def test_fine_tune_uses_discriminative_learning_rates(class_tree):
    clf = tiny(fine_tune_epochs=2, layer_lr_ratio=0.01)
    model = BinaryModel(clf._make_backbone())
    transforms = build_transforms(DataConfig(input_size=32, crop_pct=1.0), "light")
    optimizer, _, lrs = fine_tune_parts(
        clf,
        model,
        as_image_set(class_tree),
        torch.zeros(24),
        transforms,
        Trainer(num_workers=0),
        0,
        0.1,
    )
    assert len(lrs) == 4  # three backbone groups and the head
    assert lrs[-1] == pytest.approx(0.01)  # head: lr / 10
    assert lrs[0] == pytest.approx(0.01 * 0.01)
    assert all(a < b for a, b in zip(lrs, lrs[1:]))
    assert [g["lr"] for g in optimizer.param_groups] == lrs
    grouped = sum(len(g["params"]) for g in optimizer.param_groups)
    assert grouped == len(list(model.parameters()))


def test_fine_tune_phase_is_recorded_and_changes_backbone(class_tree):
    frozen = tiny().fit(class_tree)
    tuned = tiny(fine_tune_epochs=2, early_stopping=False).fit(class_tree)
    assert [h["phase"] for h in tuned.history_].count("fine_tune") == 2
    a = frozen.model_.backbone.stem[0].weight
    b = tuned.model_.backbone.stem[0].weight
    assert not torch.equal(a, b)


def test_lr_find_leaves_hyperparameters_and_suggests_in_range(class_tree):
    clf = tiny(lr=0.05)
    result = clf.lr_find(class_tree, start_lr=1e-4, end_lr=10, num_steps=40)
    assert clf.lr == 0.05 and not hasattr(clf, "model_")
    assert 1e-4 <= result.suggestion <= 10
    assert set(result.suggestions) == {"valley", "steep", "minimum"}
    assert len(result.lrs) == len(result.losses) >= 2
    clf.set_params(lr=result.suggestion).fit(class_tree)
    assert clf.lr_ == pytest.approx(result.suggestion)


def test_lr_auto_runs_the_finder_inside_fit(class_tree):
    clf = tiny(lr="auto").fit(class_tree)
    assert clf.lr == "auto"
    assert 1e-5 <= clf.lr_ <= 10


def test_lr_find_fine_tune_stage(class_tree):
    result = tiny().lr_find(class_tree, stage="fine_tune", num_steps=8, start_lr=1e-4, end_lr=1)
    assert 1e-4 <= result.suggestion <= 1


# ---------------------------------------------------------------- save / load
def test_save_load_round_trip(fitted_tiny, tmp_path):
    clf, root = fitted_tiny
    path = tmp_path / "model.bv"
    clf.save(path)
    loaded = ImageBinaryClassifier.load(path)
    files = sorted((root / "valid").rglob("*.png"))
    np.testing.assert_allclose(loaded.predict_proba(files), clf.predict_proba(files), atol=1e-5)
    assert list(loaded.classes_) == list(clf.classes_)
    assert loaded.get_params()["backbone"] == "tiny_cnn"
    assert loaded.history_ == clf.history_
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_pickle_round_trip(fitted_tiny):
    clf, root = fitted_tiny
    files = sorted((root / "valid").rglob("*.png"))[:3]
    twin = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(twin.predict_proba(files), clf.predict_proba(files), atol=1e-6)


# ---------------------------------------------------------------- errors
def test_not_fitted_errors(tmp_path):
    clf = tiny()
    for call in (
        lambda: clf.predict(["a.png"]),
        lambda: clf.predict_proba(["a.png"]),
        lambda: clf.save(tmp_path / "m.bv"),
        lambda: clf.score(["a.png"], ["x"]),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


@pytest.mark.parametrize("classes", [("only",), ("a", "b", "c")])
def test_wrong_number_of_classes(tmp_path, classes):
    root = write_class_tree(tmp_path / "d", 4, classes)
    with pytest.raises(DataError, match=f"exactly 2 classes.*has {len(classes)}"):
        tiny().fit(root)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="contains no images"):
        tiny().fit(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        tiny().fit(tmp_path / "nope")


def test_refit_with_cached_features_equals_a_fresh_fit(class_tree):
    warm = tiny(dropout=0.5)
    warm.fit(class_tree)  # fills the feature cache
    refit = weights(warm.fit(class_tree))
    fresh = weights(tiny(dropout=0.5).fit(class_tree))
    assert all(torch.equal(refit[k], fresh[k]) for k in fresh)


def test_unreadable_image_raises_naming_it_when_asked(class_tree):
    bad = class_tree / "cat" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        tiny(on_bad_image="raise").fit(class_tree)


def test_unreadable_images_are_skipped_listed_and_warned_once(class_tree):
    write_class_tree(class_tree, 40, seed=9)  # 80 images: 2 bad files are 2.4%
    (class_tree / "cat" / "broken.jpg").write_bytes(b"this is not a jpeg")
    good = (class_tree / "dog" / "dog_000.png").read_bytes()
    (class_tree / "dog" / "cut.png").write_bytes(good[: len(good) // 2])
    (class_tree / "cat" / ".DS_Store").write_bytes(b"\0")
    (class_tree / ".ipynb_checkpoints").mkdir()
    (class_tree / "dog" / "notes.txt").write_text("not an image")
    before = sha256_tree(class_tree)
    with pytest.warns(DataWarning, match="Skipped 2 of 82 images") as caught:
        clf = tiny(max_bad_fraction=0.05).fit(class_tree)
    assert len(caught) == 1
    report = clf.fit_report_
    skipped = {Path(e["path"]).name: e["reason"] for e in report["skipped"]}
    assert set(skipped) == {"broken.jpg", "cut.png"}
    assert "truncated" in skipped["cut.png"] and "not an image" in skipped["broken.jpg"]
    assert report["n_found"] == 82 and report["n_used"] == 80
    assert clf.n_train_ + clf.n_valid_ == 80
    assert {Path(p).name for p in report["ignored"]} == {
        ".DS_Store",
        ".ipynb_checkpoints",
        "notes.txt",
    }
    assert list(clf.classes_) == ["cat", "dog"]  # hidden folders never become classes
    assert sha256_tree(class_tree) == before  # nothing was modified, moved or deleted


def test_too_many_unreadable_images_asks_about_the_folder(class_tree):
    for i in range(3):
        (class_tree / "cat" / f"broken{i}.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"3 of the 27 .*Is this the right folder"):
        tiny().fit(class_tree)


def test_bad_image_policy_is_validated():
    with pytest.raises(InvalidParameterError, match="on_bad_image"):
        tiny(on_bad_image="ignore").fit("anywhere")


def test_fit_without_labels(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        make_image(0, rng).save(tmp_path / f"{i}.png")
    with pytest.raises(InvalidParameterError, match="fit needs labels"):
        tiny().fit(tmp_path)


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("epochs", -1, "epochs"),
        ("lr", 0, "lr"),
        ("lr", "fast", "lr"),
        ("batch_size", 0, "batch_size"),
        ("threshold", 1.5, "threshold"),
        ("transforms", "heavy", "transforms"),
        ("valid_size", 1.5, "valid_size"),
        ("backbone", 3, "backbone"),
        ("trainer", "gpu", "trainer"),
    ],
)
def test_invalid_parameters_name_themselves(class_tree, name, value, match):
    with pytest.raises(InvalidParameterError, match=match):
        tiny(**{name: value}).fit(class_tree)


def test_seed_layout_root_is_refused_for_prediction(fitted_tiny):
    clf, root = fitted_tiny
    with pytest.raises(DataError, match="valid"):
        clf.predict(root)


# ---------------------------------------------------------------- properties
@settings(max_examples=8, deadline=None)
@given(st.integers(1, 12), st.randoms(use_true_random=False))
def test_predict_proba_properties(fitted_tiny, n, rnd):
    clf, _ = fitted_tiny
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    X = np.stack([np.asarray(make_image(int(rng.integers(2)), rng)) for _ in range(n)])
    proba = clf.predict_proba(X)
    assert proba.shape == (n, 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    order = rng.permutation(n)
    np.testing.assert_allclose(clf.predict_proba(X[order]), proba[order], atol=1e-5)
    one_by_one = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(n)])
    np.testing.assert_allclose(one_by_one, proba, atol=1e-5)


def test_predict_proba_nan_rows_for_unreadable_files(fitted_tiny, tmp_path):
    clf, root = fitted_tiny
    good = sorted((root / "valid").rglob("*.png"))[:3]
    truncated = tmp_path / "half.png"
    truncated.write_bytes(good[0].read_bytes()[:60])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    files = [good[0], truncated, good[1], text, good[2]]
    with pytest.raises(ImageDecodeError, match="half.png"):
        clf.predict_proba(files)
    with pytest.warns(DataWarning, match=r"2 of 5 images cannot be read.*half\.png.*notes\.jpg"):
        proba, spread = clf.predict_proba(files, on_bad_image="nan", tta=2, return_std=True)
    assert np.isnan(proba[[1, 3]]).all() and np.isnan(spread[[1, 3]]).all()
    expected, expected_spread = clf.predict_proba(good, tta=2, return_std=True)
    np.testing.assert_allclose(proba[[0, 2, 4]], expected, atol=1e-12)
    np.testing.assert_allclose(spread[[0, 2, 4]], expected_spread, atol=1e-12)
    with pytest.raises(InvalidParameterError, match="on_bad_image must be 'raise' or 'nan'"):
        clf.predict_proba(files, on_bad_image="skip")


def test_deterministic_option_is_on_while_training_and_restored_after(class_tree):
    seen = []

    class Probe(Callback):
        def on_batch_start(self, trainer, state):
            seen.append(
                (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
            )

    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    clf = tiny(epochs=1)
    clf.trainer = Trainer(device="cpu", num_workers=0, deterministic=True, callbacks=[Probe()])
    clf.fit(class_tree)
    assert seen and all(s == (True, False) for s in seen)
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    seen.clear()
    clf.trainer = Trainer(device="cpu", num_workers=0, callbacks=[Probe()])
    clf.fit(class_tree)
    assert seen and all(s[0] is before[0] for s in seen)


@pytest.mark.parametrize("n_train", [9, 17])
def test_batch_larger_than_data_and_trailing_batch_of_one(tmp_path, n_train):
    """Batch norm cannot train on one image: a trailing batch of 1 is dropped, a batch larger
    than the data shrinks to the data; both phases run with finite losses."""
    write_class_tree(tmp_path / "train", n_train, ("a", "b"), seed=5)
    write_class_tree(tmp_path / "valid", 4, ("a", "b"), seed=6)
    steps = []

    class Count(Callback):
        def on_batch_end(self, trainer, state):
            steps.append((state.phase, state.step))

    batch = 2 * n_train - 1 if n_train == 17 else 1000  # 34 images in batches of 33: 1 left
    clf = tiny(epochs=1, fine_tune_epochs=1, batch_size=batch)
    clf.trainer = Trainer(device="cpu", num_workers=0, callbacks=[Count()])
    clf.fit(tmp_path)
    per_phase = {p: sum(1 for q, _ in steps if q == p) for p in ("head", "fine_tune")}
    assert per_phase == {"head": 1, "fine_tune": 1}
    assert all(np.isfinite(e["train_loss"]) for e in clf.history_)


@pytest.mark.parametrize("workers", [0, 2])
def test_file_broken_after_the_scan_is_named_with_workers(fitted_tiny, tmp_path, workers):
    """A file that becomes unreadable between the scan and its use is named in the error,
    also when it is decoded in a DataLoader worker process."""
    clf, root = fitted_tiny
    files = []
    for i, f in enumerate(sorted((root / "valid").rglob("*.png"))[:6]):
        files.append(tmp_path / f"img{i}.png")
        files[-1].write_bytes(f.read_bytes())
    clf = copy.deepcopy(clf)
    clf.trainer = Trainer(device="cpu", num_workers=workers, inference_batch_size=2)
    files[4].write_bytes(b"overwritten by another program")
    with pytest.raises(ImageDecodeError, match="img4.png"):
        clf.predict_proba(files)


def test_fit_decodes_each_image_once_feature_pass_doubles_as_scan(tmp_path, monkeypatch):
    """With a head phase, the feature pass is the scan: each good image is decoded once,
    a bad one is still reported with its reason, and the separate scan never runs."""
    import binaryvision.data.bad_images as scan_module
    import binaryvision.features.extract as module
    from binaryvision.features.cache import shared_cache

    write_class_tree(tmp_path / "train", 8, ("a", "b"), seed=31)
    write_class_tree(tmp_path / "valid", 4, ("a", "b"), seed=32)
    bad = tmp_path / "train" / "a" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    decoded = []
    real_getitem = module.ImageDataset.__getitem__

    def counting_getitem(self, index):
        decoded.append(os.fspath(self.items[index]))
        return real_getitem(self, index)

    def no_scan(*args, **kwargs):
        raise AssertionError("the separate scan ran")

    monkeypatch.setattr(scan_module, "scan_images", no_scan)
    monkeypatch.setattr(module.ImageDataset, "__getitem__", counting_getitem)
    shared_cache().clear()
    with pytest.warns(DataWarning, match="broken.png"):
        clf = tiny(epochs=1, max_bad_fraction=0.2).fit(tmp_path)
    assert [e["path"] for e in clf.fit_report_["skipped"]] == [os.fspath(bad)]
    assert "not an image" in clf.fit_report_["skipped"][0]["reason"]
    good = [p for p in decoded if p != os.fspath(bad)]
    assert len(good) == len(set(good)) == 24  # every good image decoded exactly once

    # no head phase (epochs=0): nothing to piggyback on, the plain scan runs
    monkeypatch.undo()
    shared_cache().clear()  # scan results are kept by content, like features
    scanned = []
    real_scan = scan_module.scan_images
    monkeypatch.setattr(
        scan_module,
        "scan_images",
        lambda items, **kw: scanned.append(len(items)) or real_scan(items, **kw),
    )
    with pytest.warns(DataWarning, match="broken.png"):
        tiny(epochs=0, fine_tune_epochs=1, max_bad_fraction=0.2).fit(tmp_path)
    assert scanned == [25]


@pytest.mark.slow
def test_compiled_fine_tuning_matches_eager(seed_tree):
    """Trainer(compile=True) fine-tunes through torch.compile to (nearly) the same model."""
    kwargs = dict(epochs=1, fine_tune_epochs=1, dropout=0.0)  # inductor draws its own dropout masks
    eager = tiny(**kwargs)
    eager.trainer = Trainer(device="cpu", num_workers=0, progress=False)
    compiled = tiny(**kwargs)
    compiled.trainer = Trainer(device="cpu", num_workers=0, progress=False, compile=True)
    files = sorted((seed_tree / "valid").rglob("*.png"))
    p_eager = eager.fit(seed_tree).predict_proba(files)
    p_compiled = compiled.fit(seed_tree).predict_proba(files)
    assert [e["phase"] for e in compiled.history_].count("fine_tune") == 1
    np.testing.assert_allclose(p_compiled, p_eager, atol=1e-3)
    for k, v in eager.model_.state_dict().items():
        assert torch.allclose(compiled.model_.state_dict()[k].float(), v.float(), atol=1e-3), k


@pytest.mark.parametrize("total", [None, 0, 7, 10, 12])
def test_prediction_rows_gathered_in_order_whatever_the_announced_total(total):
    """predict_logits' row buffer: in order, nothing lost, also past a wrong total."""
    from binaryvision.training.inference import Rows

    batches = [torch.arange(i, i + 3, dtype=torch.float32).view(3, 1) for i in range(0, 9, 3)]
    batches.append(torch.tensor([[9.0]]))
    rows = Rows(total or None)
    for batch in batches:
        rows.add(batch)
    assert torch.equal(rows.result(), torch.arange(10, dtype=torch.float32).view(10, 1))


def test_predict_logits_over_loaders_without_a_length():
    """An iterable dataset, or a plain list of batches, has no total: rows still all come."""

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            for i in range(5):
                yield torch.full((2,), float(i)), torch.tensor(float(i))

    model = torch.nn.Linear(2, 1)
    trainer = Trainer(device="cpu", progress=False)
    loader = torch.utils.data.DataLoader(Stream(), batch_size=2)
    out, targets = trainer.predict_logits(model, loader, with_targets=True)
    assert torch.equal(targets, torch.arange(5, dtype=torch.float32))
    expected = model(torch.arange(5, dtype=torch.float32).view(5, 1).repeat(1, 2))
    torch.testing.assert_close(out, expected.detach())
    batches = [(torch.ones(3, 2), torch.zeros(3)), (torch.ones(1, 2), torch.zeros(1))]
    assert trainer.predict_logits(model, batches).shape == (4, 1)
