"""Saving is crash-safe: a save killed with SIGKILL, or failing with an exception, never
damages the model file that was already there.

The SIGKILL trials run ``clf.save`` in a tight loop in a separate process and kill it at
random moments. Importing torch takes seconds, so one helper process (started with
``sys.executable -c``) imports binaryvision once and forks a fresh saver process for every
trial; the test kills that saver by its pid.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from binaryvision import ImageBinaryClassifier
from binaryvision.persistence import read_model_file

posix_kill = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL") or not hasattr(os, "fork"),
    reason="needs SIGKILL and fork (POSIX); Windows has neither",
)

MODEL = "model.bv"
N_TRIALS = 12
SEED = 20240607
#: How atomic_write names its temporary file: ".model.bv.<pid>.<8 hex>.bvtmp".
TEMP_NAME = re.compile(r"^\." + re.escape(MODEL) + r"\.\d+\.[0-9a-f]{8}\.bvtmp$")


def is_temp(name: str) -> bool:
    """Whether ``name`` is a temp file of atomic_write."""
    return bool(TEMP_NAME.match(name))


#: Guards against a hung helper process only; no assertion depends on timing.
HANG_GUARD_S = 180.0

# The helper: loads the pickled classifier once, then for every "loop DIR" or "stall DIR"
# line on stdin forks a saver and reports how it ended. "loop" saves DIR/model.bv forever;
# "stall" patches os.fsync to stop (sleeping) right after the temp file's bytes are flushed,
# so a kill then lands inside atomic_write for sure.
HELPER = r"""
import os, pickle, sys, time, traceback
import torch
torch.set_num_threads(1)
import safetensors.torch
import binaryvision

with open(sys.argv[1], "rb") as f:
    clf = pickle.load(f)
clf.save(sys.argv[2])  # warm-up: lazy initialisation happens once, not in every saver
os.unlink(sys.argv[2])
print("helper-ready", flush=True)
for line in sys.stdin:
    mode, folder = line.rstrip("\n").split(" ", 1)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            path = os.path.join(folder, "model.bv")
            if mode == "stall":
                real = os.fsync

                def stalled(*args, **kwargs):
                    real(*args, **kwargs)
                    print("ready", os.getpid(), flush=True)
                    time.sleep(120)

                os.fsync = stalled
                clf.save(path)
            else:
                print("ready", os.getpid(), flush=True)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    clf.save(path)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1
    print("reaped", pid, signum, flush=True)
