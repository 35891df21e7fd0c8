"""The subcommands of the ``binaryvision`` command: fit, predict, evaluate, lr-find, plot, info.

Each ``_cmd_*`` function takes the parsed arguments, prints its results to stdout and
raises :class:`~binaryvision.exceptions.BinaryVisionError` or :class:`OSError` on failure.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..data.decode import IMAGE_EXTENSIONS
from ..data.sources import _is_hidden, as_image_set, find_images
from ..exceptions import DataError, ModelFileError

__all__ = ["find_prediction_images"]


# ====================================================================== helpers
def _trainer(args: argparse.Namespace) -> Any:
    from ..training import Trainer

    return Trainer(device=args.device, num_workers=args.workers)


def _verbose(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 1


def _load(args: argparse.Namespace) -> Any:
    from ..classifier import ImageBinaryClassifier

    clf = ImageBinaryClassifier.load(args.model)
    return clf.set_params(trainer=_trainer(args), verbose=_verbose(args))


def _check_writable(path: str) -> None:
    """Fail before any long computation when an output file cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot write {path!r}: folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"Cannot write {path!r}: it is a folder; give a file name.")


def _write_text(path: str, write: Callable[[TextIO], None]) -> None:
    """Build the text in memory, then write it atomically (UTF-8)."""
    from ..persistence import atomic_write

    buffer = io.StringIO(newline="")
    write(buffer)
    atomic_write(path, buffer.getvalue().encode("utf-8"))


def _save_figure(figure: Any, path: str) -> None:
    """Render a Figure through the Agg canvas and write it atomically; pyplot is not used."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ..persistence import atomic_write

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lower().lstrip("."))
    atomic_write(path, buffer.getvalue())


def find_prediction_images(paths: Sequence[str]) -> list[str]:
    """Expand image files and folders (searched recursively) into a list of image paths.

    Files are kept as given, in order; each folder contributes its images (as found by
    :func:`binaryvision.data.find_images`) in sorted order, skipping hidden folders.

    Parameters
    ----------
    paths : sequence of str
        Image files and folders.

    Returns
    -------
    list of str

    Raises
    ------
    FileNotFoundError
        A path is neither a file nor a folder.
    DataError
        A folder holds no images.
    """
    found: list[str] = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            images: list[str] = []
            for root, dirs, _ in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
                images += find_images(root)
            if not images:
                raise DataError(
                    f"Folder {path!r} contains no images (looked for "
                    f"{', '.join(sorted(IMAGE_EXTENSIONS))}, in subfolders too)."
                )
            found += images
        else:
            raise FileNotFoundError(f"Image file or folder {path!r} does not exist.")
    return found


def _json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _validation_accuracy(clf: Any, data: str) -> str | None:
    """One line on the fitted model's accuracy on its validation images, if it had any."""
    valid = os.path.join(data, "valid")
    if os.path.isdir(os.path.join(data, "train")) and os.path.isdir(valid):
        images = as_image_set(valid)
        skipped = {os.path.abspath(e["path"]) for e in clf.fit_report_.get("skipped", [])}
        keep = [i for i, p in enumerate(images.items) if os.path.abspath(p) not in skipped]
        accuracy = clf.score([images.items[i] for i in keep], images.labels[keep])
        return f"{accuracy:.4f} ({len(keep)} images in {valid}, threshold {clf.threshold_:.3f})"
    epochs = [e for e in clf.history_ if "valid_accuracy" in e]
    if not epochs:
        return None
    last_phase = [e for e in epochs if e["phase"] == epochs[-1]["phase"]]
    best = min(last_phase, key=lambda e: e["valid_loss"]) if clf.early_stopping else last_phase[-1]
    return (
        f"{best['valid_accuracy']:.4f} ({clf.n_valid_} held-out images, {best['phase']} "
        f"epoch {best['epoch']}, threshold 0.5)"
    )


