"""Export to ONNX and TorchScript: the exported graph reproduces predict_proba."""

from __future__ import annotations

import copy
import io
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import make_image, run_exported_file, tiny, write_class_tree
from PIL import Image

from binaryvision import (
    Calibrator,
    ImageBinaryClassifier,
    InvalidParameterError,
    NotFittedError,
    Trainer,
    __version__,
)
from binaryvision.decisions.calibration import sigmoid
from binaryvision.export import (
    ExportError,
    export_model,
    graph_inputs,
    preprocess,
    read_export_metadata,
)
from binaryvision.outputs import _export_graph
from binaryvision.outputs import export as export_mod

ATOL = 1e-4
FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def cpu_tiny(**kwargs) -> ImageBinaryClassifier:
    """The tiny classifier, pinned to the CPU so predict_proba runs in float32 everywhere."""
    return tiny(trainer=Trainer(device="cpu", num_workers=0, progress=False), **kwargs)


def needs_runtime(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="ONNX export needs `pip install binaryvision[export]`")
        pytest.importorskip(
            "onnxruntime", reason="running ONNX files needs `pip install binaryvision[export]`"
        )


def run_exported(path: Path, fmt: str, x: np.ndarray) -> np.ndarray:
    """Run a single-input exported file on ``x``."""
    return run_exported_file(path, fmt, {"images": x})


def write_test_images(root: Path) -> list[str]:
    """PNG squares, and non-square JPEGs large enough for draft-mode decoding."""
    rng = np.random.default_rng(11)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(6):
        kind = i % 2
        if i < 3:
            image, name = make_image(kind, rng), f"img_{i}.png"
        else:
            image, name = make_image(kind, rng, size=200).crop((0, 20, 200, 170)), f"img_{i}.jpg"
        image.save(root / name, quality=90)
        paths.append(str(root / name))
    return paths


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[ImageBinaryClassifier, list[str], Path]:
    """A tiny classifier fitted on the CPU, held-out images and a spare folder."""
    base = tmp_path_factory.mktemp("export")
    root = base / "data"
    write_class_tree(root / "train", 16, ("drogon", "viserion"), seed=3)
    write_class_tree(root / "valid", 8, ("drogon", "viserion"), seed=4)
    clf = cpu_tiny().fit(root)
    return clf, write_test_images(base / "test"), base


def with_calibration(
    clf: ImageBinaryClassifier, method: str | None, items: Any
) -> ImageBinaryClassifier:
    """A copy of ``clf`` whose calibrator spreads the test images' probabilities over (0, 1)."""
    clf = copy.deepcopy(clf)
    z = clf.decision_function(items)  # logit of classes_[1], the positive class here
    scale = float(np.max(np.abs(z)))
    if method is None:
        clf.calibrator_ = None
    elif method == "temperature":
        clf.calibrator_ = Calibrator.from_dict({"method": method, "temperature": scale / 2})
    elif method == "platt":
        clf.calibrator_ = Calibrator.from_dict(
            {"method": method, "slope": 2.0 / scale, "intercept": 0.4}
        )
    else:  # knots between the images' raw probabilities, one repeated knot (a jump)
        p = np.sort(sigmoid(z))
        mid = (p[:-1] + p[1:]) / 2  # never exactly at an image: a jump is a knife edge
        x = [mid[0], mid[1], mid[2], mid[2], mid[4]]
        clf.calibrator_ = Calibrator.from_dict(
            {"method": method, "x": x, "y": [0.05, 0.3, 0.4, 0.7, 0.9]}
        )
    return clf


# ---------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic", None])
@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_probabilities_match_predict_proba(setup, tmp_path, fmt, method):
    needs_runtime(fmt)
    base, items, _ = setup
    clf = with_calibration(base, method, items)
    expected = clf.predict_proba(items)
    # the comparison means something only away from 0 and 1
    assert np.ptp(expected[:, 1]) > 0.3 and ((expected > 0.02) & (expected < 0.98)).all()

    path = clf.export(tmp_path / f"model{SUFFIX[fmt]}")
    assert path == tmp_path / f"model{SUFFIX[fmt]}" and path.is_file()
    got = run_exported(path, fmt, preprocess(clf, items))
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fitted_isotonic_with_first_class_positive(setup, tmp_path, fmt):
    """A real isotonic fit, positive class in column 0: the columns must not be swapped."""
    needs_runtime(fmt)
    _, items, base = setup
    clf = cpu_tiny(calibration="isotonic", positive_class="drogon", epochs=3).fit(base / "data")
    assert clf.calibrator_.method == "isotonic" and clf._pos_index() == 0
    expected = clf.predict_proba(items)
    path = export_model(clf, tmp_path / "iso", format=fmt)
    got = run_exported(path, fmt, preprocess(clf, items))
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_isotonic_graph_equals_np_interp():
    x = [0.1, 0.2, 0.2, 0.5, 0.9]  # a repeated knot: a jump at 0.2
    y = [0.0, 0.25, 0.5, 0.6, 1.0]
    isotonic = _export_graph._IsotonicMap(x, y)
    p = np.concatenate([np.linspace(0, 1, 1001), [0.2 - 1e-9, 0.2 + 1e-9, 0.1, 0.9]])
    got = isotonic(torch.from_numpy(p)).numpy()
    np.testing.assert_allclose(got, np.interp(p, x, y), rtol=0, atol=1e-12)


