"""Saving and loading fitted classifiers: one safetensors file with JSON metadata.

A model file holds the network's tensors (safetensors: no code can run on load) and,
under the metadata key ``"binaryvision"``, a JSON document with everything needed to
rebuild the model and its preprocessing. Writes are atomic: the file is written to a
temporary name in the same folder, flushed to disk, then moved into place with
:func:`os.replace`, so a killed process never leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .exceptions import ModelFileError

__all__ = ["FORMAT_VERSION", "atomic_write", "read_model_file", "write_model_file"]

#: Version of the model-file layout; files with a larger number are refused with a clear error.
FORMAT_VERSION = 1
_KEY = "binaryvision"


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the finished file onto ``path`` atomically."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)  # mkstemp makes 0600 files; give the model the usual permissions
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_model_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write tensors and metadata to ``path`` atomically, refusing non-finite weights."""
    from safetensors.torch import save_file

    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(
            f"Refusing to save {os.fspath(path)!r}: tensor {bad[0]!r} holds NaN or infinite values."
        )
    meta = {**meta, "format_version": FORMAT_VERSION}
    tensors = {k: t.detach().cpu().contiguous() for k, t in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={_KEY: json.dumps(meta)}))


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a model file without unpickling anything.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ModelFileError
        The file is truncated, corrupt, not a binaryvision model, written by a newer
        version, or holds non-finite weights.
    """
    from safetensors import safe_open

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"Model file {name!r} does not exist.")
    try:
        with safe_open(name, framework="pt") as f:
            raw = (f.metadata() or {}).get(_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for every corruption
        raise ModelFileError(
            f"{name!r} is not a readable binaryvision model file (it is truncated, corrupt, or "
            f"another format such as a pickle): {exc}"
        ) from None
    if raw is None:
        raise ModelFileError(
            f"{name!r} is a safetensors file but not a binaryvision model (no '{_KEY}' metadata)."
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{name!r} has corrupt metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(
            f"{name!r} has corrupt metadata: not a binaryvision model description."
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{name!r} uses model-file format {version!r}, newer than this binaryvision "
            f"understands ({FORMAT_VERSION}). Upgrade with `pip install -U binaryvision`."
        )
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(
            f"{name!r} is corrupt: tensor {bad[0]!r} holds NaN or infinite values."
        )
    return tensors, meta
