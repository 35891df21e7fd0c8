"""Helpers shared by the bench scripts (not part of the package, not imported by it).

Every script prints one JSON object on stdout and its human lines on stderr, and asserts
nothing about time. The machine's state goes into each JSON: the load average (these are
shared machines), the thread count and the versions.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOTDOG = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hotdog"
HOTDOG = Path(os.environ.get("BINARYVISION_HOTDOG", HOTDOG))


def log(*parts: Any) -> None:
    """A human line on stderr (stdout holds the JSON alone)."""
    print(*parts, file=sys.stderr, flush=True)


def emit(result: dict) -> None:
    """Print the one JSON object of a run on stdout."""
    print(json.dumps(result, indent=2), flush=True)


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def set_threads(n: int) -> None:
    """Use ``n`` torch threads (0 keeps torch's default, one per core).

    The tiny smoke-test modes use 1: on a busy machine, two OpenMP threads that wait for
    each other slowed small models down by 10 to 40 times in our measurements.
    """
    if n:
        import torch

        torch.set_num_threads(n)


def source_version() -> str | None:
    """``git describe --always --dirty`` of the checkout (read only), or None."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def machine() -> dict:
    """Versions, threads, the checkout and the load average now."""
    import torch

    import binaryvision

    return {
        "source": source_version(),
        "package": str(Path(binaryvision.__file__).parent),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average": load_average(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far, in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(who).ru_maxrss * scale / 2**20, 1)


def current_rss_mb() -> float:
    """Resident set size now, in MiB (the peak so far where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mb()


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[list[float], Any]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    out = None
    for _ in range(warmup):
        out = fn()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - started)
    return seconds, out


def make_image(kind: int, rng: Any, size: int = 64) -> Any:
    """A generated photo: class 0 dark with a bright disc, class 1 bright with a dark square."""
    import numpy as np
    from PIL import Image

    base = rng.integers(0, 60, 3) if kind == 0 else rng.integers(180, 255, 3)
    arr = np.empty((size, size, 3), dtype=np.uint8)
    arr[:] = base
    arr = np.clip(arr + rng.integers(-20, 20, arr.shape), 0, 255).astype(np.uint8)
    r = size // 6
    c = rng.integers(r + 1, size - r - 1, 2)
    yy, xx = np.mgrid[:size, :size]
    if kind == 0:
        arr[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 < r * r] = 230
    else:
        arr[c[0] - r : c[0] + r, c[1] - r : c[1] + r] = 20
    return Image.fromarray(arr)


def write_image_tree(
    root: Path, n_per_class: int, *, size: int = 64, seed: int = 0, classes=("a", "b")
) -> Path:
    """Write ``root/<class>/<i>.jpg``: two easily separable classes of generated JPEGs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            make_image(k, rng, size).save(root / name / f"{i:05d}.jpg", quality=90)
    return root


def class_files(root: Path, per_class: int | None = None) -> tuple[list[str], list[str]]:
    """The first ``per_class`` files of each class subfolder of ``root`` (sorted) and labels."""
    paths, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        for f in files[:per_class]:
            paths.append(str(f))
            labels.append(folder.name)
    return paths, labels
