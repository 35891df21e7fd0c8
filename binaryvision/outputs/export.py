"""Exporting a fitted classifier to ONNX or TorchScript, for serving without binaryvision.

The exported graph is the fitted network *and* its calibration, nothing else:

input ``images``
    float32, shape ``(N, 3, S, S)`` (NCHW, RGB), where ``S = data_config_.input_size``;
    the batch size ``N`` is free. The images must already be preprocessed exactly as
    :meth:`~binaryvision.ImageBinaryClassifier.predict_proba` does it (see below);
    :func:`preprocess` does it for you.
inputs ``images_<size>``
    A multi-resolution model (the autopilot's ``multi_resolution_<size>px``) also takes
    the same images prepared at each further size, in the order of ``metadata["inputs"]``;
    :func:`graph_inputs` prepares every input by name.
output ``probabilities``
    float32, shape ``(N, 2)``: the calibrated probabilities, columns in ``classes_``
    order, exactly the numbers ``predict_proba(X)`` returns (``tta=0``). The column of
    the positive class is ``metadata["positive_index"]``; predict the positive class
    where that column is ``>= metadata["threshold"]``.

Preprocessing (the library's evaluation transform, :func:`binaryvision.build_transforms`),
with ``S = input_size``, ``R = round(S / crop_pct)`` (the ``resize`` entry):

1. decode to 8-bit RGB with :func:`binaryvision.load_image` ``(path, min_size=R)``:
   EXIF orientation applied, transparency composited on white, and JPEG files decoded
   at reduced size (Pillow's draft mode) as long as the shorter side stays ``>= R``.
   A full-size JPEG decode gives slightly different pixels;
2. resize the shorter side to ``R`` pixels, keeping the aspect ratio, with antialiased
   ``interpolation`` (torchvision ``v2.Resize(R, antialias=True)``);
3. centre-crop ``S x S``;
4. scale to ``[0, 1]`` (divide by 255), then ``(x - mean) / std`` per channel.

All of it, and the classes, positive class, threshold, calibration and library version,
is stored in the file as JSON: in the ONNX model's ``metadata_props`` under the key
``"binaryvision"`` (with a readable summary in its ``doc_string``), and in TorchScript
files as the extra file ``"binaryvision.json"``. :func:`read_export_metadata` reads
either. Models trained with custom ``transforms=`` record ``"custom_transforms": true``
and the repr of their eval transform; reproduce that transform yourself.

Calibration inside the graph: ``temperature`` and ``platt`` are affine in the logit
(``sigmoid(a * logit + b)``); ``isotonic`` is the same piecewise-linear interpolation of
``sigmoid(logit)`` that :meth:`~binaryvision.Calibrator.transform` does, written as a sum
of clamped ramps (no ``searchsorted``, so it exports to ONNX opset 13+ and TorchScript).
The calibration runs in float64 inside the graph, as in the library.

ONNX export uses PyTorch's TorchScript-based exporter (``dynamo=False``), which works
offline without ``onnxscript``; it needs the ``onnx`` package to write the metadata,
and ``onnxruntime`` to verify the file (``pip install "binaryvision[export]"``).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import _version
from ..exceptions import BinaryVisionError, InvalidParameterError
from ._export_graph import (
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    TORCHSCRIPT_EXTRA_FILE,
    ExportedClassifier,
    MultiSizeNetwork,
    _example_input,
    _quiet_torch,
    _to_onnx,
    _to_torchscript,
    input_name,
)

__all__ = [
    "EXPORT_FORMATS",
    "ExportError",
    "export_model",
    "graph_inputs",
    "preprocess",
    "read_export_metadata",
]

#: Export formats and the file suffixes that select them when ``format`` is None.
EXPORT_FORMATS = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".ts", ".torchscript"),
}
#: Version of the metadata layout written into exported files.
#: 2 added ``inputs`` (every input of the graph: more than one for a multi-resolution
#: model) and ``preprocessing["extra_sizes"]``; ``input`` is still the first of them.
EXPORT_METADATA_VERSION = 2
DEFAULT_OPSET = 17
_VERIFY_ATOL = 1e-4


class ExportError(BinaryVisionError, RuntimeError):
    """The exported model could not be written, or does not reproduce the classifier."""


# ---------------------------------------------------------------------- helpers
def _resolve_format(path: str | os.PathLike, format: str | None) -> str:
    if format is not None:
        if not isinstance(format, str) or format.lower() not in EXPORT_FORMATS:
            raise InvalidParameterError(
                f"format must be one of {sorted(EXPORT_FORMATS)} or None (to infer it from the "
                f"suffix of path); got {format!r}."
            )
        return format.lower()
    suffix = Path(os.fspath(path)).suffix.lower()
    for name, suffixes in EXPORT_FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(f"{s} ({n})" for n, sfx in EXPORT_FORMATS.items() for s in sfx)
    raise InvalidParameterError(
        f"Cannot tell the export format from path {os.fspath(path)!r} (suffix {suffix or 'none'!r}):"
        f" expected a name ending in {known}. Rename the file, or pass "
        "format='onnx' or format='torchscript'."
    )


def _metadata(clf: Any) -> dict:
    """The JSON document stored in exported files."""
    from ..transforms import Transforms

    config = clf.data_config_
    from .model_file import _plain as plain  # numpy scalars to JSON values, as save() does

    pos = clf._pos_index()
    calibration = None if clf.calibrator_ is None else clf.calibrator_.to_dict()
    size = int(config.input_size)
    inputs = [
        {
            "name": input_name(s, size),
            "shape": ["N", 3, s, s],
            "dtype": "float32",
            "layout": "NCHW",
            "channels": "RGB",
            "input_size": s,
            "resize": int(round(s / config.crop_pct)),
        }
        for s in _sizes(clf)
    ]
    return {
        "metadata_version": EXPORT_METADATA_VERSION,
        "library_version": _version.__version__,
        "torch_version": torch.__version__,
        "backbone": clf.backbone_name_,
        "input": inputs[0],
        "inputs": inputs,
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["N", 2],
            "dtype": "float32",
            "meaning": "calibrated probabilities, columns in classes order",
        },
        "classes": [plain(c) for c in clf.classes_],
        "positive_class": plain(clf.positive_class_),
        "positive_index": pos,
        "threshold": float(clf.threshold_),
        "calibration": calibration,
        "preprocessing": {
            "input_size": size,
            "resize": int(round(size / config.crop_pct)),
            "extra_sizes": _sizes(clf)[1:],
            "crop_pct": float(config.crop_pct),
            "interpolation": config.interpolation,
            "mean": [float(v) for v in config.mean],
            "std": [float(v) for v in config.std],
            "decode": "binaryvision.load_image(path, min_size=resize): 8-bit RGB, EXIF "
            "orientation applied, alpha composited on white, JPEG decoded in draft mode at a "
            "shorter side >= resize",
            "steps": [
                "resize the shorter side to `resize` px, keeping the aspect ratio "
                "(antialiased, `interpolation`)",
                "centre-crop input_size x input_size",
                "scale pixels to [0, 1] (divide by 255)",
                "subtract `mean` and divide by `std`, per RGB channel",
            ],
            "custom_transforms": isinstance(clf.transforms, Transforms),
            "eval_transform": repr(clf.transforms_.eval),
        },
    }


def _sizes(clf: Any) -> list[int]:
    """The input sizes of the fitted model: the backbone's, then a multi-resolution
    model's further sizes."""
    extra = getattr(clf.model_, "extra_sizes", ())
    return [int(clf.data_config_.input_size), *map(int, extra)]


