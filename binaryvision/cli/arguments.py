"""Argument types and the parser of the ``binaryvision`` command.

The argparse value types (``_positive_int``, ``_threshold``, ``_valid_size``, ...) and
:func:`build_parser`, which wires each subcommand to its handler in :mod:`.commands`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from .._version import __version__
from ..decisions import CALIBRATION_CHOICES, check_threshold_rule
from ..exceptions import InvalidParameterError
from .commands import _cmd_evaluate, _cmd_fit, _cmd_info, _cmd_lr_find, _cmd_plot, _cmd_predict

__all__ = ["PROG", "build_parser"]

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
    if text not in CALIBRATION_CHOICES:
        choices = ", ".join([*CALIBRATION_CHOICES, "none"])
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
        default="auto",
        help=f"{', '.join(CALIBRATION_CHOICES)} or none (default: auto, a temperature when "
        "cross-validation says it helps)",
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