# ====================================================================== commands
def _classifier(args: argparse.Namespace, **params: Any) -> Any:
    """A classifier from the options ``fit`` and ``lr-find`` share, plus ``params``."""
    from ..classifier import ImageBinaryClassifier

    return ImageBinaryClassifier(
        args.backbone,
        pretrained=args.pretrained,
        weights=args.weights,
        image_size=args.image_size,
        batch_size=args.batch_size,
        trainer=_trainer(args),
        random_state=args.seed,
        verbose=_verbose(args),
        **params,
    )


def _cmd_fit(args: argparse.Namespace) -> None:
    _check_writable(args.out)
    clf = _classifier(
        args,
        epochs=args.epochs,
        lr=args.lr,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_lr=args.fine_tune_lr,
        valid_size=args.valid_size,
        threshold=args.threshold,
        calibration=args.calibration,
        positive_class=args.positive_class,
        class_weight=args.class_weight,
        max_bad_fraction=args.max_bad_fraction,
    )
    clf.fit(args.data)
    clf.save(args.out)

    counts = ", ".join(f"{k} {v}" for k, v in clf.class_counts_.items())
    print(f"fitted          {clf.backbone_name_} on {clf.n_train_} images ({counts})")
    accuracy = _validation_accuracy(clf, args.data)
    if accuracy is not None:
        print(f"valid accuracy  {accuracy}")
    choice = clf.threshold_choice_
    rule = "" if choice is None else f" ({choice.message})"
    print(f"threshold       {clf.threshold_:.4f} for {clf.positive_class_}{rule}")
    report = clf.calibration_report_
    if report is not None and (report["method"] is not None or "note" in report):
        how = report.get("note", report["method"])
        print(
            f"calibration     {how}: ECE {report['ece_before']:.4f} -> "
            f"{report['ece_after']:.4f} on {report['n_images']} held-out images"
        )
    skipped = clf.fit_report_.get("skipped", [])
    print(f"skipped         {len(skipped)} unreadable file{'s' * (len(skipped) != 1)}")
    for entry in skipped:
        print(f"  {entry['path']}: {entry['reason']}")
    print(f"saved           {args.out}")


def _cmd_predict(args: argparse.Namespace) -> None:
    if args.csv is not None:
        _check_writable(args.csv)
    clf = _load(args)
    images = find_prediction_images(args.images)
    proba = clf.predict_proba(images, tta=args.tta)
    classes = [str(c) for c in clf.classes_]
    pos = classes.index(str(clf.positive_class_))
    p_pos = proba[:, pos]
    # predict()'s documented rule, applied here so the images are only run once.
    labels = [classes[pos] if p >= clf.threshold_ else classes[1 - pos] for p in p_pos]

    def write(f: TextIO) -> None:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "probability"])
        writer.writerows((path, label, f"{p:.8g}") for path, label, p in zip(images, labels, p_pos))

    if args.csv is None:
        write(sys.stdout)
    else:
        _write_text(args.csv, write)
        if not args.quiet:
            print(f"wrote {len(images)} predictions to {args.csv}", file=sys.stderr)


