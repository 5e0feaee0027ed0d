"""Restricted Boltzmann machines: the module, its conditionals, free energy and native chains."""

from __future__ import annotations

import os
from numbers import Integral

import torch
from torch import nn

from ... import ops
from ...train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["RBM"]

_VISIBLE = ("bernoulli", "gaussian")
_HIDDEN = ("bernoulli", "nrelu")


class RBM(nn.Module):
    """A restricted Boltzmann machine.

    Energy (Hinton, *A practical guide to training RBMs*, 2010), with ``sigma = exp(visible_log_std)``
    for Gaussian visible units (``sigma = 1`` and ``v / sigma = v`` for Bernoulli ones)::

        E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2)   [Gaussian]   or  -b . v  [Bernoulli]
                  - c . h - (v / sigma) W h

    Args:
        n_visible, n_hidden: layer sizes. ``weight`` is ``[n_visible, n_hidden]``.
        visible: ``"bernoulli"`` or ``"gaussian"``.
        hidden: ``"bernoulli"`` or ``"nrelu"`` (noisy rectified linear units, Nair & Hinton 2010:
            ``h = max(0, x + N(0, sigmoid(x)))``; their free energy is that of the stepped-sigmoid
            units NReLU approximates, so likelihoods of NReLU models are approximate).
        learn_std: Gaussian visible units only: learn ``visible_log_std`` (else it is a buffer
            fixed at 0, unit variance).
        init_std: standard deviation of the initial weights.
        generator: seeds the initial weights (default: torch's default generator).
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        visible: str = "bernoulli",
        hidden: str = "bernoulli",
        *,
        learn_std: bool = False,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        if visible not in _VISIBLE:
            raise ValueError(f"RBM: visible must be one of {_VISIBLE}, got {visible!r}")
        if hidden not in _HIDDEN:
            raise ValueError(f"RBM: hidden must be one of {_HIDDEN}, got {hidden!r}")
        for name, size in (("n_visible", n_visible), ("n_hidden", n_hidden)):
            if isinstance(size, bool) or not isinstance(size, Integral):
                raise TypeError(f"RBM: {name} must be an integer, got {size!r}")
        if n_visible < 1 or n_hidden < 1:
            raise ValueError(f"RBM: layer sizes must be positive, got {n_visible} and {n_hidden}")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"RBM: dtype must be a floating-point dtype, got {dtype}")
        if learn_std and visible != "gaussian":
            raise ValueError("RBM: learn_std applies to Gaussian visible units only")
        self.visible, self.hidden = visible, hidden
        factory = {"device": device, "dtype": dtype}
        weight = torch.randn(n_visible, n_hidden, generator=generator, dtype=dtype) * init_std
        self.weight = nn.Parameter(weight.to(device))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible, **factory))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden, **factory))
        if visible == "gaussian":
            log_std = torch.zeros(n_visible, **factory)
            if learn_std:
                self.visible_log_std = nn.Parameter(log_std)
            else:
                self.register_buffer("visible_log_std", log_std)
        else:
            self.visible_log_std = None

    @property
    def n_visible(self) -> int:
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weight.shape[1]

    def config(self) -> dict:
        """The constructor arguments that rebuild this model's shape and units."""
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "visible": self.visible,
                "hidden": self.hidden, "learn_std": isinstance(self.visible_log_std, nn.Parameter)}

    def checkpoint_header(self) -> dict:
        """What a checkpoint needs, besides the state dict, to rebuild the model from the file."""
        return {"model_class": type(self).__name__, "model_config": self.config()}

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model alone (atomically); :meth:`load` reads it back."""
        save_checkpoint(path, {**self.checkpoint_header(), "model": self.state_dict()})

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: torch.device | str = "cpu") -> "RBM":
        """The model from a file written by :meth:`save` or a training checkpoint of
        :func:`~dgm_fast.models.rbm.fit_rbm` (``dgm-fast train rbm`` writes one), for sampling
        and evaluation: ``RBM.load("runs/rbm-digits/checkpoint.pt").sample(100, generator=g)``."""
        return cls.from_checkpoint(load_checkpoint(path), path).to(map_location)

    @classmethod
    def from_checkpoint(cls, state: dict, source: str | os.PathLike = "the checkpoint") -> "RBM":
        """The model from a checkpoint already read with :func:`dgm_fast.train.load_checkpoint`."""
        if state.get("model_class") != cls.__name__ or "model" not in state:
            raise ValueError(f"{source} does not hold an {cls.__name__} (model_class: {state.get('model_class')!r})")
        dtype = state["model"]["weight"].dtype
        model = cls(**state["model_config"], dtype=dtype)
        model.load_state_dict(state["model"])
        return model

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, visible={self.visible!r}, hidden={self.hidden!r}"

    # ---- checks ---------------------------------------------------------------------------

    def _check_visible(self, v: torch.Tensor, name: str = "v") -> None:
        if v.dim() != 2 or v.shape[1] != self.n_visible:
            raise ValueError(f"RBM: {name} must be [batch, {self.n_visible}], got {list(v.shape)}")
        if v.dtype != self.weight.dtype or v.device != self.weight.device:
            raise ValueError(
                f"RBM: {name} is {v.dtype} on {v.device} but the model is {self.weight.dtype} "
                f"on {self.weight.device}"
            )

    def _check_hidden(self, h: torch.Tensor) -> None:
        if h.dim() != 2 or h.shape[1] != self.n_hidden:
            raise ValueError(f"RBM: h must be [batch, {self.n_hidden}], got {list(h.shape)}")
        if h.dtype != self.weight.dtype or h.device != self.weight.device:
            raise ValueError(
                f"RBM: h is {h.dtype} on {h.device} but the model is {self.weight.dtype} on {self.weight.device}"
            )

    def _scaled(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.visible_log_std is None else v * torch.exp(-self.visible_log_std)

    # ---- energies -------------------------------------------------------------------------

    def hidden_preactivation(self, v: torch.Tensor) -> torch.Tensor:
        """``c + (v / sigma) W``: ``[batch, n_hidden]``."""
        self._check_visible(v)
        return torch.addmm(self.hidden_bias, self._scaled(v), self.weight)

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``E(v, h)`` per row: ``[batch]``."""
        self._check_visible(v)
        self._check_hidden(h)
        interaction = ((self._scaled(v) @ self.weight) * h).sum(1)
        return self._visible_energy(v) - h @ self.hidden_bias - interaction

    def _visible_energy(self, v: torch.Tensor) -> torch.Tensor:
        if self.visible == "gaussian":
            var = torch.exp(2 * self.visible_log_std)
            return ((v - self.visible_bias) ** 2 / (2 * var)).sum(1)
        return -(v @ self.visible_bias)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """``F(v) = -log sum_h exp(-E(v, h))`` per row, differentiable in every parameter, so that
        ``(rbm.free_energy(v_data).mean() - rbm.free_energy(v_model).mean()).backward()`` gives
        the CD gradient (with ``v_model`` detached)."""
        x = self.hidden_preactivation(v)
        if self.hidden == "nrelu":
            hidden_term = _stepped_sigmoid_log_partition(x)
        else:
            hidden_term = torch.nn.functional.softplus(x)
        return self._visible_energy(v) - hidden_term.sum(1)

    # ---- conditionals ---------------------------------------------------------------------

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """``E[h | v]``: ``sigmoid(x)`` for Bernoulli hidden units, ``max(0, x)`` for NReLU."""
        x = self.hidden_preactivation(v)
        return torch.relu(x) if self.hidden == "nrelu" else torch.sigmoid(x)

    def sample_hidden(self, v: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw from ``p(h | v)``."""
        if self.hidden == "nrelu":
            x = self.hidden_preactivation(v)
            z, _ = ops.normal_reparam(x, torch.nn.functional.logsigmoid(x), generator=generator)
            return torch.relu(z)
        self._check_visible(v)
        # The bias is added inside the sampler's pass (as the native chain does: same bits).
        return ops.bernoulli_logits(self._scaled(v) @ self.weight, self.hidden_bias, generator=generator)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """``E[v | h]``: ``sigmoid(b + W h)`` (Bernoulli) or ``b + sigma * (W h)`` (Gaussian)."""
        self._check_hidden(h)
        if self.visible == "gaussian":
            return self.visible_bias + torch.exp(self.visible_log_std) * (h @ self.weight.t())
        return torch.sigmoid(torch.addmm(self.visible_bias, h, self.weight.t()))

    def sample_visible(self, h: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw from ``p(v | h)``."""
        self._check_hidden(h)
        if self.visible == "gaussian":
            mean = self.visible_probs(h)
            log_var = (2 * self.visible_log_std).expand_as(mean).contiguous()
            return ops.normal_reparam(mean, log_var, generator=generator)[0]
        return ops.bernoulli_logits(h @ self.weight.t(), self.visible_bias, generator=generator)

    # ---- chains ---------------------------------------------------------------------------

    def chain(
        self,
        v: torch.Tensor,
        steps: int,
        *,
        weight: torch.Tensor | None = None,
        visible_bias: torch.Tensor | None = None,
        hidden_bias: torch.Tensor | None = None,
        beta: torch.Tensor | None = None,
        final_hidden: bool = True,
        matmul_dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``steps`` block-Gibbs sweeps from ``v`` in one native call (no gradient).

        Returns ``(h0_mean, v_steps, h_mean)``: ``E[h | v]`` at the start, the visible state
        after the last sweep, and ``E[h | v_steps]`` (empty when ``final_hidden=False``).
        ``weight``/``*_bias`` override the parameters (fast-weight PCD runs its chains on
        ``W + W_fast``); ``beta`` gives each row an inverse temperature (parallel tempering).
        """
        self._check_visible(v)
        with torch.no_grad():
            return ops.rbm.rbm_gibbs_chain(
                v,
                self.weight if weight is None else weight,
                self.visible_bias if visible_bias is None else visible_bias,
                self.hidden_bias if hidden_bias is None else hidden_bias,
                steps,
                visible=self.visible,
                hidden=self.hidden,
                visible_log_std=self.visible_log_std,
                beta=beta,
                final_hidden=final_hidden,
                matmul_dtype=matmul_dtype,
                generator=generator,
            )

    def gibbs(self, v: torch.Tensor, steps: int = 1, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The visible state after ``steps`` full block-Gibbs sweeps (v -> h -> v) from ``v``."""
        return self.chain(v, steps, final_hidden=False, generator=generator)[1]

    def sample(
        self,
        n: int,
        steps: int = 1000,
        *,
        init: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` visible samples after ``steps`` sweeps, from ``init`` (``[n, n_visible]``) or from
        random states (Bernoulli(1/2) or N(b, sigma^2))."""
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ValueError(f"RBM.sample: n must be a positive integer, got {n!r}")
        if init is None:
            like = torch.empty(n, self.n_visible, dtype=self.weight.dtype, device=self.weight.device)
            if self.visible == "gaussian":
                init = ops.normal_reparam(
                    self.visible_bias.detach().expand_as(like).contiguous(),
                    (2 * self.visible_log_std.detach()).expand_as(like).contiguous(),
                    generator=generator,
                )[0]
            else:
                init = ops.bernoulli_logits(torch.zeros_like(like), generator=generator)
        elif init.shape[0] != n:
            raise ValueError(f"RBM.sample: init has {init.shape[0]} rows but n={n}")
        return self.gibbs(init, steps, generator=generator)

    @torch.no_grad()
    def init_visible_bias_from_data(self, data: torch.Tensor, eps: float = 1e-3) -> None:
        """Sets the visible biases to the data's log-odds (Bernoulli) or mean (Gaussian), as
        Hinton's guide recommends; a base-rate model for AIS starts from the same marginals."""
        self._check_visible(data, "data")
        if self.visible == "gaussian":
            self.visible_bias.copy_(data.mean(0))
        else:
            p = data.mean(0).clamp(eps, 1 - eps)
            self.visible_bias.copy_(torch.log(p) - torch.log1p(-p))


def _stepped_sigmoid_log_partition(x: torch.Tensor) -> torch.Tensor:
    """``sum_{i>=1} softplus(x - i + 1/2)``: the hidden term of the free energy of stepped
    sigmoid units (infinitely many Bernoulli copies with biases offset by -i + 1/2), which NReLU
    units approximate.

    The terms with ``x - i + 1/2 >= 40`` equal their argument to within 4e-18 (softplus(t) = t +
    log1p(exp(-t))), so the first ``m = max(0, floor(x - 40.5))`` of them are summed in closed
    form, ``m (x - m / 2)``, and the next 100 one by one (beyond them the terms are below 1e-25):
    the same work for any ``x``, no host synchronisation, finite memory for huge ``x``; NaN gives
    NaN."""
    m = torch.clamp(torch.floor(x.detach() - 40.5), min=0).nan_to_num(nan=0.0, posinf=0.0)
    offsets = torch.arange(1, 101, dtype=x.dtype, device=x.device) - 0.5
    rest = torch.nn.functional.softplus((x - m).unsqueeze(-1) - offsets).sum(-1)
    return m * (x - m / 2) + rest
