"""The exported graph and its serialisation: what :mod:`binaryvision.outputs.export` writes.

:class:`ExportedClassifier` is the fitted network plus its calibration (``_IsotonicMap``
for isotonic fits) as one :class:`torch.nn.Module`; ``_to_onnx`` and ``_to_torchscript``
turn it into the bytes of an ONNX or TorchScript file with the metadata embedded. The
input, output and metadata names the files use live here too; the public entry points,
the metadata document and the verification are in :mod:`binaryvision.outputs.export`.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..exceptions import InvalidParameterError

METADATA_KEY = "binaryvision"
TORCHSCRIPT_EXTRA_FILE = "binaryvision.json"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


# ---------------------------------------------------------------------- the graph
class _IsotonicMap(nn.Module):
    """``np.interp(p, x, y)`` for increasing knots ``x``, as clamped ramps (ONNX-friendly).

    ``y[0] + sum_k slope_k * clamp(p - x_k, 0, x_{k+1} - x_k)`` equals the interpolation
    inside ``[x_0, x_last]`` and is flat outside it, as ``np.interp`` is; a zero-width
    segment (repeated knot) is a step of ``y_{k+1} - y_k`` for ``p >= x_k``, as in ``np.interp``.
    (scikit-learn's isotonic fits never repeat a knot; a hand-made repeated knot is a jump,
    where an image exactly at the knot may land on either side by a rounding difference.)
    """

    def __init__(self, x: Any, y: Any) -> None:
        super().__init__()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or len(x) == 0 or np.any(np.diff(x) < 0):
            raise InvalidParameterError(
                "The isotonic calibration needs increasing knots x and values y of equal "
                f"length; got {len(x)} x and {len(y)} y. Refit the classifier."
            )
        width, rise = np.diff(x), np.diff(y)
        ramp = width > 0
        self.register_buffer("y0", torch.tensor(float(y[0]), dtype=torch.float64))
        self.register_buffer("lo", torch.from_numpy(x[:-1][ramp].copy()))
        self.register_buffer("width", torch.from_numpy(width[ramp].copy()))
        self.register_buffer("slope", torch.from_numpy(rise[ramp] / width[ramp]))
        self.has_steps = bool(np.any(~ramp))
        self.register_buffer("step_at", torch.from_numpy(x[:-1][~ramp].copy()))
        self.register_buffer("step", torch.from_numpy(rise[~ramp].copy()))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        d = p.unsqueeze(-1) - self.lo
        d = torch.minimum(torch.clamp(d, min=0.0), self.width)
        out = self.y0 + (d * self.slope).sum(-1)
        if self.has_steps:
            above = (p.unsqueeze(-1) >= self.step_at).to(torch.float64)
            out = out + (above * self.step).sum(-1)
        return out


def input_name(size: int, base_size: int) -> str:
    """The graph input that takes images at ``size`` px: ``images`` at the backbone's own
    size, ``images_<size>`` for the further sizes of a multi-resolution model."""
    return INPUT_NAME if int(size) == int(base_size) else f"{INPUT_NAME}_{int(size)}"


class MultiSizeNetwork(nn.Module):
    """A multi-resolution model's network: one batch per input size, the backbone's
    features of each side by side (as :class:`~binaryvision.features.extract.MultiSizeExtractor`
    builds them), then the head: ``(N,)`` logits."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.backbone(x) for x in images], dim=1)
        return self.head(features).squeeze(-1)


class ExportedClassifier(nn.Module):
    """The fitted network plus calibration: images ``(N, 3, S, S)`` to ``(N, 2)`` probabilities.

    Parameters
    ----------
    model : torch.nn.Module
        Images to one positive-class logit per image, ``(N,)``: one batch, or one batch
        per input size for a :class:`MultiSizeNetwork`.
    positive_index : int
        Column of the positive class in the output (its index in ``classes_``).
    calibration : dict, optional
        :meth:`binaryvision.Calibrator.to_dict` output, or None for the raw sigmoid.
    """

    def __init__(self, model: nn.Module, positive_index: int, calibration: dict | None) -> None:
        super().__init__()
        self.model = model
        self.positive_index = int(positive_index)
        state = dict(calibration or {})
        self.method = state.pop("method", None)
        scale, shift = 1.0, 0.0
        if self.method == "temperature":
            scale = 1.0 / float(state["temperature"])
        elif self.method == "platt":
            scale, shift = float(state["slope"]), float(state["intercept"])
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float64))
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float64))
        self.isotonic = _IsotonicMap(state["x"], state["y"]) if self.method == "isotonic" else None

    def forward(self, images: torch.Tensor, *more: torch.Tensor) -> torch.Tensor:
        """Return calibrated probabilities ``(N, 2)`` in ``classes_`` order (float32)."""
        z = self.model(images, *more).reshape(-1).to(torch.float64)
        if self.isotonic is not None:
            p = self.isotonic(torch.sigmoid(z))
        else:
            p = torch.sigmoid(self.scale * z + self.shift)
        columns = [1.0 - p, p] if self.positive_index == 1 else [p, 1.0 - p]
        return torch.stack(columns, dim=1).to(torch.float32)


# ---------------------------------------------------------------------- serialisation
@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence torch's deprecation and tracer chatter about its own exporters."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message=r".*is deprecated")
        yield


def _summary(meta: dict) -> str:
    pre = meta["preprocessing"]
    inputs = " and ".join(
        f"'{i['name']}': float32 (N, 3, {i['input_size']}, {i['input_size']}) RGB, shorter "
        f"side resized to {i['resize']}"
        for i in meta["inputs"]
    )
    return (
        f"binaryvision {meta['library_version']} binary image classifier "
        f"({meta['backbone']}). Input {inputs} "
        f"({pre['interpolation']}), centre-cropped, scaled to [0, 1], normalised with mean "
        f"{pre['mean']} and std {pre['std']}. Output '{OUTPUT_NAME}': float32 (N, 2) "
        f"calibrated probabilities of {meta['classes']}; positive class "
        f"{meta['positive_class']!r} (column {meta['positive_index']}) at threshold "
        f"{meta['threshold']:.6g}. Full metadata: metadata_props['{METADATA_KEY}'] (JSON)."
    )


def _example_input(size: int, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=generator)


def _to_onnx(module: nn.Module, examples: tuple, meta: dict, opset: int) -> bytes:
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "Exporting to ONNX needs the 'onnx' package, which is not installed. Install it "
            'with: pip install "binaryvision[export]"  (or choose format="torchscript").'
        ) from exc
    names = [i["name"] for i in meta["inputs"]]
    buffer = io.BytesIO()
    with _quiet_torch(), torch.no_grad():
        torch.onnx.export(
            module,
            examples,
            buffer,
            dynamo=False,  # the TorchScript-based exporter: works offline, no onnxscript
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes={**{name: {0: "N"} for name in names}, OUTPUT_NAME: {0: "N"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    proto.doc_string = _summary(meta)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _to_torchscript(module: nn.Module, examples: tuple, meta: dict) -> bytes:
    buffer = io.BytesIO()
    with _quiet_torch(), torch.no_grad():
        traced = torch.jit.trace(module, examples, check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_EXTRA_FILE: json.dumps(meta)})
    return buffer.getvalue()
