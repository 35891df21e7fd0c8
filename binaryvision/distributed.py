"""Training on several processes and machines with ``torch.distributed``.

Run the same script on every process with ``torchrun``; binaryvision notices the
environment variables torchrun sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) and, with
``Trainer(distributed="auto")`` (the default), joins the process group itself (NCCL on
CUDA GPUs, Gloo on CPUs)::

    torchrun --standalone --nproc-per-node=2 train.py                      # one machine
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 train.py                                # two machines

What each phase does with N processes:

* **scan and features**: every process decodes (to find unreadable files) and runs the
  backbone on 1/N of the images that are not cached yet, then they exchange results, so
  all hold every feature and the same list of files to skip;
* **head**: trained on the same features with the same seed in every process, then the
  weights of process 0 are copied to the others (bitwise equal everywhere);
* **fine-tuning**: ``DistributedDataParallel`` with a ``DistributedSampler`` (reshuffled
  every epoch with ``set_epoch``, equal step counts on every process); ``batch_size``
  stays the global batch, split evenly over the processes; validation runs on the whole
  validation set in every process, so its figures equal a single process's on the same
  weights;
* **writes**: only process 0 writes model files, checkpoints and cached features;
  every process reads them.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "broadcast_module",
    "gather_lists",
    "gather_rows",
    "init_from_env",
    "is_main_process",
    "launched_with_torchrun",
    "rank",
    "shard",
    "world_size",
]


def launched_with_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def active() -> bool:
    """Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without distributed training)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes (1 without distributed training)."""
    return dist.get_world_size() if active() else 1


def is_main_process() -> bool:
    """True on rank 0, and always without distributed training: the process that writes."""
    return rank() == 0


def init_from_env(device: torch.device, timeout_s: float = 1800.0) -> None:
    """Join the process group torchrun described, once (NCCL on CUDA, Gloo on CPU)."""
    if dist.is_initialized() or not launched_with_torchrun():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))


def local_device(device_type: str) -> torch.device:
    """``cuda:LOCAL_RANK`` for CUDA under torchrun, else the plain device."""
    if device_type == "cuda" and launched_with_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(device_type)


def shard(n: int) -> range:
    """The contiguous block of ``range(n)`` this process handles (all of it when alone)."""
    return range(n)[_shard_slice(n, rank())]


def gather_rows(rows: torch.Tensor, n: int) -> torch.Tensor:
    """Concatenate every process's :func:`shard` of an ``(rows, ...)`` tensor, in order."""
    if not active():
        return rows
    sizes = [len(range(n)[_shard_slice(n, r)]) for r in range(world_size())]
    longest = max(sizes)
    device = _collective_device()
    padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=device)
    padded[: len(rows)] = rows.to(device)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s].cpu() for p, s in zip(parts, sizes)])


def gather_lists(part: list) -> list:
    """Concatenate every process's list (each its :func:`shard`), in rank order.

    Plain Python values (strings, numbers) only: they are pickled between the processes
    of one job, which trust each other.
    """
    if not active():
        return list(part)
    parts: list = [None] * world_size()
    dist.all_gather_object(parts, list(part))
    return [value for chunk in parts for value in chunk]


def _shard_slice(n: int, r: int) -> slice:
    per, extra = divmod(n, world_size())
    start = r * per + min(r, extra)
    return slice(start, start + per + (1 if r < extra else 0))


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if not active():
        return
    device = _collective_device()
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            buffer = tensor.detach().to(device).contiguous()
            dist.broadcast(buffer, src=0)
            tensor.copy_(buffer.to(tensor.device))


def any_rows(flags: torch.Tensor) -> list[bool]:
    """Element-wise: whether any process has a non-zero flag (the flags themselves alone)."""
    if not active():
        return [bool(v) for v in flags.tolist()]
    tensor = flags.to(device=_collective_device(), dtype=torch.float32).clone()
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.cpu().tolist()]


def mean(value: float) -> float:
    """The mean of a number over every process (the number itself when alone)."""
    if not active():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor)
    return float(tensor.item()) / world_size()


def barrier() -> None:
    """Wait for every process (no-op alone)."""
    if active():
        dist.barrier()
