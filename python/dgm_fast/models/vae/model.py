"""Variational autoencoders with one or more stochastic layers (Kingma & Welling 2014; the
architectures of Burda, Grosse & Salakhutdinov 2015), trained by the ELBO or the IWAE bound
(:mod:`.train`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...ops.bernoulli import bernoulli_log_prob
from ...ops.elbo import gaussian_elbo, iwae_bound
from ...ops.samplers import bernoulli_logits, normal_reparam
from .._checks import check_choice, check_count, check_layer_sizes, check_rows
from .._files import ModelFile
from .._layers import linear

__all__ = ["LIKELIHOODS", "VAE"]

LIKELIHOODS = ("bernoulli", "gaussian")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _mlp(n_in: int, hidden: list[int], n_out: int, generator, device, dtype) -> nn.Sequential:
    """tanh hidden layers (as Burda et al.), a linear output."""
    layers, width = [], n_in
    for h in hidden:
        layers += [linear(width, h, generator, device, dtype), nn.Tanh()]
        width = h
    return nn.Sequential(*layers, linear(width, n_out, generator, device, dtype))


def _gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``log N(z | mu, exp(log_var))`` summed over the last dimension."""
    return -0.5 * ((z - mu) ** 2 * torch.exp(-log_var) + log_var).sum(-1) - _HALF_LOG_2PI * z.shape[-1]


