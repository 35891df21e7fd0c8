"""Benchmark: fine-tuning throughput (unfrozen backbone) of the default model. Prints JSON.

    python bench/finetune.py [--data PATH] [--device cpu cuda] [--max-images N]
    python bench/finetune.py --tiny      # tiny_cnn on generated images, seconds

Fits ``ImageBinaryClassifier(epochs=0, fine_tune_epochs=1)``: no head phase, one epoch of
the whole network on augmented images (the default ``"standard"`` augmentation, batch 64,
AdamW with discriminative learning rates, the Trainer's defaults for workers and
precision). A callback times the fine-tuning steps through the public hooks:
``on_batch_start`` to ``on_batch_end`` is the step, and the gap from one step's end to the
next step's start is time blocked waiting for the data loader. Figures per device:
images/s over the epoch's steps (and without the first step, which pays for starting the
loader workers and first-touch allocations), the fraction of that time spent waiting for
data, and the wall seconds of the whole fit (validation and calibration included).
Each device runs twice (``--data-on-device both``): with ``Trainer(data_on_device=False)``
(Pillow decoding and augmentation in DataLoader workers, every epoch) and ``True``
(images decoded once into uint8 tensors on the device, augmented there per batch; the
time to store them is part of the first step).

The data is ``--max-images`` photos of ``train/`` (half per class; default 192 on the CPU,
all of them on CUDA) and 8 photos per class of ``valid/`` for validation, linked into a
temporary folder. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import (
    HOTDOG,
    class_files,
    emit,
    load_average,
    log,
    machine,
    set_threads,
    write_image_tree,
)

DEFAULT_MAX_IMAGES = {"cpu": 192, "cuda": None}
# --data-on-device -> the Trainer(data_on_device=...) values run on each device, in order
ON_DEVICE_RUNS = {"auto": ["auto"], "true": [True], "false": [False], "both": [False, True]}


def step_timer():
    from binaryvision.training.callbacks import Callback

    class StepTimer(Callback):
        """Records, per fine-tuning step, seconds waiting for the batch and seconds computing."""

        def __init__(self) -> None:
            self.wait: list[float] = []
            self.step: list[float] = []
            self._last = 0.0

        def on_epoch_start(self, trainer, state) -> None:  # noqa: D102
            self._last = time.perf_counter()

        def on_batch_start(self, trainer, state) -> None:  # noqa: D102
            now = time.perf_counter()
            if state.phase == "fine_tune":
                self.wait.append(now - self._last)
            self._start = now

        def on_batch_end(self, trainer, state) -> None:  # noqa: D102
            now = time.perf_counter()
            if state.phase == "fine_tune":
                self.step.append(now - self._start)
            self._last = now

    return StepTimer()


def link_subset(src: Path, dst: Path, per_class: int | None) -> int:
    """Symlink the first ``per_class`` files of each class folder of ``src`` into ``dst``."""
    paths, labels = class_files(src, per_class)
    for path, label in zip(paths, labels):
        (dst / label).mkdir(parents=True, exist_ok=True)
        os.symlink(path, dst / label / Path(path).name)
    return len(paths)


def run_device(device: str, data: Path, args: argparse.Namespace, on_device: str | bool) -> dict:
    import torch

    from binaryvision import ImageBinaryClassifier, Trainer

    timer = step_timer()
    trainer = Trainer(device=device, callbacks=[timer], progress=False, data_on_device=on_device)
    clf = ImageBinaryClassifier(
        args.backbone,
        epochs=0,
        fine_tune_epochs=1,
        batch_size=args.batch_size,
        random_state=0,
        verbose=0,
        trainer=trainer,
    )
    n_train = sum(1 for _ in (data / "train").rglob("*") if _.is_file())
    log(
        f"[{device}] fine-tuning {args.backbone} for one epoch on {n_train} images "
        f"(data_on_device={on_device}) ..."
    )
    started = time.perf_counter()
    clf.fit(data)
    fit_seconds = time.perf_counter() - started
    steps = len(timer.step)
    batch = min(args.batch_size, n_train)
    total = sum(timer.step) + sum(timer.wait)
    out = {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "precision": str(trainer.precision),
        "amp_dtype": str(trainer._amp_dtype()) if hasattr(trainer, "_amp_dtype") else None,
        "data_on_device": on_device,
        "loader_workers": trainer.resolved_workers(),
        "train_images": n_train,
        "batch_size": batch,
        "steps": steps,
        "train_seconds": round(total, 3),
        "images_per_second": round(steps * batch / total, 2) if total else None,
        "data_wait_fraction": round(sum(timer.wait) / total, 4) if total else None,
        "fit_seconds": round(fit_seconds, 2),
    }
    if steps > 1:
        rest = sum(timer.step[1:]) + sum(timer.wait[1:])
        out["images_per_second_after_first_step"] = round((steps - 1) * batch / rest, 2)
        out["data_wait_fraction_after_first_step"] = round(sum(timer.wait[1:]) / rest, 4)
        out["first_step_seconds"] = round(timer.step[0] + timer.wait[0], 3)
    log(f"[{device}] {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HOTDOG)
    parser.add_argument(
        "--device", nargs="+", default=None, help="devices to run (default: cpu, and cuda if any)"
    )
    parser.add_argument("--max-images", type=int, default=None, help="training images used")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--tiny", action="store_true", help="tiny_cnn on generated images")
    parser.add_argument(
        "--data-on-device",
        choices=["auto", "true", "false", "both"],
        default="both",
        help="Trainer(data_on_device=...); 'both' runs False, then True, on each device",
    )
    args = parser.parse_args()
    load_start = load_average()
    set_threads(args.threads or (1 if args.tiny else 0))

    import torch

    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    with tempfile.TemporaryDirectory(prefix="bv-finetune-") as tmp:
        source = args.data
        if args.tiny:
            source = Path(tmp) / "generated"
            write_image_tree(source / "train", 16, seed=0)
            write_image_tree(source / "valid", 4, seed=1)
            args.backbone, args.batch_size = "tiny_cnn", 8
        for device in devices:
            limit = args.max_images or DEFAULT_MAX_IMAGES.get(device.split(":")[0])
            data = Path(tmp) / f"data-{device.replace(':', '-')}"
            link_subset(source / "train", data / "train", None if limit is None else limit // 2)
            link_subset(source / "valid", data / "valid", 8)
            for on_device in ON_DEVICE_RUNS[args.data_on_device]:
                results.append(run_device(device, data, args, on_device))
    emit(
        {
            "benchmark": "finetune",
            "backbone": args.backbone,
            "results": results,
            **machine(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
        }
    )


if __name__ == "__main__":
    main()
