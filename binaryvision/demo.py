"""The demo: ``python -m binaryvision.demo [OUTDIR]``.

Generates a small circles-vs-squares photo set, runs the learning-rate finder, fits the
default pretrained classifier (EfficientNet-Lite0, offline), prints the evaluation
report of the validation photos and writes ``lr_find.png``, ``confidence.png`` and
``reliability.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from binaryvision import ImageBinaryClassifier
from binaryvision.datasets import make_shapes


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m binaryvision.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "outdir",
        nargs="?",
        default="binaryvision-demo",
        help="where the data, model and plots go (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    out = Path(args.outdir)
    data = make_shapes(out / "shapes")
    print(f"1. Generated {data}: train/ and valid/, circles vs squares")

    clf = ImageBinaryClassifier(random_state=0, verbose=0)
    result = clf.lr_find(data / "train")
    result.plot().figure_.savefig(out / "lr_find.png", dpi=100)
    print(f"2. Learning-rate finder: suggestion {result.suggestion:.2g} -> {out / 'lr_find.png'}")

    started = time.perf_counter()
    clf.fit(data)
    print(f"3. Fitted in {time.perf_counter() - started:.1f} s; classes {list(clf.classes_)}")
    report = clf.evaluate(data / "valid")
    print(f"   validation accuracy {report.accuracy:.3f}, ROC-AUC {report.roc_auc:.3f}")
    calibration = clf.calibration_report_
    print(
        f"   calibration from {calibration['n_images']} out-of-fold logits: "
        f"{calibration['note']}; ECE {calibration['ece_before']:.3f} -> "
        f"{calibration['ece_after']:.3f}"
    )

    display = clf.plot_confidence(data / "valid")
    display.figure_.savefig(out / "confidence.png", dpi=80)
    report.plot_reliability().figure_.savefig(out / "reliability.png", dpi=80)
    clf.save(out / "model.bv")
    print(
        f"4. Plots -> {out / 'confidence.png'}, {out / 'reliability.png'}; "
        f"model -> {out / 'model.bv'}"
    )
    print("\nThe evaluation report on valid/:\n" + str(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
