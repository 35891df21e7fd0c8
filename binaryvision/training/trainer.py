"""The Trainer: where and how fast training runs (device, precision, workers, progress).

Anything that changes the fitted model is a hyperparameter of
:class:`~binaryvision.ImageBinaryClassifier`; the :class:`Trainer` only decides how the
work is executed. Subclass it and override :meth:`Trainer.train_step` or
:meth:`Trainer.validation_step` to change the inner loop.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..exceptions import InvalidParameterError
from . import runtime
from .callbacks import Callback, ProgressBar, TrainState
from .checkpoint import LoopObjects
from .inference import gather, is_conv_net, progress

__all__ = ["Trainer"]


class Trainer:
    """Runs training and inference: device, precision, data-loading workers, callbacks.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA when available, else the CPU.
    precision : {"auto", "32", "bf16", "16"}
        ``"auto"`` uses bf16 autocast on CUDA GPUs that support it (fp16 with a gradient
        scaler otherwise) and plain fp32 on the CPU.
    num_workers : int or "auto"
        DataLoader worker processes for decoding images. ``"auto"`` uses one per CPU core
        beyond the first, at most 8; on the CPU, feature extraction and prediction use only
        the cores torch's threads leave free (see :meth:`resolved_workers`).
    callbacks : list of Callback, optional
        Extra callbacks; they receive the loop's events.
    progress : bool
        Show progress (a tqdm bar on a terminal, plain lines otherwise).
    inference_batch_size : int or "auto"
        Batch size for feature extraction and prediction (4 on CPU, where small batches
        keep activations in cache, 256 on GPU).
    grad_clip : float or None
        Clip the gradient norm to this value (None disables).
    deterministic : bool
        Make CUDA training repeatable run to run (CPU training already is, with an integer
        ``random_state``): while binaryvision trains, PyTorch's deterministic algorithms
        are switched on and cuDNN's benchmark mode off, and the previous settings are
        restored afterwards. Slower on GPUs. Set the environment variable
        ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` before starting Python, as PyTorch requires;
        a warning says so when it is missing.
    distributed : {"auto", False}
        ``"auto"``: when the script was started by ``torchrun`` with several processes,
        join the process group (NCCL on CUDA, Gloo on CPU) and share the work (see
        :mod:`binaryvision.distributed`); otherwise train in this process alone.
        ``False``: always alone.
    dist_timeout : float
        Seconds a process waits for the others in a collective operation before failing
        (a crashed peer then stops the job instead of hanging it).
    compile : bool
        Fine-tune through :func:`torch.compile`. Compiling costs time up front (about a
        minute on a 2-core CPU) and pays back on long fine-tuning runs, mostly on GPUs.
        The weights end close to, not bitwise equal to, an uncompiled run.
    data_on_device : {"auto", True, False}
        Fine-tune from images decoded once and kept as uint8 on the device, augmented
        there a whole batch at a time (:mod:`binaryvision.device_data`), instead of
        decoding and augmenting each image in DataLoader workers every epoch. ``"auto"``:
        on CUDA, when they take at most 2 GiB and a quarter of the free GPU memory.
        ``True`` also on the CPU. Works with the ``transforms`` presets, not with your
        own :class:`~binaryvision.transforms.Transforms`.
    """

    _channels_last = False  # set by _layout while a model runs in that memory format

    def __init__(
        self,
        device: str | torch.device = "auto",
        precision: str = "auto",
        num_workers: int | str = "auto",
        callbacks: Sequence[Callback] | None = None,
        progress: bool = True,
        inference_batch_size: int | str = "auto",
        grad_clip: float | None = 5.0,
        deterministic: bool = False,
        distributed: str | bool = "auto",
        dist_timeout: float = 1800.0,
        compile: bool = False,
        data_on_device: bool | str = "auto",
    ) -> None:
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.callbacks = callbacks
        self.progress = progress
        self.inference_batch_size = inference_batch_size
        self.grad_clip = grad_clip
        self.deterministic = deterministic
        self.distributed = distributed
        self.dist_timeout = dist_timeout
        self.compile = compile
        self.data_on_device = data_on_device

    def determinism(self) -> contextlib.AbstractContextManager[None]:
        """While active, use deterministic algorithms if ``deterministic`` (then restore)."""
        return runtime.determinism(self.deterministic, self.resolved_device)

    # ------------------------------------------------------------------ resolution
    def setup(self) -> None:
        """Join the torchrun process group when asked to (called at the start of a fit)."""
        if self.distributed not in ("auto", False):
            raise InvalidParameterError(
                f"Trainer(distributed=...) must be 'auto' or False; got {self.distributed!r}."
            )
        if self.distributed == "auto":
            distributed.init_from_env(self.resolved_device(), self.dist_timeout)

    def resolved_device(self) -> torch.device:
        """The device that will run the model (``cuda:LOCAL_RANK`` under torchrun)."""
        if self.device == "auto":
            return distributed.local_device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda":
            return distributed.local_device("cuda")
        try:
            return torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise InvalidParameterError(
                f"Trainer(device=...) must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {self.device!r}."
            ) from exc

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for the forward pass (a no-op in fp32)."""
        dtype = self._amp_dtype()
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.resolved_device().type, dtype=dtype)

    def _amp_dtype(self) -> torch.dtype | None:
        return runtime.amp_dtype(self.precision, self.resolved_device)

    def resolved_workers(self, *, inference: bool = False) -> int:
        """Number of DataLoader worker processes.

        ``num_workers="auto"`` uses one per core beyond the first, at most 8; except for
        ``inference`` passes on the CPU (feature extraction, prediction, validation),
        which get only the cores that torch's own threads leave free: none by default,
        so decoding runs between batches. There a worker's decoding competes with torch's
        threads for the same cores, and on 2 cores the default hot-dog fit measured 27 s
        without a worker against 34 s with one. Fine-tuning keeps its worker (its heavier
        augmentation measured 7% faster with one).
        """
        return runtime.worker_count(self.num_workers, inference, self.resolved_device)

    def resolved_data_on_device(self, n_bytes: int) -> bool:
        """Whether to keep ``n_bytes`` of decoded images on the device (``data_on_device``)."""
        return runtime.keeps_data_on_device(self.data_on_device, n_bytes, self.resolved_device)

    def resolved_inference_batch_size(self) -> int:
        """Batch size used for feature extraction and prediction."""
        if self.inference_batch_size == "auto":
            return 256 if self.resolved_device().type == "cuda" else 4
        return int(self.inference_batch_size)

    def loader(
        self,
        dataset: torch.utils.data.Dataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        workers: int | None = None,
        shard_seed: int | None = None,
    ) -> torch.utils.data.DataLoader:
        """A DataLoader with this trainer's workers and pinned memory on CUDA.

        With ``shard_seed`` under distributed training, each process gets its own part of
        the data through a :class:`~torch.utils.data.distributed.DistributedSampler`
        (shuffled with that seed, reshuffled each epoch by :meth:`fit`) and a
        ``batch_size`` divided by the number of processes.
        """
        workers = self.resolved_workers() if workers is None else workers
        sampler, batch_size = self.shard(dataset, batch_size, shuffle, shard_seed)
        return runtime.data_loader(
            dataset,
            batch_size,
            sampler=sampler,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
            workers=workers,
            pin_memory=self.resolved_device().type == "cuda",
        )

    @staticmethod
    def shard(
        dataset: Any, batch_size: int, shuffle: bool, shard_seed: int | None
    ) -> tuple[torch.utils.data.distributed.DistributedSampler | None, int]:
        """This process's sampler and batch size under distributed training.

        Without ``shard_seed`` or outside torchrun: ``(None, batch_size)``. Otherwise a
        :class:`~torch.utils.data.distributed.DistributedSampler` over ``dataset`` (any
        sized collection) and ``batch_size`` divided by the number of processes.
        """
        return runtime.shard(dataset, batch_size, shuffle, shard_seed)

    @contextlib.contextmanager
    def _layout(self, model: nn.Module, channels_last: bool) -> Iterator[None]:
        """Run a block with ``model``, and the inputs :meth:`_device_inputs` moves, in
        channels_last memory format when asked; the model's layout is restored after."""
        previous = self._channels_last
        self._channels_last = channels_last
        if channels_last:
            model.to(memory_format=torch.channels_last)
        try:
            yield
        finally:
            if channels_last:
                model.to(memory_format=torch.contiguous_format)
            self._channels_last = previous

    def _device_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` on the device, images in the memory format of :meth:`_layout`."""
        inputs = inputs.to(self.resolved_device(), non_blocking=True)
        if self._channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def predict_logits(
        self,
        model: nn.Module,
        loader: Iterable,
        *,
        desc: str = "predict",
        with_targets: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run ``model`` over a loader of ``(inputs, targets)`` and return float32 CPU outputs.

        With ``with_targets``, also return the loader's targets, concatenated.
        """
        outputs, targets = gather(self, model, loader, desc)
        if with_targets:
            return outputs.result(), targets.result()
        return outputs.result()

    def _progress(self, iterable: Iterable, desc: str) -> Iterable:
        return progress(iterable, desc, self.progress)

    # ------------------------------------------------------------------ training
    def train_step(
        self,
        model: nn.Module,
        batch: tuple[torch.Tensor, torch.Tensor],
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable,
        scaler: Any,
    ) -> float:
        """One optimisation step on one batch; returns the batch loss.

        The step is skipped (no weight changes) when the loss is not finite, and when the
        gradient norm is not finite in fp32 or bf16 (with fp16 the gradient scaler skips
        such steps itself and lowers its scale); :meth:`fit` then stops with a
        :class:`~binaryvision.TrainingError`. Gradients are clipped to ``grad_clip``.
        Override this in a subclass to change what a step does.
        """
        inputs = self._device_inputs(batch[0])
        targets = batch[1].to(self.resolved_device(), non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = model(inputs)
        loss = loss_fn(logits.float(), targets)
        self.last_grad_norm = math.nan
        if not torch.isfinite(loss) and not distributed.active():
            return float(loss.detach())
        # under DDP the backward pass still runs (the others wait for its gradients); the
        # non-finite gradient then stops every process at the same step
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip or math.inf)
        self.last_grad_norm = float(norm)
        if not math.isfinite(self.last_grad_norm) and not scaler.is_enabled():
            optimizer.zero_grad(set_to_none=True)
            return float(loss.detach())
        scaler.step(optimizer)
        scaler.update()
        return float(loss.detach())

    @torch.no_grad()
    def validation_step(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], loss_fn: Callable
    ) -> tuple[float, torch.Tensor]:
        """Return the summed loss and the logits of one validation batch."""
        inputs = self._device_inputs(batch[0])
        targets = batch[1].to(self.resolved_device(), non_blocking=True)
        with self.autocast():
            logits = model(inputs).float()
        return float(loss_fn(logits, targets).detach()) * len(targets), logits.cpu()

    def fit(
        self,
        model: nn.Module,
        train_loader: torch.utils.data.DataLoader,
        valid_loader: torch.utils.data.DataLoader | None,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        epochs: int,
        loss_fn: Callable,
        *,
        phase: str,
        callbacks: Sequence[Callback] = (),
        scheduler_per_step: bool = True,
        checkpoint: Any = None,
    ) -> TrainState:
        """Train ``model`` for up to ``epochs`` epochs; the loop reads top to bottom.

        With a ``checkpoint`` (a :class:`~binaryvision.checkpoint.Checkpointer`), the
        state is saved after every epoch and, when the checkpointer loaded one, training
        continues after its last completed epoch (or is skipped if the phase had ended).

        Raises
        ------
        TrainingError
            The training loss or the gradient became NaN or infinite; the weights of the
            last completed epoch are restored first, and the message names the epoch, the
            step and the learning rate.
        """
        device = self.resolved_device()
        model.to(device)
        # channels_last: 1.6x faster fine-tuning of EfficientNet-Lite0 on a 2-core CPU
        # (bench/gpu.py --device cpu), and the layout GPUs' tensor cores want
        with self._layout(model, is_conv_net(model)):
            all_callbacks = [*callbacks, *(self.callbacks or [])]
            if self.progress and distributed.is_main_process():
                all_callbacks.append(ProgressBar())
            state = TrainState(phase=phase, model=model, epochs=epochs)
            scaler = torch.amp.GradScaler(device.type, enabled=self._amp_dtype() is torch.float16)
            generator = getattr(train_loader, "generator", None)

            sampler = getattr(train_loader, "sampler", None)
            train_model, ddp = runtime.training_model(model, device, sampler, self.compile)
            live = LoopObjects(
                model, optimizer, scheduler, scaler, all_callbacks, generator, device
            )

            def save(done: bool) -> None:
                if checkpoint is not None and distributed.is_main_process():
                    checkpoint.save(
                        phase,
                        live,
                        epoch=state.epoch,
                        step=state.step,
                        stop_training=state.stop_training,
                        done=done,
                    )

            _emit(all_callbacks, "on_fit_start", self, state)
            start = 1
            if checkpoint is not None:
                saved = checkpoint.restore(phase, live)
                state.epoch, state.step = saved["epoch"], saved["step"]
                state.stop_training = saved["stop_training"]
                if saved["done"]:
                    _emit(all_callbacks, "on_fit_end", self, state)  # idempotent: closes bars
                    return state
                start = saved["epoch"] + 1
            last_good = copy.deepcopy(model.state_dict())
            for epoch in range(start, epochs + 1):
                if state.stop_training:
                    break
                state.epoch, state.logs = epoch, {}
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)  # a new order per epoch, the same on every process
                _emit(all_callbacks, "on_epoch_start", self, state)
                model.train()
                started, total, seen = time.perf_counter(), 0.0, 0
                for batch in train_loader:
                    state.lr = optimizer.param_groups[-1]["lr"]
                    _emit(all_callbacks, "on_batch_start", self, state)
                    loss = self.train_step(train_model, batch, optimizer, loss_fn, scaler)
                    grad = getattr(self, "last_grad_norm", 0.0)
                    if not math.isfinite(loss) or (
                        not math.isfinite(grad) and not scaler.is_enabled()
                    ):
                        model.load_state_dict(last_good)
                        raise runtime.step_failure(
                            loss, grad, epoch, state.step + 1, phase, state.lr
                        )
                    state.step += 1
                    state.batch_loss = loss
                    total += loss * len(batch[1])
                    seen += len(batch[1])
                    if scheduler is not None and scheduler_per_step:
                        scheduler.step()
                    _emit(all_callbacks, "on_batch_end", self, state)
                if scheduler is not None and not scheduler_per_step:
                    scheduler.step()
                state.logs["train_loss"] = total / max(seen, 1)
                if ddp:  # batch-norm statistics drift apart per process: take process 0's
                    distributed.broadcast_module(model)
                    state.logs["train_loss"] = distributed.mean(state.logs["train_loss"])
                if valid_loader is not None:
                    state.logs.update(self.evaluate(model, valid_loader, loss_fn))
                state.logs["lr"] = state.lr
                state.logs["seconds"] = time.perf_counter() - started
                last_good = copy.deepcopy(model.state_dict())
                _emit(all_callbacks, "on_epoch_end", self, state)
                save(done=False)
            _emit(all_callbacks, "on_fit_end", self, state)
            save(done=True)
            return state

    def evaluate(self, model: nn.Module, loader: Iterable, loss_fn: Callable) -> dict[str, float]:
        """Validation loss and accuracy (threshold 0.5) over a loader."""
        model.eval()
        total, correct, seen = 0.0, 0, 0
        for batch in loader:
            loss_sum, logits = self.validation_step(model, batch, loss_fn)
            total += loss_sum
            correct += int(((logits > 0).float() == batch[1]).sum())
            seen += len(batch[1])
        return {"valid_loss": total / max(seen, 1), "valid_accuracy": correct / max(seen, 1)}


def _emit(callbacks: Sequence[Callback], event: str, trainer: Trainer, state: TrainState) -> None:
    for callback in callbacks:
        getattr(callback, event)(trainer, state)
