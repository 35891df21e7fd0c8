"""The frozen backbone's pass over images: fused once, keyed, cached, and a scan for bad files.

A :class:`FeatureExtractor` belongs to one backbone (with its current weights) and one
preprocessing. It runs the backbone with batch norm folded into the convolutions
(:func:`~binaryvision.backbones.fuse.fuse_for_inference`), through the
:class:`~binaryvision.Trainer` it is handed for each pass (device, batch size, workers),
and keeps every feature vector in the shared :mod:`~binaryvision.features.cache`, so no
image goes through the same backbone twice. Under ``torchrun`` each process computes its
share of the missing images and all of them get every row.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..backbones.fuse import fuse_for_inference
from ..data.decode import load_image
from ..data.identity import content_key
from ..data.loading import ImageDataset
from ..exceptions import ImageDecodeError
from ..transforms import Transforms, TTAView, build_transforms
from .cache import model_key, shared_cache

__all__ = ["FeatureExtractor", "MultiSizeExtractor", "backbone_key", "make_extractor"]


def backbone_key(transforms: Transforms, backbone: nn.Module) -> str:
    """Identifies frozen features: the backbone's weights and the eval preprocessing."""
    return model_key(backbone, f"{transforms.eval!r}|decode={transforms.decode_size}")


class FeatureExtractor:
    """Features of images under one backbone and preprocessing, cached by image content.

    Parameters
    ----------
    backbone : Backbone
        The frozen feature extractor (not modified; a fused copy runs).
    transforms : Transforms
        Its preprocessing (the eval transform, and ``decode_size`` for JPEG drafts).
    cache_dir : str or path, optional
        Also keep features on disk there (see :mod:`binaryvision.features.cache`).
    key : str, optional
        :func:`backbone_key` when the caller has it already (hashed on first use otherwise).
    reuse : FeatureExtractor, optional
        An earlier extractor whose fused backbone is taken over when its key is the same.
    shares : FeatureExtractor, optional
        An extractor of the same backbone (at another input size) whose fused copy this
        one runs too.
    """

    def __init__(
        self,
        backbone: nn.Module,
        transforms: Transforms,
        cache_dir: Any = None,
        key: str | None = None,
        reuse: FeatureExtractor | None = None,
        shares: FeatureExtractor | None = None,
    ) -> None:
        self.backbone = backbone
        self.transforms = transforms
        self.cache_dir = cache_dir
        self._key = key
        self._fused: nn.Module | None = None
        self._shares = shares
        #: seconds per image of the last pass that ran the backbone (None before one)
        self.seconds_per_image: float | None = None
        if isinstance(reuse, MultiSizeExtractor):  # its first part is the plain pass
            reuse = reuse.parts[0]
        if reuse is not None and reuse._fused is not None and reuse.key == self.key:
            self._fused = reuse._fused

    @property
    def key(self) -> str:
        """The feature-cache key of this backbone and preprocessing (hashed once)."""
        if self._key is None:
            self._key = backbone_key(self.transforms, self.backbone)
        return self._key

    def _fast(self) -> nn.Module:
        if self._shares is not None:
            return self._shares._fast()
        if self._fused is None:
            self._fused = fuse_for_inference(self.backbone)
        return self._fused

    def __getstate__(self) -> dict:
        """Pickle without the fused copy (rebuilt on first use)."""
        return {**self.__dict__, "_fused": None}

    # ------------------------------------------------------------------ passes
    def run(
        self,
        items: list,
        trainer: Any,
        desc: str,
        view: str = "identity",
        flag_errors: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused backbone over ``items``, uncached: outputs and targets (NaN targets
        flag undecodable items when ``flag_errors``)."""
        tf = self.transforms
        dataset = ImageDataset(
            items,
            None,
            tf.eval if view == "identity" else TTAView(tf.eval, view),
            min_size=tf.decode_size,
            flag_errors=flag_errors,
        )
        loader = trainer.loader(
            dataset,
            trainer.resolved_inference_batch_size(),
            workers=trainer.resolved_workers(inference=True),
        )
        return trainer.predict_logits(self._fast(), loader, desc=desc, with_targets=True)

    def features(
        self, items: list, trainer: Any, desc: str, view: str = "identity"
    ) -> torch.Tensor:
        """Features ``(n, num_features)`` of ``items`` (eval transform, then the TTA ``view``)."""
        cache, dim = shared_cache(), self.backbone.num_features
        view_key = self.key if view == "identity" else f"{self.key}/{view}"
        keys = [(view_key, content_key(item)) for item in items]
        found = [cache.get(k, dim, self.cache_dir) for k in keys]
        if distributed.active():  # one list everywhere: missing if missing on any process
            flags = torch.tensor([f is None for f in found], dtype=torch.float32)
            found = [None if m else f for f, m in zip(found, distributed.any_rows(flags))]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            mine = [missing[j] for j in distributed.shard(len(missing))]
            started = time.perf_counter()
            features, _ = self.run([items[i] for i in mine], trainer, desc, view)
            self.seconds_per_image = (time.perf_counter() - started) / max(len(mine), 1)
            if distributed.active():
                features = distributed.gather_rows(features.reshape(len(mine), dim), len(missing))
            disk = self.cache_dir if distributed.is_main_process() else None
            for i, f in zip(missing, features):
                cache.put(keys[i], f, disk)
                found[i] = f
        if not items:
            return torch.empty(0, dim)
        return torch.stack(found)

    def n_missing(self, items: list) -> int:
        """How many of ``items`` have no cached features yet (identity view)."""
        cache, dim = shared_cache(), self.backbone.num_features
        return sum(
            cache.get((self.key, content_key(i)), dim, self.cache_dir) is None for i in items
        )

    def probe(self, items: list, trainer: Any) -> list[str]:
        """Compute (and cache) the features of ``items``; why each failed, "" if it did not.

        Feature extraction decodes every image anyway, so it doubles as the scan before
        training: a file that cannot be decoded gets a blank image and is flagged, then its
        reason is found by decoding it alone once more.
        """
        cache, dim = shared_cache(), self.backbone.num_features
        reasons, todo, keys = [""] * len(items), [], {}
        for i, item in enumerate(items):
            try:
                key = (self.key, content_key(item))
            except OSError as exc:  # vanished or unreadable file
                reasons[i] = f"the file cannot be read ({exc.strerror or exc})"
                continue
            if cache.get(key, dim, self.cache_dir) is None:
                todo.append(i)
                keys[i] = key
        if not todo:
            return reasons
        started = time.perf_counter()
        features, flags = self.run([items[i] for i in todo], trainer, "features", flag_errors=True)
        self.seconds_per_image = (time.perf_counter() - started) / len(todo)  # the autopilot's
        for j, i in enumerate(todo):
            if torch.isnan(flags[j]):
                try:
                    load_image(items[i], min_size=self.transforms.decode_size)
                except ImageDecodeError as exc:
                    reasons[i] = exc.reason
            else:
                cache.put(keys[i], features[j], self.cache_dir)
        return reasons


class MultiSizeExtractor:
    """The features of one backbone at several input sizes, side by side ``(n, k * F)``.

    The first part is the backbone's own size (the frozen head's features); the others
    share its fused copy. Scans and keys follow the parts.
    """

    def __init__(self, parts: list[FeatureExtractor], sizes: list[int]) -> None:
        self.parts, self.sizes = parts, sizes
        self.backbone, self.transforms = parts[0].backbone, parts[0].transforms

    @property
    def key(self) -> str:
        """The parts' keys, joined."""
        return "+".join(part.key for part in self.parts)

    def features(
        self, items: list, trainer: Any, desc: str, view: str = "identity"
    ) -> torch.Tensor:
        """Every part's features of ``items``, concatenated along the feature axis."""
        out = [self.parts[0].features(items, trainer, desc, view)]
        for part, size in zip(self.parts[1:], self.sizes[1:]):
            out.append(part.features(items, trainer, f"{desc}, {size} px", view))
        return torch.cat(out, dim=1)

    def probe(self, items: list, trainer: Any) -> list[str]:
        """The first part's scan (every part decodes the same files)."""
        return self.parts[0].probe(items, trainer)


def make_extractor(
    backbone: nn.Module,
    transforms: Transforms,
    cache_dir: Any = None,
    extra_sizes: tuple[int, ...] = (),
    reuse: Any = None,
) -> FeatureExtractor | MultiSizeExtractor:
    """The feature pass of a model: plain, or with features at ``extra_sizes`` beside it
    (eval transforms built from the backbone's data config at each size)."""
    base_reuse = reuse.parts[0] if isinstance(reuse, MultiSizeExtractor) else reuse
    base = FeatureExtractor(backbone, transforms, cache_dir, reuse=base_reuse)
    if not extra_sizes:
        return base
    parts = [base]
    for size in extra_sizes:
        config = dataclasses.replace(backbone.data_config, input_size=int(size))
        tf = build_transforms(config, "none")
        parts.append(FeatureExtractor(backbone, tf, cache_dir, shares=base))
    return MultiSizeExtractor(parts, [backbone.data_config.input_size, *map(int, extra_sizes)])
