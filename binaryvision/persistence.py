"""Saving and loading fitted classifiers: one safetensors file with JSON metadata.

A model file holds the network's tensors (safetensors: no code can run on load) and,
under the metadata key ``"binaryvision"``, a JSON document with everything needed to
rebuild the model and its preprocessing. Writes are atomic (:func:`atomic_write`): the
bytes are flushed to disk in a temporary file in the same folder, then moved into place
with :func:`os.replace`, so a killed process never leaves a half-written model behind and
the previous file stays loadable.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from pathlib import Path

import torch

from .exceptions import ModelFileError

__all__ = [
    "FORMAT_VERSION",
    "atomic_write",
    "read_model_file",
    "remove_stale_temps",
    "write_model_file",
]

#: Version of the model-file layout; files with a larger number are refused with a clear error.
FORMAT_VERSION = 1
_KEY = "binaryvision"


_TEMP_SUFFIX = ".bvtmp"


def _temp_name(path: Path) -> Path:
    """``.model.bv.<pid>.<random>.bvtmp`` beside ``path``: the pid lets a later save tell
    a dead writer's leftover from a file another live process is still writing."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or we cannot tell: keep its file
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete temp files that killed saves of ``path`` left behind; return what was removed.

    Only names this module creates for ``path`` (``.<name>.<pid>.<hex>.bvtmp``) whose
    writing process no longer exists are removed; nothing else in the folder is touched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(
        r"^\." + re.escape(path.name) + r"\.(\d+)\.[0-9a-f]{8}" + re.escape(_TEMP_SUFFIX) + "$"
    )
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(folder / name)
                removed.append(folder / name)
    return removed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _write_unnamed(folder: Path, tmp: Path, data: bytes) -> bool:
    """Linux: write into an ``O_TMPFILE`` file, then give it the name ``tmp``.

    Returns False (having created nothing) where the platform or file system cannot.
    """
    if not hasattr(os, "O_TMPFILE"):
        return False
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)  # the umask applies
    except OSError:
        return False
    try:
        _write_all(fd, data)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, follow_symlinks=True)
        except OSError:  # no /proc: the caller writes a named file instead
            return False
    finally:
        os.close(fd)
    return True


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    On Linux the bytes go into an unnamed file (``O_TMPFILE``) in the target folder, are
    flushed to disk, then get a name and are renamed onto ``path``: a process killed while
    writing leaves nothing behind, and only a kill in the microseconds between naming and
    renaming can leave a ``.bvtmp`` file. Elsewhere a named temp file is used. Either way
    the leftovers of killed saves are removed by the next save or load of ``path``
    (:func:`remove_stale_temps`). An exception removes the temp file at once.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    remove_stale_temps(path)
    tmp = _temp_name(path)
    try:
        if not _write_unnamed(folder, tmp, data):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_model_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write tensors and metadata to ``path`` atomically, refusing non-finite weights."""
    from safetensors.torch import save

    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(
            f"Refusing to save {os.fspath(path)!r}: tensor {bad[0]!r} holds NaN or infinite values."
        )
    meta = {**meta, "format_version": FORMAT_VERSION}
    # Copies: tied weights (one tensor under two names) are refused by safetensors as views.
    tensors = {k: t.detach().cpu().clone().contiguous() for k, t in tensors.items()}
    # Serialise in memory (safetensors' save_file would leave its own temp file when killed).
    atomic_write(path, save(tensors, metadata={_KEY: json.dumps(meta)}))


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
    remove_stale_temps(path)
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
