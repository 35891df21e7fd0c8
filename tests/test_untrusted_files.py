"""Untrusted files run no code: malicious pickles given to ``load`` or as ``weights=``.

Every payload here creates a marker file when unpickled (a stand-in for arbitrary code).
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` makes ``torch.load`` unpickle everything unless the
call site passes ``weights_only`` explicitly, so the main checks run in a subprocess that
starts with it set. ``tests/test_persistence.py`` covers a raw pickle given to ``load`` in
this process and the plain ``torch.load(...)`` spelling; this file adds torch.save zips,
the ``weights=`` routes, and a static scan that also sees aliased or indirect loaders.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny, write_class_tree

import binaryvision
from binaryvision import ImageBinaryClassifier
from binaryvision.backbones import create_backbone
from binaryvision.exceptions import BinaryVisionError, ModelFileError

PACKAGE = Path(binaryvision.__file__).resolve().parent
# torch's weights-only unpickler warns about the protocol of the raw pickles written here.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
HANG_GUARD_S = 300  # only against a hung subprocess; nothing asserts on time


class Payload:
    """Unpickling this opens ``marker`` for writing, creating it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_evil(folder: Path, name: str, marker: Path, fmt: str | None = None) -> Path:
    """Write a malicious torch.save zip (``fmt="zip"``, default for .pt) or raw pickle."""
    path = folder / name
    obj = {"state_dict": Payload(marker), "epoch": 3}
    if (fmt or ("zip" if name.endswith(".pt") else "raw")) == "zip":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj))
    return path


# The cases the subprocess runs: (id, call, file name, format). Each has its own marker.
CASES = [
    ("load-raw-pickle", "load", "evil.bv", "raw"),
    ("load-torch-zip", "load", "evil.pt", "zip"),
    ("load-torch-zip-named-bv", "load", "evil.bv", "zip"),
    ("backbone-torch-zip", "create_backbone", "evil.pt", "zip"),
    ("backbone-raw-pickle", "create_backbone", "evil.pth", "raw"),
    ("backbone-pickle-named-safetensors", "create_backbone", "evil.safetensors", "raw"),
    ("classifier-torch-zip", "fit", "evil.pt", "zip"),
    ("classifier-raw-pickle", "fit", "evil.bin", "raw"),
]

CHILD = r"""
import json, os, sys, warnings
import torch
from binaryvision import ImageBinaryClassifier, Trainer
from binaryvision.backbones import create_backbone
from binaryvision.exceptions import (
    BinaryVisionError, DataError, InvalidParameterError, ModelFileError,
)

cases, images, guard = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
results = {}
for case in cases:
    try:
        if case["call"] == "load":
            ImageBinaryClassifier.load(case["path"])
        elif case["call"] == "create_backbone":
            create_backbone("tiny_cnn", pretrained=False, weights=case["path"])
        else:
            ImageBinaryClassifier(
                backbone="tiny_cnn", weights=case["path"], epochs=1, verbose=0,
                trainer=Trainer(num_workers=0, progress=False),
            ).fit(images)
        error = None
    except Exception as exc:
        error = {"type": type(exc).__name__, "message": str(exc),
                 "model_file_error": isinstance(exc, ModelFileError),
                 "binaryvision_error": isinstance(exc, BinaryVisionError),
                 "about_data_or_params": isinstance(exc, (DataError, InvalidParameterError))}
    results[case["id"]] = {"error": error, "marker": os.path.exists(case["marker"])}
# Guard: the variable is in force here, so torch.load without weights_only runs the payload.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        torch.load(guard["path"])
    except Exception:
        pass
results["guard"] = {"marker": os.path.exists(guard["marker"]),
                    "env": os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
print(json.dumps(results), flush=True)
os._exit(0)  # skip torch's slow interpreter teardown
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A small class-per-folder tree the ``fit`` cases train on."""
    return write_class_tree(tmp_path_factory.mktemp("images") / "pets", n_per_class=8)


