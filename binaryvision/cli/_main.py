"""The ``binaryvision`` command: fit, predict, evaluate and inspect models from a shell.

::

    binaryvision fit data/dragons --out model.bv
    binaryvision predict model.bv new_photos/ --csv predictions.csv
    binaryvision evaluate model.bv data/dragons/valid --json report.json
    binaryvision lr-find data/dragons --plot lr.png
    binaryvision plot model.bv data/dragons/valid --out confidence.png
    binaryvision info model.bv

Exit codes scripts can rely on: 0 success, 1 an error about the data, a file or the
model (``binaryvision: error: ...`` on stderr, no traceback), 2 a usage error (unknown
option, bad value), 130 interrupted. ``--debug`` shows the full traceback instead.
Progress goes to stderr (bars on a terminal, plain lines in logs), results to stdout.
Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas; no
global matplotlib setting is touched.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from .._version import __version__
from ..data.decode import IMAGE_EXTENSIONS
from ..data.sources import _is_hidden, as_image_set, find_images
from ..decisions.calibration import CALIBRATION_METHODS
from ..decisions.metrics import check_threshold_rule
from ..exceptions import BinaryVisionError, DataError, InvalidParameterError, ModelFileError

__all__ = ["build_parser", "find_prediction_images", "main"]

PROG = "binaryvision"


# ====================================================================== argument types
def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int, got {text!r}") from None


def _lr_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a float > 0, got {text!r}")
    return value


def _lr(text: str) -> float | str:
    return text if text == "auto" else _lr_value(text)


def _valid_size(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in [0, 1) or an int count of images, got {text!r}"
        )
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a float in [0, 1], got {text!r}")
    return value


def _threshold(text: str) -> Any:
    """``0.5``, ``f1``, ``youden``, ``precision=0.95``, ``fp_cost=1,fn_cost=5`` or JSON."""
    text = text.strip()
    rule: Any
    try:
        rule = float(text)
    except ValueError:
        if text.startswith("{"):
            try:
                rule = json.loads(text)
            except json.JSONDecodeError as exc:
                raise argparse.ArgumentTypeError(f"is not valid JSON ({exc})") from None
        elif "=" in text:
            rule = {}
            for part in text.split(","):
                key, _, value = part.partition("=")
                try:
                    rule[key.strip()] = float(value)
                except ValueError:
                    raise argparse.ArgumentTypeError(
                        f"{part!r} is not KEY=NUMBER (e.g. precision=0.95)"
                    ) from None
        else:
            rule = text
    try:
        return check_threshold_rule(rule, "--threshold")
    except InvalidParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _calibration(text: str) -> str | None:
    if text == "none":
        return None
    if text not in CALIBRATION_METHODS:
        choices = ", ".join([*CALIBRATION_METHODS, "none"])
        raise argparse.ArgumentTypeError(f"must be one of {choices}, got {text!r}")
    return text


def _workers(text: str) -> int | str:
    return text if text == "auto" else _non_negative_int(text)


def _figure_path(text: str) -> str:
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(text).suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs an image file extension: one of {', '.join(sorted(formats))}"
        )
    return text


# ====================================================================== the parser
def build_parser() -> argparse.ArgumentParser:
    """Build the ``binaryvision`` argument parser (one subcommand per task).

    Returns
    -------
    argparse.ArgumentParser
        The parser used by :func:`main`.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress output (results still print)"
    )
    common.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )

    run = argparse.ArgumentParser(add_help=False)
    run.add_argument(
        "--device", default="auto", help="'cpu', 'cuda', 'cuda:1', ... (default: auto)"
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        help="image-decoding worker processes, or 'auto' (default)",
    )

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--backbone", default="efficientnet_lite0", help="backbone name (default: %(default)s)"
    )
    model.add_argument(
        "--no-pretrained",
        dest="pretrained",
        action="store_false",
        help="start from random weights instead of pretrained ones",
    )
    model.add_argument("--weights", help="a local state-dict file to load into the backbone")
    model.add_argument("--image-size", type=_positive_int, help="network input side in pixels")
    model.add_argument("--batch-size", type=_positive_int, default=64, help="default: 64")
    model.add_argument("--seed", type=_non_negative_int, help="random seed (reproducible fits)")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Binary image classification from the command line.",
        epilog="Run 'binaryvision COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = sub.add_parser(
        "fit",
        parents=[model, run, common],
        help="train a model on a folder of images and save it",
        description="Train on DATA (train/ + valid/ subfolders, or one subfolder per class) "
        "and save the model.",
    )
    fit.add_argument("data", metavar="DATA", help="folder of labelled images")
    fit.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    fit.add_argument("--epochs", type=_non_negative_int, default=10, help="default: 10")
    fit.add_argument(
        "--lr", type=_lr, default=0.01, help="head learning rate or 'auto' (default: 0.01)"
    )
    fit.add_argument(
        "--fine-tune-epochs",
        type=_non_negative_int,
        default=0,
        help="epochs of training the unfrozen network after the head (default: 0)",
    )
    fit.add_argument(
        "--fine-tune-lr",
        type=_lr_value,
        help="head learning rate while fine-tuning (default: lr/10)",
    )
    fit.add_argument(
        "--threshold",
        type=_threshold,
        default=0.5,
        help="0.5, f1, youden, precision=0.95, recall=0.9 or fp_cost=1,fn_cost=5",
    )
    fit.add_argument(
        "--calibration",
        type=_calibration,
        default="temperature",
        help=f"{', '.join(CALIBRATION_METHODS)} or none (default: temperature)",
    )
    fit.add_argument(
        "--valid-size",
        type=_valid_size,
        default=0.2,
        help="fraction (or count) held out when DATA has no valid/ folder (default: 0.2)",
    )
    fit.add_argument("--positive-class", help="class that precision and recall refer to")
    fit.add_argument(
        "--class-weight", choices=["balanced"], help="weight the loss for a rare class"
    )
    fit.add_argument(
        "--max-bad-fraction",
        type=_fraction,
        default=0.01,
        help="unreadable files above this fraction stop the fit (default: 0.01)",
    )
    fit.set_defaults(handler=_cmd_fit)

    predict = sub.add_parser(
        "predict",
        parents=[run, common],
        help="predict images with a saved model",
        description="Print path,label,probability for each image (probability of the "
        "positive class).",
    )
    predict.add_argument("model", metavar="MODEL", help="model file written by fit")
    predict.add_argument(
        "images", metavar="IMAGES", nargs="+", help="image files or folders (searched recursively)"
    )
    predict.add_argument("--csv", metavar="FILE", help="write the CSV here instead of stdout")
    predict.add_argument(
        "--tta", type=_non_negative_int, default=0, help="test-time views to average"
    )
    predict.set_defaults(handler=_cmd_predict)

    lr_find = sub.add_parser(
        "lr-find",
        parents=[model, run, common],
        help="run the learning-rate range test",
        description="Sweep the learning rate on DATA and print the suggestions.",
    )
    lr_find.add_argument("data", metavar="DATA", help="folder of labelled images")
    lr_find.add_argument("--plot", type=_figure_path, metavar="FILE", help="save the curve here")
    lr_find.add_argument(
        "--stage", choices=["head", "fine_tune"], default="head", help="default: head"
    )
    lr_find.add_argument(
        "--method", choices=["valley", "steep", "minimum"], default="valley", help="default: valley"
    )
    lr_find.set_defaults(handler=_cmd_lr_find)

    evaluate = sub.add_parser(
        "evaluate",
        parents=[run, common],
        help="print every metric of a model on labelled images",
        description="Evaluate MODEL on DATA (one subfolder per class).",
    )
    evaluate.add_argument("model", metavar="MODEL", help="model file written by fit")
    evaluate.add_argument("data", metavar="DATA", help="folder with one subfolder per class")
    evaluate.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    evaluate.add_argument("--tta", type=_non_negative_int, default=0, help="test-time views")
    evaluate.set_defaults(handler=_cmd_evaluate)

    plot = sub.add_parser(
        "plot",
        parents=[run, common],
        help="save the confidence plot of a model on labelled images",
        description="Draw correct, wrong and uncertain images of DATA and a histogram.",
    )
    plot.add_argument("model", metavar="MODEL", help="model file written by fit")
    plot.add_argument("data", metavar="DATA", help="folder with one subfolder per class")
    plot.add_argument("--out", required=True, type=_figure_path, metavar="FILE")
    plot.add_argument("--n-images", type=_positive_int, default=4, help="images per view")
    plot.add_argument("--tta", type=_non_negative_int, default=0, help="test-time views")
    plot.add_argument("--seed", type=_non_negative_int, default=0, help="for the random views")
    plot.set_defaults(handler=_cmd_plot)

    info = sub.add_parser(
        "info",
        parents=[common],
        help="describe a saved model",
        description="Print what a model file holds (read without unpickling).",
    )
    info.add_argument("model", metavar="MODEL", help="model file written by fit")
    info.add_argument("--json", action="store_true", help="print the description as JSON")
    info.set_defaults(handler=_cmd_info)
    return parser


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
def _cmd_fit(args: argparse.Namespace) -> None:
    from ..classifier import ImageBinaryClassifier

    _check_writable(args.out)
    clf = ImageBinaryClassifier(
        args.backbone,
        pretrained=args.pretrained,
        weights=args.weights,
        image_size=args.image_size,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_lr=args.fine_tune_lr,
        valid_size=args.valid_size,
        threshold=args.threshold,
        calibration=args.calibration,
        positive_class=args.positive_class,
        class_weight=args.class_weight,
        max_bad_fraction=args.max_bad_fraction,
        trainer=_trainer(args),
        random_state=args.seed,
        verbose=_verbose(args),
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
    if report is not None and report["method"] is not None:
        print(
            f"calibration     {report['method']}: ECE {report['ece_before']:.4f} -> "
            f"{report['ece_after']:.4f} on the validation images"
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
    from ..classifier import ImageBinaryClassifier

    if args.plot is not None:
        _check_writable(args.plot)
    clf = ImageBinaryClassifier(
        args.backbone,
        pretrained=args.pretrained,
        weights=args.weights,
        image_size=args.image_size,
        batch_size=args.batch_size,
        trainer=_trainer(args),
        random_state=args.seed,
        verbose=_verbose(args),
    )
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


# ====================================================================== entry point
def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print warnings as ``binaryvision: warning: ...`` lines instead of source locations."""
    print(f"{PROG}: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``binaryvision`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 success, 1 an error (message on stderr), 2 a usage error,
        130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args.handler(args)
        except KeyboardInterrupt:
            if args.debug:
                raise
            print(f"\n{PROG}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `binaryvision predict ... | head`: stop quietly
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 1
        except (BinaryVisionError, OSError) as exc:
            if args.debug:
                raise
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
    return 0
