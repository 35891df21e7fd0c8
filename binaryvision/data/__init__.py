"""Stage 1, data: find images, decode them safely, label them, split them, scan for bad files.

Owns: :mod:`~binaryvision.data.decode` (:func:`load_image`, the one decoding path),
:mod:`~binaryvision.data.sources` (folders, lists and arrays to an :class:`ImageSet`; the
validation split), :mod:`~binaryvision.data.identity` (an image's content hash),
:mod:`~binaryvision.data.loading` (torch datasets, the decoding scan),
:mod:`~binaryvision.data.bad_images` (what ``on_bad_image`` does with unreadable files) and
:mod:`~binaryvision.data.samples` (generated and downloadable sample photo sets).

May import: :mod:`binaryvision.exceptions`, :mod:`binaryvision.distributed`; no other stage.
"""

from .decode import ALLOWED_FORMATS, IMAGE_EXTENSIONS, load_image
from .loading import ImageDataset, scan_images
from .sources import ImageSet, as_image_set, check_two_classes, find_images, split_fit_data

__all__ = [
    "ALLOWED_FORMATS",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageSet",
    "as_image_set",
    "check_two_classes",
    "find_images",
    "load_image",
    "scan_images",
    "split_fit_data",
]
