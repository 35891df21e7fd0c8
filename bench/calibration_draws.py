"""Benchmark: does calibrating help new photos? Raw sigmoid, an unconditional temperature and
``calibration="auto"`` (a temperature only where its cross-validation lowers the log loss),
on random draws of hot dog's photos. One JSON object on stdout.

    python bench/calibration_draws.py [--per-class 25 50 150 400] [--draws 20] [--data PATH]

Every photo of ``train/`` and ``valid/`` is pooled and passed once through the default
backbone (frozen features, 256 px). For each size and draw, ``per_class`` photos of each
class are drawn; the L2 head (the autopilot's first candidate, ``training.probe``) is
cross-fitted on them with 5 folds, which gives out-of-fold logits and the head fitted on
all of them; the three calibrations are fitted from the out-of-fold logits as a fit does
(``decisions.held_out.fit_decisions``), and scored by log loss and ECE on every photo not
drawn. The JSON has, per size, the mean test log loss of each and the number of draws in
which each is worse than the raw sigmoid.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import HOTDOG, emit, load_average, log, source_version
from generalization import pool


def features(paths: np.ndarray) -> np.ndarray:
    """Frozen 256 px features of ``paths`` through the default backbone."""
    from binaryvision.backbones import create_backbone
    from binaryvision.features.extract import make_extractor
    from binaryvision.training import Trainer
    from binaryvision.transforms import build_transforms

    backbone = create_backbone("efficientnet_lite0").eval()
    extractor = make_extractor(backbone, build_transforms(backbone.data_config, "none"))
    trainer = Trainer(progress=False)
    return extractor.features(list(paths), trainer, "features").numpy().astype(np.float64)


def one_draw(X, y, per_class: int, seed: int) -> dict:
    """Test log loss and ECE of the three calibrations for one draw."""
    from sklearn.metrics import log_loss

    from binaryvision.decisions.held_out import fit_decisions
    from binaryvision.decisions.metrics import expected_calibration_error
    from binaryvision.training.cross_fit import fold_indices
    from binaryvision.training.probe import cross_fit_probe

    rng = np.random.default_rng(seed)
    drawn = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in (0, 1)]
    )
    test = np.setdiff1d(np.arange(len(y)), drawn)
    folds = fold_indices(y[drawn], 5, seed)
    probe = cross_fit_probe(X[drawn], y[drawn], folds)
    z_test = X[test] @ probe.weight + probe.bias
    out = {"strength": probe.strength}
    for name in ("raw", "temperature", "auto"):
        calibration = None if name == "raw" else name
        decisions = fit_decisions(
            probe.cross_fit.logits, y[drawn], calibration, 0.5, probe.cross_fit.folds, seed
        )
        p = decisions.probabilities(z_test)
        out[name] = {
            "log_loss": round(float(log_loss(y[test], p, labels=[0, 1])), 5),
            "ece": round(expected_calibration_error(y[test], p), 5),
        }
        if decisions.calibrator is not None:
            out[name]["temperature"] = round(decisions.calibrator.params_["temperature"], 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[25, 50, 150, 400])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--data", default=str(HOTDOG))
    args = parser.parse_args()
    from pathlib import Path

    started, load_start = time.perf_counter(), load_average()
    paths, labels = pool(Path(args.data))
    y = (labels == np.unique(labels)[1]).astype(int)
    X = features(paths)
    log(f"features of {len(y)} photos in {time.perf_counter() - started:.1f} s")
    sizes = {}
    for per_class in args.per_class:
        draws = [one_draw(X, y, per_class, seed) for seed in range(args.draws)]
        raw = np.array([d["raw"]["log_loss"] for d in draws])
        summary = {"draws": args.draws}
        for name in ("raw", "temperature", "auto"):
            losses = np.array([d[name]["log_loss"] for d in draws])
            summary[name] = {
                "mean_log_loss": round(float(losses.mean()), 4),
                "worst_log_loss": round(float(losses.max()), 4),
                "mean_ece": round(float(np.mean([d[name]["ece"] for d in draws])), 4),
                "draws_worse_than_raw": int((losses > raw + 1e-9).sum()),
            }
        summary["auto_kept_a_temperature"] = sum("temperature" in d["auto"] for d in draws)
        sizes[str(per_class)] = summary
        log(f"{per_class} per class: {summary}")
    emit(
        {
            "bench": "calibration_draws",
            "source": source_version(),
            "photos": len(y),
            "sizes": sizes,
            "seconds": round(time.perf_counter() - started, 1),
            "load_average_start_end": [load_start, load_average()],
        }
    )


if __name__ == "__main__":
    main()
