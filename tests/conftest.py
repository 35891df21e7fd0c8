"""Shared fixtures: tiny generated image folders and a fitted tiny classifier."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from binaryvision import ImageBinaryClassifier, Trainer

HOTDOG = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hotdog"
HOTDOG = Path(os.environ.get("BINARYVISION_HOTDOG", HOTDOG))
needs_hotdog = pytest.mark.skipif(
    not (HOTDOG / "train").is_dir(),
    reason=f"the real photo set is not at {HOTDOG} (set BINARYVISION_HOTDOG to its path)",
)


def run_exported_file(path: Path, fmt: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Run an exported file the way a user without binaryvision would: ONNX Runtime with
    the inputs by name (which must be the graph's inputs, in order), or TorchScript with
    them in order."""
    import warnings

    import torch

    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == list(feeds)
        return session.run(["probabilities"], feeds)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.x
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(*map(torch.from_numpy, feeds.values())).numpy()


def make_image(kind: int, rng: np.random.Generator, size: int = 40) -> Image.Image:
    """Class 0: dark images with a bright disc; class 1: bright images with a dark square."""
    base = rng.integers(0, 60, 3) if kind == 0 else rng.integers(180, 255, 3)
    arr = np.empty((size, size, 3), dtype=np.uint8)
    arr[:] = base
    arr = np.clip(arr + rng.integers(-20, 20, arr.shape), 0, 255).astype(np.uint8)
    c = rng.integers(10, size - 10, 2)
    yy, xx = np.mgrid[:size, :size]
    if kind == 0:
        arr[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 < 64] = 230
    else:
        arr[c[0] - 6 : c[0] + 6, c[1] - 6 : c[1] + 6] = 20
    return Image.fromarray(arr)


def write_class_tree(
    root: Path, n_per_class: int = 12, classes=("cat", "dog"), seed: int = 0, ext: str = ".png"
) -> Path:
    """Write root/<class>/<i><ext> for two synthetic, easily separable classes."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            make_image(k % 2, rng).save(root / name / f"{name}_{i:03d}{ext}")
    return root


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """A folder with cat/ and dog/ subfolders of 12 synthetic images each."""
    return write_class_tree(tmp_path / "pets")


@pytest.fixture
def seed_tree(tmp_path: Path) -> Path:
    """The fastai layout: PATH/train/<class>/ and PATH/valid/<class>/."""
    root = tmp_path / "dragons"
    write_class_tree(root / "train", 12, ("drogon", "viserion"), seed=1)
    write_class_tree(root / "valid", 6, ("drogon", "viserion"), seed=2)
    return root


def tiny(**kwargs) -> ImageBinaryClassifier:
    """A fast classifier on the tiny random-init backbone, single-process, silent.

    The autopilot is off (``time_budget=None``) unless a test asks for it
    (tests/test_autopilot.py): the other tests pin down the frozen-feature path.
    """
    params = dict(
        backbone="tiny_cnn",
        time_budget=None,
        epochs=10,
        lr=0.3,
        batch_size=8,
        random_state=0,
        verbose=0,
        trainer=Trainer(num_workers=0, progress=False),
    )
    params.update(kwargs)
    return ImageBinaryClassifier(**params)


@pytest.fixture(scope="session")
def fitted_tiny(tmp_path_factory) -> tuple[ImageBinaryClassifier, Path]:
    """A tiny classifier fitted once on a generated seed-layout folder."""
    root = tmp_path_factory.mktemp("fitted") / "data"
    write_class_tree(root / "train", 16, ("drogon", "viserion"), seed=3)
    write_class_tree(root / "valid", 8, ("drogon", "viserion"), seed=4)
    return tiny().fit(root), root