"""


class Helper:
    """The helper process, with its stdout lines read by a thread (so reads can time out)."""

    def __init__(self, classifier_pickle: Path, scratch: Path, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HELPER, str(classifier_pickle), str(scratch)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=dict(os.environ),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # EOF: the helper exited

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def expect(self, word: str) -> list[str]:
        """The next stdout line, which must start with ``word``; its remaining fields."""
        try:
            line = self.lines.get(timeout=HANG_GUARD_S)
        except queue.Empty:
            pytest.fail(f"helper hung waiting for {word!r}; stderr:\n{self.stderr()}")
        fields = line.split()
        assert fields and fields[0] == word, f"got {line!r}; helper stderr:\n{self.stderr()}"
        return fields[1:]

    def kill_saver(self, mode: str, folder: Path, delay: float) -> int:
        """Fork a saver on ``folder``, SIGKILL it ``delay`` s after "ready"; its end signal."""
        self.proc.stdin.write(f"{mode} {folder}\n")
        self.proc.stdin.flush()
        pid = int(self.expect("ready")[0])
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        reaped_pid, signum = map(int, self.expect("reaped"))
        assert reaped_pid == pid
        return signum

    def close(self) -> None:
        """Stop the helper (it holds no state worth a clean exit)."""
        self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()


@dataclasses.dataclass
class Trial:
    """What one SIGKILL trial left behind."""

    delay: float
    signum: int
    listing: list[str]
    replaced: bool
    load_error: str | None
    proba: np.ndarray | None
    tensors: dict[str, torch.Tensor] | None


@pytest.fixture(scope="module")
def reference(fitted_tiny):
    """The fitted classifier, a few images, and its probabilities on them."""
    clf, root = fitted_tiny
    files = sorted((root / "valid").rglob("*.png"))[::3]
    assert len(files) >= 4
    return clf, files, clf.predict_proba(files)


@pytest.fixture(scope="module")
def helper(reference, tmp_path_factory):
    """The running helper process, holding a pickled copy of the fitted classifier."""
    if not hasattr(signal, "SIGKILL") or not hasattr(os, "fork"):
        pytest.skip("needs SIGKILL and fork (POSIX)")
    folder = tmp_path_factory.mktemp("helper")
    pickled = folder / "classifier.pkl"  # written here, so trusted
    pickled.write_bytes(pickle.dumps(reference[0]))
    proc = Helper(pickled, folder / "warm-up.bv", folder / "stderr.txt")
    try:
        proc.expect("helper-ready")
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="module")
def sigkill_trials(reference, helper, tmp_path_factory) -> list[Trial]:
    """Run the trials once; the tests below check different things about them."""
    clf, files, _ = reference
    folder = tmp_path_factory.mktemp("kill")
    path = folder / MODEL
    clf.save(path)
    assert os.listdir(folder) == [MODEL]
    rng = random.Random(SEED)
    trials = []
    for _ in range(N_TRIALS):
        delay = rng.uniform(0.05, 0.6)  # a save takes ~10 ms: many saves per trial
        inode = path.stat().st_ino
        signum = helper.kill_saver("loop", folder, delay)
        load_error = proba = tensors = None
        try:
            proba = ImageBinaryClassifier.load(path).predict_proba(files)
            tensors, _ = read_model_file(path)
        except Exception as exc:  # recorded, then asserted on by the tests
            load_error = f"{type(exc).__name__}: {exc}"
        replaced = path.exists() and path.stat().st_ino != inode
        trials.append(
            Trial(delay, signum, sorted(os.listdir(folder)), replaced, load_error, proba, tensors)
        )
    return trials


# ============================================================================ SIGKILL


@posix_kill
def test_sigkill_mid_save_leaves_previous_model_loadable(reference, sigkill_trials):
    """After every kill model.bv loads, predicts as before, and holds the same weights."""
    clf, _, expected = reference
    state = clf.model_.state_dict()
    assert len(sigkill_trials) >= 10
    for i, trial in enumerate(sigkill_trials):
        where = f"trial {i} (killed {trial.delay:.3f} s after ready)"
        assert trial.signum == signal.SIGKILL, f"{where}: the saver was not killed by us"
        assert trial.load_error is None, f"{where}: {trial.load_error}"
        np.testing.assert_allclose(trial.proba, expected, atol=1e-6, err_msg=where)
        assert trial.tensors.keys() == state.keys(), where
        assert all(torch.equal(trial.tensors[k], state[k]) for k in state), where
    # The savers really did save: os.replace put a new file (new inode) in place.
    assert any(trial.replaced for trial in sigkill_trials)


@posix_kill
def test_sigkill_leaves_nothing_but_model_and_temp_files(sigkill_trials):
    """Nothing but model.bv and the writers' temp files is ever left in the folder."""
    for i, trial in enumerate(sigkill_trials):
        assert MODEL in trial.listing, f"trial {i}"
        others = [n for n in trial.listing if n != MODEL and not is_temp(n)]
        assert others == [], f"trial {i} left {others}"


@posix_kill
def test_sigkill_leaves_no_temp_files(sigkill_trials):
    """No temp file is left behind by any of the killed saves (once the model is loaded).

    The listing is taken after ``load``: a kill in the microseconds between naming the temp
    file and renaming it can leave one, which the next save or load of the path removes.
    """
    leftovers = sorted({n for trial in sigkill_trials for n in trial.listing if n != MODEL})
    assert leftovers == []


@pytest.fixture(scope="module")
def stalled_kill(reference, helper, tmp_path_factory) -> tuple[Path, bytes, int]:
    """One save killed right after the temp file was flushed to disk, before os.replace."""
    folder = tmp_path_factory.mktemp("stall")
    reference[0].save(folder / MODEL)
    before = (folder / MODEL).read_bytes()
    return folder, before, helper.kill_saver("stall", folder, 0.0)