@pytest.fixture(scope="module")
def forced_unsafe_run(tmp_path_factory, images) -> tuple[dict, dict]:
    """Run every case in a subprocess started with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1."""
    root = tmp_path_factory.mktemp("untrusted")
    cases = []
    for case_id, call, name, fmt in CASES:
        folder = root / case_id
        folder.mkdir()
        marker = folder / "PWNED"
        path = write_evil(folder, name, marker, fmt)
        with open(path, "rb") as f:
            assert (f.read(2) == b"PK") == (fmt == "zip")  # torch.save writes a zip
        cases.append({"id": case_id, "call": call, "path": str(path), "marker": str(marker)})
    (root / "guard").mkdir()
    guard_marker = root / "guard" / "PWNED"
    guard = {"path": str(write_evil(root / "guard", "guard.pt", guard_marker))}
    guard["marker"] = str(guard_marker)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cases), str(images), json.dumps(guard)],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_GUARD_S,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return results, {c["id"]: c for c in cases}


# ============================================================================ guards


def test_torch_zip_payload_runs_code_when_loaded_unsafely(tmp_path):
    """Guard: a torch.save zip payload is live, so the checks below can fail."""
    marker = tmp_path / "PWNED"
    path = write_evil(tmp_path, "probe.pt", marker, "zip")
    torch.load(path, weights_only=False)["state_dict"].close()
    assert marker.exists()


def test_images_fit_without_the_evil_weights(images):
    """Guard: the fit cases fail because of the weights file, not because of the images."""
    clf = tiny(epochs=1).fit(images)
    assert list(clf.classes_) == ["cat", "dog"]


def test_subprocess_really_forces_unsafe_torch_load(forced_unsafe_run):
    """Guard: in the subprocess, a torch.load without weights_only did run the payload."""
    results, _ = forced_unsafe_run
    assert results["guard"]["env"] == "1"
    assert results["guard"]["marker"] is True


# ============================================================================ with the env var


@pytest.mark.parametrize("case_id", [c[0] for c in CASES if c[1] == "load"])
def test_load_refuses_malicious_file_under_forced_unsafe_env(forced_unsafe_run, case_id):
    """load raises ModelFileError naming the file, and the payload never runs."""
    results, cases = forced_unsafe_run
    result = results[case_id]
    assert result["marker"] is False
    assert result["error"] is not None, "a malicious file was loaded as a model"
    assert result["error"]["model_file_error"], result["error"]
    assert repr(cases[case_id]["path"]) in result["error"]["message"]


@pytest.mark.parametrize("case_id", [c[0] for c in CASES if c[1] != "load"])
def test_weights_file_payload_never_runs_under_forced_unsafe_env(forced_unsafe_run, case_id):
    """weights= given a malicious file fails without running the payload."""
    results, _ = forced_unsafe_run
    result = results[case_id]
    assert result["marker"] is False
    assert result["error"] is not None, "a malicious weights file was accepted"
    assert not result["error"]["about_data_or_params"], result["error"]  # failed on the file


# ============================================================================ in this process


@pytest.mark.parametrize("forced_unsafe", [False, True])
@pytest.mark.parametrize("backbone", ["tiny_cnn", "efficientnet_lite0", "resnet18"])
@pytest.mark.parametrize("name", ["evil.pt", "evil.pth"])
def test_create_backbone_weights_payload_never_runs(
    tmp_path, monkeypatch, forced_unsafe, backbone, name
):
    """Every backbone family's weights= loader refuses to unpickle code."""
    if forced_unsafe:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PWNED"
    path = write_evil(tmp_path, name, marker)
    with pytest.raises(Exception):  # noqa: B017 - the type is checked by the xfail below
        create_backbone(backbone, pretrained=False, weights=str(path))
    assert not marker.exists()