def _run_onnx(data: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], feeds)[0]


def _run_torchscript(data: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with _quiet_torch(), torch.no_grad():
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        return loaded(*map(torch.from_numpy, feeds.values())).numpy()


def _check_exported(fmt: str, data: bytes, module: nn.Module, meta: dict, path: str) -> None:
    """Run the exported bytes on a batch of another size and compare with ``module``."""
    xs = [_example_input(i["input_size"], 3, seed=1 + k) for k, i in enumerate(meta["inputs"])]
    with torch.no_grad():
        expected = module(*xs).numpy()
    run = _run_onnx if fmt == "onnx" else _run_torchscript
    feeds = {i["name"]: x.numpy() for i, x in zip(meta["inputs"], xs)}
    got = np.asarray(run(data, feeds))
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=_VERIFY_ATOL):
        worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else np.nan
        raise ExportError(
            f"The {fmt} export for {path!r} does not reproduce the classifier: on a batch of "
            f"3 images it gives shape {got.shape} where {expected.shape} was expected, largest "
            f"difference {worst:.3g} (tolerance {_VERIFY_ATOL}). Nothing was written. The "
            "backbone may use operations that tracing cannot capture (data-dependent control "
            "flow); try the other format, or report the backbone."
        )


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------- public API
def export_model(
    clf: Any,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    verify: bool | None = None,
) -> Path:
    """Write a fitted classifier as an ONNX or TorchScript model, atomically.

    See :meth:`binaryvision.ImageBinaryClassifier.export`, which calls this, and the
    module docstring for the graph's input, output and the preprocessing it expects.

    Parameters
    ----------
    clf : ImageBinaryClassifier
        A fitted classifier.
    path : str or path
        Where to write. The suffix selects the format when ``format`` is None:
        ``.onnx`` for ONNX; ``.pt``, ``.ts`` or ``.torchscript`` for TorchScript.
    format : {"onnx", "torchscript"}, optional
        The format, whatever the suffix.
    opset : int, default=17
        ONNX opset version (ONNX only).
    verify : bool, optional
        Run the exported model on a batch of random inputs (of a size other than the
        one traced, so a frozen batch size is caught) and compare with the PyTorch
        model within 1e-4 before writing. None: verify when the runtime is installed
        (always for TorchScript; for ONNX when ``onnxruntime`` is). True: require it.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    NotFittedError
        ``clf`` is not fitted.
    InvalidParameterError
        ``format`` is unknown, or ``path``'s suffix does not name a format.
    ImportError
        ONNX export without the ``onnx`` package, or ``verify=True`` without ``onnxruntime``.
    ExportError
        The exported model does not reproduce the PyTorch model (nothing is written).
    """
    from ..backbones.fuse import fuse_for_inference
    from ..persistence import atomic_write

    clf._check_fitted()
    fmt = _resolve_format(path, format)
    name = os.fspath(path)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise InvalidParameterError(f"opset must be an int >= 13; got {opset!r}.")
    if verify not in (None, True, False):
        raise InvalidParameterError(f"verify must be None, True or False; got {verify!r}.")
    if fmt == "onnx" and verify is True and not _onnxruntime_available():
        raise ImportError(
            "verify=True for an ONNX export needs 'onnxruntime', which is not installed. "
            'Install it with: pip install "binaryvision[export]", or pass verify=None.'
        )
    meta = _metadata(clf)
    calibration = meta["calibration"]
    network = fuse_for_inference(copy.deepcopy(clf.model_).cpu().float()).eval()
    if len(meta["inputs"]) > 1:  # the autopilot's multi-resolution model
        network = MultiSizeNetwork(network.backbone, network.head).eval()
    module = ExportedClassifier(network, meta["positive_index"], calibration).eval()
    module.requires_grad_(False)
    examples = tuple(_example_input(i["input_size"], 2, seed=0) for i in meta["inputs"])
    if fmt == "onnx":
        data = _to_onnx(module, examples, meta, opset)
        check = verify is True or (verify is None and _onnxruntime_available())
    else:
        data = _to_torchscript(module, examples, meta)
        check = verify is not False
    if check:
        _check_exported(fmt, data, module, meta, name)
    atomic_write(path, data)
    return Path(name)


