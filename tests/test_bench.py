"""The bench scripts run end to end in their tiny modes and print well-formed JSON.

Each script runs as a subprocess on generated images (no ../shared, no GPU): tiny_cnn or a
small resolution, one torch thread. All of them start together (they are mostly process
start-up and imports) and each test waits for its own. Nothing here asserts a time: only
that the JSON parses and holds the expected figures as positive finite numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

COMMANDS = {
    "gpu": ["gpu.py", "--dry-run"],
    "scaling": ["scaling.py", "--tiny", "--sizes", "1", "2"],
    "predict_throughput": ["predict_throughput.py", "--tiny"],
    "finetune": ["finetune.py", "--tiny", "--device", "cpu"],
}
TIMEOUT = 300  # a hung script fails its test instead of hanging the suite


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.Popen]:
    """Start every script at once; each test collects its own."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    env["BINARYVISION_HOTDOG"] = str(tmp_path_factory.mktemp("no-photos") / "absent")
    procs = {}
    for name, (script, *args) in COMMANDS.items():
        procs[name] = subprocess.Popen(
            [sys.executable, str(BENCH / script), *args],
            cwd=BENCH.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def result_of(runs: dict, name: str) -> dict:
    proc = runs[name]
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"bench/{COMMANDS[name][0]} did not finish in {TIMEOUT} s:\n{err[-3000:]}")
    assert proc.returncode == 0, f"bench/{COMMANDS[name][0]} failed:\n{err[-3000:]}"
    try:
        return json.loads(out)
    except json.JSONDecodeError as exc:
        pytest.fail(f"stdout of bench/{COMMANDS[name][0]} is not one JSON object ({exc}):\n{out}")


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_positive(row: dict, keys: list[str], where: str) -> None:
    for key in keys:
        assert key in row, f"{where}: no {key!r} in {sorted(row)}"
        assert positive(row[key]), f"{where}: {key} = {row[key]!r} is not a positive number"


def check_load_average(result: dict) -> None:
    for key in ("load_average_start", "load_average_end", "load_average"):
        if key in result:
            load = result[key]
            assert len(load) == 3 and all(math.isfinite(v) and v >= 0 for v in load), (key, load)


@pytest.mark.slow  # loads the default backbone's pretrained weights
def test_gpu_dry_run(runs):
    result = result_of(runs, "gpu")
    assert result["benchmark"] == "gpu" and result["dry_run"] is True
    assert result["device"] == "cpu"
    assert any("resnet50" in note and "random" in note for note in result["notes"])
    modes = {"fp32", "bf16", "bf16_channels_last", "bf16_channels_last_on_device"}
    assert {(r["backbone"], r["mode"]) for r in result["fine_tune"]} == {
        (b, m) for b in ("efficientnet_lite0", "resnet50") for m in modes
    }
    for row in result["fine_tune"]:
        where = f"fine_tune {row['backbone']} {row['mode']}"
        assert "error" not in row, f"{where}: {row.get('error')}"
        check_positive(row, ["images_per_second", "seconds", "batch_size"], where)
        assert 0 <= row["data_wait_fraction"] < 1, where
        if row["mode"].endswith("_on_device"):
            check_positive(row, ["store_seconds"], where)
        else:
            assert row["store_seconds"] is None, where
    assert len(result["frozen_features"]) == 4
    for row in result["frozen_features"]:
        where = f"frozen {row['backbone']} {row['mode']}"
        assert "error" not in row, f"{where}: {row.get('error')}"
        check_positive(row, ["images_per_second", "seconds", "timed_batches"], where)
        assert 0 <= row["data_wait_fraction"] < 1, where
        assert row["features"][1] in (1280, 2048), where
    check_load_average(result)


def test_scaling_tiny(runs):
    result = result_of(runs, "scaling")
    assert result["benchmark"] == "scaling" and result["backbone"] == "tiny_cnn"
    assert [row["size"] for row in result["sizes"]] == [1, 2]
    assert result["sizes"][1]["images"] == 2 * result["sizes"][0]["images"]
    for row in result["sizes"]:
        check_positive(
            row,
            [
                "images",
                "fit_seconds",
                "seconds_per_image",
                "peak_rss_mb",
                "rss_before_fit_mb",
                "seconds_per_image_over_smallest",
                "peak_rss_over_smallest",
            ],
            f"size {row['size']}",
        )
        assert row["peak_rss_mb"] >= row["rss_before_fit_mb"] * 0.99
    check_positive(result, ["largest_over_smallest_fit_seconds"], "scaling")
    assert "fixed_seconds" in result["fit_seconds_linear_model"]
    check_load_average(result)


