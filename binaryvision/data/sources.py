"""Image sources: find images in folders, label them and split off validation images.

Decoding lives in :mod:`binaryvision.data.decode`; nothing here opens an image.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..exceptions import DataError, DataWarning, InvalidParameterError
from .decode import IMAGE_EXTENSIONS

__all__ = ["ImageSet", "as_image_set", "check_two_classes", "find_images", "split_fit_data"]


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


def class_counts(labels: np.ndarray, classes: np.ndarray, balanced_hint: bool = True) -> dict:
    """Images per class in ``labels``; warns when the minority class is tiny.

    ``balanced_hint`` adds the advice to try ``class_weight='balanced'`` to the warning.
    """
    counts = {c: int(n) for c, n in zip(classes, [(labels == c).sum() for c in classes])}
    minority = min(counts, key=counts.get)
    n_min, n = counts[minority], sum(counts.values())
    if n_min < 0.05 * n or (n_min < 5 and n_min < 0.3 * n):
        hint = (
            " Consider class_weight='balanced', and read balanced accuracy and PR-AUC."
            if balanced_hint
            else ""
        )
        warnings.warn(
            f"Only {n_min} of the {n} training images are {minority!r} "
            f"({100 * n_min / n:.1f}%): the model may learn to ignore that class, and "
            f"its metrics will be noisy. Add images of {minority!r} if you can.{hint}",
            DataWarning,
            stacklevel=3,
        )
    elif n_min < 5:
        warnings.warn(
            f"Only {n_min} training images of {minority!r} ({n} in all): too few for a "
            "reliable model or reliable metrics. Aim for at least 20 images per class.",
            DataWarning,
            stacklevel=3,
        )
    return {(c.item() if hasattr(c, "item") else c): n for c, n in counts.items()}