def read_export_metadata(path: str | os.PathLike, format: str | None = None) -> dict:
    """The metadata (preprocessing, classes, threshold, ...) of a file :func:`export_model` wrote.

    Parameters
    ----------
    path : str or path
        An exported ``.onnx`` or TorchScript file.
    format : {"onnx", "torchscript"}, optional
        As for :func:`export_model`; inferred from the suffix when None.

    Returns
    -------
    dict
        The JSON document (see the module docstring).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    InvalidParameterError
        The format cannot be told, or the file holds no binaryvision metadata.
    """
    fmt = _resolve_format(path, format)
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"Exported model {name!r} does not exist.")
    raw: Any = None
    if fmt == "onnx":
        try:
            import onnx

            proto = onnx.load(name, load_external_data=False)
            raw = {p.key: p.value for p in proto.metadata_props}.get(METADATA_KEY)
        except ImportError:
            import onnxruntime

            session = onnxruntime.InferenceSession(name, providers=["CPUExecutionProvider"])
            raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    else:
        files = {TORCHSCRIPT_EXTRA_FILE: ""}
        with _quiet_torch():
            torch.jit.load(name, map_location="cpu", _extra_files=files)
        raw = files[TORCHSCRIPT_EXTRA_FILE] or None
    if not raw:
        raise InvalidParameterError(
            f"{name!r} holds no binaryvision metadata: it was not written by "
            "ImageBinaryClassifier.export (or the metadata was stripped)."
        )
    return json.loads(raw)