def test_predict_throughput_tiny(runs):
    result = result_of(runs, "predict_throughput")
    assert result["benchmark"] == "predict_throughput" and result["backbone"] == "tiny_cnn"
    check_positive(
        result,
        [
            "images",
            "package_seconds",
            "reference_seconds",
            "package_images_per_second",
            "reference_images_per_second",
            "ratio",
            "cached_predict_seconds",
        ],
        "predict_throughput",
    )
    # the package's fused path and the plain unfused model give the same logits
    assert result["max_abs_logit_difference"] < 1e-3
    check_positive(
        result["breakdown"],
        [
            "loader_workers_images_per_second",
            "loader_in_process_images_per_second",
            "forward_unfused_contiguous_images_per_second",
            "forward_fused_channels_last_images_per_second",
        ],
        "breakdown",
    )
    check_load_average(result)


def test_finetune_tiny(runs):
    result = result_of(runs, "finetune")
    assert result["benchmark"] == "finetune"
    rows = result["results"]
    assert [(r["device"], r["data_on_device"]) for r in rows] == [("cpu", False), ("cpu", True)]
    for row in rows:
        where = f"cpu data_on_device={row['data_on_device']}"
        check_positive(row, ["images_per_second", "train_seconds", "steps", "fit_seconds"], where)
        assert 0 <= row["data_wait_fraction"] < 1, where
    check_load_average(result)


def test_generalization_sets_keep_fit_and_test_photos_apart(tmp_path, monkeypatch):
    """bench/generalization.py's generated photo sets: disjoint, the sizes and balance its
    docstring states (the figures in bench/RESULTS.md rest on this)."""
    from conftest import write_class_tree
    from PIL import Image

    monkeypatch.syspath_prepend(str(BENCH))
    import generalization

    data = tmp_path / "pool"
    write_class_tree(data / "train", 400, ("a", "b"), seed=1)
    write_class_tree(data / "valid", 100, ("a", "b"), seed=2)
    paths, labels = generalization.pool(data)
    assert len(paths) == 1000 and sorted(set(labels)) == ["a", "b"]
    tested = []
    for seed in range(5):
        fx, fy, tx, ty = generalization.split("resplit", paths, labels, seed, tmp_path)
        assert not set(fx) & set(tx) and len(fx) + len(tx) == 1000
        tested += list(tx)
    assert sorted(tested) == sorted(paths)  # seeds 0-4 test every photo once
    fx, fy, tx, ty = generalization.split("small", paths, labels, 0, tmp_path)
    assert sorted(fy) == ["a"] * 25 + ["b"] * 25 and len(tx) == 950 and not set(fx) & set(tx)
    for seed, major in ((0, "a"), (1, "b")):
        fx, fy, tx, ty = generalization.split("imbalanced", paths, labels, seed, tmp_path)
        assert list(fy).count(major) == 320 and len(fy) == 400 and not set(fx) & set(tx)
        assert list(ty).count(major) == 180 and len(ty) == 180 + 45
    scratch = tmp_path / "rotated"
    scratch.mkdir()
    fx, fy, tx, ty = generalization.split("upside_down", paths, labels, 0, scratch)
    assert sorted(set(fy)) == ["upright", "upside_down"] and list(fy).count("upright") == 300
    assert len(fx) == 600 and len(tx) == 400 and not set(fx) & set(tx)
    # photo 1 of the permutation is written rotated by 180 degrees (JPEG: within noise)
    source = paths[np.random.default_rng(0).permutation(1000)[1]]
    written = np.asarray(Image.open(scratch / "0001.jpg").convert("RGB"), dtype=float)
    original = np.asarray(Image.open(source).convert("RGB"), dtype=float)
    turned = np.abs(written - original[::-1, ::-1]).mean()
    assert turned < np.abs(written - original).mean() / 2
    assert "0001.jpg" in {Path(p).name for p in fx} | {Path(p).name for p in tx}
