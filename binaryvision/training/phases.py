"""The fitting phases: the head on cached features, then (optionally) the unfrozen network.

Each function takes ``params``, the classifier's hyperparameters (any object with the
attributes of :class:`~binaryvision.ImageBinaryClassifier`'s constructor arguments:
``epochs``, ``batch_size``, ``weight_decay``, ``early_stopping``, ``patience``,
``fine_tune_epochs``, ``fine_tune_lr``, ``layer_lr_ratio``, ``transforms``), and the
:class:`~binaryvision.Trainer` that runs the work. Seeds come in as ints and feed local
generators only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..data import ImageDataset, ImageSet
from ..exceptions import InvalidParameterError
from ..transforms import AUGMENT_PRESETS, Transforms
from ..transforms import on_device as device_data
from .callbacks import EarlyStopping, History
from .checkpoint import Checkpointer
from .lr_finder import LRFindResult, lr_range_test
from .model import BinaryModel, _Head
from .trainer import Trainer

__all__ = ["fine_tune", "fine_tune_parts", "fit_head", "head_range_test", "local_rng", "loss"]


@contextlib.contextmanager
def local_rng(trainer: Trainer, seed: int, cpu_state: torch.Tensor | None = None) -> Iterator[None]:
    """Seed torch's RNGs for a block and restore the caller's RNG state afterwards.

    ``cpu_state`` continues the CPU generator from a state saved in an earlier block.
    """
    device = trainer.resolved_device()
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        if cpu_state is not None:
            torch.set_rng_state(cpu_state)
        yield


def loss(trainer: Trainer, pos_weight: float | None) -> nn.Module:
    """Binary cross-entropy on logits, weighted by ``pos_weight`` (None: unweighted)."""
    weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float32)
    return nn.BCEWithLogitsLoss(pos_weight=weight).to(trainer.resolved_device())


def _head_loaders(params, f_train, y_train, f_valid, y_valid, seed):
    generator = torch.Generator().manual_seed(seed)
    batch_size = min(params.batch_size, len(f_train))
    train_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(f_train, y_train),
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
        drop_last=len(f_train) > batch_size,
    )
    valid_loader = (
        None
        if f_valid is None
        else torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(f_valid, y_valid), batch_size=512
        )
    )
    return train_loader, valid_loader


def _phase_callbacks(params, history: History, valid_loader: Any) -> list:
    """History always; early stopping first (it restores weights) when there is validation."""
    if params.early_stopping and valid_loader is not None:
        return [EarlyStopping("valid_loss", patience=params.patience), history]
    return [history]


def fit_head(
    params,
    model: BinaryModel,
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    f_valid: torch.Tensor | None,
    y_valid: torch.Tensor | None,
    lr: float,
    trainer: Trainer,
    history: History,
    seed: int,
    pos_weight: float | None = None,
    checkpoint: Checkpointer | None = None,
    phase: str = "head",
    stop_after: int | None = None,
) -> int:
    """Train ``model.head`` on cached features for ``params.epochs`` (one-cycle AdamW).

    With ``stop_after``, training ends after that epoch, the schedule still planned for
    ``params.epochs`` (so a cross-fitting fold's head is trained as far as the final head
    was, see :func:`~binaryvision.training.cross_fit.cross_fit_logits`). Returns the
    epoch whose weights the head ends with (early stopping's best epoch, else the last).
    """
    head = _Head(model.head)
    train_loader, valid_loader = _head_loaders(params, f_train, y_train, f_valid, y_valid, seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=params.epochs * len(train_loader)
    )
    state = trainer.fit(
        head,
        train_loader,
        valid_loader,
        optimizer,
        scheduler,
        params.epochs if stop_after is None else stop_after,  # one-cycle still over all
        loss(trainer, pos_weight),
        phase=phase,
        callbacks=_phase_callbacks(params, history, valid_loader),
        checkpoint=checkpoint,
    )
    return int(state.logs.get("best_epoch") or state.epoch)


def head_range_test(params, model, f_train, y_train, trainer, seed, **sweep) -> LRFindResult:
    """The learning-rate range test of the head on cached features."""
    head = _Head(model.head)
    loader, _ = _head_loaders(params, f_train, y_train, None, None, seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=params.weight_decay)
    return lr_range_test(trainer, head, loader, optimizer, nn.BCEWithLogitsLoss(), **sweep)


def fine_tune_parts(params, model, train, y_train, transforms, trainer, seed, lr, shard=False):
    """The optimizer (discriminative learning rates per layer group), the augmented
    training loader and the groups' peak learning rates for fine-tuning ``model``."""
    backbone = model.backbone
    backbone.requires_grad_(True)
    groups = [*backbone.layer_groups(), [model.head]]
    head_lr = float(params.fine_tune_lr or lr / 10)
    n = len(groups)
    lrs = [head_lr * params.layer_lr_ratio ** ((n - 1 - i) / max(n - 1, 1)) for i in range(n)]
    param_groups = [
        {"params": [p for m in g for p in m.parameters()], "lr": lr_i}
        for g, lr_i in zip(groups, lrs)
    ]
    optimizer = torch.optim.AdamW(param_groups, lr=head_lr, weight_decay=params.weight_decay)
    batch_size = min(params.batch_size, len(train))
    generator = torch.Generator().manual_seed(seed + 1)
    # drop_last avoids a trailing batch of one image, which batch norm cannot train on
    drop_last = len(train) > batch_size
    shard_seed = seed + 1 if shard else None
    preset = _device_preset(params, trainer, len(train), backbone.data_config)
    if preset is None:
        dataset = ImageDataset(train.items, y_train.numpy(), transforms.train)
        loader = trainer.loader(
            dataset,
            batch_size,
            shuffle=True,
            generator=generator,
            drop_last=drop_last,
            shard_seed=shard_seed,
        )
    else:
        sampler, batch_size = trainer.shard(range(len(train)), batch_size, True, shard_seed)
        loader = device_data.DeviceLoader(
            device_data.store_images(train.items, backbone.data_config, preset, trainer),
            y_train.numpy(),
            backbone.data_config,
            preset,
            batch_size,
            shuffle=True,
            generator=generator,
            drop_last=drop_last,
            sampler=sampler,
        )
    return optimizer, loader, lrs


def _device_preset(params, trainer: Trainer, n_images: int, config: Any) -> str | None:
    """The augmentation preset to fine-tune with from images kept on the device, or
    None for the DataLoader path (``Trainer(data_on_device=...)``)."""
    if not isinstance(params.transforms, str):
        if trainer.data_on_device is True:
            raise InvalidParameterError(
                "Trainer(data_on_device=True) augments on the device with the "
                f"transforms presets {AUGMENT_PRESETS}; this classifier has its own "
                "Transforms. Use Trainer(data_on_device=False) (or 'auto') with them."
            )
        return None
    n_bytes = device_data.stored_bytes(n_images, config, params.transforms)
    return params.transforms if trainer.resolved_data_on_device(n_bytes) else None


def fine_tune(
    params,
    model: BinaryModel,
    train: ImageSet,
    y_train: torch.Tensor,
    valid: ImageSet | None,
    y_valid: torch.Tensor | None,
    transforms: Transforms,
    trainer: Trainer,
    history: History,
    seed: int,
    lr: float,
    pos_weight: float | None = None,
    checkpoint: Checkpointer | None = None,
) -> None:
    """Train the unfrozen network on augmented images for ``params.fine_tune_epochs``."""
    optimizer, loader, lrs = fine_tune_parts(
        params, model, train, y_train, transforms, trainer, seed, lr, shard=True
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lrs, total_steps=params.fine_tune_epochs * len(loader)
    )
    valid_loader = None
    if valid is not None and isinstance(loader, device_data.DeviceLoader):
        valid_loader = device_data.DeviceLoader(
            device_data.store_images(valid.items, loader.config, "none", trainer),
            y_valid.numpy(),
            loader.config,
            "none",
            trainer.resolved_inference_batch_size(),
        )
    elif valid is not None:
        valid_loader = trainer.loader(
            ImageDataset(
                valid.items, y_valid.numpy(), transforms.eval, min_size=transforms.decode_size
            ),
            trainer.resolved_inference_batch_size(),
            workers=trainer.resolved_workers(inference=True),
        )
    trainer.fit(
        model,
        loader,
        valid_loader,
        optimizer,
        scheduler,
        params.fine_tune_epochs,
        loss(trainer, pos_weight),
        phase="fine_tune",
        callbacks=_phase_callbacks(params, history, valid_loader),
        checkpoint=checkpoint,
    )
    model.backbone.requires_grad_(False)
