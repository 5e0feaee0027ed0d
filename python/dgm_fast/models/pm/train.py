"""Training predictability minimization: the predictors and the code units take turns, each by
gradient descent on its own objective (:mod:`.model`), off-line (each update on the whole
pattern set, or on a minibatch), as in the paper's off-line experiments; and the measures of a
learned code: binary, invertible, factorial (:func:`code_report`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .model import PredictabilityMinimization, predictor_error, reconstruction_error, unpredictability

__all__ = ["CodeReport", "code_report", "fit_pm", "pm_losses"]


def pm_losses(pm: PredictabilityMinimization, x: torch.Tensor, beta: float = 1.0):
    """``(predictor_loss, code_loss, metrics)`` on the patterns ``x``:

    * ``predictor_loss = E_P``, the predictors' error on the current code (detached: it trains
      the predictors only);
    * ``code_loss = -T = -(V_C - beta I)``: minimised by the code units and the reconstructor, the
      predictors held fixed (their gradient in the code flows through both ``P_i`` and ``y_i``).
      ``I`` is left out when the model has no reconstructor.

    (Step the predictors on ``predictor_loss`` only after ``code_loss`` has been backpropagated:
    its graph holds their parameters. :func:`fit_pm` steps the predictors first and then forms
    the code loss against the stepped predictors, as the paper alternates.)"""
    y = pm.code(x)
    predictor_loss = predictor_error(pm.predict(y.detach()), y.detach())
    code_loss, metrics = _code_loss(pm, x, y, beta)
    return predictor_loss, code_loss, {"predictor_error": predictor_loss.detach(), **metrics}


def _code_loss(pm, x, y, beta):
    """``(-T, metrics)`` with the predictors' current parameters held fixed."""
    with _frozen(pm.predictors):
        v_c = unpredictability(pm.predict(y), y)
    metrics = {"unpredictability": v_c.detach()}
    code_loss = -v_c
    if pm.reconstructor is not None:
        recon = reconstruction_error(pm.reconstruct(y), x)
        code_loss = code_loss + beta * recon
        metrics["reconstruction_error"] = recon.detach()
    return code_loss, metrics


class _frozen:
    """Parameters that take no gradient inside the block (the predictors while the code units
    learn to escape them)."""

    def __init__(self, module: torch.nn.Module):
        self.params = list(module.parameters())

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)


def fit_pm(pm: PredictabilityMinimization, patterns: torch.Tensor, *, epochs: int = 20000, beta: float = 1.0,
           lr: float = 1.0, predictor_lr: float | None = None, predictor_steps: int = 1,
           weights: torch.Tensor | None = None) -> list[dict]:
    """Trains ``pm`` off-line on ``patterns`` (``[P, n_input]``, every update on all of them, as in
    the paper's off-line experiments) by plain gradient descent: per epoch ``predictor_steps``
    steps of the predictors on ``E_P``, then one step of the code units (and reconstructor) on
    ``-T``. ``weights`` (``[P]``, default all 1) repeat patterns, as the paper presents
    ``x^d`` four times an epoch. Returns per epoch the objectives (``predictor_error``,
    ``unpredictability``, ``reconstruction_error``)."""
    fn = "fit_pm"
    p = pm._param()
    if not isinstance(patterns, torch.Tensor) or patterns.dim() != 2 or patterns.shape[1] != pm.n_input \
            or patterns.shape[0] == 0:
        shape = list(patterns.shape) if isinstance(patterns, torch.Tensor) else type(patterns).__name__
        raise ValueError(f"{fn}: patterns must be a non-empty [P, {pm.n_input}] tensor, got {shape}")
    if not torch.isfinite(patterns).all():
        raise ValueError(f"{fn}: patterns contain NaN or Inf")
    if epochs < 0 or predictor_steps < 1 or not lr > 0 or beta < 0:
        raise ValueError(f"{fn}: need epochs >= 0, predictor_steps >= 1, lr > 0 and beta >= 0; got {epochs}, "
                         f"{predictor_steps}, {lr}, {beta}")
    x = patterns.to(device=p.device, dtype=p.dtype)
    if weights is not None:  # a pattern repeated k times is a row with weight k in every sum
        x = torch.repeat_interleave(x, weights.to(torch.long).cpu(), dim=0)
    code_params = [*pm.encoder.parameters(), *(pm.reconstructor.parameters() if pm.reconstructor else ())]
    code_opt = torch.optim.SGD(code_params, lr=lr)
    predictor_opt = torch.optim.SGD(pm.predictors.parameters(), lr=predictor_lr or lr)
    history = []
    for epoch in range(epochs):
        y = pm.code(x)  # one encoder pass serves both players: the predictors do not change it
        for _ in range(predictor_steps):
            predictor_loss = predictor_error(pm.predict(y.detach()), y.detach())
            predictor_opt.zero_grad(set_to_none=True)
            predictor_loss.backward()
            predictor_opt.step()
        code_loss, metrics = _code_loss(pm, x, y, beta)  # against the predictors after their steps
        code_opt.zero_grad(set_to_none=True)
        code_loss.backward()
        code_opt.step()
        history.append({"epoch": epoch + 1, "predictor_error": float(predictor_loss.detach()),
                        **{k: float(v) for k, v in metrics.items()}})
    return history


@dataclass
class CodeReport:
    """What a learned code is, on a set of patterns with given probabilities.

    Attributes:
        binary: every code unit within ``tolerance`` of 0 or 1 on every pattern.
        invertible: distinct patterns get distinct (rounded) codes.
        distinct_codes: the number of distinct rounded codes.
        multi_information: ``sum_i H(y_i) - H(y)`` of the rounded code under the patterns'
            probabilities, in bits: 0 exactly when the code's units are independent.
        factorial: binary, invertible and with multi-information below 1e-9 bits.
    """

    binary: bool
    invertible: bool
    distinct_codes: int
    multi_information: float
    factorial: bool


def _entropy_bits(probs) -> float:
    return -sum(p * math.log2(p) for p in probs if p > 0)


@torch.no_grad()
def code_report(codes: torch.Tensor, probabilities: torch.Tensor | None = None, tolerance: float = 0.05) -> CodeReport:
    """Whether ``codes`` (``[P, n_code]``: the code of P distinct patterns, e.g.
    ``pm.code(patterns)``, each pattern with its probability, default uniform) is binary,
    invertible and factorial, and its multi-information."""
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or codes.shape[0] == 0:
        shape = list(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"code_report: codes must be a non-empty [patterns, units] tensor, got {shape}")
    y = codes.detach().double().cpu()
    if probabilities is None:
        probs = torch.full((len(y),), 1 / len(y), dtype=torch.float64)
    else:
        probs = probabilities.detach().double().cpu()
        if probs.shape != (len(y),) or (probs < 0).any() or not probs.sum() > 0:
            raise ValueError(f"code_report: probabilities must be {len(y)} non-negative numbers, not all 0")
        probs = probs / probs.sum()
    rounded = y.round()
    binary = bool(((y - rounded).abs() <= tolerance).all())
    joint: dict[tuple, float] = {}
    for code, prob in zip(map(tuple, rounded.to(torch.int64).tolist()), probs.tolist()):
        joint[code] = joint.get(code, 0.0) + prob
    marginals = [float((probs * rounded[:, i]).sum()) for i in range(y.shape[1])]
    multi = max(0.0, sum(_entropy_bits([m, 1 - m]) for m in marginals) - _entropy_bits(joint.values()))
    invertible = len(joint) == len(y)
    return CodeReport(binary, invertible, len(joint), multi, binary and invertible and multi < 1e-9)
