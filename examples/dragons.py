"""The fastai "Drogon vs Viserion" notebook as a script, step for step.

    python examples/dragons.py                    # downloads the photos once, then caches them
    python examples/dragons.py --data PATH        # PATH/train/{drogon,viserion}, PATH/valid/...
    python examples/dragons.py --fast             # tiny random-init CNN, a few epochs (CI)

1. get the photos (binaryvision.datasets.download_dragons, or --data); 2. fit the head on
precomputed features of a pretrained CNN; 3. lr_find and its plot; 4. probabilities on the
validation images; 5. the confidence views; 6. next steps: augmentation + unfreezing with
discriminative learning rates.

Without --data the zip is downloaded into --cache-dir (default $BINARYVISION_HOME or
~/.cache/binaryvision) and reused on later runs. Offline, download drogonviserion.zip by hand
and put it in that folder, or extract it and pass --data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from binaryvision import DataError, ImageBinaryClassifier, Trainer
from binaryvision.datasets import DRAGONS_URL, download_dragons


def main(argv: list[str] | None = None) -> int:
    """Run the tutorial workflow on ``--data`` (downloaded when omitted)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="folder with train/ and valid/, one subfolder per class (default: download)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="where the download is kept (default: $BINARYVISION_HOME or ~/.cache/binaryvision)",
    )
    parser.add_argument(
        "--url", default=DRAGONS_URL, help="advanced: a mirror of drogonviserion.zip"
    )
    parser.add_argument("--out", type=Path, default=Path("dragons-out"))
    parser.add_argument(
        "--backbone", help="default: efficientnet_lite0 (pretrained), tiny_cnn with --fast"
    )
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        help="step 6: epochs of unfrozen training with augmentation (default 2, 1 with --fast)",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="tiny random-init backbone and few epochs: checks the workflow, not the accuracy",
    )
    args = parser.parse_args(argv)
    backbone = args.backbone or ("tiny_cnn" if args.fast else "efficientnet_lite0")
    fine_tune_epochs = args.fine_tune_epochs
    if fine_tune_epochs is None:
        fine_tune_epochs = 1 if args.fast else 2

    # 1. the photos: a folder you have, or the original zip downloaded once and cached
    data = args.data
    if data is None:
        try:
            data = download_dragons(cache_dir=args.cache_dir, url=args.url)
        except DataError as exc:  # offline, or a bad archive: the message says what to do
            parser.exit(1, f"{exc}\n")
        print(f"photos in {data}")
    args.out.mkdir(parents=True, exist_ok=True)

    # 2. a pretrained CNN with a new head, trained on precomputed activations
    fast = dict(pretrained=False, trainer=Trainer(num_workers=0)) if args.fast else {}
    clf = ImageBinaryClassifier(
        backbone, epochs=2 if args.fast else 3, lr=0.01, random_state=0, **fast
    )
    clf.fit(data)
    print(f"head only: validation accuracy {clf.score(data / 'valid'):.3f}")

    # 3. the learning-rate finder (it never changes clf; apply the suggestion yourself)
    result = clf.lr_find(data)
    result.plot().figure_.savefig(args.out / "lr_find.png")
    print(f"lr_find suggests {result.suggestion:.2g} (all rules: {result.suggestions})")

    # 4. probabilities of class 1 on the validation images
    proba = clf.predict_proba(data / "valid")[:, 1]
    print(f"P({clf.classes_[1]}) of the first validation images: {proba[:5].round(3)}")

    # 5. correct, incorrect, most confident and most uncertain images
    clf.plot_confidence(data / "valid").figure_.savefig(args.out / "confidence.png")

    # 6. next steps: augmentation and unfreezing with discriminative learning rates
    clf.set_params(
        lr=result.suggestion,
        transforms="standard",
        fine_tune_epochs=fine_tune_epochs,
        layer_lr_ratio=0.01,
    )
    clf.fit(data)
    print(f"fine-tuned: validation accuracy {clf.score(data / 'valid'):.3f}")
    clf.save(args.out / "dragons.bv")
    print(f"plots and model in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
