"""Tests of the model-file format: safetensors + JSON metadata, atomic writes, no pickle."""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import binaryvision
from binaryvision import ImageBinaryClassifier
from binaryvision.exceptions import ModelFileError
from binaryvision.persistence import (
    FORMAT_VERSION,
    atomic_write,
    read_model_file,
    write_model_file,
)

PACKAGE = Path(binaryvision.__file__).resolve().parent


def sample_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "backbone.conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "head.bias": torch.randn(1, generator=g),
        "bn.num_batches_tracked": torch.tensor(17, dtype=torch.long),
        "half": torch.randn(5, generator=g).to(torch.float16),
    }


def temp_files(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith((".tmp", ".bvtmp"))]


def assert_tensors_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


# ============================================================================ round trip


def test_round_trip(tmp_path):
    tensors = sample_tensors()
    meta = {"classes": ["cat", "dog"], "threshold": 0.42, "nested": {"a": [1, 2]}}
    path = tmp_path / "model.bv"
    write_model_file(path, tensors, meta)
    assert path.is_file()
    assert temp_files(tmp_path) == []
    loaded, loaded_meta = read_model_file(path)
    assert_tensors_equal(loaded, tensors)
    assert loaded_meta["format_version"] == FORMAT_VERSION
    assert {k: v for k, v in loaded_meta.items() if k != "format_version"} == meta
    assert "format_version" not in meta  # the caller's dict is not modified


def test_write_accepts_non_contiguous_and_grad_tensors(tmp_path):
    weight = torch.randn(3, 4, requires_grad=True)
    tensors = {"t": weight.t(), "w": weight}
    write_model_file(tmp_path / "m.bv", tensors, {})
    loaded, _ = read_model_file(str(tmp_path / "m.bv"))
    assert torch.equal(loaded["t"], weight.detach().t())
    assert torch.equal(loaded["w"], weight.detach())


def test_overwrite_replaces_file(tmp_path):
    path = tmp_path / "model.bv"
    write_model_file(path, {"x": torch.zeros(2)}, {"run": 1})
    write_model_file(path, {"x": torch.ones(3)}, {"run": 2})
    tensors, meta = read_model_file(path)
    assert torch.equal(tensors["x"], torch.ones(3)) and meta["run"] == 2
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_tensor_refused_on_write(tmp_path, bad):
    tensors = sample_tensors()
    tensors["head.bias"] = torch.tensor([0.5, bad])
    path = tmp_path / "model.bv"
    with pytest.raises(ModelFileError, match=r"Refusing to save .*'head\.bias'.*NaN or infinite"):
        write_model_file(path, tensors, {})
    assert not path.exists()
    assert temp_files(tmp_path) == []
    assert os.listdir(tmp_path) == []


def test_non_finite_write_keeps_previous_file(tmp_path):
    path = tmp_path / "model.bv"
    write_model_file(path, {"x": torch.ones(2)}, {"run": 1})
    before = path.read_bytes()
    with pytest.raises(ModelFileError):
        write_model_file(path, {"x": torch.tensor([float("nan")])}, {"run": 2})
    assert path.read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_model_file(tmp_path / "model.bv", {"x": torch.ones(2)}, {})
    finally:
        os.umask(old)
    assert (tmp_path / "model.bv").stat().st_mode & 0o777 == 0o644


def test_tensors_sharing_memory_round_trip(tmp_path):
    shared = torch.randn(4, 3)
    write_model_file(tmp_path / "tied.bv", {"a.weight": shared, "b.weight": shared}, {})
    loaded, _ = read_model_file(tmp_path / "tied.bv")
    assert torch.equal(loaded["a.weight"], shared) and torch.equal(loaded["b.weight"], shared)


# ============================================================================ read errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.bv"):
        read_model_file(tmp_path / "nothing.bv")


def test_truncated_file(tmp_path):
    path = tmp_path / "model.bv"
    write_model_file(path, sample_tensors(), {"classes": [0, 1]})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=re.escape(repr(str(path)))):
        read_model_file(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "model.bv"
    write_model_file(path, sample_tensors(), {})
    path.write_bytes(path.read_bytes()[:5])
    with pytest.raises(ModelFileError, match="not a readable binaryvision model file"):
        read_model_file(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.bv"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty.bv"):
        read_model_file(path)


def test_torch_pickle_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.ones(3), "epoch": 4}, path)
    with pytest.raises(ModelFileError, match=r"model\.pt.*not a readable binaryvision model"):
        read_model_file(path)


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not a binaryvision model"):
        read_model_file(path)
    save_file({"w": torch.ones(2)}, str(path))  # no metadata at all
    with pytest.raises(ModelFileError, match="not a binaryvision model"):
        read_model_file(path)


