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
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..exceptions import BinaryVisionWarning, InvalidParameterError, TrainingError
from .callbacks import Callback, ProgressBar, TrainState
from .checkpoint import LoopObjects

__all__ = ["Trainer"]


class _Rows:
    """Batches of rows gathered into one tensor, allocated up front when the total is known.

    Keeping each batch's small output alive while the forward pass allocates and frees
    large activations fragmented the C heap: over 1,600 photos on the CPU, peak RSS grew
    by 1.2 GB (bench/scaling.py). One buffer allocated at the first batch keeps the peak
    at the small-data figure. Without a known total (or past it), batches are listed and
    concatenated at the end.
    """

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.parts: list[torch.Tensor] = []
        self.buffer: torch.Tensor | None = None
        self.n = 0

    def add(self, rows: torch.Tensor) -> None:
        if self.total is not None and self.buffer is None:
            self.buffer = torch.empty((self.total, *rows.shape[1:]), dtype=rows.dtype)
        if self.buffer is not None and self.n + len(rows) <= len(self.buffer):
            self.buffer[self.n : self.n + len(rows)] = rows
        else:
            if self.buffer is not None:  # more rows than announced: list them from here
                self.parts, self.buffer, self.total = [self.buffer[: self.n]], None, None
            self.parts.append(rows)
        self.n += len(rows)

    def result(self) -> torch.Tensor:
        if self.buffer is not None:
            return self.buffer[: self.n]
        return torch.cat(self.parts) if self.parts else torch.empty(0)


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

    @contextlib.contextmanager
    def determinism(self) -> Iterator[None]:
        """While active, use deterministic algorithms if ``deterministic`` (then restore)."""
        if not self.deterministic:
            yield
            return
        if self.resolved_device().type == "cuda" and not os.environ.get("CUBLAS_WORKSPACE_CONFIG"):
            warnings.warn(
                "Trainer(deterministic=True) on CUDA needs the environment variable "
                "CUBLAS_WORKSPACE_CONFIG=:4096:8, set before Python starts; without it "
                "some cuBLAS operations stay non-deterministic.",
                BinaryVisionWarning,
                stacklevel=3,
            )
        before = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
        )
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(before[0], warn_only=before[1])
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2:]

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
        allowed = ("auto", "32", "bf16", "16")
        if str(self.precision) not in allowed:
            raise InvalidParameterError(
                f"Trainer(precision=...) must be one of {allowed}; got {self.precision!r}."
            )
        device = self.resolved_device()
        if str(self.precision) == "32" or (self.precision == "auto" and device.type != "cuda"):
            return None
        if self.precision == "16":
            return torch.float16
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16
        return torch.bfloat16

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
        if self.num_workers == "auto":
            cores = os.cpu_count() or 1
            spare = cores - 1
            if inference and self.resolved_device().type == "cpu":
                spare = cores - torch.get_num_threads()
            return max(0, min(8, spare))
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise InvalidParameterError(
                f"Trainer(num_workers=...) must be 'auto' or an int >= 0; got {self.num_workers!r}."
            )
        return self.num_workers

    def resolved_data_on_device(self, n_bytes: int) -> bool:
        """Whether to keep ``n_bytes`` of decoded images on the device (``data_on_device``)."""
        if self.data_on_device not in ("auto", True, False):
            raise InvalidParameterError(
                f"Trainer(data_on_device=...) must be 'auto', True or False; got "
                f"{self.data_on_device!r}."
            )
        if self.data_on_device != "auto":
            return bool(self.data_on_device)
        device = self.resolved_device()
        if device.type != "cuda":
            return False
        free, _ = torch.cuda.mem_get_info(device)
        return n_bytes <= min(2 * 2**30, free // 4)

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
        if sampler is not None:
            shuffle = False
        if generator is None and not shuffle:
            # the loader draws its workers' base seed from this generator; without one it
            # would draw from the global RNG, so a fit's dropout masks would depend on
            # whether its features were cached
            generator = torch.Generator()
        n = len(dataset) if sampler is None else len(sampler)
        workers = min(workers, max(0, math.ceil(n / batch_size) - 1))
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            generator=generator,
            drop_last=drop_last,
            num_workers=workers,
            persistent_workers=False,
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
        if shard_seed is None or not distributed.active():
            return None, batch_size
        sampler = torch.utils.data.distributed.DistributedSampler(
            dataset, shuffle=shuffle, seed=shard_seed, drop_last=True
        )
        return sampler, max(1, batch_size // distributed.world_size())

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
        device = self.resolved_device()
        model.eval().to(device)
        try:
            total = len(loader.dataset) or None
        except (AttributeError, TypeError):  # not a DataLoader, or an iterable dataset
            total = None
        outputs, targets = _Rows(total), _Rows(total)
        with self._layout(model, device.type == "cuda" or _is_conv_net(model)):
            for inputs, target in self._progress(loader, desc):
                targets.add(target)
                with self.autocast():
                    outputs.add(model(self._device_inputs(inputs)).float().cpu())
        if with_targets:
            return outputs.result(), targets.result()
        return outputs.result()

    def _progress(self, iterable: Iterable, desc: str) -> Iterable:
        if not self.progress or not distributed.is_main_process():
            return iterable
        from tqdm.auto import tqdm

        total = len(iterable) if hasattr(iterable, "__len__") else None
        return tqdm(
            iterable, desc=desc, total=total, leave=False, mininterval=1.0, disable=None
        )  # None: silent when not on a terminal

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
        with self._layout(model, _is_conv_net(model)):
            all_callbacks = [*callbacks, *(self.callbacks or [])]
            if self.progress and distributed.is_main_process():
                all_callbacks.append(ProgressBar())
            state = TrainState(phase=phase, model=model, epochs=epochs)
            scaler = torch.amp.GradScaler(device.type, enabled=self._amp_dtype() is torch.float16)
            generator = getattr(train_loader, "generator", None)

            sampler = getattr(train_loader, "sampler", None)
            ddp = distributed.active() and isinstance(
                sampler, torch.utils.data.distributed.DistributedSampler
            )
            train_model = model
            if ddp:
                train_model = nn.parallel.DistributedDataParallel(
                    model, device_ids=[device.index] if device.type == "cuda" else None
                )
            if self.compile:
                train_model = torch.compile(train_model)

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
                        what = (
                            f"training loss became {loss}"
                            if not math.isfinite(loss)
                            else (f"gradient norm became {grad}")
                        )
                        raise TrainingError(
                            f"The {what} at epoch {epoch}, step {state.step + 1} ({phase} phase) "
                            f"with learning rate {state.lr:.3g}. The weights of the last completed "
                            "epoch were restored. Lower lr, or check the images."
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


def _is_conv_net(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())
