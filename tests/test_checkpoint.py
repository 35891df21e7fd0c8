"""Checkpoints and resume: a fit killed with SIGKILL continues to the same weights.

The killed fits run in a child process (``sys.executable -c``) with a callback that sends
SIGKILL to its own process at a chosen epoch; the parent then resumes from the
checkpoint and compares every tensor with a fit that was never interrupted.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_class_tree

from binaryvision import Callback, ImageBinaryClassifier, Trainer
from binaryvision.exceptions import InvalidParameterError, ModelFileError, TrainingError
from binaryvision.persistence import read_model_file
from binaryvision.training.checkpoint import CHECKPOINT_NAME, Checkpointer

ROOT = Path(__file__).resolve().parents[1]

PARAMS = dict(
    backbone="tiny_cnn",
    pretrained=False,
    epochs=5,
    fine_tune_epochs=3,
    batch_size=8,
    patience=2,
    random_state=7,
    verbose=0,
)


def make(**changes) -> ImageBinaryClassifier:
    return ImageBinaryClassifier(**{**PARAMS, **changes}, trainer=Trainer(num_workers=0))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ckpt-data")
    write_class_tree(root / "train", 12, ("a", "b"), seed=1)
    write_class_tree(root / "valid", 6, ("a", "b"), seed=2)
    return root


@pytest.fixture(scope="module")
def uninterrupted(data) -> ImageBinaryClassifier:
    return make().fit(data)


def assert_same_weights(a: ImageBinaryClassifier, b: ImageBinaryClassifier) -> None:
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert different == [], f"tensors differ: {different[:5]}"


KILLED_FIT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_checkpoint import make
    from binaryvision import Callback, Trainer

    class KillAt(Callback):
        def on_batch_start(self, trainer, state):
            if state.phase == {phase!r} and state.epoch == {epoch}:
                os.kill(os.getpid(), signal.SIGKILL)

    clf = make()
    clf.trainer = Trainer(num_workers=0, callbacks=[KillAt()])
    clf.fit({data!r}, checkpoint_dir={ckpt!r})
    sys.exit(3)  # never reached: the kill lands first
    """
)


