"""Train on several processes (or machines) with torchrun; the code is the single-process code.

    torchrun --standalone --nproc-per-node=2 examples/distributed.py --data PATH
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 examples/distributed.py --data PATH      # two machines
    python examples/distributed.py --data PATH                            # one process

binaryvision sees the variables torchrun sets and joins the process group itself (Gloo on
CPUs, NCCL on GPUs): every process extracts the features of its share of the images, the
head is trained identically everywhere, fine-tuning runs under DistributedDataParallel
with a DistributedSampler, and only process 0 writes the model. Process 0 prints one JSON
object with every process's figures (a hash of its weights, its history, its seconds), so
you can check that the processes agree. ``--fast`` uses a tiny random-init CNN on a
generated circles-vs-squares set (no --data needed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from binaryvision import ImageBinaryClassifier, Trainer
from binaryvision.datasets import make_shapes


def weights_hash(clf: ImageBinaryClassifier) -> str:
    """SHA-256 of every tensor of the fitted model, in order."""
    digest = hashlib.sha256()
    for name, tensor in clf.model_.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Fit under torchrun (or alone) and print the figures of every process."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="folder with train/ and valid/ (or classes)")
    parser.add_argument("--out", type=Path, default=Path("distributed-out"))
    parser.add_argument("--epochs", type=int, default=10, help="head epochs")
    parser.add_argument("--fine-tune-epochs", type=int, default=1)
    parser.add_argument("--fast", action="store_true", help="tiny CNN on generated images")
    args = parser.parse_args(argv)

    data = args.data
    params: dict = {"random_state": 0, "fine_tune_epochs": args.fine_tune_epochs}
    if args.fast:
        params.update(
            backbone="tiny_cnn",
            pretrained=False,
            lr=0.3,
            batch_size=8,
            early_stopping=False,
        )
        args.epochs = min(args.epochs, 3)
        if data is None:  # every process writes the same generated set to its own folder
            data = make_shapes(Path(tempfile.mkdtemp()) / "shapes", 24, 12, size=64)
    if data is None:
        parser.error("--data is required (or pass --fast)")

    started = time.perf_counter()
    clf = ImageBinaryClassifier(
        epochs=args.epochs, trainer=Trainer(num_workers=0), verbose=0, **params
    )
    clf.fit(data)
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    clf.save(args.out / "model.bv")  # only process 0 writes; the others wait for it

    mine = {
        "rank": dist.get_rank() if dist.is_initialized() else 0,
        "world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "weights_sha256": weights_hash(clf),
        "skipped": [e["path"] for e in clf.fit_report_["skipped"]],
        "history": [{k: v for k, v in e.items() if k != "seconds"} for e in clf.history_],
        "fit_seconds": seconds,
    }
    everyone = [mine]
    if dist.is_initialized():
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, mine)
    if mine["rank"] == 0:
        print(json.dumps({"processes": everyone, "model": str(args.out / "model.bv")}))
        print(
            f"{mine['world_size']} process(es): fit in {seconds:.1f} s; weights equal on "
            f"every process: {len({p['weights_sha256'] for p in everyone}) == 1}",
            file=sys.stderr,
        )
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