@pytest.mark.parametrize("fmt", FORMATS)
def test_dynamic_batch_size(setup, tmp_path, fmt):
    needs_runtime(fmt)
    clf, items, _ = setup
    path = clf.export(tmp_path / f"m{SUFFIX[fmt]}")  # traced with a batch of 2
    x = preprocess(clf, items[:5])
    expected = clf.predict_proba(items[:5])
    for rows in (slice(0, 1), slice(0, 5)):
        got = run_exported(path, fmt, np.ascontiguousarray(x[rows]))
        assert got.shape == (rows.stop, 2)
        np.testing.assert_allclose(got, expected[rows], rtol=0, atol=ATOL)


# ---------------------------------------------------------------------- metadata
@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_round_trip(setup, tmp_path, fmt):
    needs_runtime(fmt)
    base, items, _ = setup
    clf = with_calibration(base, "platt", items)
    path = clf.export(tmp_path / f"m{SUFFIX[fmt]}")
    meta = read_export_metadata(path)
    assert meta["classes"] == ["drogon", "viserion"]
    assert meta["positive_class"] == "viserion" and meta["positive_index"] == 1
    assert meta["threshold"] == clf.threshold_
    assert meta["library_version"] == __version__
    assert meta["calibration"] == clf.calibrator_.to_dict()
    pre = meta["preprocessing"]
    config = clf.data_config_
    assert pre["input_size"] == config.input_size == 32
    assert pre["mean"] == list(config.mean) and pre["std"] == list(config.std)
    assert pre["resize"] == round(config.input_size / config.crop_pct)
    assert pre["interpolation"] == config.interpolation and pre["custom_transforms"] is False
    assert meta["input"]["shape"] == ["N", 3, 32, 32] and meta["output"]["shape"] == ["N", 2]
    # the metadata alone rebuilds the library's exact preprocessing
    np.testing.assert_array_equal(preprocess(meta, items), preprocess(clf, items))
    if fmt == "onnx":
        import onnx

        proto = onnx.load(str(path))
        assert "viserion" in proto.doc_string and "(N, 3, 32, 32)" in proto.doc_string


def test_preprocess_matches_the_library_decode(setup):
    """JPEGs are decoded in draft mode, as predict_proba does; a full decode differs."""
    clf, items, _ = setup
    x = preprocess(clf, items)
    assert x.dtype == np.float32 and x.shape == (6, 3, 32, 32) and x.flags.c_contiguous
    jpeg = items[-1]
    full = clf.transforms_.eval(Image.open(jpeg).convert("RGB")).numpy()
    assert not np.allclose(x[-1], full, atol=1e-3)
    # single path and in-memory arrays are accepted, like predict_proba
    np.testing.assert_array_equal(preprocess(clf, items[0]), x[:1])
    array = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in items[:3]])
    np.testing.assert_array_equal(preprocess(clf, array), x[:3])


def test_preprocess_refuses_custom_transforms_metadata(setup, tmp_path):
    clf, items, _ = setup
    meta = export_mod._metadata(clf)
    meta["preprocessing"]["custom_transforms"] = True
    with pytest.raises(InvalidParameterError, match="custom transforms"):
        preprocess(meta, items)
    with pytest.raises(InvalidParameterError, match="read_export_metadata"):
        preprocess({"classes": []}, items)


# ---------------------------------------------------------------------- multi-resolution
@pytest.fixture(scope="module")
def multi(setup) -> ImageBinaryClassifier:
    """The autopilot's multi-resolution model on the tiny backbone (kept by force: on such
    small data its evidence may go either way)."""
    from binaryvision.training import autopilot

    _, _, base = setup
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(autopilot, "_better", lambda *args: (True, 0.0, 0.0))
        clf = cpu_tiny(time_budget="auto").fit(base / "data")
    assert clf.selection_["kept"].startswith("multi_resolution") and clf.model_.extra_sizes
    return clf


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_multi_resolution_model_exports_with_one_input_per_size(multi, setup, tmp_path, fmt):
    needs_runtime(fmt)
    _, items, _ = setup
    (extra,) = multi.model_.extra_sizes
    expected = multi.predict_proba(items)
    assert np.ptp(expected[:, 1]) > 0
    path = multi.export(tmp_path / f"multi{SUFFIX[fmt]}")
    meta = read_export_metadata(path)
    names = ["images", f"images_{extra}"]
    assert [i["name"] for i in meta["inputs"]] == names and meta["input"] == meta["inputs"][0]
    assert [i["input_size"] for i in meta["inputs"]] == [32, extra]
    assert meta["preprocessing"]["extra_sizes"] == [extra]
    feeds = graph_inputs(meta, items)
    assert list(feeds) == names and feeds[names[1]].shape == (6, 3, extra, extra)
    # the metadata alone rebuilds each size's preprocessing, as the classifier does it
    for name, x in graph_inputs(multi, items).items():
        np.testing.assert_array_equal(feeds[name], x)
    got = run_exported_file(path, fmt, feeds)  # ONNX: also checks the graph's input names
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_preprocess_at_a_size_the_model_does_not_take_is_refused(multi, setup):
    _, items, _ = setup
    (extra,) = multi.model_.extra_sizes
    assert preprocess(multi, items, size=extra).shape == (6, 3, extra, extra)
    np.testing.assert_array_equal(preprocess(multi, items, size=32), preprocess(multi, items))
    with pytest.raises(InvalidParameterError, match=rf"size=64.*32 and {extra} px"):
        preprocess(multi, items, size=64)
    clf, _, _ = setup
    assert list(graph_inputs(clf, items)) == ["images"]
    with pytest.raises(InvalidParameterError, match=r"size=40.*at 32 px"):
        preprocess(clf, items, size=40)
    # metadata version 1 (before multi-resolution export) had one input and no sizes list
    old = export_mod._metadata(clf)
    del old["inputs"], old["preprocessing"]["extra_sizes"]
    feeds = graph_inputs(old, items)
    assert list(feeds) == ["images"]
    np.testing.assert_array_equal(feeds["images"], preprocess(clf, items))


