"""Generative moment matching networks (Li, Swersky & Zemel 2015; Dziugaite, Roy & Ghahramani
2015): a generator G(z), z ~ N(0, I), trained to make the squared MMD between its samples and the
data small (:mod:`.train`), in data space or in the code space of an autoencoder (GMMN+AE,
:class:`Autoencoder`)."""

from __future__ import annotations

import torch
from torch import nn

from ...ops.samplers import normal_reparam
from .._checks import check_count, check_layer_sizes, check_rows
from .._files import ModelFile
from .._layers import linear
from ..gan.model import mlp

__all__ = ["Autoencoder", "GMMN"]


class GMMN(ModelFile, nn.Module):
    """A generator ``n_latent -> hidden (ReLU) -> n_visible``, sigmoid output (data in [0, 1];
    ``output="linear"`` for unbounded data, e.g. an autoencoder's codes before their sigmoid).

    Args:
        n_visible: the width of the data (or of the autoencoder's code).
        n_latent: the width of z (default 10).
        hidden_sizes: default ``[64, 256, 256, 1024]`` (Li et al.'s MNIST generator).
        output: ``"sigmoid"`` or ``"linear"``.
        generator_rng: seeds the initial weights.

    Li et al. draw z uniformly from [-1, 1]; here z ~ N(0, I), dgm_fast's Philox ``normal_reparam``
    (the same seed gives the same samples on CPU and CUDA). ``log_prob`` is not defined (an
    implicit model): evaluate with :func:`dgm_fast.evaluate.parzen_log_likelihood`.
    """

    def __init__(self, n_visible: int, n_latent: int = 10, hidden_sizes=None, *, output: str = "sigmoid",
                 generator_rng: torch.Generator | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        self.n_visible = check_count(n_visible, "n_visible", "GMMN")
        self.n_latent = check_count(n_latent, "n_latent", "GMMN")
        hidden_sizes = [64, 256, 256, 1024] if hidden_sizes is None else list(hidden_sizes)
        if not hidden_sizes or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in hidden_sizes):
            raise ValueError(f"GMMN: hidden_sizes must be positive integers, got {hidden_sizes!r}")
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"GMMN: output must be 'sigmoid' or 'linear', got {output!r}")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"GMMN: dtype must be a floating-point dtype, got {dtype}")
        self.hidden_sizes, self.output = hidden_sizes, output
        self.generator = mlp(self.n_latent, hidden_sizes, self.n_visible, activation="relu", generator=generator_rng,
                             device=device, dtype=dtype)
        if output == "sigmoid":
            self.generator.append(nn.Sigmoid())

    def extra_repr(self) -> str:
        return f"n_latent={self.n_latent}, n_visible={self.n_visible}, output={self.output!r}"

    def config(self) -> dict:
        return {"n_visible": self.n_visible, "n_latent": self.n_latent, "hidden_sizes": self.hidden_sizes,
                "output": self.output}

    def _param(self) -> torch.Tensor:
        return self.generator[0].weight

    def latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of z ~ N(0, I), ``[n, n_latent]``."""
        p = self._param()
        zeros = torch.zeros(check_count(n, "n", "GMMN.latent"), self.n_latent, device=p.device, dtype=p.dtype)
        return normal_reparam(zeros, zeros, generator=generator)[0]

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z), ``[B, n_visible]``, differentiable."""
        check_rows(z, self.n_latent, self._param(), "GMMN.generate", "z")
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples, ``[n, n_visible]``."""
        return self.generator(self.latent(n, generator=generator))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Not defined: a GMMN is an implicit model. Raises, naming the estimator to use instead."""
        raise TypeError("GMMN.log_prob: a GMMN is an implicit model with no tractable density; estimate one from its "
                        "samples: dgm_fast.evaluate.parzen_log_likelihood(x, gmmn.sample(10000), sigma)")


class Autoencoder(ModelFile, nn.Module):
    """The autoencoder of GMMN+AE: sigmoid layers ``layer_sizes[0] -> ... -> layer_sizes[-1]`` (the
    code) and their mirror back, a sigmoid output trained by the cross-entropy with data in
    [0, 1] (Li et al.: 784-1024-32).

    Args:
        layer_sizes: the data's width first, the code's last, e.g. ``[784, 1024, 32]``.
        generator_rng: seeds the initial weights.
    """

    def __init__(self, layer_sizes, *, generator_rng: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        self.layer_sizes = check_layer_sizes(layer_sizes, "Autoencoder")
        args = {"generator": generator_rng, "device": device, "dtype": dtype}
        sizes = self.layer_sizes
        self.encoder = nn.Sequential(*_sigmoid_layers(sizes, **args))
        self.decoder = nn.Sequential(*_sigmoid_layers(sizes[::-1], **args)[:-1])  # logits out

    def _param(self) -> torch.Tensor:
        return self.encoder[0].weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codes, ``[B, code]``, in (0, 1)."""
        check_rows(x, self.layer_sizes[0], self._param(), "Autoencoder.encode")
        return self.encoder(x)

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        check_rows(code, self.layer_sizes[-1], self._param(), "Autoencoder.decode", "code")
        return self.decoder(code)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """The reconstructions' means, ``[B, n_visible]`` in (0, 1)."""
        return torch.sigmoid(self.decode_logits(code))


def _sigmoid_layers(sizes, *, generator, device, dtype) -> list[nn.Module]:
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [linear(n_in, n_out, generator, device, dtype), nn.Sigmoid()]
    return layers