def _cmd_lr_find(args: argparse.Namespace) -> None:
    if args.plot is not None:
        _check_writable(args.plot)
    clf = _classifier(args)
    result = clf.lr_find(args.data, stage=args.stage, method=args.method)
    print(f"suggested lr    {result.suggestion:.2e} ({result.method})")
    for name, value in result.suggestions.items():
        print(f"  {name:<13} {value:.2e}")
    option = "--lr" if args.stage == "head" else "--fine-tune-lr"
    print(f"use it with     binaryvision fit {args.data} {option} {result.suggestion:.2e} ...")
    if args.plot is not None:
        _save_figure(result.plot().figure_, args.plot)
        print(f"saved           {args.plot}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    if args.json is not None:
        _check_writable(args.json)
    clf = _load(args)
    report = clf.evaluate(args.data, tta=args.tta)
    print(report)
    if args.json is not None:
        text = json.dumps(_json_safe(report.to_dict()), indent=2, allow_nan=False)
        _write_text(args.json, lambda f: f.write(text + "\n"))


def _cmd_plot(args: argparse.Namespace) -> None:
    _check_writable(args.out)
    clf = _load(args)
    display = clf.plot_confidence(
        args.data, n_images=args.n_images, tta=args.tta, random_state=args.seed
    )
    _save_figure(display.figure_, args.out)
    print(f"saved {args.out}")


def _model_info(path: str) -> dict:
    """What a model file describes, from its metadata (read without building the model)."""
    from ..persistence import read_model_file

    tensors, meta = read_model_file(path)
    params = meta.get("params", {})
    classes = meta.get("classes")
    if not meta.get("backbone") or not classes:
        raise ModelFileError(
            f"{path!r} is not a complete binaryvision model: its metadata lacks the backbone "
            "or the classes."
        )
    calibration = meta.get("calibration")
    phases: dict[str, int] = {}
    for epoch in meta.get("history", []):
        phases[epoch.get("phase", "?")] = phases.get(epoch.get("phase", "?"), 0) + 1
    return {
        "file": path,
        "file_bytes": os.path.getsize(path),
        "backbone": meta["backbone"],
        "pretrained": params.get("pretrained"),
        "parameters": int(sum(t.numel() for t in tensors.values())),
        "classes": classes,
        "positive_class": meta.get("positive_class", classes[-1]),
        "threshold": meta.get("threshold"),
        "threshold_rule": (meta.get("threshold_choice") or {}).get("rule", params.get("threshold")),
        "calibration": calibration,
        "calibration_report": meta.get("calibration_report"),
        "data_config": meta.get("data_config"),
        "class_counts": meta.get("class_counts"),
        "n_train": meta.get("n_train"),
        "n_valid": meta.get("n_valid"),
        "epochs_trained": phases,
        "lr": meta.get("lr"),
        "params": params,
        "library_version": meta.get("library_version"),
        "torch_version": meta.get("torch_version"),
        "format_version": meta.get("format_version"),
    }


def _cmd_info(args: argparse.Namespace) -> None:
    info = _model_info(args.model)
    if args.json:
        print(json.dumps(_json_safe(info), indent=2, allow_nan=False))
        return
    config = info["data_config"] or {}
    calibration = info["calibration"]
    if calibration:
        extra = ", ".join(
            f"{k}={v:.4g}" for k, v in calibration.items() if isinstance(v, (int, float))
        )
        calibration_text = calibration.get("method", "?") + (f" ({extra})" if extra else "")
    else:
        calibration_text = "none"
    counts = info["class_counts"] or {}
    trained = ", ".join(f"{k} {v}" for k, v in counts.items())
    epochs = ", ".join(f"{v} {k}" for k, v in info["epochs_trained"].items()) or "none recorded"
    lines = [
        ("file", f"{info['file']} ({info['file_bytes'] / 1e6:.1f} MB)"),
        ("backbone", f"{info['backbone']} (pretrained: {info['pretrained']})"),
        ("parameters", f"{info['parameters']:,}"),
        ("classes", ", ".join(str(c) for c in info["classes"])),
        ("positive class", str(info["positive_class"])),
        ("threshold", f"{info['threshold']:.4f} (rule: {info['threshold_rule']})"),
        ("calibration", calibration_text),
        (
            "image size",
            f"{config.get('input_size')} px, {config.get('interpolation')}, "
            f"mean {config.get('mean')}, std {config.get('std')}",
        ),
        ("trained on", f"{info['n_train']} images ({trained}), {info['n_valid']} validation"),
        ("epochs", epochs),
        ("saved by", f"binaryvision {info['library_version']}, torch {info['torch_version']}"),
        ("format", str(info["format_version"])),
    ]
    for key, value in lines:
        print(f"{key:<15} {value}")
