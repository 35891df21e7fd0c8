"""The examples and the demo run end to end (fast mode: tiny backbone, generated images)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(path: Path, args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == 0


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
