"""The data config: how images must be prepared for a backbone (size, normalisation, crop).

Every backbone carries one (``backbone.data_config``); the transforms are built from it,
so no stage hard-codes ImageNet statistics. Imports nothing from binaryvision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DataConfig"]


@dataclass(frozen=True)
class DataConfig:
    """How images must be prepared for a backbone.

    Parameters
    ----------
    input_size : int
        Side of the square input, in pixels.
    mean, std : tuple of float
        Per-channel normalisation applied after scaling pixels to ``[0, 1]``.
    interpolation : str
        Resize filter: ``"bilinear"`` or ``"bicubic"``.
    crop_pct : float
        Fraction of the resized image kept by the centre crop at evaluation time
        (the shorter side is resized to ``input_size / crop_pct``).
    """

    input_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875

    def to_dict(self) -> dict:
        """Return a JSON-safe dict (used in saved model files)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            input_size=int(d["input_size"]),
            mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
            interpolation=str(d.get("interpolation", "bilinear")),
            crop_pct=float(d.get("crop_pct", 0.875)),
        )