@posix_kill
def test_sigkill_during_write_keeps_previous_file(reference, stalled_kill):
    """Deterministic: a kill inside atomic_write leaves model.bv untouched, byte for byte."""
    _, files, expected = reference
    folder, before, signum = stalled_kill
    assert signum == signal.SIGKILL
    assert (folder / MODEL).read_bytes() == before
    loaded = ImageBinaryClassifier.load(folder / MODEL)
    np.testing.assert_allclose(loaded.predict_proba(files), expected, atol=1e-6)
    others = [n for n in os.listdir(folder) if n != MODEL]
    assert all(is_temp(n) for n in others), others


@posix_kill
@pytest.mark.skipif(
    not hasattr(os, "O_TMPFILE"), reason="unnamed temp files (O_TMPFILE) exist on Linux only"
)
def test_sigkill_during_write_leaves_no_temp_file(stalled_kill):
    """No temp file survives a kill inside atomic_write, even before any later load."""
    folder = stalled_kill[0]
    assert sorted(os.listdir(folder)) == [MODEL]


def test_stale_temp_of_dead_writer_is_removed_by_next_save(reference, tmp_path, monkeypatch):
    """Where a named temp file is used (no O_TMPFILE), a killed writer's file is swept later.

    Only files named for this model and a dead pid go; a live writer's temp, another
    model's temp and unrelated files stay.
    """
    clf, files, expected = reference
    path = tmp_path / MODEL
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".{MODEL}.{dead_pid}.0123abcd.bvtmp"
    live = tmp_path / f".{MODEL}.{os.getpid()}.89abcdef.bvtmp"
    other = tmp_path / f".other.bv.{dead_pid}.0123abcd.bvtmp"
    mine = tmp_path / "notes.bvtmp"
    for f in (stale, live, other, mine):
        f.write_bytes(b"half a model")
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    clf.save(path)
    assert sorted(os.listdir(tmp_path)) == sorted([MODEL, live.name, other.name, mine.name])
    stale.write_bytes(b"half a model")
    loaded = ImageBinaryClassifier.load(path)
    assert not stale.exists()
    np.testing.assert_allclose(loaded.predict_proba(files), expected, atol=1e-6)


# ============================================================================ exceptions


FAILURES = {
    "serialise-oserror": ("safetensors.torch", "save", OSError(12, "Cannot allocate memory")),
    "write-oserror": ("os", "write", OSError(28, "No space left on device")),
    "write-interrupt": ("os", "write", KeyboardInterrupt()),
    "fsync": ("os", "fsync", OSError(5, "Input/output error")),
    "replace": ("os", "replace", PermissionError(13, "Permission denied")),
}


def _failing(name: str, exc: BaseException, calls: list):
    """A replacement for ``name`` that records its call, half-writes if a writer, raises."""
    real = getattr(importlib.import_module("os"), name, None)

    def replacement(*args, **kwargs):
        calls.append(args)
        if name == "write":
            real(args[0], b"\x00" * 64)  # half a file in the temp file
        raise exc

    return replacement


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_save_failing_mid_way_keeps_previous_file(reference, tmp_path, monkeypatch, failure):
    """An exception at any step of a save leaves the old file intact and no temp file."""
    clf, files, expected = reference
    path = tmp_path / MODEL
    clf.save(path)
    before = path.read_bytes()
    module, name, exc = FAILURES[failure]
    calls: list = []
    monkeypatch.setattr(importlib.import_module(module), name, _failing(name, exc, calls))
    with pytest.raises(type(exc)):
        clf.save(path)
    monkeypatch.undo()
    assert calls, f"{module}.{name} was never called: the failure was not injected"
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [MODEL]
    loaded = ImageBinaryClassifier.load(path)
    np.testing.assert_allclose(loaded.predict_proba(files), expected, atol=1e-6)


def test_failed_first_save_creates_nothing(reference, tmp_path, monkeypatch):
    """A save that fails when no model file exists yet leaves the folder empty."""
    calls: list = []
    monkeypatch.setattr(os, "write", _failing("write", OSError(28, "full"), calls))
    with pytest.raises(OSError, match="full"):
        reference[0].save(tmp_path / MODEL)
    assert len(calls) == 1
    assert os.listdir(tmp_path) == []