def run_killed_fit(data: Path, ckpt: Path, phase: str, epoch: int) -> int:
    code = KILLED_FIT.format(
        tests=str(ROOT / "tests"), phase=phase, epoch=epoch, data=str(data), ckpt=str(ckpt)
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.returncode


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
@pytest.mark.parametrize(
    ("phase", "epoch"),
    [("head", 3), ("fine_tune", 2)],
    ids=["killed-in-head-epoch-3", "killed-in-fine-tune-epoch-2"],
)
def test_resume_after_sigkill_ends_with_the_same_weights(
    data, uninterrupted, tmp_path, phase, epoch
):
    ckpt = tmp_path / "ckpt"
    run_killed_fit(data, ckpt, phase, epoch)
    _, meta = read_model_file(ckpt / CHECKPOINT_NAME)
    assert meta["phase"] == phase  # the kill landed where intended
    assert meta["state"]["epoch"] == epoch - 1
    assert sorted(os.listdir(ckpt)) == [CHECKPOINT_NAME]  # complete, no temp files

    resumed = make().fit(data, checkpoint_dir=ckpt, resume=True)

    assert_same_weights(resumed, uninterrupted)
    assert resumed.history_ == [
        {**e, "seconds": r["seconds"]} for e, r in zip(uninterrupted.history_, resumed.history_)
    ]
    assert resumed.threshold_ == uninterrupted.threshold_
    files = sorted((data / "valid").rglob("*.png"))
    np.testing.assert_array_equal(resumed.predict_proba(files), uninterrupted.predict_proba(files))


def test_checkpoint_holds_no_pickle_and_finite_state(data, tmp_path):
    ckpt = tmp_path / "ckpt"
    make(fine_tune_epochs=0, epochs=2).fit(data, checkpoint_dir=ckpt)
    tensors, meta = read_model_file(ckpt / CHECKPOINT_NAME)  # safetensors: no code on load
    assert meta["kind"] == "checkpoint" and meta["phases_done"] == ["head"]
    assert any(k.startswith("s#") for k in tensors)
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert b"pickle" not in (ckpt / CHECKPOINT_NAME).read_bytes()[:64]


def test_a_checkpoint_is_not_a_model(data, tmp_path):
    ckpt = tmp_path / "ckpt"
    make(fine_tune_epochs=0, epochs=1).fit(data, checkpoint_dir=ckpt)
    with pytest.raises(ModelFileError, match="training checkpoint, not a model"):
        ImageBinaryClassifier.load(ckpt / CHECKPOINT_NAME)


def test_resume_from_a_finished_checkpoint_trains_nothing(data, uninterrupted, tmp_path):
    ckpt = tmp_path / "ckpt"
    make().fit(data, checkpoint_dir=ckpt)
    steps = []

    class CountSteps(Callback):
        def on_batch_end(self, trainer, state):
            steps.append(state.step)

    again = make()
    again.trainer = Trainer(num_workers=0, callbacks=[CountSteps()])
    again.fit(data, checkpoint_dir=ckpt, resume=True)
    assert steps == []
    assert_same_weights(again, uninterrupted)


def test_resume_with_no_checkpoint_yet_starts_from_scratch(data, uninterrupted, tmp_path):
    resumed = make().fit(data, checkpoint_dir=tmp_path / "empty", resume=True)
    assert_same_weights(resumed, uninterrupted)
    assert (tmp_path / "empty" / CHECKPOINT_NAME).is_file()


def test_resume_refuses_a_checkpoint_of_another_fit(data, tmp_path):
    ckpt = tmp_path / "ckpt"
    make(fine_tune_epochs=0, epochs=1).fit(data, checkpoint_dir=ckpt)
    before = (ckpt / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(InvalidParameterError, match="other parameters or other data"):
        make(fine_tune_epochs=0, epochs=1, lr=0.5).fit(data, checkpoint_dir=ckpt, resume=True)
    with pytest.raises(InvalidParameterError, match="other parameters or other data"):
        make(fine_tune_epochs=0, epochs=1).fit(data / "train", checkpoint_dir=ckpt, resume=True)
    assert (ckpt / CHECKPOINT_NAME).read_bytes() == before


def test_resume_needs_a_checkpoint_dir(data):
    with pytest.raises(InvalidParameterError, match="needs checkpoint_dir"):
        make().fit(data, resume=True)


def test_without_resume_an_old_checkpoint_is_replaced(data, tmp_path):
    ckpt = tmp_path / "ckpt"
    make(fine_tune_epochs=0, epochs=1).fit(data, checkpoint_dir=ckpt)
    make(fine_tune_epochs=0, epochs=2, lr=0.02).fit(data, checkpoint_dir=ckpt)
    _, meta = read_model_file(ckpt / CHECKPOINT_NAME)
    assert meta["state"]["epoch"] == 2


def test_unknown_checkpoint_file_is_refused(tmp_path):
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelFileError, match=CHECKPOINT_NAME):
        Checkpointer(tmp_path, "abc", resume=True)


# ============================================================================ numerics


class Poison(Callback):
    """At ``epoch`` of the head phase, make the loss (or only the gradient) non-finite."""

    def __init__(self, epoch: int, what: str) -> None:
        self.epoch, self.what = epoch, what

    def on_batch_start(self, trainer, state):
        if state.phase != "head" or state.epoch != self.epoch or state.step % 2:
            return
        weight = state.model.head[1].weight
        if self.what == "loss":
            with torch.no_grad():
                weight.fill_(math.nan)
        elif not getattr(weight, "_poisoned", False):
            weight.register_hook(lambda g: g * math.inf)
            weight._poisoned = True


@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_non_finite_training_stops_restores_and_never_saves_it(data, tmp_path, what):
    ckpt = tmp_path / "ckpt"
    clf = make(fine_tune_epochs=0, early_stopping=False)
    clf.trainer = Trainer(num_workers=0, callbacks=[Poison(3, what)], grad_clip=None)
    with pytest.raises(
        TrainingError, match=rf"{what}.* at epoch 3, step \d+ \(head phase\) with learning rate"
    ) as info:
        clf.fit(data, checkpoint_dir=ckpt)
    assert "restored" in str(info.value)
    tensors, meta = read_model_file(ckpt / CHECKPOINT_NAME)
    assert meta["state"]["epoch"] == 2  # the last good epoch, all finite
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