@pytest.mark.parametrize("name", ["evil.pt", "evil.pth", "evil.safetensors"])
def test_bad_weights_file_gives_clear_binaryvision_error(tmp_path, images, name):
    """The error for a refused weights file is a BinaryVisionError that names the file."""
    marker = tmp_path / "PWNED"
    path = write_evil(tmp_path, name, marker)
    for call in (
        lambda: create_backbone("tiny_cnn", pretrained=False, weights=str(path)),
        lambda: tiny(weights=path).fit(images),
    ):
        with pytest.raises(BinaryVisionError) as info:
            call()
        assert str(path) in str(info.value)
        assert "weights_only=False" not in str(info.value)
    assert not marker.exists()


def test_load_of_malicious_file_with_custom_backbone_argument(tmp_path):
    """Passing backbone= to load does not open another route to unpickling."""
    marker = tmp_path / "PWNED"
    path = write_evil(tmp_path, "evil.pt", marker)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    with pytest.raises(ModelFileError, match="evil.pt"):
        ImageBinaryClassifier.load(path, backbone=module)
    assert not marker.exists()


# ============================================================================ static scan

# Loaders that unpickle; each must be called with weights_only=True.
NEEDS_WEIGHTS_ONLY = {
    "torch.load",
    "torch.serialization.load",
    "torch.hub.load_state_dict_from_url",
    "torch.utils.model_zoo.load_url",
}
# Modules whose load/loads/Unpickler always unpickle: never allowed in the package.
PICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve"}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, from every import in the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    names[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
        for k in call.keywords
    )


def unsafe_loads(source: str) -> tuple[int, list[str]]:
    """Scan one module: (number of guarded loader calls seen, list of problems)."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    seen, problems = 0, []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        if name in NEEDS_WEIGHTS_ONLY:
            seen += 1
            if not _keyword_is(node, "weights_only", True):
                problems.append(f"{node.lineno}: {name} without weights_only=True")
        elif name.split(".")[0] in PICKLERS and name.rsplit(".", 1)[-1] in (
            "load",
            "loads",
            "Unpickler",
            "open",
        ):
            problems.append(f"{node.lineno}: {name}")
        elif name == "numpy.load" and not (
            _keyword_is(node, "allow_pickle", False)
            or all(k.arg != "allow_pickle" for k in node.keywords)
        ):
            problems.append(f"{node.lineno}: numpy.load with allow_pickle")
    return seen, sorted(problems, key=lambda p: int(p.split(":")[0]))


def test_scanner_sees_aliased_and_indirect_loaders():
    """Guard: the scanner flags every spelling below and accepts the safe ones."""
    source = (
        "import torch as th\n"
        "from torch import load\n"
        "from torch.serialization import load as sload\n"
        "from torch import hub\n"
        "import numpy as np\n"
        "import pickle as pk\n"
        "from joblib import load as jload\n"
        "th.load(p)\n"  # 8
        "load(p, weights_only=False)\n"  # 9
        "sload(p)\n"  # 10
        "hub.load_state_dict_from_url(u)\n"  # 11
        "np.load(p, allow_pickle=True)\n"  # 12
        "pk.Unpickler(f).load()\n"  # 13
        "jload(p)\n"  # 14
        "th.load(p, map_location='cpu', weights_only=True)\n"
        "np.load(p)\n"
        "np.load(p, allow_pickle=False)\n"
        "torch.serialization.load(p, weights_only=True)\n"
    )
    seen, problems = unsafe_loads(source)
    assert [int(p.split(":")[0]) for p in problems] == [8, 9, 10, 11, 12, 13, 14]
    assert seen == 6


def test_package_has_no_unsafe_loader_in_any_spelling():
    """No module of binaryvision unpickles without weights_only=True, however spelled."""
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    seen, problems = 0, []
    for file in files:
        n, found = unsafe_loads(file.read_text(encoding="utf-8"))
        seen += n
        problems += [f"{file.relative_to(PACKAGE)}:{p}" for p in found]
    assert seen >= 2  # the weights loader and the hub download are seen
    assert problems == []