def test_newer_format_version(tmp_path):
    path = tmp_path / "future.bv"
    meta = {"format_version": FORMAT_VERSION + 1, "classes": [0, 1]}
    save_file({"w": torch.ones(2)}, str(path), metadata={"binaryvision": json.dumps(meta)})
    with pytest.raises(ModelFileError, match=r"(?i)upgrade") as info:
        read_model_file(path)
    assert str(FORMAT_VERSION + 1) in str(info.value)
    assert "pip install -U binaryvision" in str(info.value)


@pytest.mark.parametrize("version", [None, "1"])
def test_missing_or_non_integer_format_version(tmp_path, version):
    path = tmp_path / "odd.bv"
    meta = {} if version is None else {"format_version": version}
    save_file({"w": torch.ones(2)}, str(path), metadata={"binaryvision": json.dumps(meta)})
    with pytest.raises(ModelFileError, match="model-file format"):
        read_model_file(path)


def test_older_format_version_accepted(tmp_path):
    path = tmp_path / "old.bv"
    meta = {"format_version": FORMAT_VERSION - 1}
    save_file({"w": torch.ones(2)}, str(path), metadata={"binaryvision": json.dumps(meta)})
    tensors, loaded = read_model_file(path)
    assert loaded["format_version"] == FORMAT_VERSION - 1
    assert torch.equal(tensors["w"], torch.ones(2))


def test_corrupt_metadata(tmp_path):
    path = tmp_path / "bad_meta.bv"
    save_file({"w": torch.ones(2)}, str(path), metadata={"binaryvision": "{not json"})
    with pytest.raises(ModelFileError, match="corrupt metadata"):
        read_model_file(path)


@pytest.mark.parametrize("raw", ["null", "[1, 2]", '"x"', "3"])
def test_non_object_metadata(tmp_path, raw):
    path = tmp_path / "odd_meta.bv"
    save_file({"w": torch.ones(2)}, str(path), metadata={"binaryvision": raw})
    with pytest.raises(ModelFileError, match="odd_meta.bv"):
        read_model_file(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tensor_in_file(tmp_path, bad):
    path = tmp_path / "nan.bv"
    meta = {"format_version": FORMAT_VERSION}
    tensors = {"ok": torch.ones(2), "head.weight": torch.tensor([1.0, bad, 3.0])}
    save_file(tensors, str(path), metadata={"binaryvision": json.dumps(meta)})
    with pytest.raises(ModelFileError, match=r"'head\.weight' holds NaN or infinite") as info:
        read_model_file(path)
    assert str(path) in str(info.value)


# ============================================================================ atomic_write


@pytest.fixture(params=["unnamed", "named"])
def temp_kind(request, monkeypatch):
    """Run a test with Linux's unnamed temp files and with the portable named fallback."""
    if request.param == "named":
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    elif not hasattr(os, "O_TMPFILE"):
        pytest.skip("O_TMPFILE exists on Linux only")
    return request.param


@pytest.mark.parametrize("fail_in", ["write", "fsync"])
def test_atomic_write_failure_keeps_previous_content(tmp_path, monkeypatch, temp_kind, fail_in):
    path = tmp_path / "model.bv"
    path.write_bytes(b"previous content")
    real_write = os.write
    calls = []

    def failing(fd, *args):
        calls.append(fd)
        if fail_in == "write":
            real_write(fd, b"half a new fi")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, fail_in, failing)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, b"new content, longer than the old one")
    monkeypatch.undo()
    assert calls, f"os.{fail_in} was never called"
    assert path.read_bytes() == b"previous content"
    assert sorted(os.listdir(tmp_path)) == ["model.bv"]


