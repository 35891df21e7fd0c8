"""Image sources: find, decode safely, label and split.

Every image that enters binaryvision (for ``fit``, ``predict`` or ``lr_find``) goes
through :func:`load_image`, the single decoding path. Files are opened read-only and
always closed; nothing a user passes in is modified.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .exceptions import DataError, ImageDecodeError, InvalidParameterError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageSet",
    "as_image_set",
    "find_images",
    "load_image",
    "split_fit_data",
]

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


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def find_images(folder: str | os.PathLike, ignored: list[str] | None = None) -> list[str]:
    """Image files directly inside ``folder``, sorted; hidden and non-image files are ignored.

    Parameters
    ----------
    folder : str or path
        The folder to list (not recursive).
    ignored : list, optional
        When given, the paths of the ignored entries (hidden files and folders such as
        ``.ipynb_checkpoints`` or ``.DS_Store``, files without an image extension, and
        subfolders) are appended to it.
    """
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    found = []
    for e in entries:
        if (
            e.is_file()
            and not _is_hidden(e.name)
            and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
        ):
            found.append(e.path)
        elif ignored is not None:
            ignored.append(e.path)
    return found


def _subfolders(folder: str | os.PathLike) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not _is_hidden(e.name))


@dataclass
class ImageSet:
    """A list of images with optional string labels.

    Attributes
    ----------
    items : list
        File paths, PIL images or arrays, in order.
    labels : numpy.ndarray or None
        One label per item (any hashable values), or ``None`` when unlabelled.
    source : str
        Where the images came from, for messages.
    """

    items: list[Any]
    labels: np.ndarray | None = None
    source: str = "X"
    valid: ImageSet | None = field(default=None, repr=False)
    ignored: list[str] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, index: Sequence[int] | np.ndarray) -> ImageSet:
        """Return the items (and labels) at ``index``."""
        index = np.asarray(index, dtype=int)
        labels = None if self.labels is None else self.labels[index]
        return ImageSet([self.items[i] for i in index], labels, self.source)


def _labelled_folder(root: str) -> ImageSet:
    classes = _subfolders(root)
    items: list[str] = []
    labels: list[str] = []
    ignored = [
        e.path for e in os.scandir(root) if not e.is_dir() or _is_hidden(e.name)
    ]  # files beside the class folders, and hidden folders: never classes
    for name in classes:
        files = find_images(os.path.join(root, name), ignored)
        items += files
        labels += [name] * len(files)
    return ImageSet(items, np.asarray(labels, dtype=object), root, ignored=sorted(ignored))


def _folder(path: str, *, allow_seed_layout: bool) -> ImageSet:
    if not os.path.exists(path):
        raise DataError(
            f"Path {path!r} does not exist. Pass a folder of images or a list of files."
        )
    if os.path.isfile(path):
        return ImageSet([path], None, path)
    subs = _subfolders(path)
    if "train" in subs:
        if not allow_seed_layout:
            hint = os.path.join(path, "valid") if "valid" in subs else os.path.join(path, "train")
            raise DataError(
                f"Folder {path!r} holds a train/ split; pass the split to use, e.g. {hint!r}."
            )
        train = _labelled_folder(os.path.join(path, "train"))
        train.source = os.path.join(path, "train")
        if "valid" in subs:
            train.valid = _labelled_folder(os.path.join(path, "valid"))
            train.valid.source = os.path.join(path, "valid")
        return train
    ignored: list[str] = []
    flat = find_images(path, ignored)
    if subs and not flat:
        return _labelled_folder(path)
    if flat and not subs:
        return ImageSet(flat, None, path, ignored=ignored)
    if not flat:
        raise DataError(
            f"Folder {path!r} contains no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}). "
            "Is this the right folder?"
        )
    labelled = _labelled_folder(path)
    if len(labelled) == 0:
        return ImageSet(flat, None, path)
    raise DataError(
        f"Folder {path!r} has both images ({len(flat)}) and class subfolders ({', '.join(subs)}). "
        "Put every image in a class subfolder, or pass a list of files."
    )


def as_image_set(X: Any, y: Any = None, *, allow_seed_layout: bool = False) -> ImageSet:
    """Turn any accepted form of ``X`` (and ``y``) into an :class:`ImageSet`.

    Parameters
    ----------
    X : str, path, list, tuple or numpy.ndarray
        A folder with one subfolder per class (labels inferred), a folder in the
        ``train/`` + ``valid/`` layout (when ``allow_seed_layout``), a flat folder of
        images, one image file, a list of paths / PIL images / arrays, or a uint8
        array of shape (n, H, W, 3).
    y : array-like, optional
        One label per image, for the list and array forms.
    allow_seed_layout : bool
        Accept ``train/`` + ``valid/``; the valid split is attached as ``.valid``.
    """
    if isinstance(X, (str, os.PathLike)):
        data = _folder(os.fspath(X), allow_seed_layout=allow_seed_layout)
        if y is not None:
            if data.labels is not None:
                raise InvalidParameterError(
                    f"y was given, but X={os.fspath(X)!r} is a folder whose subfolders already "
                    "name the classes. Pass y=None, or pass X as a list of files."
                )
            data.labels = _as_labels(y, len(data))
        return data
    if isinstance(X, np.ndarray):
        if X.ndim not in (3, 4) or X.dtype == object:
            raise InvalidParameterError(
                f"X as an array must be uint8 of shape (n, H, W, 3), got shape {X.shape} and "
                f"dtype {X.dtype}."
            )
        items: list[Any] = list(X)
    elif isinstance(X, torch.utils.data.Dataset) and not isinstance(X, (list, tuple)):
        raise InvalidParameterError(
            "X as a torch Dataset is not supported; pass a list of paths or PIL images with y."
        )
    elif isinstance(X, (list, tuple)):
        items = list(X)
    else:
        raise InvalidParameterError(
            "X must be a folder path, a list of image paths or PIL images, or a uint8 array of "
            f"shape (n, H, W, 3); got {type(X).__name__}."
        )
    if len(items) == 0:
        raise DataError("X is empty: pass at least one image.")
    return ImageSet(items, None if y is None else _as_labels(y, len(items)), "X")


def _as_labels(y: Any, n: int) -> np.ndarray:
    labels = np.asarray(list(y), dtype=object)
    if labels.ndim != 1 or len(labels) != n:
        raise InvalidParameterError(
            f"y must hold one label per image: got {labels.shape[0] if labels.ndim else 0} labels "
            f"for {n} images."
        )
    bad = [
        i
        for i, v in enumerate(labels)
        if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v))
    ]
    if bad:
        raise DataError(
            f"y has {len(bad)} missing labels (None or NaN), first at index {bad[0]}. "
            "Drop those images or label them."
        )
    return labels


def check_two_classes(labels: np.ndarray, source: str) -> np.ndarray:
    """Return the two sorted class labels, or raise a DataError saying what was found."""
    classes = np.array(sorted(set(labels.tolist()), key=lambda v: (str(type(v)), v)), dtype=object)
    if len(classes) != 2:
        found = ", ".join(map(repr, classes.tolist())) or "none"
        raise DataError(
            f"A binary classifier needs exactly 2 classes; {source!r} has {len(classes)} "
            f"({found}). Keep two class folders (or two label values) and remove the others."
        )
    counts = {c: int((labels == c).sum()) for c in classes.tolist()}
    empty = [c for c, k in counts.items() if k == 0]
    if empty:
        raise DataError(f"Class {empty[0]!r} in {source!r} has no images.")
    return classes


def split_fit_data(
    data: ImageSet, valid_size: float, random_state: np.random.RandomState | int | None
) -> tuple[ImageSet, ImageSet | None]:
    """Split labelled data into train and validation sets, stratified and seeded.

    A ``valid`` split attached by the ``train/`` + ``valid/`` layout is used as it is.
    ``valid_size=0`` returns no validation set.
    """
    if data.valid is not None:
        return data, data.valid
    if not valid_size:
        return data, None
    from sklearn.model_selection import train_test_split

    assert data.labels is not None
    _, counts = np.unique(data.labels.astype(str), return_counts=True)
    n_valid = int(np.ceil(valid_size * len(data))) if valid_size < 1 else int(valid_size)
    if counts.min() < 2 or n_valid < 2 or len(data) - n_valid < 2:
        raise DataError(
            f"Too few images ({len(data)}; smallest class {counts.min()}) to hold out a stratified "
            f"validation split of valid_size={valid_size}. Add images, or pass valid_size=0."
        )
    train_idx, valid_idx = train_test_split(
        np.arange(len(data)),
        test_size=valid_size,
        stratify=data.labels.astype(str),
        random_state=random_state,
    )
    return data.subset(np.sort(train_idx)), data.subset(np.sort(valid_idx))


class ImageDataset(torch.utils.data.Dataset):
    """A torch Dataset over an :class:`ImageSet`: ``(transform(image), target)`` pairs.

    Parameters
    ----------
    items : list
        Paths, PIL images or arrays.
    targets : numpy.ndarray, optional
        Float targets (0 or 1); -1 when unlabelled.
    transform : callable
        Maps an RGB PIL image to a tensor.
    min_size : int, optional
        Passed to :func:`load_image` for fast reduced-size JPEG decoding.
    flag_errors : bool
        Instead of raising, return a blank image with a NaN target for an item that
        cannot be decoded (used when feature extraction doubles as the pre-training scan).
    """

    def __init__(
        self,
        items: Sequence[Any],
        targets: np.ndarray | None,
        transform: Any,
        min_size: int | None = None,
        max_pixels: int | None = None,
        flag_errors: bool = False,
    ) -> None:
        self.items = items
        self.targets = targets
        self.transform = transform
        self.min_size = min_size
        self.max_pixels = max_pixels
        self.flag_errors = flag_errors

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        target = -1.0 if self.targets is None else float(self.targets[index])
        try:
            image = load_image(
                self.items[index], min_size=self.min_size, max_pixels=self.max_pixels
            )
        except ImageDecodeError:
            if not self.flag_errors:
                raise
            image, target = Image.new("RGB", (8, 8)), math.nan
        return self.transform(image), torch.tensor(target, dtype=torch.float32)


# ---------------------------------------------------------------------- scanning
class _ScanDataset(torch.utils.data.Dataset):
    """Decodes each item once and returns why it failed ("" when it is fine)."""

    def __init__(self, items: Sequence[Any], min_size: int | None, max_pixels: int | None):
        self.items = items
        self.min_size = min_size
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> str:
        try:
            load_image(self.items[index], min_size=self.min_size, max_pixels=self.max_pixels)
        except ImageDecodeError as exc:
            return exc.reason
        return ""


def _as_list(batch: list) -> list:
    return batch


def scan_images(
    items: Sequence[Any],
    *,
    min_size: int | None = None,
    max_pixels: int | None = None,
    workers: int = 0,
) -> list[tuple[int, str]]:
    """Decode every image once, in parallel, and list the ones that cannot be used.

    Uses the same decoding path (:func:`load_image`) as training and prediction, so
    what passes here decodes later too.

    Parameters
    ----------
    items : sequence
        Paths, PIL images or arrays.
    min_size, max_pixels
        As for :func:`load_image`.
    workers : int
        DataLoader worker processes.

    Returns
    -------
    list of (int, str)
        Index and reason of each unusable item, in order.
    """
    loader = torch.utils.data.DataLoader(
        _ScanDataset(items, min_size, max_pixels),
        batch_size=8,
        num_workers=min(workers, max(0, (len(items) - 1) // 8)),
        collate_fn=_as_list,
        generator=torch.Generator(),  # worker seeds come from here, not the global RNG
    )
    reasons = [reason for batch in loader for reason in batch]
    return [(i, reason) for i, reason in enumerate(reasons) if reason]
