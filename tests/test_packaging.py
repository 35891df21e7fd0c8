"""The wheel: typed, with the console script, the version from one place, and no test files."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import binaryvision

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None,
    reason="building the wheel offline needs setuptools in this environment",
)
def test_wheel_has_types_script_and_version(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("binaryvision-*.whl")
    assert wheel.name.startswith(f"binaryvision-{binaryvision.__version__}-py3-none-any")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "binaryvision/py.typed" in names
    assert "binaryvision = binaryvision.cli:main" in entry_points
    assert f"Version: {binaryvision.__version__}" in metadata
    assert all(n.startswith("binaryvision") for n in names), "only the package is shipped"
    assert "Provides-Extra: export" in metadata
