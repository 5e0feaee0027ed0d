"""Predictability minimization (Schmidhuber 1992, "Learning factorial codes by predictability
minimization", Neural Computation 4(6)): code units, one adaptive predictor per unit that tries to
predict it from the other units, and the code units trying to escape the predictions. The GAN's
ancestor: two networks with opposed objectives, one minimising what the other maximises.

The objectives, with the paper's sums over patterns p (:func:`predictor_error`,
:func:`unpredictability`, :func:`reconstruction_error`):

* predictor i minimises ``E_{P_i} = 1/2 sum_p (P_i^p - y_i^p)^2`` (eq. 1), so P_i learns the
  conditional expectation ``E(y_i | {y_k, k != i})``;
* the code units maximise ``V_C = 1/2 sum_i sum_p (P_i^p - y_i^p)^2`` (eq. 5), the sum of the
  predictors' errors, and keep information by minimising the reconstructor's error
  ``I = 1/2 sum_p ||z^p - x^p||^2`` (eq. 3): they maximise ``T = V_C - beta I``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_count, check_rows
from .._layers import linear

__all__ = ["PredictabilityMinimization", "predictor_error", "reconstruction_error", "unpredictability"]


def predictor_error(predictions: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """``1/2 sum_p sum_i (P_i^p - y_i^p)^2``: the predictors' objective (the sum of eq. 1 over
    the units), minimised by the predictors. ``predictions``, ``code``: ``[patterns, units]``."""
    return 0.5 * (predictions - code).square().sum()


def unpredictability(predictions: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """``V_C = 1/2 sum_i sum_p (P_i^p - y_i^p)^2`` (eq. 5), maximised by the code units: the same
    function the predictors minimise."""
    return predictor_error(predictions, code)


def reconstruction_error(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``I = 1/2 sum_p ||z^p - x^p||^2`` (eq. 3), the reconstructor's (auto-encoder's) error."""
    return 0.5 * (reconstruction - x).square().sum()


def _sigmoid_mlp(n_in: int, hidden, n_out: int, generator, init_scale, device, dtype) -> nn.Sequential:
    layers, width = [], n_in
    for n in [*hidden, n_out]:
        layers += [linear(width, n, generator, device, dtype, bound=init_scale), nn.Sigmoid()]
        width = n
    return nn.Sequential(*layers)


class _Predictors(nn.Module):
    """n predictors at once, predictor i a sigmoid MLP ``(n - 1) -> hidden -> 1`` of the code units
    other than i: one weight tensor per layer with a leading predictor dimension, unit i's own
    input masked out, so that all n run as batched products."""

    def __init__(self, n: int, hidden: int, generator, init_scale, device, dtype):
        super().__init__()
        bound1, bound2 = init_scale or 1 / math.sqrt(max(n - 1, 1)), init_scale or 1 / math.sqrt(hidden)
        kw = {"device": device, "dtype": dtype}

        def uniform(shape, bound):
            return nn.Parameter((torch.rand(shape, generator=generator, dtype=dtype or torch.float32) * 2 - 1)
                                .mul(bound).to(**kw))

        self.w1 = uniform((n, n, hidden), bound1)  # [predictor, input unit, hidden]
        self.b1 = uniform((n, hidden), bound1)
        self.w2 = uniform((n, hidden), bound2)
        self.b2 = uniform((n,), bound2)
        self.register_buffer("others", 1 - torch.eye(n, **kw), persistent=False)  # [predictor, input unit]

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # [B, n] -> [B, n]
        w1 = self.w1 * self.others.unsqueeze(-1)  # predictor i never sees unit i
        h = torch.sigmoid(torch.einsum("bk,ikh->bih", y, w1) + self.b1)
        return torch.sigmoid((h * self.w2).sum(-1) + self.b2)


class PredictabilityMinimization(nn.Module):
    """Code units, their predictors and a reconstructor.

    Args:
        n_input: the patterns' width.
        n_code: the number of code units (sigmoid, in (0, 1)).
        encoder_hidden: the widths of the sigmoid layers shared by the code units ("hidden units
            shared among the representational modules": 4 in the paper's 4-pattern experiment,
            16 in its 16-pattern one).
        predictor_hidden: sigmoid hidden units per predictor (3 in both experiments).
        reconstructor_hidden: the sigmoid layers of the reconstructor (code -> hidden -> input),
            or None for no reconstructor (the paper's experiments maximise V_C alone).
        generator_rng: seeds the initial weights.
        init_scale: every initial weight and bias uniform in ``[-init_scale, init_scale]`` (the
            networks of the time started so); default: ``nn.Linear``'s ``1/sqrt(fan_in)``, with
            which the code units start almost constant and tend to settle on the same feature.
    """

    def __init__(self, n_input: int, n_code: int, encoder_hidden=(4,), predictor_hidden: int = 3,
                 reconstructor_hidden=None, *, generator_rng: torch.Generator | None = None,
                 init_scale: float | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        who = "PredictabilityMinimization"
        self.n_input = check_count(n_input, "n_input", who)
        self.n_code = check_count(n_code, "n_code", who, minimum=2)
        self.encoder_hidden = [check_count(w, "an encoder_hidden width", who) for w in encoder_hidden]
        self.predictor_hidden = check_count(predictor_hidden, "predictor_hidden", who)
        if init_scale is not None and not init_scale > 0:
            raise ValueError(f"{who}: init_scale must be positive, got {init_scale!r}")
        args = (generator_rng, init_scale, device, dtype)
        self.encoder = _sigmoid_mlp(self.n_input, self.encoder_hidden, self.n_code, *args)
        self.predictors = _Predictors(self.n_code, self.predictor_hidden, *args)
        self.reconstructor = None
        if reconstructor_hidden is not None:
            hidden = [check_count(w, "a reconstructor_hidden width", who) for w in reconstructor_hidden]
            self.reconstructor = _sigmoid_mlp(self.n_code, hidden, self.n_input, *args)

    def _param(self) -> torch.Tensor:
        return self.encoder[0].weight

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The code units' activations ``y``, ``[B, n_code]`` in (0, 1)."""
        check_rows(x, self.n_input, self._param(), "PredictabilityMinimization.code")
        return self.encoder(x)

    def predict(self, y: torch.Tensor) -> torch.Tensor:
        """Each predictor's output ``P_i`` from the other units of ``y``, ``[B, n_code]``."""
        check_rows(y, self.n_code, self._param(), "PredictabilityMinimization.predict", "y")
        return self.predictors(y)

    def reconstruct(self, y: torch.Tensor) -> torch.Tensor:
        """The reconstructor's ``z`` from the code, ``[B, n_input]``."""
        if self.reconstructor is None:
            raise ValueError("PredictabilityMinimization.reconstruct: this model has no reconstructor "
                             "(build it with reconstructor_hidden=[...])")
        return self.reconstructor(y)
