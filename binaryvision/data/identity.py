"""An image's identity: the SHA-256 of its content (file bytes, array bytes or PIL pixels).

The feature cache, the bad-image scan and the checkpoint fingerprint all key images by it,
so a renamed or copied file is the same image and an edited one is not.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import numpy as np

__all__ = ["content_key"]

_HASHES: dict[tuple, str] = {}  # (path, size, mtime_ns) -> sha256 of the file's bytes
_HASHES_LOCK = threading.Lock()


def content_key(item: Any) -> str:
    """SHA-256 (hex) of an image's content: file bytes, array bytes or PIL pixels.

    File hashes are remembered per (path, size, modification time), so a file is read
    for hashing once per process unless it changes.
    """
    if isinstance(item, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(item))
        st = os.stat(path)
        stamp = (path, st.st_size, st.st_mtime_ns)
        with _HASHES_LOCK:
            known = _HASHES.get(stamp)
        if known is not None:
            return known
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()
        with _HASHES_LOCK:
            _HASHES[stamp] = value
        return value
    if isinstance(item, np.ndarray):
        head = f"array{item.shape}{item.dtype}".encode()
        return hashlib.sha256(head + np.ascontiguousarray(item).tobytes()).hexdigest()
    head = f"pil{item.size}{item.mode}".encode()
    return hashlib.sha256(head + item.tobytes()).hexdigest()
