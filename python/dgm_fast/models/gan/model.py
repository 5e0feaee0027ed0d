"""Generative adversarial networks (Goodfellow et al. 2014): a generator G(z), z ~ N(0, I), and a
discriminator D(x) giving a logit, trained against each other (:mod:`.train`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...ops.samplers import bernoulli_logits, normal_reparam
from .._checks import check_count, check_rows
from .._files import ModelFile
from .._layers import linear

__all__ = ["GAN", "Dropout", "mlp"]

OUTPUTS = ("sigmoid", "linear")


class Dropout(nn.Module):
    """``nn.Dropout`` with its mask drawn by dgm_fast's Philox sampler (``bernoulli_logits``, from
    ``generator`` or torch's default one): torch's CPU ``bernoulli_`` took a third of a
    digits-sized GAN update. Zeroes each element with probability ``p`` in training mode and
    scales the others by ``1 / (1 - p)``; the identity in eval mode."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p!r}")
        self.p = float(p)
        self.generator = generator

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep_logit = math.log1p(-self.p) - math.log(self.p)  # sigmoid(keep_logit) = 1 - p
        keep = bernoulli_logits(x.new_full((), keep_logit).expand_as(x), generator=self.generator)
        return x * keep.mul_(1 / (1 - self.p))


def mlp(n_in: int, hidden, n_out: int, *, activation: str, dropout: float = 0.0,
        generator: torch.Generator | None = None, device=None, dtype=None) -> nn.Sequential:
    """An MLP with ``activation`` (``"relu"`` or ``"leaky_relu"``, slope 0.2), then ``dropout``
    if any, between its linear layers and a linear output; weights from ``nn.Linear``'s own
    initialisation, drawn from ``generator``."""
    layers, width = [], n_in
    for n in [*hidden, n_out]:
        layers += [linear(width, n, generator, device, dtype), nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2)]
        if dropout:
            layers.append(Dropout(dropout))
        width = n
    return nn.Sequential(*layers[:-2 if dropout else -1])


