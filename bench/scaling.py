"""Benchmark: fit time and peak memory at 1x, 4x and 16x the data. Prints JSON.

    python bench/scaling.py [--data PATH] [--base 50] [--sizes 1 4 16]
    python bench/scaling.py --tiny      # tiny_cnn on generated images, seconds

A synthetic photo set is built once in a temporary folder from ``--base`` photos per class
of ``train/``: copy 0 of each photo is the photo itself, copies 1, 2, ... are new JPEGs
made by a small random crop (85-100% of each side), a horizontal flip (half of them) and
colour jitter (brightness, contrast and saturation times 0.85-1.15). Size ``s`` uses the
first ``s * base`` images of each class. Each size is fitted with the default estimator in
a fresh subprocess, which reports its own wall time of ``fit`` and its peak resident
memory (``resource.getrusage``; ``ru_maxrss`` of the process itself, and of its finished
DataLoader workers separately), plus its resident memory just before ``fit``. The JSON
holds the figures per size and the ratios to the smallest size: time per image and peak
memory, and a least-squares line through the fit times (fixed seconds per fit plus
seconds per image). The workers' peak counts pages they share with the parent (they are
forked from it), so it is not additional memory. Asserts nothing.

The default (base 50: 100, 400 and 1600 images) does 2,100 images of feature extraction;
at about 25 images/s on 2 idle cores that is about 85 s of backbone time, 4 to 5 minutes
in all with imports and the building of the set.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    HOTDOG,
    class_files,
    current_rss_mb,
    emit,
    load_average,
    log,
    machine,
    peak_rss_mb,
    set_threads,
    write_image_tree,
)


def perturb(image, rng):
    """A new photo from ``image``: small random crop, maybe a flip, colour jitter."""
    from PIL import ImageEnhance, ImageOps

    w, h = image.size
    cw, ch = int(w * rng.uniform(0.85, 1.0)), int(h * rng.uniform(0.85, 1.0))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = image.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        out = enhance(out).enhance(rng.uniform(0.85, 1.15))
    return out


def build_set(source: Path, dest: Path, base: int, copies: int, seed: int = 0) -> dict:
    """Write ``copies`` versions of the first ``base`` photos per class of ``source``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths, labels = class_files(source, base)
    counts: dict[str, int] = {}
    for label in sorted(set(labels)):
        (dest / label).mkdir(parents=True, exist_ok=True)
        mine = [p for p, lab in zip(paths, labels) if lab == label]
        for k in range(copies):  # copy-major order: the first s*base files hold s copies
            for i, path in enumerate(mine):
                target = dest / label / f"{k:03d}_{i:05d}.jpg"
                if k == 0:
                    shutil.copyfile(path, target)
                    continue
                with Image.open(path) as im:
                    perturb(im.convert("RGB"), rng).save(target, quality=90)
        counts[label] = copies * len(mine)
    return counts


def child(args: argparse.Namespace) -> None:
    """One size, in this fresh process: fit and report time and memory."""
    import resource

    import torch

    from binaryvision import ImageBinaryClassifier

    set_threads(args.threads)
    paths, labels = class_files(args.child, args.per_class)
    kwargs = {"backbone": args.backbone, "random_state": 0, "verbose": 0, "time_budget": None}
    if args.image_size:
        kwargs["image_size"] = args.image_size
    if args.backbone == "tiny_cnn":
        kwargs.update(epochs=3, lr=0.3, batch_size=8)
    clf = ImageBinaryClassifier(**kwargs)
    rss_before = current_rss_mb()
    peak_before = peak_rss_mb()
    cpu = time.process_time()
    started = time.perf_counter()
    clf.fit(paths, labels)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    print(
        json.dumps(
            {
                "images": len(paths),
                "fit_seconds": round(seconds, 3),
                "fit_cpu_seconds_main_process": round(cpu_seconds, 3),
                "seconds_per_image": round(seconds / len(paths), 5),
                "rss_before_fit_mb": rss_before,
                "peak_rss_before_fit_mb": peak_before,
                "peak_rss_mb": peak_rss_mb(),
                "peak_rss_workers_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
                "valid_accuracy_on_split": round(clf.history_[-1].get("valid_accuracy", 0), 4)
                if clf.history_
                else None,
                "torch_threads": torch.get_num_threads(),
                "load_average": load_average(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HOTDOG)
    parser.add_argument("--base", type=int, default=50, help="photos per class at 1x")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--image-size", type=int, default=0, help="input pixels (0: default)")
    parser.add_argument("--tiny", action="store_true", help="tiny_cnn on generated images")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--per-class", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args)
        return
    load_start = load_average()
    sizes = sorted(set(args.sizes))

    with tempfile.TemporaryDirectory(prefix="bv-scaling-") as tmp:
        source = args.data / "train"
        if args.tiny:
            source = write_image_tree(Path(tmp) / "generated", 6, seed=0)
            args.backbone, args.base = "tiny_cnn", min(args.base, 6)
            args.threads = args.threads or 1
        pool = Path(tmp) / "pool"
        log(f"building {max(sizes)} x {args.base} photos per class in {pool} ...")
        started = time.perf_counter()
        counts = build_set(source, pool, args.base, max(sizes))
        build_seconds = time.perf_counter() - started
        log(f"  {counts} in {build_seconds:.1f} s")

        rows = []
        for s in sizes:
            log(f"size {s}x: fitting on {s * args.base} photos per class in a fresh process ...")
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                str(pool),
                "--per-class",
                str(s * args.base),
                "--backbone",
                args.backbone,
                "--threads",
                str(args.threads),
                "--image-size",
                str(args.image_size),
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                log(done.stderr)
                raise SystemExit(f"size {s}x failed with exit code {done.returncode}")
            row = {"size": s, **json.loads(done.stdout.strip().splitlines()[-1])}
            log(f"  {row}")
            rows.append(row)

    first = rows[0]
    linear = None
    if len(rows) >= 2:  # fit seconds = fixed + marginal * images, least squares
        import numpy as np

        marginal, fixed = np.polyfit(
            [r["images"] for r in rows], [r["fit_seconds"] for r in rows], 1
        )
        linear = {
            "fixed_seconds": round(float(fixed), 3),
            "marginal_seconds_per_image": round(float(marginal), 5),
            "marginal_images_per_second": round(1 / marginal, 2) if marginal > 0 else None,
        }
    for row in rows:
        row["seconds_per_image_over_smallest"] = round(
            row["seconds_per_image"] / first["seconds_per_image"], 3
        )
        row["peak_rss_over_smallest"] = round(row["peak_rss_mb"] / first["peak_rss_mb"], 3)
        row["rss_growth_during_fit_mb"] = round(row["peak_rss_mb"] - row["rss_before_fit_mb"], 1)
    emit(
        {
            "benchmark": "scaling",
            "backbone": args.backbone,
            "base_per_class": args.base,
            "image_size": args.image_size or "default",
            "sizes": rows,
            "build_seconds": round(build_seconds, 1),
            "largest_over_smallest_images": rows[-1]["images"] / first["images"],
            "largest_over_smallest_fit_seconds": round(
                rows[-1]["fit_seconds"] / first["fit_seconds"], 3
            ),
            "largest_peak_rss_growth_mb": round(rows[-1]["peak_rss_mb"] - first["peak_rss_mb"], 1),
            "fit_seconds_linear_model": linear,
            **machine(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
        }
    )


if __name__ == "__main__":
    main()
