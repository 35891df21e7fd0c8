"""Batch norm folded into the convolutions: the fast, numerically equivalent frozen forward."""

from __future__ import annotations

import copy

from torch import nn

__all__ = ["fuse_for_inference"]


def fuse_for_inference(module: nn.Module) -> nn.Module:
    """Return an eval-mode copy with every BatchNorm folded into the conv before it.

    Frozen inference then skips the normalisation arithmetic entirely. Pairs are found
    by module order (a ``Conv2d`` immediately followed by a ``BatchNorm2d`` in the same
    parent, or named ``_bnK`` after a conv as in EfficientNet); modules that do not fit
    that pattern are left as they are, so the result is always numerically equivalent.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(module).eval()
    _PAIRS = {
        "_conv_stem": "_bn0",
        "_expand_conv": "_bn0",
        "_depthwise_conv": "_bn1",
        "_project_conv": "_bn2",
        "_conv_head": "_bn1",
    }
    for parent in list(fused.modules()):
        children = dict(parent.named_children())
        if isinstance(parent, nn.Sequential):
            names = list(children)
            for a, b in zip(names, names[1:]):
                conv, bn = children[a], children[b]
                if (
                    isinstance(conv, nn.Conv2d)
                    and type(bn) is nn.BatchNorm2d
                    and bn.track_running_stats
                ):
                    setattr(parent, a, fuse_conv_bn_eval(conv, bn))
                    setattr(parent, b, nn.Identity())
        for conv_name, bn_name in _PAIRS.items():
            conv, bn = children.get(conv_name), children.get(bn_name)
            if isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d:
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                children[bn_name] = nn.Identity()
    return fused