class GAN(ModelFile, nn.Module):
    """A generator and a discriminator.

    ``GAN(n_visible=64)`` builds MLPs: the generator ``n_latent -> hidden (ReLU) -> n_visible``
    with a sigmoid output (images in [0, 1]; ``output="linear"`` for unbounded data), the
    discriminator ``n_visible -> hidden (leaky ReLU) -> 1`` logit. ``GAN(generator, discriminator,
    n_latent=...)`` takes your own modules instead: ``generator`` maps ``[B, n_latent]`` to
    ``[B, ...]`` samples and ``discriminator`` maps those to ``[B]`` or ``[B, 1]`` logits.

    Args:
        generator, discriminator: your modules (both or neither).
        n_visible: the data's width, for the default MLPs.
        n_latent: the width of z (default 100 with the MLPs).
        hidden_sizes: the MLPs' hidden widths (default ``[256, 256]``; the discriminator's are
            the generator's reversed).
        output: ``"sigmoid"`` or ``"linear"``, the default generator's output.
        discriminator_dropout: dropout after each hidden layer of the default discriminator (0.5:
            Goodfellow et al. trained theirs with dropout; without it, on small data sets such as
            digits, the discriminator wins early and the generator collapses onto a few images).
        generator_rng: seeds the default MLPs' weights.

    The latent draws are dgm_fast's Philox ``normal_reparam`` (the same seed gives the same
    samples on CPU and CUDA); the losses are the fused :func:`dgm_fast.losses.gan_losses`.
    ``log_prob`` is not defined: a GAN is an implicit model, evaluated by
    :func:`dgm_fast.evaluate.parzen_log_likelihood`. ``save``/``load`` keep a GAN of the default
    MLPs in one file; for your own modules save the ``state_dict``.
    """

    def __init__(self, generator: nn.Module | None = None, discriminator: nn.Module | None = None, *,
                 n_visible: int | None = None, n_latent: int | None = None, hidden_sizes=None,
                 output: str = "sigmoid", discriminator_dropout: float = 0.5, generator_rng: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        if (generator is None) != (discriminator is None):
            raise ValueError("GAN: give both a generator and a discriminator module, or neither (for the default MLPs)")
        self.custom = generator is not None
        if self.custom:
            for module, name in ((generator, "generator"), (discriminator, "discriminator")):
                if not isinstance(module, nn.Module):
                    raise TypeError(f"GAN: {name} must be a torch.nn.Module, got {type(module).__name__}")
            if n_latent is None:
                raise ValueError("GAN: with your own generator, give n_latent (the width of its input z)")
            if n_visible is not None or hidden_sizes is not None:
                raise ValueError("GAN: n_visible and hidden_sizes build the default MLPs; they do not apply to your "
                                 "own modules")
            self.n_visible = None
        else:
            if n_visible is None:
                raise ValueError("GAN: give n_visible (the data's width) for the default MLPs, or your own generator "
                                 "and discriminator modules")
            self.n_visible = check_count(n_visible, "n_visible", "GAN")
            n_latent = 100 if n_latent is None else n_latent
            hidden_sizes = [256, 256] if hidden_sizes is None else list(hidden_sizes)
            if not hidden_sizes or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in hidden_sizes):
                raise ValueError(f"GAN: hidden_sizes must be positive integers, got {hidden_sizes!r}")
            if not 0 <= discriminator_dropout < 1:
                raise ValueError(f"GAN: discriminator_dropout must lie in [0, 1), got {discriminator_dropout!r}")
            if output not in OUTPUTS:
                raise ValueError(f"GAN: output must be one of {OUTPUTS}, got {output!r}")
            if dtype is not None and not dtype.is_floating_point:
                raise TypeError(f"GAN: dtype must be a floating-point dtype, got {dtype}")
            args = {"generator": generator_rng, "device": device, "dtype": dtype}
            generator = mlp(n_latent, hidden_sizes, self.n_visible, activation="relu", **args)
            if output == "sigmoid":
                generator.append(nn.Sigmoid())
            discriminator = mlp(self.n_visible, hidden_sizes[::-1], 1, activation="leaky_relu",
                                dropout=discriminator_dropout, **args)
        self.n_latent = check_count(n_latent, "n_latent", "GAN")
        self.hidden_sizes = hidden_sizes
        self.output = output
        self.discriminator_dropout = discriminator_dropout
        self.generator = generator
        self.discriminator = discriminator
        if self.custom:
            self._check_modules_fit()

    @torch.no_grad()
    def _check_modules_fit(self) -> None:
        """Runs a batch of two latent vectors (zeros) through G and D (in eval mode, so that no running statistics
        change): a discriminator that cannot read the generator's samples, or that gives other
        than one logit per sample, is refused here, with both shapes, rather than mid-training."""
        p = next(self.generator.parameters(), None)
        z = torch.zeros(2, self.n_latent, device=None if p is None else p.device, dtype=None if p is None else p.dtype)
        modes = [(m, m.training) for m in self.modules()]
        self.eval()
        try:
            fake = self.generator(z)
            try:
                logits = self.discriminator(fake)
            except RuntimeError as exc:
                raise ValueError(f"GAN: the discriminator cannot read the generator's samples, of shape "
                                 f"{list(fake.shape)} for a batch of 2 (the error: {exc})") from exc
        finally:
            for m, training in modes:
                m.training = training
        if tuple(logits.shape) not in ((2,), (2, 1)):
            raise ValueError(f"GAN: the discriminator must give one logit per sample, [B] or [B, 1]; for the "
                             f"generator's samples of shape {list(fake.shape)} it gave shape {list(logits.shape)}")

    def extra_repr(self) -> str:
        return f"n_latent={self.n_latent}" + ("" if self.custom else f", n_visible={self.n_visible}")

    def config(self) -> dict:
        """The constructor arguments that rebuild the default MLPs' shape."""
        if self.custom:
            raise TypeError("GAN: a GAN of your own modules cannot be rebuilt from a file; save its state_dict() "
                            "with torch.save and build the modules yourself")
        return {"n_visible": self.n_visible, "n_latent": self.n_latent, "hidden_sizes": self.hidden_sizes,
                "output": self.output, "discriminator_dropout": self.discriminator_dropout}

    def _param(self) -> torch.Tensor:
        return next(self.generator.parameters())

    def latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of z ~ N(0, I), ``[n, n_latent]``."""
        p = self._param()
        zeros = torch.zeros(check_count(n, "n", "GAN.latent"), self.n_latent, device=p.device, dtype=p.dtype)
        return normal_reparam(zeros, zeros, generator=generator)[0]

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z), differentiable."""
        p = self._param()
        check_rows(z, self.n_latent, p, "GAN.generate", "z")
        return self.generator(z)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits, ``[B]`` (a ``[B, 1]`` output is flattened)."""
        logits = self.discriminator(x)
        if logits.dim() == 2 and logits.shape[1] == 1:
            logits = logits.squeeze(1)
        if logits.shape != (x.shape[0],):
            raise ValueError(f"GAN.discriminate: the discriminator must give one logit per sample, [{x.shape[0]}] or "
                             f"[{x.shape[0]}, 1], got shape {list(logits.shape)}")
        return logits

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples G(z), ``[n, ...]``."""
        return self.generator(self.latent(n, generator=generator))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Not defined: a GAN's generator has no density to evaluate. Raises, naming the estimator
        to use instead."""
        raise TypeError("GAN.log_prob: a GAN is an implicit model with no tractable density; estimate one from its "
                        "samples: dgm_fast.evaluate.parzen_log_likelihood(x, gan.sample(10000), sigma)")
