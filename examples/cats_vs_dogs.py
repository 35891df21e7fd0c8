"""Cats vs dogs: a folder with one subfolder per class and no valid/ split.

    python examples/cats_vs_dogs.py --data PATH       # PATH/cat/*.jpg, PATH/dog/*.jpg
    python examples/cats_vs_dogs.py --fast            # SYNTHETIC circles vs squares, tiny CNN

Most photo collections look like PATH/<class>/<image>, with no train/ and valid/. This
script shows the workflow for them:

1. list the images and their labels (the subfolder names), and set a stratified fifth
   aside as a test set that nothing is fitted on;
2. fit on the rest, given as a list of paths with labels; fit itself holds out
   ``valid_size`` (a fifth) of it for early stopping, calibration and the threshold;
3. print the evaluation report on the test set, and save the confidence views;
4. predict a few test images (label and probability);
5. once the figures convince you, refit on every image by passing the folder itself
   (``clf.fit(PATH)`` labels by subfolder and holds out its own stratified fifth), save the
   model and check that the saved file predicts the same.

With --fast and no --data, the images are a small generated circles-vs-squares set (not
cats and dogs) and the backbone is the tiny random-init CNN: it checks the workflow, not
the accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from binaryvision import ImageBinaryClassifier, Trainer
from binaryvision.datasets import make_shapes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_images(folder: Path) -> tuple[list[str], list[str]]:
    """Paths and labels of ``folder/<class>/<image>`` (hidden entries skipped)."""
    paths, labels = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(sub.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES and not file.name.startswith("."):
                paths.append(str(file))
                labels.append(sub.name)
    return paths, labels


def main(argv: list[str] | None = None) -> int:
    """Split, fit, evaluate, predict, refit on everything and save."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, help="folder with one subfolder of images per class (required)"
    )
    parser.add_argument("--out", type=Path, default=Path("cats-vs-dogs-out"))
    parser.add_argument(
        "--backbone", help="default: efficientnet_lite0 (pretrained), tiny_cnn with --fast"
    )
    parser.add_argument("--test-size", type=float, default=0.2, help="fraction set aside")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="tiny random-init backbone; without --data, a small SYNTHETIC image set",
    )
    args = parser.parse_args(argv)
    if args.data is None and not args.fast:
        parser.error("--data PATH is required (a folder with one subfolder per class)")
    args.out.mkdir(parents=True, exist_ok=True)

    data = args.data
    if data is None:
        # circles/ and squares/ in one folder, the layout of PATH/cat/ and PATH/dog/
        data = make_shapes(args.out / "synthetic", n_train=24, n_valid=0, size=64) / "train"
        print(f"SYNTHETIC data (circles vs squares, not cats and dogs) in {data}")
    backbone = args.backbone or ("tiny_cnn" if args.fast else "efficientnet_lite0")
    fast = dict(pretrained=False, epochs=3, verbose=0, trainer=Trainer(num_workers=0))
    fast = fast if args.fast else {}

    # 1. images and labels from the subfolder names; a stratified test set nothing sees
    paths, labels = list_images(data)
    train_paths, test_paths, train_labels, test_labels = train_test_split(
        paths, labels, test_size=args.test_size, stratify=labels, random_state=0
    )
    print(f"{len(paths)} images of {sorted(set(labels))}; {len(test_paths)} set aside for test")

    # 2. fit: a fifth of train_paths is held out by fit itself (early stopping, calibration)
    clf = ImageBinaryClassifier(backbone, random_state=0, **fast)
    clf.fit(train_paths, train_labels)
    print(f"fit on {clf.n_train_} images, {clf.n_valid_} held out by fit")

    # 3. honest figures on the test set, and the confidence views
    report = clf.evaluate(test_paths, test_labels)
    print(report)
    print(f"test accuracy {report.accuracy:.3f} on {len(test_paths)} unseen images")
    display = clf.plot_confidence(test_paths, test_labels)
    display.figure_.savefig(args.out / "confidence.png", dpi=80)

    # 4. predictions for a few images: the label and the probability of classes_[1]
    proba = clf.predict_proba(test_paths[:4])[:, 1]
    for path, label, p in zip(test_paths[:4], clf.predict(test_paths[:4]), proba):
        print(f"{Path(path).name}: {label} (P({clf.classes_[1]}) = {p:.3f})")

    # 5. refit on every image, straight from the folder, then save and reload
    clf.fit(data)
    clf.save(args.out / "cats_vs_dogs.bv")
    loaded = ImageBinaryClassifier.load(args.out / "cats_vs_dogs.bv")
    same = np.allclose(loaded.predict_proba(test_paths), clf.predict_proba(test_paths))
    print(
        f"refit from the folder ({clf.n_train_} + {clf.n_valid_} held out); reloaded model agrees: {same}"
    )
    print(f"plots and model in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
