"""Tests of the learning-rate range test and its suggestion rules."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from binaryvision import LRFindResult, Trainer
from binaryvision.exceptions import InvalidParameterError, TrainingError
from binaryvision.training.lr_finder import SUGGESTERS, lr_range_test, minimum, steep, valley

LRS = np.geomspace(1e-6, 1.0, 61)  # log10 steps of exactly 0.1
X = np.log10(LRS)


def u_curve() -> np.ndarray:
    """A parabola in log lr with its minimum at lr = 1e-3."""
    return (X + 3.0) ** 2 + 1.0


def drop_curve() -> np.ndarray:
    """Flat, a sharp drop centred on lr = 1e-4, a valley, then a blow-up: U-shaped overall."""
    return 2.0 - np.tanh(2.0 * (X + 4.0)) + 0.1 * np.exp(3.0 * (X + 0.5))


CURVES = {
    "u": u_curve,
    "drop": drop_curve,
    "increasing": lambda: X + 10.0,
    "decreasing": lambda: -X,
    "constant": lambda: np.ones_like(X),
    "noisy": lambda: u_curve() + np.random.default_rng(0).normal(0, 0.5, X.shape),
}


# ============================================================================ suggesters


@pytest.mark.parametrize("curve", sorted(CURVES))
@pytest.mark.parametrize("rule", sorted(SUGGESTERS))
def test_suggestion_within_range(curve, rule):
    lr = SUGGESTERS[rule](LRS, CURVES[curve]())
    assert isinstance(lr, float)
    assert LRS[0] <= lr <= LRS[-1]
    assert np.isclose(LRS, lr, rtol=1e-12, atol=0).any()  # one of the lrs tried


def test_minimum_is_argmin_over_ten():
    losses = u_curve()
    best = LRS[np.argmin(losses)]
    assert best == pytest.approx(1e-3)
    assert minimum(LRS, losses) == pytest.approx(best / 10, rel=1e-12)
    assert minimum(LRS, drop_curve()) == pytest.approx(LRS[np.argmin(drop_curve())] / 10)


def test_minimum_clipped_to_range():
    assert minimum(LRS, X + 10.0) == LRS[0]  # lowest loss at the first lr: lr/10 is below it
    losses = u_curve()
    losses[3] = -5.0  # the best loss 3 steps in: lr/10 falls below the swept range
    assert minimum(LRS, losses) == LRS[0]


def test_steep_at_steepest_descent():
    lr = steep(LRS, drop_curve())
    assert abs(np.log10(lr) - (-4.0)) <= 0.1 + 1e-9  # tanh falls fastest at its centre
    decreasing = -((X + 2.0) ** 3)  # slope -3 (x + 2)^2: steepest at both ends, flat at 1e-2
    assert steep(LRS, decreasing) in (LRS[0], LRS[-1])


def test_valley_inside_longest_descent():
    losses = u_curve()
    best = int(np.argmin(losses))
    lr = valley(LRS, losses)
    assert LRS[0] < lr < LRS[best]
    assert np.interp(np.log(lr), np.log(LRS), losses) < losses[0]
    # A short dip before the long descent does not attract the valley.
    dip = drop_curve()
    dip[2:5] = [1.0, 0.5, 1.0]
    lr = valley(LRS, dip)
    assert 1e-5 < lr < LRS[np.argmin(drop_curve())]


def test_short_curves_return_first_lr():
    lrs, losses = np.array([1e-3, 1e-2]), np.array([2.0, 1.0])
    assert valley(lrs, losses) == 1e-3
    assert steep(lrs, losses) == 1e-3
    assert minimum(lrs, losses) == 1e-3


@pytest.mark.parametrize("rule", sorted(SUGGESTERS))
@pytest.mark.parametrize("curve", ["u", "drop", "noisy"])
def test_nan_losses_ignored(rule, curve):
    losses = CURVES[curve]()
    nan_at = [0, 7, int(np.argmin(losses)), 45, 60]
    dirty = losses.copy()
    dirty[nan_at] = np.nan
    keep = np.ones(len(LRS), dtype=bool)
    keep[nan_at] = False
    got = SUGGESTERS[rule](LRS, dirty)
    assert np.isfinite(got)
    assert LRS[0] <= got <= LRS[-1]
    assert got == SUGGESTERS[rule](LRS[keep], losses[keep])


def test_infinite_losses_ignored_too():
    losses = u_curve()
    losses[-5:] = np.inf
    assert minimum(LRS, losses) == pytest.approx(1e-4)
    assert steep(LRS, losses) == steep(LRS[:-5], losses[:-5])


# ============================================================================ LRFindResult


def test_result_suggestions_and_method():
    losses = drop_curve()
    result = LRFindResult(LRS, losses, method="steep")
    assert set(result.suggestions) == set(SUGGESTERS)
    for name, rule in SUGGESTERS.items():
        assert result.suggestions[name] == rule(LRS, losses)
    assert result.suggestion == result.suggestions["steep"]
    assert "steep" in repr(result) and "steps=61" in repr(result)
    assert LRFindResult(LRS, losses).method == "valley"


@pytest.mark.parametrize("method", sorted(SUGGESTERS))
def test_plot_new_axes(method):
    result = LRFindResult(LRS, drop_curve(), method=method)
    assert result.plot() is result
    ax = result.ax_
    assert result.figure_ is ax.figure
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 1 + len(result.suggestions)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), LRS)
    marker_x = sorted(float(line.get_xdata()[0]) for line in ax.lines[1:])
    assert marker_x == sorted(result.suggestions.values())
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    suggested = [t for t in texts if "suggested" in t]
    assert len(suggested) == 1
    assert suggested[0].startswith(method)


def test_plot_on_given_axes():
    ax = Figure().add_subplot()
    result = LRFindResult(LRS, u_curve()).plot(ax=ax)
    assert result.ax_ is ax and result.figure_ is ax.figure
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 1 + len(SUGGESTERS)


# ============================================================================ lr_range_test


class RecordingTrainer(Trainer):
    """Records every group's lr and the RNG state at each step."""

    def __init__(self, **kwargs):
        super().__init__(device="cpu", progress=False, **kwargs)
        self.group_lrs: list[list[float]] = []
        self.rng_states: list[torch.Tensor] = []

    def train_step(self, model, batch, optimizer, loss_fn, scaler):
        self.group_lrs.append([g["lr"] for g in optimizer.param_groups])
        loss = super().train_step(model, batch, optimizer, loss_fn, scaler)
        self.rng_states.append(torch.get_rng_state())
        return loss


