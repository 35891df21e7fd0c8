"""The backbone registry: register, create and list feature extractors by name."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import InvalidParameterError, UnknownBackboneError
from ._base import Backbone

__all__ = ["create_backbone", "list_backbones", "register_backbone"]

BackboneFactory = Callable[..., Backbone]


@dataclass(frozen=True)
class _Entry:
    factory: BackboneFactory
    has_weights: bool
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register_backbone(
    name: str, *, has_weights: bool = True, description: str = ""
) -> Callable[[BackboneFactory], BackboneFactory]:
    """Register a backbone factory under ``name`` (a decorator).

    The factory is called as ``factory(pretrained=..., weights=...)`` and must return a
    :class:`~binaryvision.backbones.Backbone`.

    Parameters
    ----------
    name : str
        Registry key, lower_snake_case. Registering a name twice is an error.
    has_weights : bool
        Whether pretrained weights exist for this backbone.
    description : str
        One line describing the backbone, kept in the registry; defaults to the
        factory's docstring.

    Examples
    --------
    >>> import torch
    >>> from binaryvision.backbones import ModuleBackbone, register_backbone
    >>> @register_backbone("my_flat", has_weights=False)
    ... def my_flat(pretrained=False, weights=None):
    ...     return ModuleBackbone(torch.nn.Conv2d(3, 4, 3), pretrained=False)
    """
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(
            f"register_backbone: name must be a non-empty str, got {name!r}."
        )

    def decorator(factory: BackboneFactory) -> BackboneFactory:
        if name in _REGISTRY:
            raise InvalidParameterError(
                f"A backbone named {name!r} is already registered. Choose another name; "
                "registered names cannot be overwritten."
            )
        _REGISTRY[name] = _Entry(
            factory, has_weights, description or (factory.__doc__ or "").strip()
        )
        return factory

    return decorator


def _unregister_backbone(name: str) -> None:
    """Remove a registered name (for tests and notebooks that re-run a cell)."""
    _REGISTRY.pop(name, None)


def list_backbones(pretrained: bool = False) -> list[str]:
    """Return the registered backbone names, sorted.

    Parameters
    ----------
    pretrained : bool
        Only list backbones that have pretrained weights.
    """
    return sorted(n for n, e in _REGISTRY.items() if e.has_weights or not pretrained)


def create_backbone(name: str, *, pretrained: bool = True, weights: str | None = None) -> Backbone:
    """Build a registered backbone.

    Parameters
    ----------
    name : str
        A name from :func:`list_backbones`.
    pretrained : bool
        Load pretrained weights (offline from an installed package, from the torch hub
        cache, or downloaded by torchvision on a machine with internet).
    weights : str or path, optional
        A local weights file (a state dict) to load instead of the default weights.

    Raises
    ------
    UnknownBackboneError
        The name is not registered; the message lists the closest names.
    WeightsNotFoundError
        Pretrained weights are neither installed nor downloadable.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownBackboneError(
            f"Unknown backbone {name!r}.{hint} Known backbones: {', '.join(list_backbones())}. "
            "Register your own with binaryvision.register_backbone or pass an nn.Module."
        )
    backbone = entry.factory(pretrained=pretrained and entry.has_weights, weights=weights)
    backbone.registry_name = name  # type: ignore[attr-defined]
    return backbone
