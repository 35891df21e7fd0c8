"""Hot dog vs not hot dog: the default model on a folder of real photos.

    python examples/hotdog.py [--data PATH] [--out DIR]

PATH defaults to ../shared/datasets/hotdog next to this repository (train/ and valid/).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from binaryvision import ImageBinaryClassifier

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hotdog"


def main(argv: list[str] | None = None) -> int:
    """Fit, evaluate, plot and save."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--out", type=Path, default=Path("hotdog-out"))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args(argv)
    if not (args.data / "train").is_dir():
        parser.error(f"{args.data} has no train/ folder; pass --data PATH")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    clf = ImageBinaryClassifier(args.backbone, random_state=0).fit(args.data)
    seconds = time.perf_counter() - started
    print(f"fit in {seconds:.1f} s; validation accuracy {clf.score(args.data / 'valid'):.3f}")
    clf.plot_confidence(args.data / "valid").figure_.savefig(args.out / "confidence.png", dpi=80)
    clf.save(args.out / "hotdog.bv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