class StepCounter(nn.Module):
    """Identity with a buffer that counts training forward passes (like BatchNorm's)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        return x


def make_problem(seed: int = 0, groups: bool = False):
    torch.manual_seed(seed)
    inputs = torch.randn(64, 4)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(64)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=16, shuffle=True)
    model = nn.Sequential(
        nn.Linear(4, 8), StepCounter(), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1), nn.Flatten(0)
    )
    if groups:
        optimizer = torch.optim.Adam(
            [
                {"params": [model[0].weight], "lr": 1e-4},
                {"params": [model[0].bias], "lr": 1e-4},
                {"params": model[4].parameters(), "lr": 1e-3},
            ]
        )
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, loader, optimizer, nn.MSELoss()


def _prior_step(model, loader, optimizer, loss_fn):
    """One ordinary step, so the optimizer holds Adam moments."""
    model.train()
    inputs, targets = next(iter(loader))
    optimizer.zero_grad()
    loss_fn(model(inputs), targets).backward()
    optimizer.step()
    assert all("exp_avg" in s for s in optimizer.state.values())


def _assert_same(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_lrs_geometric_and_full_sweep():
    model, loader, optimizer, loss_fn = make_problem()
    trainer = RecordingTrainer()
    result = lr_range_test(
        trainer, model, loader, optimizer, loss_fn, start_lr=1e-5, end_lr=1e-1, num_steps=30
    )
    assert len(result.lrs) == 30 == len(result.losses)
    assert result.lrs[0] == pytest.approx(1e-5, rel=1e-12)
    assert result.lrs[-1] == pytest.approx(1e-1, rel=1e-9)
    ratios = result.lrs[1:] / result.lrs[:-1]
    assert np.all(np.abs(ratios - ratios[0]) <= 1e-9 * ratios[0])
    assert np.all(np.isfinite(result.losses))
    np.testing.assert_allclose([lrs[-1] for lrs in trainer.group_lrs], result.lrs)
    for name, lr in result.suggestions.items():
        assert result.lrs[0] <= lr <= result.lrs[-1], name


def test_group_ratios_kept_during_sweep():
    model, loader, optimizer, loss_fn = make_problem(groups=True)
    trainer = RecordingTrainer()
    lr_range_test(
        trainer, model, loader, optimizer, loss_fn, start_lr=1e-4, end_lr=1e-2, num_steps=10
    )
    for first, second, last in trainer.group_lrs:
        assert first == pytest.approx(last / 10) and second == pytest.approx(last / 10)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-4, 1e-3]


def test_stops_early_when_loss_diverges():
    model, loader, optimizer, loss_fn = make_problem(1)
    result = lr_range_test(
        Trainer(device="cpu", progress=False),
        model,
        loader,
        optimizer,
        loss_fn,
        start_lr=1e-4,
        end_lr=1e4,
        num_steps=100,
    )
    assert 2 <= len(result.lrs) < 100
    assert result.lrs[-1] < 1e4
    assert result.losses[-1] > result.losses.min()
    assert np.all(np.isfinite(result.losses))


@pytest.mark.parametrize("training", [True, False])
def test_everything_restored(training):
    model, loader, optimizer, loss_fn = make_problem(2)
    _prior_step(model, loader, optimizer, loss_fn)
    model.train(training)
    twin_model, twin_optimizer = copy.deepcopy((model, optimizer))
    model_state = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    torch.manual_seed(99)
    rng_before = torch.get_rng_state()

    trainer = RecordingTrainer()
    lr_range_test(
        trainer, model, loader, optimizer, loss_fn, start_lr=1e-5, end_lr=10.0, num_steps=40
    )

    assert not torch.equal(trainer.rng_states[-1], rng_before)  # the sweep drew random numbers
    assert model[1].calls.item() == 1  # the prior step's count, not the sweep's
    assert torch.equal(torch.get_rng_state(), rng_before)
    after = model.state_dict()
    assert after.keys() == model_state.keys()
    for key, tensor in model_state.items():
        assert torch.equal(after[key], tensor), key  # weights and buffers, bitwise
    _assert_same(optimizer.state_dict(), optimizer_state)
    assert model.training is training

    # The restored pair trains on exactly like an untouched copy.
    batch = next(iter(DataLoader(loader.dataset, batch_size=16)))
    for m, opt in ((model, optimizer), (twin_model, twin_optimizer)):
        torch.manual_seed(5)
        m.train()
        opt.zero_grad()
        loss_fn(m(batch[0]), batch[1]).backward()
        opt.step()
    for (key, a), b in zip(model.state_dict().items(), twin_model.state_dict().values()):
        assert torch.equal(a, b), key


def test_fresh_optimizer_left_without_state():
    model, loader, optimizer, loss_fn = make_problem(4)
    assert len(optimizer.state) == 0
    lr_range_test(
        Trainer(device="cpu", progress=False),
        model,
        loader,
        optimizer,
        loss_fn,
        start_lr=1e-4,
        end_lr=1e-2,
        num_steps=5,
    )
    assert len(optimizer.state) == 0  # no Adam moments from the sweep leak into training
    assert optimizer.param_groups[0]["lr"] == 1e-3
    assert model[1].calls.item() == 0


def test_restored_after_immediate_divergence():
    model, loader, optimizer, _ = make_problem(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def nan_loss(logits, targets):
        return (logits - targets).pow(2).mean() * float("nan")

    with pytest.raises(TrainingError, match="diverged at once"):
        lr_range_test(
            Trainer(device="cpu", progress=False),
            model,
            loader,
            optimizer,
            nan_loss,
            start_lr=1e-3,
            end_lr=1.0,
            num_steps=5,
        )
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[key]), key


@pytest.mark.parametrize("start_lr, end_lr", [(1.0, 1.0), (1.0, 1e-3), (0.0, 1.0), (-1.0, 1.0)])
def test_bad_lr_bounds(start_lr, end_lr):
    model, loader, optimizer, loss_fn = make_problem()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InvalidParameterError, match="start_lr < end_lr"):
        lr_range_test(
            Trainer(device="cpu", progress=False),
            model,
            loader,
            optimizer,
            loss_fn,
            start_lr=start_lr,
            end_lr=end_lr,
        )
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[key]), key
