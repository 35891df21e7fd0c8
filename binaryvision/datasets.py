"""Sample photo sets: ``make_shapes`` (generated) and ``download_dragons`` (the fastai photos).

The public home of :mod:`binaryvision.data.samples`, where the code lives.
"""

from .data.samples import CACHE_ENV, DRAGONS_URL, cache_home, download_dragons, make_shapes

__all__ = ["CACHE_ENV", "DRAGONS_URL", "cache_home", "download_dragons", "make_shapes"]
