"""The fastai "Drogon vs Viserion" notebook as a script, step for step.

    python examples/dragons.py --data PATH        # PATH/train/{drogon,viserion}, PATH/valid/...

1. point at the folder; 2. fit the head on precomputed features of a pretrained CNN;
3. lr_find and its plot; 4. probabilities on the validation images; 5. the confidence
views; 6. next steps: augmentation + unfreezing with discriminative learning rates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from binaryvision import ImageBinaryClassifier


def main(argv: list[str] | None = None) -> int:
    """Run the tutorial workflow on ``--data``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder with train/ and valid/, one subfolder per class",
    )
    parser.add_argument("--out", type=Path, default=Path("dragons-out"))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=2,
        help="step 6: epochs of unfrozen training with augmentation",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    # 2. a pretrained CNN with a new head, trained on precomputed activations
    clf = ImageBinaryClassifier(args.backbone, epochs=3, lr=0.01, random_state=0)
    clf.fit(args.data)
    print(f"head only: validation accuracy {clf.score(args.data / 'valid'):.3f}")

    # 3. the learning-rate finder (it never changes clf; apply the suggestion yourself)
    result = clf.lr_find(args.data)
    result.plot().figure_.savefig(args.out / "lr_find.png")
    print(f"lr_find suggests {result.suggestion:.2g} (all rules: {result.suggestions})")

    # 4. probabilities of class 1 on the validation images
    proba = clf.predict_proba(args.data / "valid")[:, 1]
    print(f"P({clf.classes_[1]}) of the first validation images: {proba[:5].round(3)}")

    # 5. correct, incorrect, most confident and most uncertain images
    clf.plot_confidence(args.data / "valid").figure_.savefig(args.out / "confidence.png")

    # 6. next steps: augmentation and unfreezing with discriminative learning rates
    clf.set_params(
        lr=result.suggestion,
        transforms="standard",
        fine_tune_epochs=args.fine_tune_epochs,
        layer_lr_ratio=0.01,
    )
    clf.fit(args.data)
    print(f"fine-tuned: validation accuracy {clf.score(args.data / 'valid'):.3f}")
    clf.save(args.out / "dragons.bv")
    print(f"plots and model in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
