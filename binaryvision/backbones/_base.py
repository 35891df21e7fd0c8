"""The backbone contract: an ``nn.Module`` that maps images to pooled feature vectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..transforms.config import DataConfig

__all__ = [
    "Backbone",
    "DataConfig",
    "ModuleBackbone",
    "load_weights",
    "split_into_groups",
]


class Backbone(nn.Module):
    """Base class of feature extractors.

    Subclasses set :attr:`num_features`, :attr:`data_config` and :attr:`pretrained`,
    implement :meth:`forward` returning ``(N, num_features)`` and may override
    :meth:`layer_groups` (earliest layers first) for discriminative learning rates.
    """

    num_features: int
    data_config: DataConfig
    pretrained: bool = False

    def layer_groups(self) -> list[list[nn.Module]]:
        """Groups of modules from the input side to the output side.

        The default puts the whole backbone in one group.
        """
        return [[self]]


def split_into_groups(modules: Sequence[nn.Module], n: int = 3) -> list[list[nn.Module]]:
    """Split an ordered list of modules into at most ``n`` contiguous groups of similar length."""
    modules = list(modules)
    n = max(1, min(n, len(modules)))
    size, extra = divmod(len(modules), n)
    groups, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        groups.append(modules[start:stop])
        start = stop
    return groups


class ModuleBackbone(Backbone):
    """Wrap any user ``nn.Module`` that maps ``(N, 3, H, W)`` images to features.

    Outputs of shape ``(N, C, H', W')`` are average-pooled; other shapes are flattened.

    Parameters
    ----------
    module : torch.nn.Module
        The feature extractor.
    data_config : DataConfig, optional
        Its preprocessing; defaults to 224 px with ImageNet statistics.
    num_features : int, optional
        Width of the output; measured with one dummy forward pass when omitted.
    pretrained : bool
        Whether the module carries trained weights (then it starts frozen).
    """

    def __init__(
        self,
        module: nn.Module,
        data_config: DataConfig | None = None,
        num_features: int | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.module = module
        self.data_config = data_config or DataConfig()
        self.pretrained = pretrained
        if num_features is None:
            size = self.data_config.input_size
            was_training = module.training
            module.eval()
            with torch.no_grad():
                num_features = int(self._pool(module(torch.zeros(2, 3, size, size))).shape[1])
            module.train(was_training)
        self.num_features = num_features

    @staticmethod
    def _pool(out: torch.Tensor) -> torch.Tensor:
        if out.ndim == 4:
            return out.mean(dim=(2, 3))
        return out.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features ``(N, num_features)``."""
        return self._pool(self.module(x))

    def layer_groups(self) -> list[list[nn.Module]]:
        """Split the module's children into three contiguous groups."""
        children = list(self.module.children()) or [self.module]
        return split_into_groups(children, 3)


def load_weights(module: nn.Module, path: str | Path, drop_prefixes: tuple[str, ...] = ()) -> None:
    """Load a state-dict file into ``module`` without ever running code from the file.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers.
    A checkpoint dict with a ``"state_dict"`` entry is unwrapped. Keys starting with one of
    ``drop_prefixes`` (an ImageNet classifier, say) are left out.

    Raises
    ------
    WeightsNotFoundError
        ``path`` does not exist.
    ModelFileError
        The file is not a plain state dict of tensors (a pickle that would have to run
        code, a corrupt or foreign file), or its tensors do not fit ``module``.
    """
    from ..exceptions import ModelFileError, WeightsNotFoundError

    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"Weights file {name!r} does not exist.")
    fix = (
        "Save weights with torch.save(model.state_dict(), path) or "
        "safetensors.torch.save_file(model.state_dict(), path), and pass that file."
    )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(name)
        else:
            state = torch.load(name, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for refused files
        # torch's own message suggests turning the safety off, which we never want to echo.
        raise ModelFileError(
            f"Weights file {name!r} cannot be loaded safely as a state dict of tensors "
            f"({type(exc).__name__}): it is corrupt, another format, or a pickle that "
            f"would have to run code to load, which binaryvision refuses. {fix}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(
            f"Weights file {name!r} holds a {type(state).__name__}, not a state dict of "
            f"tensors. {fix}"
        )
    state = {k: v for k, v in state.items() if not str(k).startswith(drop_prefixes)}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(
            f"Weights file {name!r} does not fit the {type(module).__name__} backbone: "
            f"{str(exc).splitlines()[0]} Check that the file belongs to this backbone."
        ) from None