def preprocess(source: Any, images: Any, *, size: int | None = None) -> np.ndarray:
    """Images as the exported graph's input: float32 ``(N, 3, S, S)``, exactly as the library.

    Parameters
    ----------
    source : ImageBinaryClassifier or dict
        A fitted classifier (its own eval transform is used, custom ones included), or
        the metadata of an exported file (:func:`read_export_metadata`), from which the
        standard eval transform is rebuilt.
    images
        Anything :meth:`~binaryvision.ImageBinaryClassifier.predict_proba` accepts: a
        folder, a path, a list of paths or PIL images, or a uint8 array ``(n, H, W, 3)``.
    size : int, optional
        The input size ``S`` to prepare (default: the backbone's, the ``images`` input).
        A multi-resolution model's graph has one more input per further size (see
        :func:`graph_inputs`, which prepares them all).

    Returns
    -------
    numpy.ndarray
        float32 ``(N, 3, S, S)``, C-contiguous: feed it to ONNX Runtime as it is, or to
        TorchScript through ``torch.from_numpy``.

    Raises
    ------
    InvalidParameterError
        ``source`` is neither, its metadata records custom transforms, or ``size`` is
        not one of the model's input sizes.
    """
    from ..data import as_image_set, load_image
    from ..transforms import build_transforms
    from ..transforms.config import DataConfig

    if isinstance(source, Mapping):
        pre = source.get("preprocessing")
        if not isinstance(pre, Mapping):
            raise InvalidParameterError(
                "preprocess(source, ...) needs a fitted ImageBinaryClassifier or the dict that "
                "read_export_metadata returns; this dict has no 'preprocessing' entry."
            )
        if pre.get("custom_transforms"):
            raise InvalidParameterError(
                "This model was trained with custom transforms= "
                f"({pre.get('eval_transform')}); they cannot be rebuilt from the metadata. "
                "Pass the fitted classifier instead, or apply that transform yourself."
            )
        config = DataConfig.from_dict(pre)
        sizes = [config.input_size, *pre.get("extra_sizes", [])]
        transform, min_size = build_transforms(config, "none").eval, int(pre["resize"])
    elif hasattr(source, "_check_fitted"):
        source._check_fitted()
        config, sizes = source.model_.backbone.data_config, _sizes(source)
        transform, min_size = source.transforms_.eval, source.transforms_.decode_size
    else:
        raise InvalidParameterError(
            "preprocess(source, ...) needs a fitted ImageBinaryClassifier or the dict that "
            f"read_export_metadata returns; got {type(source).__name__}."
        )
    if size is not None and (isinstance(size, bool) or size not in sizes):
        raise InvalidParameterError(
            f"preprocess(..., size={size!r}): this model's inputs take images at "
            f"{' and '.join(map(str, sizes))} px; pass one of those, or None for "
            f"{sizes[0]}."
        )
    if size is not None and size != sizes[0]:
        # as binaryvision.features.extract.make_extractor builds the further sizes' pass
        further = build_transforms(dataclasses.replace(config, input_size=int(size)), "none")
        transform, min_size = further.eval, further.decode_size
    items = as_image_set(images).items
    tensors = [transform(load_image(item, min_size=min_size)) for item in items]
    if not tensors:
        raise InvalidParameterError("preprocess(...) got no images.")
    return np.ascontiguousarray(torch.stack(tensors).to(torch.float32).numpy())


def graph_inputs(source: Any, images: Any) -> dict[str, np.ndarray]:
    """Every input of the exported graph, by name, prepared from ``images``.

    ``{"images": preprocess(source, images)}`` for most models; a multi-resolution model
    (the autopilot's ``multi_resolution_<size>px``) also takes ``"images_<size>"``, the
    same images prepared at that size. Feed the dict to ONNX Runtime as it is
    (``session.run(None, graph_inputs(meta, paths))``), or its values in order to a
    TorchScript module.

    Parameters
    ----------
    source : ImageBinaryClassifier or dict
        As for :func:`preprocess`.
    images
        As for :func:`preprocess`.

    Returns
    -------
    dict of str to numpy.ndarray
        Input name to float32 ``(N, 3, S, S)`` array, in the graph's input order.
    """
    # the inputs after the first, by name and size (preprocess reports a bad source)
    if isinstance(source, Mapping):
        further = [(i["name"], int(i["input_size"])) for i in source.get("inputs", [])[1:]]
    else:
        sizes = _sizes(source) if hasattr(source, "model_") else []
        further = [(input_name(s, sizes[0]), s) for s in sizes[1:]]
    if isinstance(images, Iterator):  # read once, used once per size
        images = list(images)
    feeds = {INPUT_NAME: preprocess(source, images)}
    for name, size in further:
        feeds[name] = preprocess(source, images, size=size)
    return feeds
