"""The L2 head: a logistic regression on frozen features, its strength chosen out of fold.

A linear head on frozen features is a convex problem, so instead of a few epochs of
stochastic gradient descent (the frozen head's recipe, early-stopped on validation
images) it can be solved to the optimum: scikit-learn's ``LogisticRegression`` (L-BFGS)
on standardized features, with the inverse L2 strength ``C`` chosen from
:data:`STRENGTHS` by the out-of-fold log loss over the cross-fitting folds. It needs no
learning rate and no validation images, so it learns from every training image
(including those a ``valid_size`` split held out for early stopping), and the same
out-of-fold logits are the held-out evidence for the decisions and the autopilot. The
solution is folded back into the ``nn.Linear`` head (``w / scale``, ``b - w . mean /
scale``), so the model, its file and its export are those of the frozen head.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import torch

from .cross_fit import CrossFit, fold_numbers, log_losses

__all__ = ["STRENGTHS", "ProbeFit", "cross_fit_probe", "fit_probe", "set_head"]

#: inverse L2 strengths searched (scikit-learn's ``C``, on standardized features), each
#: about 3 times the last; on hot dog the choice lands at 0.01 or 0.03, far from the edges
STRENGTHS = (1e-4, 3e-4, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


@dataclasses.dataclass
class ProbeFit:
    """The chosen strength (the folds' ``C``), the head fitted on every image with the
    same penalty per image, and its evidence."""

    weight: np.ndarray
    bias: float
    strength: float
    cross_fit: CrossFit
    cv_log_loss: dict[float, float]


def _weights(y: np.ndarray, pos_weight: float | None) -> np.ndarray | None:
    """Per-image loss weights that match ``BCEWithLogitsLoss(pos_weight=...)``."""
    return None if pos_weight is None else np.where(y == 1, float(pos_weight), 1.0)


class _Solver:
    """The L2 logistic regression of one set of images, at any strength."""

    def __init__(self, X: np.ndarray, y: np.ndarray, pos_weight: float | None) -> None:
        from sklearn.preprocessing import StandardScaler  # imported when first used

        self.scaler = StandardScaler().fit(X)
        Xs = self.scaler.transform(X)
        self.y, self.sample_weight = y, _weights(y, pos_weight)
        # With fewer images than features the L2 solution lies in the span of the images,
        # so the regression runs on their coordinates in that span (Xs = U S V', Z = U S:
        # the same optimum, from the n x n Gram matrix), 5 to 10 times faster than on Xs.
        if len(Xs) < Xs.shape[1]:
            eigenvalues, U = np.linalg.eigh(Xs @ Xs.T)
            keep = eigenvalues > eigenvalues.max() * 1e-10
            S, U = np.sqrt(eigenvalues[keep]), U[:, keep]
            self.Z, self.to_features = U * S, Xs.T @ (U / S)  # w = Xs' U S^-1 coef
        else:
            self.Z, self.to_features = Xs, None

    def solve(self, strength: float) -> tuple[np.ndarray, float]:
        """Weights and bias in the raw feature space at inverse strength ``strength``."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=strength, max_iter=2000, tol=1e-6)
        with warnings.catch_warnings():
            # the last iterations of a weakly regularized fit move logits in the 4th decimal
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(self.Z, self.y, sample_weight=self.sample_weight)
        coef = model.coef_[0] if self.to_features is None else self.to_features @ model.coef_[0]
        w = coef / self.scaler.scale_
        return w, float(model.intercept_[0] - w @ self.scaler.mean_)


def fit_probe(
    X: np.ndarray, y: np.ndarray, strength: float, pos_weight: float | None = None
) -> tuple[np.ndarray, float]:
    """Weights and bias, in the raw feature space, of the L2 logistic regression."""
    return _Solver(np.asarray(X, dtype=np.float64), np.asarray(y).astype(int), pos_weight).solve(
        strength
    )


class _Late(Exception):
    """The deadline passed during a strength search (leaves its nested loops at once)."""


def cross_fit_probe(
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    pos_weight: float | None = None,
    strengths: tuple[float, ...] = STRENGTHS,
    deadline: float | None = None,
) -> ProbeFit | None:
    """Choose the strength by out-of-fold log loss over ``folds``, then fit on all of ``X``
    with the same L2 penalty per image as the fold heads (``C`` times their share of the
    images, about ``(k - 1) / k``), so that its logits have the scale of the out-of-fold
    logits that calibrate them.

    The out-of-fold log loss of a ridge-type path is close to unimodal in ``log C``, so the
    search starts in the middle of ``strengths`` and walks towards lower loss until it rises
    (three to five of the strengths are fitted, not all). None when ``time.perf_counter()``
    passes ``deadline`` first (checked after each fold's solve).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int)
    fold_of = fold_numbers(folds, len(y))

    def on_time() -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise _Late

    logits: dict[float, np.ndarray] = {}
    solvers = []

    def loss(i: int) -> float:
        strength = strengths[i]
        if strength not in logits:
            z = np.empty(len(y))
            for solver, held in solvers:
                w, b = solver.solve(strength)
                z[held] = X[held] @ w + b
                on_time()
            logits[strength] = z
        z = logits[strength]
        return float(log_losses(z, y).mean())

    best = len(strengths) // 2
    try:
        for fit, held in folds:
            solvers.append((_Solver(X[fit], y[fit], pos_weight), held))
            on_time()
        for step in (-1, 1):  # walk down, then up, while the loss keeps falling
            i = best
            while 0 <= i + step < len(strengths) and loss(i + step) < loss(best):
                i += step
                best = i
    except _Late:
        return None
    strength = strengths[best]
    # scikit-learn's C multiplies a *sum* of losses, so a head fitted on all n images at the
    # folds' C is regularized less per image than the fold heads (on n * (k - 1) / k): its
    # logits came out 6% larger on average (up to 11%) than the out-of-fold logits that fit
    # the calibration, so the calibrated probabilities were overconfident. Scaling C by
    # the fold heads' mean share of the images keeps the penalty per image equal (hot dog:
    # valid/ log loss lower in all six runs, by 0.001 to 0.002; ECE over the 998 photos of
    # a 5-fold re-split 0.019 -> 0.017 at 256 px, 0.025 -> 0.022 with 320 px added).
    share = float(np.mean([len(fit) for fit, _ in folds])) / len(y)
    w, b = _Solver(X, y, pos_weight).solve(strength * share)
    cross_fit = CrossFit(logits=logits[strength], folds=fold_of, n_folds=len(folds))
    scores = {s: round(loss(strengths.index(s)), 5) for s in sorted(logits)}
    return ProbeFit(weight=w, bias=b, strength=strength, cross_fit=cross_fit, cv_log_loss=scores)


def set_head(head: torch.nn.Module, probe: ProbeFit) -> None:
    """Write ``probe``'s solution into the ``nn.Linear`` of ``head`` (``Dropout, Linear``)."""
    linear = head[-1]
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(probe.weight).to(linear.weight).unsqueeze(0))
        linear.bias.fill_(probe.bias)
