"""Training checkpoints: everything needed to continue a killed fit exactly where it was.

A checkpoint is one safetensors file, ``checkpoint_dir/checkpoint.bvckpt``, replaced
atomically at the end of every epoch (see :func:`binaryvision.persistence.atomic_write`).
Its tensors are the model, the optimizer's state, the best weights kept by early
stopping and the random-number generators' states (as ``uint8`` tensors); everything else
(epoch, step, phase, scheduler and gradient-scaler state, callback state such as the
history) is plain JSON in its metadata. Nothing is ever unpickled on load.

A fit that resumes (``fit(..., checkpoint_dir=d, resume=True)``) rebuilds the model the
same way, then loads the checkpoint: phases already finished are skipped, and the phase
that was running continues after its last completed epoch with the same optimizer,
schedule, data order and random numbers, so on the CPU it ends with the same weights as
a fit that was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.identity import content_key
from ..exceptions import InvalidParameterError, ModelFileError
from ..persistence import read_model_file, write_model_file

__all__ = ["CHECKPOINT_NAME", "Checkpointer", "LoopObjects", "fingerprint", "fit_fingerprint"]

#: File name of the checkpoint inside ``checkpoint_dir``.
CHECKPOINT_NAME = "checkpoint.bvckpt"
_TENSOR = "__tensor__"
_PAIRS = "__pairs__"
_TUPLE = "__tuple__"


def fingerprint(values: dict) -> str:
    """A short hash of a JSON-able description (parameters and data of a fit)."""
    text = json.dumps(values, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fit_fingerprint(params: dict, seed: int, train: Any, valid: Any = None) -> str:
    """Identifies a fit for resuming: its parameters, seed and exact images and labels."""
    images = [
        [content_key(item) for item in part.items] + [repr(v) for v in part.labels]
        for part in (train, valid)
        if part is not None
    ]
    return fingerprint({"params": params, "seed": seed, "images": images})


def _encode(value: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace tensors in a nested structure by references; keep dict key types exact."""
    if isinstance(value, torch.Tensor):
        key = f"{prefix}#{len(tensors)}"
        tensors[key] = value.detach().cpu()
        return {_TENSOR: key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, tensors, prefix) for k, v in value.items()}
        return {_PAIRS: [[k, _encode(v, tensors, prefix)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, tensors, prefix) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors, prefix) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if _TENSOR in value:
            return tensors[value[_TENSOR]]
        if _PAIRS in value:
            return {
                (tuple(k) if isinstance(k, list) else k): _decode(v, tensors)
                for k, v in value[_PAIRS]
            }
        if _TUPLE in value:
            return tuple(_decode(v, tensors) for v in value[_TUPLE])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _rng_state(generator: torch.Generator | None, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if generator is not None:
        state["loader"] = generator.get_state()
    return state


def _set_rng_state(state: dict, generator: torch.Generator | None, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    if generator is not None and "loader" in state:
        generator.set_state(state["loader"])


def _stateful(callbacks: list) -> list:
    """The callbacks that have state to keep (``state_dict()`` returns a dict)."""
    return [c for c in callbacks if getattr(c, "state_dict", None) and c.state_dict() is not None]


def _callback_states(callbacks: list) -> list:
    return [[type(c).__name__, c.state_dict()] for c in _stateful(callbacks)]


def _load_callback_states(callbacks: list, states: list, path: str) -> None:
    callbacks = _stateful(callbacks)
    saved = [name for name, _ in states]
    current = [type(c).__name__ for c in callbacks]
    if saved != current:
        raise InvalidParameterError(
            f"Cannot resume from {path!r}: it was written with the callbacks {saved}, and "
            f"this fit has {current}. Resume with the same Trainer(callbacks=...), or pass "
            "resume=False to start over."
        )
    for callback, (_, state) in zip(callbacks, states):
        callback.load_state_dict(state)


@dataclass
class LoopObjects:
    """What a training loop holds that a checkpoint saves and restores."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    callbacks: list
    generator: torch.Generator | None
    device: torch.device


class Checkpointer:
    """Writes and restores the checkpoint of one fit (used by :meth:`Trainer.fit`).

    Parameters
    ----------
    folder : str or path
        ``checkpoint_dir``; created if missing.
    fingerprint : str
        Identifies the fit's parameters and data; a checkpoint with another fingerprint
        is refused on resume (it belongs to a different fit).
    resume : bool
        Load the existing checkpoint, if there is one. Without it an existing checkpoint
        is replaced at the end of the first epoch.
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: str, resume: bool) -> None:
        self.folder = Path(folder)
        self.path = self.folder / CHECKPOINT_NAME
        self.fingerprint = fingerprint
        self.saved: dict | None = None
        self.tensors: dict[str, torch.Tensor] = {}
        self.extra: dict = {}
        self.folder.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            self._read()

    @property
    def resumed(self) -> bool:
        """Whether a checkpoint was loaded."""
        return self.saved is not None

    def _read(self) -> None:
        name = os.fspath(self.path)
        tensors, meta = read_model_file(self.path)
        if meta.get("kind") != "checkpoint":
            raise ModelFileError(f"{name!r} is not a binaryvision training checkpoint.")
        if meta.get("fingerprint") != self.fingerprint:
            raise InvalidParameterError(
                f"Cannot resume from {name!r}: it was written by a fit with other parameters "
                "or other data. Resume with the same estimator parameters and images, point "
                "checkpoint_dir at another folder, or pass resume=False to start over."
            )
        self.saved = meta
        self.tensors = tensors
        self.extra = meta.get("extra", {})

    def phase_state(self, phase: str) -> str:
        """``"done"``, ``"running"`` or ``"todo"`` for ``phase`` in the loaded checkpoint."""
        if self.saved is None:
            return "todo"
        order = self.saved["phases_done"]
        if phase in order:
            return "done"
        return "running" if self.saved["phase"] == phase else "todo"

    def restore(self, phase: str, live: LoopObjects) -> dict:
        """Load the saved state of ``phase`` into the live objects; return the loop state.

        Returns ``{"epoch", "step", "stop_training", "done"}``: the last completed epoch,
        the optimizer steps so far, whether a callback had asked to stop, and whether the
        phase had finished.
        """
        status = self.phase_state(phase)
        if status == "todo" or (status == "done" and self.saved["phase"] != phase):
            # nothing yet; or a later phase was saved, which holds the model and history
            done = status == "done"
            return {"epoch": 0, "step": 0, "stop_training": done, "done": done}
        state = _decode(self.saved["state"], self.tensors)
        live.model.load_state_dict(state["model"])
        _load_callback_states(live.callbacks, state["callbacks"], os.fspath(self.path))
        done = status == "done"
        if not done:
            live.optimizer.load_state_dict(state["optimizer"])
            if live.scheduler is not None and state["scheduler"] is not None:
                live.scheduler.load_state_dict(state["scheduler"])
            live.scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"], live.generator, live.device)
        return {
            "epoch": state["epoch"],
            "step": state["step"],
            "stop_training": done or state["stop_training"],
            "done": done,
        }

    def save(
        self,
        phase: str,
        live: LoopObjects,
        *,
        epoch: int,
        step: int,
        stop_training: bool,
        done: bool,
    ) -> None:
        """Write the state after ``epoch`` of ``phase`` (complete, atomic, finite weights)."""
        phases_done = list(self.saved["phases_done"]) if self.saved else []
        if done and phase not in phases_done:
            phases_done.append(phase)
        state = {
            "model": live.model.state_dict(),
            "callbacks": _callback_states(live.callbacks),
            "epoch": epoch,
            "step": step,
            "stop_training": stop_training,
            "optimizer": None if done else live.optimizer.state_dict(),
            "scheduler": None if done or live.scheduler is None else live.scheduler.state_dict(),
            "scaler": None if done else live.scaler.state_dict(),
            "rng": None if done else _rng_state(live.generator, live.device),
        }
        tensors: dict[str, torch.Tensor] = {}
        meta = {
            "kind": "checkpoint",
            "fingerprint": self.fingerprint,
            "phase": phase,
            "phases_done": phases_done,
            "extra": self.extra,
            "state": _encode(state, tensors, "s"),
        }
        write_model_file(self.path, tensors, meta)
        self.saved, self.tensors = meta, {}  # the live tensors are not kept
