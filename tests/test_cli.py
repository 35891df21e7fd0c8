"""The ``binaryvision`` command line: in-process through ``main`` and once as a real script."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from conftest import write_class_tree

from binaryvision import ImageBinaryClassifier, __version__
from binaryvision.cli import find_prediction_images, main
from binaryvision.cli.arguments import _threshold, _valid_size

TINY = ["--backbone", "tiny_cnn", "--no-pretrained", "--epochs", "2", "--seed", "0"]
RUN = ["--workers", "0", "--quiet"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Call ``main(argv)`` in-process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory) -> tuple[Path, Path, str]:
    """A tiny model fitted by ``binaryvision fit`` on the fastai layout (train/ + valid/)."""
    root = tmp_path_factory.mktemp("cli") / "dragons"
    write_class_tree(root / "train", 12, ("drogon", "viserion"), seed=1)
    write_class_tree(root / "valid", 6, ("drogon", "viserion"), seed=2)
    model = root.parent / "model.bv"
    code, out, err = run_cli(["fit", root, "--out", model, *TINY, *RUN])
    assert code == 0, err
    return model, root, out


def read_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------- the round trip
def test_fit_writes_a_loadable_model_and_a_summary(cli_model):
    model, root, out = cli_model
    clf = ImageBinaryClassifier.load(model)
    assert clf.backbone_name_ == "tiny_cnn"
    assert list(clf.classes_) == ["drogon", "viserion"]
    accuracy = clf.score(root / "valid")
    assert f"valid accuracy  {accuracy:.4f}" in out
    assert f"threshold       {clf.threshold_:.4f} for viserion" in out
    assert "skipped         0 unreadable files" in out
    assert f"saved           {model}" in out


def test_predict_matches_the_library(cli_model):
    model, root, _ = cli_model
    code, out, err = run_cli(["predict", model, root / "valid", *RUN])
    assert code == 0, err
    rows = read_rows(out)
    paths = [r["path"] for r in rows]
    assert paths == sorted(str(p) for p in (root / "valid").rglob("*.png"))
    clf = ImageBinaryClassifier.load(model)
    expected = clf.predict_proba(paths)[:, list(clf.classes_).index(clf.positive_class_)]
    np.testing.assert_allclose([float(r["probability"]) for r in rows], expected, atol=1e-6)
    assert [r["label"] for r in rows] == [str(v) for v in clf.predict(paths)]


def test_evaluate_accuracy_equals_score(cli_model, tmp_path):
    model, root, _ = cli_model
    report = tmp_path / "report.json"
    code, out, err = run_cli(["evaluate", model, root / "valid", "--json", report, *RUN])
    assert code == 0, err
    metrics = json.loads(report.read_text())
    clf = ImageBinaryClassifier.load(model)
    assert metrics["accuracy"] == pytest.approx(clf.score(root / "valid"), abs=1e-12)
    assert metrics["n_images"] == 12
    assert out.startswith("12 images: 6 drogon, 6 viserion")
    assert "confusion matrix" in out


def test_predict_csv_columns_rows_and_recursion(cli_model, tmp_path):
    model, root, _ = cli_model
    photos = tmp_path / "photos"
    shutil.copytree(root / "valid", photos / "batch1")  # nested: photos/batch1/<class>/
    (photos / ".cache").mkdir()
    shutil.copy(root / "valid" / "drogon" / "drogon_000.png", photos / ".cache" / "hidden.png")
    (photos / "notes.txt").write_text("not an image")
    single = root / "train" / "drogon" / "drogon_000.png"
    out_csv = tmp_path / "predictions.csv"
    code, out, err = run_cli(["predict", model, photos, single, "--csv", out_csv, *RUN])
    assert code == 0, err
    assert out == ""  # the rows went to the file
    with open(out_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == ["path", "label", "probability"]
    assert len(rows) == 12 + 1  # hidden folder and the text file are not images
    assert rows[-1][0] == str(single)
    assert {r[1] for r in rows} <= {"drogon", "viserion"}
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)


def test_plot_writes_a_png_without_touching_the_global_backend(cli_model, tmp_path):
    model, root, _ = cli_model
    before = dict.__getitem__(matplotlib.rcParams, "backend")
    png = tmp_path / "confidence.png"
    code, _, err = run_cli(["plot", model, root / "valid", "--out", png, *RUN])
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert dict.__getitem__(matplotlib.rcParams, "backend") == before


def test_lr_find_prints_suggestions_and_saves_the_plot(seed_tree, tmp_path):
    png = tmp_path / "lr.png"
    argv = ["lr-find", seed_tree, "--plot", png, "--backbone", "tiny_cnn", "--no-pretrained"]
    code, out, err = run_cli([*argv, "--seed", "0", *RUN])
    assert code == 0, err
    suggested = float(out.split("suggested lr")[1].split()[0])
    assert 1e-5 <= suggested <= 10
    for rule in ("valley", "steep", "minimum"):
        assert f"  {rule}" in out
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.filterwarnings("always::binaryvision.exceptions.DataWarning")
@pytest.mark.parametrize("layout", ["seed_tree", "class_tree"])
def test_fit_reports_skipped_files_and_validation_accuracy(layout, request, tmp_path):
    root = request.getfixturevalue(layout)
    # seed layout: a broken file among the validation images; class folders: among training
    folder = root / "valid" / "drogon" if layout == "seed_tree" else root / "cat"
    bad = folder / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    model = tmp_path / "model.bv"
    argv = ["fit", root, "--out", model, *TINY, "--valid-size", "0.25"]
    code, out, err = run_cli([*argv, "--max-bad-fraction", "0.1", *RUN])
    assert code == 0, err
    assert "skipped         1 unreadable file" in out
    assert str(bad) in out
    if layout == "seed_tree":  # measured on valid/ at the model's threshold, bad file left out
        assert f"(12 images in {root / 'valid'}, threshold" in out
    else:  # no valid/ folder: accuracy of the internal held-out split
        assert "held-out images" in out
    assert "binaryvision: warning:" in err and "Traceback" not in err


# ---------------------------------------------------------------------- errors and exit codes
def test_missing_model_file_exits_1_naming_it(tmp_path):
    missing = tmp_path / "nope.bv"
    for argv in (
        ["info", missing],
        ["predict", missing, tmp_path],
        ["evaluate", missing, tmp_path],
    ):
        code, out, err = run_cli([*argv, "--quiet"])
        assert code == 1
        assert err.startswith("binaryvision: error: ") and str(missing) in err
        assert "Traceback" not in err and out == ""


def test_bad_image_folder_exits_1_naming_it(cli_model, tmp_path):
    model, _, _ = cli_model
    missing = tmp_path / "no_such_folder"
    code, _, err = run_cli(["predict", model, missing, *RUN])
    assert code == 1 and str(missing) in err and "Traceback" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(["predict", model, empty, *RUN])
    assert code == 1 and "contains no images" in err and str(empty) in err
    code, _, err = run_cli(["evaluate", model, missing, *RUN])
    assert code == 1 and str(missing) in err and "Traceback" not in err


def test_corrupt_model_file_exits_1(tmp_path):
    bad = tmp_path / "bad.bv"
    bad.write_bytes(b"\x80\x04not a model")
    code, _, err = run_cli(["info", str(bad)])
    assert code == 1 and str(bad) in err and "Traceback" not in err


def test_unwritable_output_fails_before_training(seed_tree, tmp_path):
    out = tmp_path / "missing_dir" / "model.bv"
    code, stdout, err = run_cli(["fit", seed_tree, "--out", out, *TINY, *RUN])
    assert code == 1 and "missing_dir" in err
    assert stdout == ""  # nothing was fitted


def test_usage_errors_exit_2(cli_model):
    model, _, _ = cli_model
    assert run_cli(["info", model, "--bogus"])[0] == 2
    assert run_cli(["frobnicate"])[0] == 2
    assert run_cli([])[0] == 2
    code, _, err = run_cli(["fit", "data", "--out", "m.bv", "--threshold", "precision=2"])
    assert code == 2 and "--threshold" in err
    code, _, err = run_cli(["plot", model, "data", "--out", "confidence.xyz"])
    assert code == 2 and "extension" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.bv"):
        main(["info", str(tmp_path / "nope.bv"), "--debug"])


def test_keyboard_interrupt_exits_130(cli_model, monkeypatch):
    model, root, _ = cli_model

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ImageBinaryClassifier, "predict_proba", interrupted)
    code, _, err = run_cli(["predict", model, root / "valid", *RUN])
    assert code == 130 and "interrupted" in err and "Traceback" not in err


# ---------------------------------------------------------------------- version and info
def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"binaryvision {__version__}"


def test_info_describes_the_model(cli_model):
    model, _, _ = cli_model
    code, out, err = run_cli(["info", model])
    assert code == 0, err
    assert "tiny_cnn" in out and "drogon, viserion" in out
    assert f"binaryvision {__version__}" in out
    code, out, _ = run_cli(["info", model, "--json"])
    info = json.loads(out)
    assert info["backbone"] == "tiny_cnn"
    assert info["classes"] == ["drogon", "viserion"]
    assert info["positive_class"] == "viserion"
    assert (
        info["data_config"]["input_size"]
        == ImageBinaryClassifier.load(model).data_config_.input_size
    )
    assert info["epochs_trained"] == {"head": 2}


# ---------------------------------------------------------------------- argument parsing
@pytest.mark.parametrize(
    "text, rule",
    [
        ("0.7", 0.7),
        ("f1", "f1"),
        ("precision=0.95", {"precision": 0.95}),
        ("fp_cost=1,fn_cost=5", {"fp_cost": 1.0, "fn_cost": 5.0}),
        ('{"recall": 0.9}', {"recall": 0.9}),
    ],
)
def test_threshold_forms(text, rule):
    assert _threshold(text) == rule


def test_valid_size_int_or_fraction():
    assert _valid_size("0") == 0 and isinstance(_valid_size("10"), int)
    assert _valid_size("0.25") == 0.25


def test_find_prediction_images_keeps_file_order(tmp_path):
    write_class_tree(tmp_path / "d", 2, ("b", "a"))
    files = find_prediction_images([str(tmp_path / "d" / "b"), str(tmp_path / "d" / "a")])
    assert [Path(f).parent.name for f in files] == ["b", "b", "a", "a"]


# ---------------------------------------------------------------------- the real entry points
def test_entry_points_run_as_real_processes(cli_model):
    model, _, _ = cli_model
    scripts = entry_points(group="console_scripts")
    assert [e.value for e in scripts if e.name == "binaryvision"] == ["binaryvision.cli:main"]
    done = subprocess.run(
        [sys.executable, "-m", "binaryvision", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == f"binaryvision {__version__}"
    script = Path(sys.executable).parent / (
        "binaryvision.exe" if os.name == "nt" else "binaryvision"
    )
    command = [str(script)] if script.exists() else [sys.executable, "-m", "binaryvision"]
    done = subprocess.run([*command, "info", str(model)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "tiny_cnn" in done.stdout and "drogon, viserion" in done.stdout