# ---------------------------------------------------------------------- errors
def test_unfitted_raises_not_fitted(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        ImageBinaryClassifier(backbone="tiny_cnn", pretrained=False).export(tmp_path / "m.onnx")
    with pytest.raises(NotFittedError):
        preprocess(ImageBinaryClassifier(backbone="tiny_cnn", pretrained=False), [])
    assert list(tmp_path.iterdir()) == []


def test_bad_suffix_names_path_and_fix(setup, tmp_path):
    clf, _, _ = setup
    target = tmp_path / "model.bin"
    with pytest.raises(InvalidParameterError) as info:
        clf.export(target)
    message = str(info.value)
    assert str(target) in message and ".onnx" in message and ".pt" in message
    assert "format=" in message
    with pytest.raises(InvalidParameterError, match="format must be one of"):
        clf.export(tmp_path / "model.onnx", format="tflite")
    assert list(tmp_path.iterdir()) == []


def test_explicit_format_overrides_suffix(setup, tmp_path):
    clf, items, _ = setup
    path = clf.export(tmp_path / "model.bin", format="TorchScript")
    got = run_exported(path, "torchscript", preprocess(clf, items))
    np.testing.assert_allclose(got, clf.predict_proba(items), rtol=0, atol=ATOL)
    assert read_export_metadata(path, format="torchscript")["classes"] == ["drogon", "viserion"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_verification_leaves_the_old_file(setup, tmp_path, monkeypatch, fmt):
    """The export is checked before it is written; a failure writes nothing (atomic)."""
    needs_runtime(fmt)
    clf, _, _ = setup
    target = tmp_path / f"model{SUFFIX[fmt]}"
    target.write_bytes(b"previous model")
    runner = "_run_onnx" if fmt == "onnx" else "_run_torchscript"
    monkeypatch.setattr(export_mod, runner, lambda data, x: np.zeros((len(x), 2), np.float32))
    with pytest.raises(ExportError, match="does not reproduce"):
        clf.export(target)
    assert target.read_bytes() == b"previous model"
    assert sorted(os.listdir(tmp_path)) == [target.name]


def test_onnx_without_onnx_package_says_how_to_install(setup, tmp_path, monkeypatch):
    clf, _, _ = setup
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"binaryvision\[export\]"):
        clf.export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_read_metadata_of_foreign_torchscript_file(tmp_path):
    path = tmp_path / "plain.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(torch.nn.Linear(2, 1), torch.zeros(1, 2))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(InvalidParameterError, match="no binaryvision metadata"):
        read_export_metadata(path)
    with pytest.raises(FileNotFoundError):
        read_export_metadata(tmp_path / "missing.onnx")


# ---------------------------------------------------------------------- default backbone
@pytest.mark.slow
def test_default_backbone_exports_both_formats(seed_tree, tmp_path):
    pytest.importorskip("onnxruntime", reason="running ONNX files needs binaryvision[export]")
    pytest.importorskip("onnx", reason="ONNX export needs binaryvision[export]")
    clf = ImageBinaryClassifier(  # the frozen head (tests above export multi-resolution ones)
        time_budget=None,
        random_state=0,
        verbose=0,
        trainer=Trainer(device="cpu", num_workers=0, progress=False),
    ).fit(seed_tree)
    items = sorted(str(p) for p in (seed_tree / "valid").rglob("*.png"))[::3]
    expected = clf.predict_proba(items)
    x = preprocess(clf, items)
    config = clf.data_config_
    size, resize = config.input_size, round(config.input_size / config.crop_pct)
    assert x.shape == (len(items), 3, size, size) and np.ptp(expected[:, 1]) > 0
    for fmt in FORMATS:
        path = clf.export(tmp_path / f"lite0{SUFFIX[fmt]}")
        np.testing.assert_allclose(run_exported(path, fmt, x), expected, rtol=0, atol=ATOL)
        assert read_export_metadata(path)["preprocessing"]["resize"] == resize
