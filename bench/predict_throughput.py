"""Benchmark: predict_proba throughput against a bare model loop. Prints JSON; asserts nothing.

    python bench/predict_throughput.py [--data PATH] [--repeats 3] [--breakdown-images 64]
    python bench/predict_throughput.py --tiny      # tiny_cnn on generated images, seconds

A default model is fitted quickly (one head epoch on ``--fit-per-class`` photos per class
of ``train/``), then ``predict_proba(valid/)`` is timed against the loop a user would
write by hand: the same images, the same decoding and eval transform (``load_image`` and
``transforms_.eval`` in a torch ``DataLoader``), the same batch size and worker count as
the package's Trainer, the same torch threads, the fitted ``model_`` (backbone and head,
not fused) under ``torch.inference_mode``, then a sigmoid. Both run once to warm up, then
``--repeats`` times interleaved; the best of each counts. ``ratio`` is the package's
throughput over the reference's (the target is at least 0.9).

Backbone features are cached per image; each timed predict starts with that cache emptied
(for measurement only), so every run decodes and runs the backbone. ``cached_predict_seconds`` is one predict on images that
are already cached.

The breakdown (``--breakdown-images N``, 0 to skip) times the parts on their own: the
data loader alone (same workers, and in-process), and the backbone forward on pre-decoded
tensors unfused or fused (BatchNorm folded into the convs), contiguous or channels_last.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import (
    HOTDOG,
    class_files,
    emit,
    load_average,
    log,
    machine,
    set_threads,
    write_image_tree,
)


def forget_features(clf) -> None:
    """Empty the feature cache so that the next predict runs the backbone again.

    The cache is process-wide (``binaryvision.cache.shared_cache()``) in newer versions and
    a private per-estimator dict in older ones; both are emptied.
    """
    try:
        from binaryvision.features.cache import shared_cache
    except ImportError:
        shared_cache = None
    if shared_cache is not None:
        shared_cache().clear()
    elif not hasattr(clf, "_feature_cache"):
        log("warning: found no feature cache to empty; timed predicts may be cache hits")
    clf._feature_cache = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HOTDOG)
    parser.add_argument("--fit-per-class", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--breakdown-images", type=int, default=64)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--tiny", action="store_true", help="tiny_cnn on generated images")
    args = parser.parse_args()
    load_start = load_average()
    set_threads(args.threads or (1 if args.tiny else 0))

    with tempfile.TemporaryDirectory(prefix="bv-predict-") as tmp:
        if args.tiny:
            args.data = Path(tmp)
            write_image_tree(args.data / "train", 8, seed=0)
            write_image_tree(args.data / "valid", 24, seed=1)
            args.backbone, args.fit_per_class = "tiny_cnn", 8
            args.repeats, args.breakdown_images = min(args.repeats, 2), 16
        result = run(args)
    result["load_average_start"] = load_start
    result["load_average_end"] = load_average()
    emit(result)


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from binaryvision import ImageBinaryClassifier, Trainer
    from binaryvision.backbones.fuse import fuse_for_inference
    from binaryvision.data import ImageDataset, as_image_set

    paths, labels = class_files(args.data / "train", args.fit_per_class)
    log(f"fitting {args.backbone} on {len(paths)} images (one head epoch) ...")
    # time_budget=None: the plain model, which runs on one image batch
    clf = ImageBinaryClassifier(
        args.backbone, epochs=1, random_state=0, verbose=0, time_budget=None
    )
    clf.fit(paths, labels)

    valid = args.data / "valid"
    items = as_image_set(valid).items
    trainer = Trainer(progress=False)  # what the estimator uses when trainer=None
    batch = trainer.resolved_inference_batch_size()
    workers = trainer.resolved_workers(inference=True)  # what predict_proba uses
    transform, decode_size = clf.transforms_.eval, clf.transforms_.decode_size
    model = clf.model_.eval()

    def reference_loader(n_workers: int) -> torch.utils.data.DataLoader:
        dataset = ImageDataset(items, None, transform, min_size=decode_size)
        return torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=n_workers)

    def package() -> np.ndarray:
        forget_features(clf)
        return clf.predict_proba(valid)

    def reference() -> torch.Tensor:
        out = []
        with torch.inference_mode():
            for x, _ in reference_loader(workers):
                out.append(model(x))
        return torch.cat(out)

    log(f"predict on {len(items)} images, batch {batch}, {workers} loader workers ...")
    package()
    logits = reference()
    times: dict[str, list[float]] = {"package": [], "reference": []}
    for r in range(args.repeats):
        for name, fn in (("package", package), ("reference", reference)):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
        log(
            f"  run {r + 1}: package {times['package'][-1]:.2f} s, reference "
            f"{times['reference'][-1]:.2f} s"
        )
    started = time.perf_counter()
    clf.predict_proba(valid)  # the cache now holds every image
    cached_seconds = time.perf_counter() - started
    agreement = float(np.abs(clf.decision_function(items) - logits.double().numpy()).max())

    best = {k: min(v) for k, v in times.items()}
    n = len(items)
    result = {
        "benchmark": "predict_throughput",
        "backbone": args.backbone,
        "images": n,
        "batch_size": batch,
        "loader_workers": workers,
        "repeats": args.repeats,
        "package_seconds": round(best["package"], 3),
        "reference_seconds": round(best["reference"], 3),
        "package_images_per_second": round(n / best["package"], 2),
        "reference_images_per_second": round(n / best["reference"], 2),
        "ratio": round(best["reference"] / best["package"], 3),
        "all_package_seconds": [round(t, 3) for t in times["package"]],
        "all_reference_seconds": [round(t, 3) for t in times["reference"]],
        "cached_predict_seconds": round(cached_seconds, 4),
        "max_abs_logit_difference": agreement,
        "fit_images": len(paths),
        **machine(),
    }
    if args.breakdown_images > 0:
        result["breakdown"] = breakdown(
            args, clf, model, items, reference_loader, workers, batch, fuse_for_inference
        )
    return result


def breakdown(args, clf, model, items, reference_loader, workers, batch, fuse) -> dict:
    """The loader alone, and the backbone alone on pre-decoded tensors in four layouts."""
    import torch

    out: dict = {}
    for name, n_workers in (("loader_workers", workers), ("loader_in_process", 0)):
        started = time.perf_counter()
        for _ in reference_loader(n_workers):
            pass
        seconds = time.perf_counter() - started
        out[f"{name}_images_per_second"] = round(len(items) / seconds, 2)
    log(f"  loader alone: {out}")

    tensors = torch.cat([x for x, _ in reference_loader(0)])[: args.breakdown_images]
    unfused = model.backbone.eval()
    fused = fuse(unfused)
    for name, module, channels_last in (
        ("unfused_contiguous", unfused, False),
        ("unfused_channels_last", unfused, True),
        ("fused_contiguous", fused, False),
        ("fused_channels_last", fused, True),
    ):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        module.to(memory_format=fmt)
        chunks = [c.contiguous(memory_format=fmt) for c in tensors.split(batch)]
        best = float("inf")
        with torch.inference_mode():
            module(chunks[0])
            for _ in range(args.repeats):
                started = time.perf_counter()
                for c in chunks:
                    module(c)
                best = min(best, time.perf_counter() - started)
        module.to(memory_format=torch.contiguous_format)
        out[f"forward_{name}_images_per_second"] = round(len(tensors) / best, 2)
        log(f"  forward {name}: {len(tensors) / best:.1f} images/s")
    out["forward_images"] = len(tensors)
    return out


if __name__ == "__main__":
    main()
