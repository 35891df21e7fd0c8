"""One process against two (torchrun, Gloo) on the same fit: wall seconds and agreement.

    python bench/distributed_cpu.py                    # hot-dog subset, default backbone
    python bench/distributed_cpu.py --tiny             # tiny CNN on generated images

Runs ``examples/distributed.py`` twice on the same images: once as a plain process (torch's
default threads) and once under ``torchrun --nproc-per-node=2`` (one thread per process, as
torchrun sets). Prints one JSON object: the fit seconds each way (as measured inside the
script, imports excluded), their ratio, and whether both processes of the 2-process run
ended with the same weights. On a 2-core machine the two layouts use the same cores, so
expect a ratio near 1: the figure shows what the split costs, not what more GPUs buy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import HOTDOG, emit, load_average, log, source_version

ROOT = Path(__file__).resolve().parents[1]


def subset(dst: Path, per_class: int) -> Path:
    """Copy ``per_class`` photos of each class of hot-dog train/ and valid/ into ``dst``."""
    for split in ("train", "valid"):
        for folder in sorted((HOTDOG / split).iterdir()):
            if folder.is_dir():
                out = dst / split / folder.name
                out.mkdir(parents=True)
                n = per_class if split == "train" else max(4, per_class // 4)
                for f in sorted(folder.iterdir())[:n]:
                    shutil.copy(f, out / f.name)
    return dst


def run(cmd: list[str]) -> dict:
    log("$", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3000, cwd=ROOT)
    if done.returncode != 0:
        log(done.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, default=100, help="training photos per class")
    parser.add_argument("--fine-tune-epochs", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="tiny CNN on generated images")
    args = parser.parse_args()
    started = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--fine-tune-epochs", str(args.fine_tune_epochs)]
        if args.tiny:
            extra.append("--fast")
        else:
            if not (HOTDOG / "train").is_dir():
                raise SystemExit(f"no photos at {HOTDOG}; use --tiny")
            extra += ["--data", str(subset(Path(tmp) / "data", args.per_class))]
        script = str(ROOT / "examples" / "distributed.py")
        one = run([sys.executable, script, "--out", f"{tmp}/one", *extra])
        two = run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone",
             "--nproc-per-node=2", script, "--out", f"{tmp}/two", *extra]
        )  # fmt: skip
    t1 = one["processes"][0]["fit_seconds"]
    t2 = max(p["fit_seconds"] for p in two["processes"])
    emit(
        {
            "benchmark": "distributed_cpu",
            "images_per_class": None if args.tiny else args.per_class,
            "fine_tune_epochs": args.fine_tune_epochs,
            "one_process_fit_seconds": round(t1, 2),
            "two_processes_fit_seconds": round(t2, 2),
            "two_over_one": round(t2 / t1, 3),
            "two_processes_same_weights": len({p["weights_sha256"] for p in two["processes"]}) == 1,
            "load_average_start": started,
            "load_average_end": load_average(),
            "source": source_version(),
        }
    )


if __name__ == "__main__":
    main()