class VAE(ModelFile, nn.Module):
    """A VAE with Gaussian latent layers ``z_1 ... z_L`` (diagonal covariances) and a Bernoulli
    (or unit-variance Gaussian) likelihood::

        p: z_L ~ N(0, I),  z_l | z_{l+1} ~ N(mu_l, diag exp(log_var_l)),  x | z_1 ~ p(x | decoder(z_1))
        q: z_1 | x ~ N(...),  z_{l+1} | z_l ~ N(...)   (each an MLP of the layer below)

    Args:
        layer_sizes: the visible layer first, then the latent layers: ``[784, 50]`` is Burda et
            al.'s one-stochastic-layer model, ``[784, 100, 50]`` their two-layer one.
        hidden_sizes: per stochastic transition, the widths of the deterministic tanh layers
            between layer ``l`` and ``l + 1`` (the encoder's; the decoder mirrors them). Default:
            ``[200, 200]`` for the first, ``[100, 100]`` for the others (Burda et al.).
        likelihood: ``"bernoulli"`` (the decoder gives logits) or ``"gaussian"`` (means of a
            unit-variance Gaussian).
        generator: seeds the initial weights.

    The samplers are dgm_fast's (``normal_reparam``, ``bernoulli_logits``), and the losses its
    fused ``gaussian_elbo`` and ``iwae_bound``.
    """

    def __init__(self, layer_sizes, hidden_sizes=None, *, likelihood: str = "bernoulli",
                 generator: torch.Generator | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        sizes = check_layer_sizes(layer_sizes, "VAE")
        n_layers = len(sizes) - 1
        if hidden_sizes is None:
            hidden_sizes = [[200, 200]] + [[100, 100]] * (n_layers - 1)
        hidden_sizes = [list(h) for h in hidden_sizes] if isinstance(hidden_sizes, (list, tuple)) else None
        if hidden_sizes is None or len(hidden_sizes) != n_layers or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 1 for h in hidden_sizes for w in h):
            raise ValueError(f"VAE: hidden_sizes must list, for each of the {n_layers} stochastic transitions, the "
                             f"positive widths of its tanh layers, e.g. {[[200, 200]] + [[100, 100]] * (n_layers - 1)}; "
                             f"got {hidden_sizes!r}")
        check_choice(likelihood, LIKELIHOODS, "VAE", "likelihood")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"VAE: dtype must be a floating-point dtype, got {dtype}")
        self.layer_sizes = sizes
        self.hidden_sizes = hidden_sizes
        self.likelihood = likelihood
        args = (generator, device, dtype)
        self.encoders = nn.ModuleList(_mlp(sizes[l], hidden_sizes[l], 2 * sizes[l + 1], *args) for l in range(n_layers))
        self.decoders = nn.ModuleList(
            _mlp(sizes[l + 1], hidden_sizes[l][::-1], sizes[0] if l == 0 else 2 * sizes[l], *args)
            for l in range(n_layers))

    @property
    def n_visible(self) -> int:
        return self.layer_sizes[0]

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, hidden_sizes={self.hidden_sizes}, likelihood={self.likelihood!r}"

    def config(self) -> dict:
        return {"layer_sizes": self.layer_sizes, "hidden_sizes": self.hidden_sizes, "likelihood": self.likelihood}

    def _param(self) -> torch.Tensor:
        return self.decoders[0][-1].weight

    def _check_data(self, x, who: str) -> None:
        check_rows(x, self.n_visible, self._param(), who)

    # ---- the two models -------------------------------------------------------------------

    def encode(self, x: torch.Tensor, k: int | None = None, *, generator: torch.Generator | None = None):
        """Draws ``z ~ q(z | x)`` by the reparameterisation trick.

        Returns ``(zs, posteriors, log_q)``: ``zs = [z_1, ..., z_L]`` (``[B, Z]``, or ``[k, B, Z]``
        with ``k`` samples per row), ``posteriors = [(mu_l, log_var_l), ...]`` of each layer
        (``mu_1`` is ``[B, Z]``: the same for every sample) and ``log_q = log q(z | x)``,
        ``[B]`` or ``[k, B]``. Differentiable in the parameters through the samples."""
        h = x
        zs, posteriors, log_q = [], [], 0
        for layer, encoder in enumerate(self.encoders):
            mu, log_var = encoder(h).chunk(2, dim=-1)
            posteriors.append((mu, log_var))
            if layer == 0 and k is not None:  # one pass of the encoder, k draws
                mu, log_var = mu.expand(k, *mu.shape), log_var.expand(k, *log_var.shape)
            z, eps = normal_reparam(mu.contiguous(), log_var.contiguous(), generator=generator)
            # log N(z | mu, sigma^2) with (z - mu) / sigma = eps exactly: the same gradients as the
            # formula in z, without its rounding
            log_q = log_q - 0.5 * (eps * eps + log_var).sum(-1) - _HALF_LOG_2PI * z.shape[-1]
            zs.append(z)
            h = z
        return zs, posteriors, log_q

    def decode(self, z1: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters given ``z_1``: logits (Bernoulli) or means (Gaussian)."""
        return self.decoders[0](z1)

    def log_joint(self, x: torch.Tensor, zs) -> torch.Tensor:
        """``log p(x, z_1, ..., z_L)`` per row, ``[...]`` (the samples' leading dimensions)."""
        top = zs[-1]
        log_p = -0.5 * (top * top).sum(-1) - _HALF_LOG_2PI * top.shape[-1]
        for layer in range(len(zs) - 1, 0, -1):
            mu, log_var = self.decoders[layer](zs[layer]).chunk(2, dim=-1)
            log_p = log_p + _gaussian_log_prob(zs[layer - 1], mu, log_var)
        out = self.decode(zs[0])
        target = x.expand_as(out)
        if self.likelihood == "bernoulli":
            return log_p + bernoulli_log_prob(target, out)
        return log_p + _gaussian_log_prob(target, out, torch.zeros_like(out))

    def log_weights(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``log p(x, z_k) - log q(z_k | x)`` for ``k`` samples ``z_k ~ q(z | x)``, ``[k, B]``
        (differentiable): the terms of the IWAE bound, and the weights of
        :func:`dgm_fast.evaluate.importance_log_likelihood`."""
        self._check_data(x, "VAE.log_weights")
        check_count(k, "k", "VAE.log_weights")
        zs, _, log_q = self.encode(x, k, generator=generator)
        return self.log_joint(x, zs) - log_q

    # ---- objectives -----------------------------------------------------------------------

    def elbo(self, x: torch.Tensor, k: int = 1, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The evidence lower bound per row, ``[B]``, averaged over ``k`` reparameterised samples
        (Burda et al.'s "VAE with k samples"). With one stochastic layer it is the fused
        :func:`dgm_fast.losses.gaussian_elbo` (the KL in closed form); with more, the mean of
        ``log p(x, z) - log q(z | x)`` over the samples."""
        self._check_data(x, "VAE.elbo")
        check_count(k, "k", "VAE.elbo")
        if len(self.encoders) > 1:
            zs, _, log_q = self.encode(x, k, generator=generator)
            return (self.log_joint(x, zs) - log_q).mean(0)
        mu, log_var = self.encoders[0](x).chunk(2, dim=-1)
        rows = x.shape[0]
        if k > 1:  # k samples per row, as k * B rows of the fused loss
            x, mu, log_var = (t.repeat(k, 1) for t in (x, mu, log_var))
        z, _ = normal_reparam(mu.contiguous(), log_var.contiguous(), generator=generator)
        per_row = -gaussian_elbo(x, self.decode(z), mu, log_var, likelihood=self.likelihood, reduction="none")
        return per_row.view(k, rows).mean(0)

    def iwae_bound(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The importance-weighted bound ``log (1/k) sum_k exp(log p(x, z_k) - log q(z_k | x))``
        per row, ``[B]`` (the fused :func:`dgm_fast.losses.iwae_bound`); ``k = 1`` is the ELBO
        estimated by sampling (the KL not in closed form)."""
        return iwae_bound(self.log_weights(x, k, generator=generator))

    # ---- sampling -------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, means: bool = False) -> torch.Tensor:
        """``n`` visible samples, ``[n, n_visible]``, by ancestral sampling; ``means``: the
        likelihood's means (probabilities, for pictures) instead of a draw."""
        check_count(n, "n", "VAE.sample")
        p = self._param()
        z = torch.empty(n, self.layer_sizes[-1], device=p.device, dtype=p.dtype)
        z, _ = normal_reparam(torch.zeros_like(z), torch.zeros_like(z), generator=generator)
        for layer in range(len(self.decoders) - 1, 0, -1):
            mu, log_var = self.decoders[layer](z).chunk(2, dim=-1)
            z, _ = normal_reparam(mu.contiguous(), log_var.contiguous(), generator=generator)
        out = self.decode(z)
        if self.likelihood == "gaussian":
            return out if means else out + normal_reparam(torch.zeros_like(out), torch.zeros_like(out),
                                                          generator=generator)[0]
        return torch.sigmoid(out) if means else bernoulli_logits(out, generator=generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Not tractable: ``log p(x)`` of a VAE is an integral over the latents with no closed
        form. Raises, naming the estimator to use instead."""
        raise TypeError("VAE.log_prob: log p(x) of a VAE has no closed form; estimate it by importance sampling: "
                        "dgm_fast.evaluate.importance_log_prob(vae, x, n_samples=5000)")
