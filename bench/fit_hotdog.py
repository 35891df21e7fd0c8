"""Benchmark: default fit on the hot-dog photos. Prints JSON; asserts nothing.

    python bench/fit_hotdog.py [--data PATH]

Figures: wall seconds of the first fit (feature extraction included, in a fresh process),
validation accuracy, images per second, and the bare backbone forward time over the same
images (the floor of the frozen-feature path), as ``fit_seconds / floor_seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hotdog"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    import torch

    from binaryvision import ImageBinaryClassifier
    from binaryvision.data import as_image_set

    import_seconds = time.perf_counter() - started
    data = as_image_set(args.data, allow_seed_layout=True)
    n_images = len(data) + len(data.valid)

    started = time.perf_counter()
    clf = ImageBinaryClassifier(random_state=args.random_state, verbose=0).fit(args.data)
    fit_seconds = time.perf_counter() - started
    accuracy = clf.score(args.data / "valid")

    # The floor: the same backbone's bare forward on pre-decoded tensors, same batch size.
    backbone = clf.model_.backbone.eval()
    size = clf.data_config_.input_size
    batch = 4
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        backbone(x)
        t = time.perf_counter()
        for _ in range(n_images // batch):
            backbone(x)
        floor_seconds = (time.perf_counter() - t) * n_images / (n_images // batch * batch)

    print(
        json.dumps(
            {
                "benchmark": "fit_hotdog",
                "images": n_images,
                "fit_seconds": round(fit_seconds, 2),
                "import_seconds": round(import_seconds, 2),
                "images_per_second": round(n_images / fit_seconds, 1),
                "valid_accuracy": round(accuracy, 4),
                "bare_backbone_seconds_unfused": round(floor_seconds, 2),
                "fit_over_floor": round(fit_seconds / floor_seconds, 3),
                "epochs_run": len(clf.history_),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
