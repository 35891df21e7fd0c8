"""Importing and using binaryvision changes no process-global setting (hazard H3)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import matplotlib
import numpy as np
import torch
from conftest import tiny
from PIL import Image, ImageFile


def snapshot() -> dict:
    return {
        "LOAD_TRUNCATED_IMAGES": ImageFile.LOAD_TRUNCATED_IMAGES,
        "MAX_IMAGE_PIXELS": Image.MAX_IMAGE_PIXELS,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
        "torch_rng": torch.get_rng_state().clone(),
        "numpy_rng": np.random.get_state()[1].copy(),  # noqa: NPY002 - the legacy global RNG
        "threads": torch.get_num_threads(),
        "grad": torch.is_grad_enabled(),
        "dtype": torch.get_default_dtype(),
        "backend": matplotlib.get_backend(),
        "rcParams": dict(matplotlib.rcParams),
        "warning_filters": list(warnings.filters),
    }


def assert_same(before: dict, after: dict) -> None:
    for key in before:
        a, b = before[key], after[key]
        same = (
            torch.equal(a, b)
            if isinstance(a, torch.Tensor)
            else np.array_equal(a, b)
            if isinstance(a, np.ndarray)
            else a == b
        )
        assert same, f"{key} changed"


def test_fit_predict_plot_and_save_leave_global_state_alone(seed_tree, tmp_path):
    before = snapshot()
    clf = tiny(epochs=2, fine_tune_epochs=1, random_state=3).fit(seed_tree)
    clf.predict_proba(seed_tree / "valid", tta=2)
    clf.lr_find(seed_tree, num_steps=10)
    clf.plot_confidence(seed_tree / "valid")
    clf.evaluate(seed_tree / "valid").plot_reliability()
    clf.save(tmp_path / "m.bv")
    type(clf).load(tmp_path / "m.bv").predict(seed_tree / "valid")
    assert_same(before, snapshot())


def test_import_changes_nothing():
    code = (
        "import warnings, matplotlib, torch, numpy as np\n"
        "from PIL import Image, ImageFile\n"
        # the dependencies first: their own import-time warning filters are not ours
        "import torchvision, sklearn.linear_model, sklearn.metrics, sklearn.isotonic\n"
        "import scipy.optimize, matplotlib.figure, tqdm.auto, safetensors.torch\n"
        "def s():\n"
        "    return (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS, torch.get_num_threads(),"
        " torch.are_deterministic_algorithms_enabled(), matplotlib.get_backend(),"
        " list(warnings.filters), torch.get_rng_state().sum().item(),"
        " int(np.random.get_state()[1].sum()))\n"
        "a = s()\n"
        "import binaryvision, binaryvision.outputs.plots, binaryvision.cli, binaryvision.export\n"
        "b = s()\n"
        "assert a == b, (a, b)\n"
        "print('same')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "same", proc.stderr
