"""Regenerate the figures of the documentation: real outputs of the library.

    python docs/make_figures.py [--out docs/_static/figures] [--dpi 80]

Generates a small circles-vs-squares photo set (:func:`binaryvision.datasets.make_shapes`)
in a temporary folder, runs the learning-rate finder, fits the default pretrained
classifier (EfficientNet-Lite0, offline, at 128 px) on ``train/`` (30% held out for early
stopping, calibration and the threshold), evaluates it on the unseen ``valid/`` images and
writes every plot the tutorial shows as a PNG, plus the printed report as ``report.txt``.

The images are 16 px, so small that some circles and squares are hard to tell apart even
for a person: the model makes mistakes and is unsure about some images, which is what the
plots are there to show. (On the default 160 px images it is right on every one, and a
perfectly separated validation set leaves nothing to show.)

The Sphinx build never runs this script: the PNGs are committed next to it. Rerun it after
changing a plot, and commit the new files; a minute or two on two CPU cores. PNGs are
reduced to a 256-colour palette to keep them small (about 110 KiB in all).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from PIL import Image

from binaryvision import ImageBinaryClassifier
from binaryvision.datasets import make_shapes

HERE = Path(__file__).resolve().parent


def _save(display, path: Path, dpi: int) -> None:
    """Save a display's figure as a palette PNG (a fraction of the size of RGBA)."""
    buffer = io.BytesIO()
    display.figure_.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)
    print(f"  {path.name}: {path.stat().st_size / 1024:.0f} KiB")


def main(argv: list[str] | None = None) -> int:
    """Write the figures; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "_static" / "figures")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        # 60 training and 80 unseen validation images per class, 16 px
        data = make_shapes(Path(tmp) / "shapes", n_train=60, n_valid=80, size=16, random_state=3)
        train, valid = data / "train", data / "valid"
        # image_size=128 (default 256): the 16 px images hold no more detail, and feature
        # extraction costs a quarter
        clf = ImageBinaryClassifier(image_size=128, valid_size=0.3, random_state=0, verbose=0)

        result = clf.lr_find(train)
        print(f"lr_find: {result!r}")
        _save(result.plot(), args.out / "lr_find.png", args.dpi)

        clf.set_params(lr=result.suggestion).fit(train)
        print(f"calibration on the held-out images: {clf.calibration_report_}")
        report = clf.evaluate(valid)
        (args.out / "report.txt").write_text(str(report) + "\n")
        print(report)

        _save(clf.plot_confidence(valid, n_images=4), args.out / "confidence.png", args.dpi)
        _save(report.plot_reliability(), args.out / "reliability.png", args.dpi)
        _save(report.plot_roc(), args.out / "roc.png", args.dpi)
        _save(report.plot_precision_recall(), args.out / "precision_recall.png", args.dpi)
        _save(report.plot_threshold(), args.out / "threshold.png", args.dpi)
        _save(report.plot_confusion_matrix(), args.out / "confusion_matrix.png", args.dpi)

    print(f"figures written to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
