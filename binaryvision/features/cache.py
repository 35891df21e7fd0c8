"""The feature cache: frozen-backbone features computed once per image, reused everywhere.

The features of an image depend only on the image's content, the backbone's weights and
the preprocessing. They are stored under a key made of exactly those three things:

* the image: the SHA-256 of the file's bytes (or of an in-memory image's pixels), so a
  renamed or copied file hits the cache and an edited one does not;
* the backbone and the preprocessing: the SHA-256 of every tensor of the backbone's state
  dict with its name, shape and type, the backbone's class, and the eval transform's
  description (size, resize, crop, normalisation) plus the test-time view.

Two stores are used:

* **memory**, shared by every estimator in the process (so the clones that
  :class:`~sklearn.model_selection.GridSearchCV` or ``cross_val_score`` make, an
  ``lr_find`` before ``fit``, or a second fit with other head hyperparameters never run
  the backbone twice on an image), bounded by :attr:`FeatureCache.max_bytes` with
  least-recently-used eviction;
* **disk**, when the estimator is given ``cache_dir=``: one small file of raw float32
  values per image and model (no pickle; written atomically; a file of the wrong size is
  ignored and rewritten), so later processes reuse the work too.

The same content key also keeps the result of the pre-training scan for unreadable
images (:attr:`FeatureCache.scan_reasons`), so a file is checked once per process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..persistence import atomic_write

__all__ = ["FeatureCache", "model_key", "shared_cache"]


def model_key(module: torch.nn.Module, preprocessing: str) -> str:
    """SHA-256 (hex) of a module's class, state dict and a preprocessing description."""
    digest = hashlib.sha256()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}\n".encode())
    digest.update(preprocessing.encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"\n{name}{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class FeatureCache:
    """Feature vectors by ``(model key, image key)``, in memory and optionally on disk.

    Parameters
    ----------
    max_bytes : int
        Memory budget; the least recently used entries are dropped beyond it.
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self._memory: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        #: Why each image (by :func:`~binaryvision.data.identity.content_key`) cannot be used; "" when it can.
        self.scan_reasons: dict[Any, str] = {}

    def __len__(self) -> int:
        return len(self._memory)

    def clear(self) -> None:
        """Forget every feature and scan result held in memory (files on disk are kept)."""
        with self._lock:
            self._memory.clear()
            self._bytes = 0
            self.scan_reasons.clear()

    @staticmethod
    def _file(directory: str | os.PathLike, key: tuple[str, str]) -> Path:
        model, image = key
        return Path(directory) / "features" / model[:24] / image[:2] / f"{image}.f32"

    def get(
        self, key: tuple[str, str], dim: int, directory: str | os.PathLike | None = None
    ) -> torch.Tensor | None:
        """The cached features of ``key`` (a float32 vector of ``dim`` values), or None."""
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return found
        if directory is not None:
            try:
                raw = self._file(directory, key).read_bytes()
            except OSError:
                raw = None
            if raw is not None and len(raw) == 4 * dim:
                tensor = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
                if torch.isfinite(tensor).all():
                    self._remember(key, tensor)
                    self.hits += 1
                    return tensor
        self.misses += 1
        return None

    def put(
        self, key: tuple[str, str], tensor: torch.Tensor, directory: str | os.PathLike | None = None
    ) -> None:
        """Store ``tensor`` (1-D float) under ``key``, and on disk when ``directory``."""
        tensor = tensor.detach().cpu().float().contiguous()
        self._remember(key, tensor)
        if directory is not None and torch.isfinite(tensor).all():
            path = self._file(directory, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, tensor.numpy().astype("<f4").tobytes())

    def _remember(self, key: tuple[str, str], tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._memory.pop(key, None)
            if old is not None:
                self._bytes -= old.numel() * old.element_size()
            self._memory[key] = tensor
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._memory.popitem(last=False)
                self._bytes -= dropped.numel() * dropped.element_size()


_SHARED = FeatureCache()


def shared_cache() -> FeatureCache:
    """The process-wide cache every :class:`~binaryvision.ImageBinaryClassifier` uses."""
    return _SHARED
