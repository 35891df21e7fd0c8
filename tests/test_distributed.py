"""Two processes under torchrun (Gloo, CPU) train to the same weights and honest metrics."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from binaryvision import ImageBinaryClassifier
from binaryvision.datasets import make_shapes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_gloo_ranks_agree_and_match_single_process_metrics(tmp_path):
    data = make_shapes(tmp_path / "shapes", 60, 12, size=64, random_state=5)
    broken = data / "train" / "circles" / "broken.jpg"  # 1 of 144 files: skipped, under 1%
    broken.write_bytes(b"\xff\xd8\xff\xe0 a JPEG cut short")
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        str(ROOT / "examples" / "distributed.py"), "--fast", "--data", str(data),
        "--out", str(out), "--fine-tune-epochs", "2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    ranks = report["processes"]
    assert [p["rank"] for p in ranks] == [0, 1] and ranks[0]["world_size"] == 2
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["history"] == ranks[1]["history"]
    # each rank scanned half of the files; both know the whole list of skipped files
    assert ranks[0]["skipped"] == ranks[1]["skipped"] == [str(broken)]
    phases = [e["phase"] for e in ranks[0]["history"]]
    assert phases.count("fine_tune") == 2  # DDP really ran

    # only rank 0 wrote, and what it wrote is the model both ranks hold
    assert sorted(p.name for p in out.iterdir()) == ["model.bv"]
    clf = ImageBinaryClassifier.load(out / "model.bv")
    state = clf.model_.state_dict()
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())
    assert digest.hexdigest() == ranks[0]["weights_sha256"]

    # validation figures equal those of one process on the same weights
    files = sorted((data / "valid").rglob("*.jpg"))
    y = np.array([f.parent.name == clf.positive_class_ for f in files], dtype=float)
    logits = clf.decision_function(files) * (1 if clf._pos_index() == 1 else -1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(logits), torch.from_numpy(y)
    ).item()
    last = ranks[0]["history"][-1]
    assert last["valid_loss"] == pytest.approx(loss, abs=1e-5)
    assert last["valid_accuracy"] == pytest.approx(((logits > 0) == (y == 1)).mean())
