"""Saving and loading fitted classifiers as ``.bv`` files (safetensors + JSON metadata)."""

from __future__ import annotations

from typing import Any


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value