def test_atomic_write_interrupt_cleans_up(tmp_path, monkeypatch, temp_kind):
    path = tmp_path / "model.bv"

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"partial")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_atomic_write_replace_failure_removes_named_temp(tmp_path, monkeypatch, temp_kind):
    path = tmp_path / "model.bv"
    path.write_bytes(b"old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError(13, "no")))
    with pytest.raises(PermissionError):
        atomic_write(path, b"new")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.bv"] and path.read_bytes() == b"old"


@pytest.mark.parametrize("size", [0, 1, 3_000_000])
def test_atomic_write_success(tmp_path, temp_kind, size):
    path = tmp_path / "model.bv"
    path.write_bytes(b"old")
    data = os.urandom(size)
    atomic_write(path, data)
    assert path.read_bytes() == data
    assert os.listdir(tmp_path) == ["model.bv"]


def test_atomic_write_relative_path(tmp_path, monkeypatch, temp_kind):
    monkeypatch.chdir(tmp_path)
    atomic_write("plain.bin", b"x")
    assert (tmp_path / "plain.bin").read_bytes() == b"x"
    assert os.listdir(tmp_path) == ["plain.bin"]


# ============================================================================ no pickle, ever


class _Payload:
    """Unpickling this creates ``marker`` (a stand-in for arbitrary code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_malicious_pickle(path: Path, marker: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump({"state_dict": _Payload(marker)}, f)


def test_payload_really_runs_code_when_unpickled(tmp_path):
    """Guard for the tests below: the payload is live, so their checks can fail."""
    probe = tmp_path / "probe_marker"
    _write_malicious_pickle(tmp_path / "probe.bv", probe)
    with open(tmp_path / "probe.bv", "rb") as f:
        pickle.load(f)["state_dict"].close()
    assert probe.exists()


@pytest.mark.parametrize("force_unsafe_env", [False, True])
def test_malicious_pickle_never_unpickled(tmp_path, monkeypatch, force_unsafe_env):
    if force_unsafe_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "pwned"
    path = tmp_path / "model.bv"
    _write_malicious_pickle(path, marker)
    with pytest.raises(ModelFileError, match=re.escape(repr(str(path)))):
        ImageBinaryClassifier.load(path)
    assert not marker.exists()
    with pytest.raises(ModelFileError):
        read_model_file(path)
    assert not marker.exists()


def _torch_load_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "load"
            and isinstance(func.value, ast.Name)
            and func.value.id == "torch"
        ):
            calls.append(node)
    return calls


def _weights_only_true(call: ast.Call) -> bool:
    return any(
        k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.keywords
    )


def test_ast_helpers_detect_unsafe_calls():
    tree = ast.parse(
        "torch.load(p)\ntorch.load(p, weights_only=False)\n"
        "torch.load(p, map_location='cpu', weights_only=True)\n"
    )
    calls = _torch_load_calls(tree)
    assert [_weights_only_true(c) for c in calls] == [False, False, True]


def test_every_torch_load_passes_weights_only_true():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    found, unsafe = 0, []
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for call in _torch_load_calls(tree):
            found += 1
            if not _weights_only_true(call):
                unsafe.append(f"{file.relative_to(PACKAGE)}:{call.lineno}")
        for node in ast.walk(tree):  # no other route to unpickling either
            if isinstance(node, ast.Attribute) and node.attr in ("loads", "load"):
                if isinstance(node.value, ast.Name) and node.value.id in ("pickle", "dill"):
                    unsafe.append(f"{file.relative_to(PACKAGE)}:{node.lineno} ({node.value.id})")
    assert found >= 1  # the scan does see the weights loader
    assert unsafe == []


# ============================================================================ old files

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "model_v1.bv"


def test_model_file_of_format_1_still_loads_and_predicts(tmp_path):
    """A file written by binaryvision 0.1 (format 1), committed, must keep loading."""
    import numpy as np
    from conftest import write_class_tree

    from binaryvision import ImageBinaryClassifier

    clf = ImageBinaryClassifier.load(FIXTURE)
    assert list(clf.classes_) == ["disc", "square"]
    assert clf.backbone_name_ == "tiny_cnn"
    assert clf.threshold_choice_ is not None and clf.threshold_choice_.rule == "f1"
    assert clf.calibrator_ is not None
    # fresh images of the same two kinds, never seen by the fixture's fit
    root = write_class_tree(tmp_path / "new", 10, ("disc", "square"), seed=99)
    files = sorted(root.rglob("*.png"))
    proba = clf.predict_proba(files)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1)
    assert clf.score(root) >= 0.9
    # and it survives a save/load round trip with this version
    clf.save(tmp_path / "again.bv")
    np.testing.assert_array_equal(
        ImageBinaryClassifier.load(tmp_path / "again.bv").predict_proba(files), proba
    )


RELEASE_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "model_0_1_dev.bv"


def test_model_file_of_the_release_before_the_redesign_predicts_the_same(tmp_path):
    """model_0_1_dev.bv was saved by 0.1.0.dev0 before the package moved into stages; its
    expected outputs were computed by that release (tests/fixtures/make_release_model.py)."""
    import json

    import numpy as np
    from conftest import write_class_tree

    from binaryvision import ImageBinaryClassifier

    expected = json.loads(RELEASE_FIXTURE.with_name("model_0_1_dev_expected.json").read_text())
    root = write_class_tree(tmp_path / "new", 10, ("disc", "square"), seed=99)
    files = [root / name for name in expected["images"]]
    clf = ImageBinaryClassifier.load(RELEASE_FIXTURE)
    np.testing.assert_allclose(clf.predict_proba(files), expected["predict_proba"], atol=1e-6)
    np.testing.assert_allclose(
        clf.decision_function(files), expected["decision_function"], atol=1e-5
    )
    assert clf.predict(files).tolist() == expected["predict"]
    assert [sorted(s) for s in clf.predict_set(files, 0.8)] == expected["predict_set_0.8"]
    assert clf.threshold_ == expected["threshold"]
