"""The examples and the demo run end to end (fast mode: tiny backbone, generated images)."""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

import pytest

from binaryvision import list_backbones
from binaryvision.backbones._registry import _unregister_backbone

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def run_script(path: Path, args: list[str], monkeypatch, code: int = 0) -> None:
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == code


@pytest.fixture(autouse=True)
def forget_example_backbones():
    """custom_backbone.py registers ``small_convnet`` when it runs; each run starts afresh."""
    before = set(list_backbones())
    yield
    for name in set(list_backbones()) - before:
        _unregister_backbone(name)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_every_example_has_help(script, monkeypatch, capsys):
    run_script(script, ["--help"], monkeypatch)
    printed = capsys.readouterr().out
    assert printed.startswith("usage:")
    first_line = ast.get_docstring(ast.parse(script.read_text())).splitlines()[0]
    assert first_line in printed


def test_examples_are_all_tested():
    assert {p.name for p in EXAMPLES} >= {
        "dragons.py",
        "hotdog.py",
        "cats_vs_dogs.py",
        "custom_backbone.py",
    }


def accuracy_after(printed: str, marker: str) -> float:
    """The number printed right after ``marker`` (it must be a probability)."""
    assert marker in printed, printed[-2000:]
    value = float(printed.split(marker)[1].split()[0])
    assert 0.0 <= value <= 1.0
    return value


def test_dragons_example(seed_tree, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_script(
        ROOT / "examples" / "dragons.py",
        [
            "--data",
            str(seed_tree),
            "--out",
            str(out),
            "--backbone",
            "tiny_cnn",
            "--fine-tune-epochs",
            "1",
        ],
        monkeypatch,
    )
    assert {"lr_find.png", "confidence.png", "dragons.bv"} <= {p.name for p in out.iterdir()}
    assert "fine-tuned: validation accuracy" in capsys.readouterr().out


def test_hotdog_example_on_any_seed_layout(seed_tree, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_script(
        ROOT / "examples" / "hotdog.py",
        [
            "--data",
            str(seed_tree),
            "--out",
            str(out),
            "--backbone",
            "tiny_cnn",
            "--coverage",
            "0.8",
        ],
        monkeypatch,
    )
    assert (out / "hotdog.bv").is_file()
    assert (out / "evaluation.png").stat().st_size > 10_000
    assert (out / "confidence.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "12 images: 6 drogon, 6 viserion" in printed
    assert "threshold for precision 0.95" in printed


def test_dragons_example_fast(seed_tree, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_script(
        ROOT / "examples" / "dragons.py",
        ["--data", str(seed_tree), "--out", str(out), "--fast"],
        monkeypatch,
    )
    assert {"lr_find.png", "confidence.png", "dragons.bv"} <= {p.name for p in out.iterdir()}
    printed = capsys.readouterr().out
    accuracy_after(printed, "head only: validation accuracy")
    accuracy_after(printed, "fine-tuned: validation accuracy")
    assert "photos in" not in printed  # --data given: nothing downloaded


def test_hotdog_example_fast(seed_tree, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_script(
        ROOT / "examples" / "hotdog.py",
        ["--data", str(seed_tree), "--out", str(out), "--fast", "--coverage", "0.8"],
        monkeypatch,
    )
    assert (out / "hotdog.bv").is_file() and (out / "evaluation.png").is_file()
    printed = capsys.readouterr().out
    assert "on 19 photos" in printed  # train/ minus the fifth fit holds out
    accuracy_after(printed, "  accuracy")


def test_cats_vs_dogs_example_on_a_class_folder(class_tree, tmp_path, monkeypatch, capsys):
    assert not (class_tree / "valid").exists()
    out = tmp_path / "out"
    run_script(
        ROOT / "examples" / "cats_vs_dogs.py",
        ["--data", str(class_tree), "--out", str(out), "--fast"],
        monkeypatch,
    )
    printed = capsys.readouterr().out
    assert "24 images of ['cat', 'dog']; 5 set aside for test" in printed
    accuracy_after(printed, "test accuracy")
    assert "reloaded model agrees: True" in printed
    assert "SYNTHETIC" not in printed
    assert (out / "cats_vs_dogs.bv").is_file()
    assert (out / "confidence.png").stat().st_size > 10_000
    assert not (out / "synthetic").exists()


def test_cats_vs_dogs_example_fast_without_data_is_synthetic(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_script(ROOT / "examples" / "cats_vs_dogs.py", ["--out", str(out), "--fast"], monkeypatch)
    printed = capsys.readouterr().out
    assert "SYNTHETIC data (circles vs squares, not cats and dogs)" in printed
    assert "images of ['circles', 'squares']" in printed
    accuracy_after(printed, "test accuracy")
    assert (out / "cats_vs_dogs.bv").is_file()
    assert sorted(p.name for p in (out / "synthetic" / "train").iterdir()) == ["circles", "squares"]


def test_cats_vs_dogs_example_needs_data_outside_fast_mode(tmp_path, monkeypatch, capsys):
    run_script(ROOT / "examples" / "cats_vs_dogs.py", ["--out", str(tmp_path)], monkeypatch, code=2)
    assert "--data PATH is required" in capsys.readouterr().err


def test_custom_backbone_example_fast(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run_script(ROOT / "examples" / "custom_backbone.py", ["--out", str(out), "--fast"], monkeypatch)
    printed = capsys.readouterr().out
    assert "small_convnet" in printed.split("registered backbones:")[1].splitlines()[0]
    assert "input 64 px, mean (0.5, 0.5, 0.5)" in printed  # its own DataConfig was used
    accuracy_after(printed, "validation accuracy")
    assert "reloaded backbone 'small_convnet'; predictions agree: True" in printed
    assert (out / "custom_backbone.bv").is_file()


@pytest.mark.slow
def test_demo_main_job(tmp_path, capsys):
    from binaryvision.demo import main

    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("validation accuracy ")[1].split(",")[0])
    assert accuracy >= 0.9
    assert "confusion matrix" in out and "ECE" in out
    for name in ("lr_find.png", "confidence.png", "reliability.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert (tmp_path / "confidence.png").stat().st_size > 10_000
