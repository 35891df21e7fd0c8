"""Safe decoding: every image that enters binaryvision goes through :func:`load_image`.

Files are opened read-only and always closed; nothing a user passes in is modified.
Imports only :mod:`binaryvision.exceptions`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..exceptions import ImageDecodeError, InvalidParameterError

__all__ = ["ALLOWED_FORMATS", "IMAGE_EXTENSIONS", "ImageLike", "load_image"]

#: File name extensions treated as images when scanning folders (case-insensitive).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Pillow formats accepted when decoding; anything else is refused by name.
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF", "MPO"})
#: Images whose long side is more than this many times the short side are refused.
MAX_ASPECT_RATIO = 25.0
#: Background on which transparent pixels are composited (white, as a viewer shows them).
BACKGROUND = (255, 255, 255)

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]  # noqa: UP007 (runtime alias, py3.10)


def _describe(source: Any) -> str | None:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else None


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB without clamping high-bit-depth images."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64))
        top = 1.0 if arr.max(initial=0) <= 1.0 else float(arr.max())
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        raise InvalidParameterError(
            f"Got an image array of shape {arr.shape}, which looks channels-first. "
            "Images must be (H, W, 3) uint8 arrays; transpose it with arr.transpose(1, 2, 0)."
        )
    if arr.dtype != np.uint8:
        raise InvalidParameterError(
            f"Image arrays must have dtype uint8 (0-255), got {arr.dtype}. For floats in [0, 1] "
            "use (arr * 255).round().astype(np.uint8)."
        )
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.shape[-1] == 3 else "RGBA")
    raise InvalidParameterError(
        f"Image arrays must have shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}."
    )


def _check_size(size: tuple[int, int], path: str | None, max_pixels: int | None) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageDecodeError(path, f"it has zero size ({w}x{h} pixels)")
    if max(w, h) / min(w, h) > MAX_ASPECT_RATIO:
        raise ImageDecodeError(
            path,
            f"its aspect ratio {w}x{h} exceeds {MAX_ASPECT_RATIO:g}:1, so it is not a photo "
            "that can be resized to a square input",
        )
    if max_pixels is not None and w * h > max_pixels:
        raise ImageDecodeError(
            path,
            f"it has {w * h} pixels ({w}x{h}), more than max_pixels={max_pixels}; this guards "
            "against decompression bombs. Raise max_pixels if you trust the file",
        )


def load_image(
    source: ImageLike, *, min_size: int | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Decode one image into a new 8-bit RGB :class:`PIL.Image.Image`.

    The one decoding path of the library: EXIF orientation is applied, frame 0 of
    animated files is used, palette and alpha images are composited on white, 16-bit
    images are rescaled (not clamped), CMYK is converted, and zero-size, extremely
    elongated and over-large images are refused. The input is never modified.

    Parameters
    ----------
    source : str, path, PIL.Image.Image or numpy.ndarray
        A file path, a Pillow image, or a uint8 array of shape (H, W[, 3 or 4]).
    min_size : int, optional
        For JPEG files, let the decoder skip detail so that the shorter side stays at
        least this many pixels (much faster for large photos).
    max_pixels : int, optional
        Refuse images with more pixels. Defaults to Pillow's ``Image.MAX_IMAGE_PIXELS``.

    Returns
    -------
    PIL.Image.Image
        A new RGB image.

    Raises
    ------
    ImageDecodeError
        The file is missing, not an image, of a refused format, truncated, or of a refused
        size; the message names the file and the reason.
    """
    if max_pixels is None:
        max_pixels = Image.MAX_IMAGE_PIXELS
    if isinstance(source, np.ndarray):
        im = _array_to_pil(source)
        _check_size(im.size, None, max_pixels)
        return _to_rgb(im).copy()
    if isinstance(source, Image.Image):
        _check_size(source.size, None, max_pixels)
        im = ImageOps.exif_transpose(source)  # returns a copy; the caller's image is untouched
        return _to_rgb(im).copy() if im is source else _to_rgb(im)
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidParameterError(
            f"An image must be a file path, a PIL.Image.Image or a uint8 numpy array; "
            f"got {type(source).__name__}."
        )
    path = os.fspath(source)
    try:
        with warnings.catch_warnings():
            # We enforce max_pixels ourselves with a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.format not in ALLOWED_FORMATS:
                    raise ImageDecodeError(
                        path,
                        f"format {im.format} is not one of {', '.join(sorted(ALLOWED_FORMATS))}",
                    )
                _check_size(im.size, path, max_pixels)
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)
                if min_size and im.format == "JPEG":
                    im.draft("RGB", (min_size, min_size))
                im.load()
                oriented = ImageOps.exif_transpose(im)
                return _to_rgb(oriented).copy()
    except ImageDecodeError:
        raise
    except FileNotFoundError:
        raise ImageDecodeError(path, "the file does not exist") from None
    except IsADirectoryError:
        raise ImageDecodeError(path, "it is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(
            path, "it is not an image Pillow can identify (wrong extension or not an image at all)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(path, f"decompression bomb refused ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageDecodeError(path, f"the file is truncated or corrupt ({exc})") from None
