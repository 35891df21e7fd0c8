"""Unreadable files: find them once per image content, then skip, refuse or report them.

:func:`scan_reasons` decodes every image once (or lets a feature pass that decodes them
anyway say which failed) and remembers the answer by image content; :func:`drop_bad_images`
applies ``on_bad_image`` and ``max_bad_fraction`` and writes the report that becomes
``fit_report_``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, MutableMapping
from typing import Any

from .. import distributed
from ..exceptions import DataError, DataWarning, ImageDecodeError
from .identity import content_key
from .loading import scan_images
from .sources import ImageSet

__all__ = ["describe_item", "drop_bad_images", "scan_reasons"]


def describe_item(item: Any, index: int) -> str:
    """A file's path, or ``<in-memory image #index>`` for an image passed as an object."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return f"<in-memory image #{index}>"


def scan_reasons(
    items: list,
    memo: MutableMapping,
    probe: Callable[[list], list[str]] | None = None,
    workers: int = 0,
) -> list[str]:
    """The reason each item cannot be used, "" if it can; decoded once per content.

    ``memo`` maps image content keys to reasons (the feature cache's ``scan_reasons``).
    ``probe(items) -> reasons`` replaces the plain decoding pass (a feature pass that also
    reports failures).
    """
    keys: list = []
    for item in items:
        try:
            keys.append(content_key(item))
        except OSError:  # vanished or unreadable entry: let the scan say why
            keys.append(("uncached", id(item)))
    todo = [i for i, k in enumerate(keys) if k not in memo]
    if todo and probe is not None:
        for i, reason in zip(todo, probe([items[i] for i in todo])):
            memo[keys[i]] = reason
    elif todo:
        # decoded at reduced size (JPEG draft), as feature extraction will; under
        # torchrun each process scans its share and all get the same full answer
        mine = [todo[j] for j in distributed.shard(len(todo))]
        found = dict(scan_images([items[i] for i in mine], min_size=256, workers=workers))
        reasons = distributed.gather_lists([found.get(j, "") for j in range(len(mine))])
        for i, reason in zip(todo, reasons):
            memo[keys[i]] = reason
    return [memo[k] for k in keys]


def drop_bad_images(
    data: ImageSet, reasons: list[str], on_bad_image: str, max_bad_fraction: float
) -> tuple[ImageSet, dict]:
    """Apply ``on_bad_image`` to the items of ``data`` (then ``data.valid``) that have a reason.

    Returns the data without them and the report: ``n_found``, ``n_used``, ``skipped``
    (``{"path", "reason"}`` each) and ``ignored`` (hidden and non-image entries). Warns
    once (:class:`~binaryvision.exceptions.DataWarning`) when some are skipped; raises
    :class:`~binaryvision.ImageDecodeError` with ``on_bad_image="raise"`` and
    :class:`~binaryvision.DataError` above ``max_bad_fraction``.
    """
    parts = [data] if data.valid is None else [data, data.valid]
    items = [item for part in parts for item in part.items]
    bad = [
        (os.fspath(item) if isinstance(item, (str, os.PathLike)) else None, i, r)
        for i, (item, r) in enumerate(zip(items, reasons))
        if r
    ]
    report = {
        "n_found": len(items),
        "n_used": len(items) - len(bad),
        "skipped": [{"path": describe_item(items[i], i), "reason": r} for _, i, r in bad],
        "ignored": [path for part in parts for path in part.ignored],
    }
    if not bad:
        return data, report
    if on_bad_image == "raise":
        path, _, reason = bad[0]
        raise ImageDecodeError(path, reason)
    listing = "; ".join(f"{e['path']}: {e['reason']}" for e in report["skipped"][:3])
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    if len(bad) > max_bad_fraction * len(items):
        raise DataError(
            f"{len(bad)} of the {len(items)} images in {data.source!r} cannot be read "
            f"({100 * len(bad) / len(items):.1f}%, more than max_bad_fraction="
            f"{max_bad_fraction}). Is this the right folder? {listing}{more}. Raise "
            "max_bad_fraction to skip them anyway."
        )
    warnings.warn(
        f"Skipped {len(bad)} of {len(items)} images that cannot be read (listed in "
        f"fit_report_['skipped']): {listing}{more}.",
        DataWarning,
        stacklevel=3,
    )
    offset, kept = 0, []
    for part in parts:
        ok = [i for i in range(len(part)) if not reasons[offset + i]]
        offset += len(part)
        kept.append(part.subset(ok))
        kept[-1].source, kept[-1].ignored = part.source, part.ignored
    if len(kept) == 2:
        kept[0].valid = kept[1]
    return kept[0], report
