"""Every op's fake kernel (what torch.compile and meta tensors run) accepts exactly what its eager
kernel accepts: on each bad input below, the CPU kernel and the fake kernel (through meta
tensors) raise the same exception class with the same message; on good ones they give outputs
of the same shapes and dtypes."""

import pytest
import torch

import dgm_fast  # noqa: F401  (registers the ops)
from helpers import outcome

lib = torch.ops.dgm_fast
f32, f64, i32, i64, f16 = torch.float32, torch.float64, torch.int32, torch.int64, torch.float16


def z(*shape, dtype=f32):
    return torch.zeros(*shape, dtype=dtype)


def elbo_args(b=3, d=5, k=2, **dtypes):
    return [z(b, d, dtype=dtypes.get("x", f32)), z(b, d, dtype=dtypes.get("recon", f32)),
            z(b, k, dtype=dtypes.get("mu", f32)), z(b, k, dtype=dtypes.get("log_var", f32))]


def dbm_params():
    """(weights, biases) of a 6-4-3 DBM."""
    return [z(6, 4), z(4, 3)], [z(6), z(4), z(3)]


def nade_params(dtype=f32):
    """(bias_visible, bias_hidden, weight_in, weight_out) of a 4-visible, 3-hidden NADE."""
    return [z(4, dtype=dtype), z(3, dtype=dtype), z(4, 3, dtype=dtype), z(4, 3, dtype=dtype)]


def identity_orders(rows, D):
    """[rows, D] copies of 0..D-1, from torch.zeros (so on the meta device in the fake run)."""
    return z(rows, D, dtype=i64).add(1).cumsum(1).sub(1)


CASES = {
    # samplers
    "bernoulli_logits ok": lambda: lib.bernoulli_logits(z(4, 3), z(3), return_probs=True),
    "bernoulli_logits int logits": lambda: lib.bernoulli_logits(z(4, 3, dtype=i32)),
    "bernoulli_logits bias dtype": lambda: lib.bernoulli_logits(z(4, 3), z(3, dtype=f64)),
    "bernoulli_logits bias shape": lambda: lib.bernoulli_logits(z(4, 3), z(4)),
    "bernoulli_logits 0-dim with bias": lambda: lib.bernoulli_logits(z(), z(1)),
    "normal_reparam ok": lambda: lib.normal_reparam(z(4, 3), z(4, 3)),
    "normal_reparam int": lambda: lib.normal_reparam(z(4, dtype=i64), z(4, dtype=i64)),
    "normal_reparam dtypes": lambda: lib.normal_reparam(z(4), z(4, dtype=f64)),
    "normal_reparam shapes": lambda: lib.normal_reparam(z(4), z(5)),
    # bernoulli
    "bernoulli_sample_log_prob ok": lambda: lib.bernoulli_sample_log_prob(z(4, 3)),
    "bernoulli_sample_log_prob 3-D ok": lambda: lib.bernoulli_sample_log_prob(z(2, 4, 3, dtype=f64)),
    "bernoulli_sample_log_prob int": lambda: lib.bernoulli_sample_log_prob(z(4, 3, dtype=i64)),
    "bernoulli_sample_log_prob 0-dim": lambda: lib.bernoulli_sample_log_prob(z()),
    "bernoulli_log_prob ok": lambda: lib.bernoulli_log_prob(z(4, 3), z(4, 3)),
    "bernoulli_log_prob shapes": lambda: lib.bernoulli_log_prob(z(4, 3), z(4, 2)),
    "bernoulli_log_prob dtypes": lambda: lib.bernoulli_log_prob(z(4, 3, dtype=f64), z(4, 3)),
    "bernoulli_log_prob 0-dim": lambda: lib.bernoulli_log_prob(z(), z()),
    "bernoulli_log_prob_backward ok": lambda: lib.bernoulli_log_prob_backward(z(4), z(4, 3), z(4, 3)),
    "bernoulli_log_prob_backward grad shape": lambda: lib.bernoulli_log_prob_backward(z(3), z(4, 3), z(4, 3)),
    "bernoulli_log_prob_backward grad dtype": lambda: lib.bernoulli_log_prob_backward(z(4, dtype=f16), z(4, 3), z(4, 3)),
    # elbo
    "gaussian_elbo ok": lambda: lib.gaussian_elbo(*elbo_args()),
    "gaussian_elbo int": lambda: lib.gaussian_elbo(*elbo_args(x=i64, recon=i64, mu=i64, log_var=i64)),
    "gaussian_elbo poisson": lambda: lib.gaussian_elbo(*elbo_args(), likelihood="poisson"),
    "gaussian_elbo mu dtype": lambda: lib.gaussian_elbo(*elbo_args(mu=f64)),
    "gaussian_elbo x 1-D": lambda: lib.gaussian_elbo(z(5), z(5), z(3, 2), z(3, 2)),
    "gaussian_elbo recon shape": lambda: lib.gaussian_elbo(z(3, 5), z(3, 4), z(3, 2), z(3, 2)),
    "gaussian_elbo mu batch": lambda: lib.gaussian_elbo(z(3, 5), z(3, 5), z(2, 2), z(2, 2)),
    "gaussian_elbo log_var shape": lambda: lib.gaussian_elbo(z(3, 5), z(3, 5), z(3, 2), z(3, 1)),
    "gaussian_elbo_with_grad ok": lambda: lib.gaussian_elbo_with_grad(*elbo_args()),
    "gaussian_elbo_with_grad scaled ok": lambda: lib.gaussian_elbo_with_grad(*elbo_args(), scale=0.25),
    "gaussian_elbo_with_grad poisson": lambda: lib.gaussian_elbo_with_grad(*elbo_args(), likelihood="poisson"),
    "gaussian_elbo_with_grad int": lambda: lib.gaussian_elbo_with_grad(*elbo_args(x=i32, recon=i32, mu=i32, log_var=i32)),
    "gaussian_elbo_backward ok": lambda: lib.gaussian_elbo_backward(z(3), *elbo_args()),
    "gaussian_elbo_backward grad shape": lambda: lib.gaussian_elbo_backward(z(4), *elbo_args()),
    "gaussian_elbo_backward grad dtype": lambda: lib.gaussian_elbo_backward(z(3, dtype=f64), *elbo_args()),
    "iwae_bound ok": lambda: lib.iwae_bound(z(4, 3)),
    "iwae_bound int64": lambda: lib.iwae_bound(z(4, 3, dtype=i64)),
    "iwae_bound 1-D": lambda: lib.iwae_bound(z(4)),
    "iwae_bound no samples": lambda: lib.iwae_bound(z(0, 3)),
    "iwae_bound_with_grad ok": lambda: lib.iwae_bound_with_grad(z(4, 3), scale=0.5),
    "iwae_bound_with_grad f64 ok": lambda: lib.iwae_bound_with_grad(z(4, 3, dtype=f64)),
    "iwae_bound_with_grad int32": lambda: lib.iwae_bound_with_grad(z(4, 3, dtype=i32)),
    "iwae_bound_with_grad 1-D": lambda: lib.iwae_bound_with_grad(z(4)),
    "iwae_bound_with_grad no samples": lambda: lib.iwae_bound_with_grad(z(0, 3)),
    "iwae_bound_backward ok": lambda: lib.iwae_bound_backward(z(3), z(4, 3), z(3)),
    "iwae_bound_backward grad shape": lambda: lib.iwae_bound_backward(z(2), z(4, 3), z(3)),
    "iwae_bound_backward bound dtype": lambda: lib.iwae_bound_backward(z(3), z(4, 3), z(3, dtype=f64)),
    # gan
    "gan_losses ok": lambda: lib.gan_losses(z(5), z(3, 2), "minimax"),
    "gan_losses int64": lambda: lib.gan_losses(z(5, dtype=i64), z(5, dtype=i64)),
    "gan_losses empty": lambda: lib.gan_losses(z(0), z(5)),
    "gan_losses dtypes": lambda: lib.gan_losses(z(5), z(5, dtype=f64)),
    "gan_losses kind": lambda: lib.gan_losses(z(5), z(5), "wasserstein"),
    "gan_losses_backward ok": lambda: lib.gan_losses_backward(z(()), z(()), z(5), z(3), "reversed"),
    "gan_losses_backward grad shape": lambda: lib.gan_losses_backward(z(1), z(()), z(5), z(3), "reversed"),
    "gan_losses_backward grad dtype": lambda: lib.gan_losses_backward(z((), dtype=f64), z(()), z(5), z(3), "reversed"),
    # mmd
    "mmd ok": lambda: lib.mmd(z(4, 3), z(5, 3), [1.0, 2.0]),
    "mmd float16": lambda: lib.mmd(z(4, 3, dtype=f16), z(5, 3, dtype=f16), [1.0]),
    "mmd dtypes": lambda: lib.mmd(z(4, 3), z(5, 3, dtype=f64), [1.0]),
    "mmd one row unbiased": lambda: lib.mmd(z(1, 3), z(5, 3), [1.0]),
    "mmd one row biased ok": lambda: lib.mmd(z(1, 3), z(1, 3), [1.0], unbiased=False),
    "mmd negative bandwidth": lambda: lib.mmd(z(4, 3), z(5, 3), [1.0, -1.0]),
    "mmd no bandwidth": lambda: lib.mmd(z(4, 3), z(5, 3), []),
    "mmd kernel": lambda: lib.mmd(z(4, 3), z(5, 3), [1.0], kernel_kind="laplace"),
    "mmd 1-D": lambda: lib.mmd(z(4), z(5), [1.0]),
    "mmd columns": lambda: lib.mmd(z(4, 3), z(5, 2), [1.0]),
    "mmd_with_grad ok": lambda: lib.mmd_with_grad(z(4, 3), z(5, 3), [1.0]),
    "mmd_with_grad one row": lambda: lib.mmd_with_grad(z(1, 3), z(5, 3), [1.0]),
    "mmd_backward ok": lambda: lib.mmd_backward(z(()), z(4, 3), z(5, 3), [1.0]),
    "mmd_backward grad shape": lambda: lib.mmd_backward(z(2), z(4, 3), z(5, 3), [1.0]),
    # dbm (composites: the fake tensors run the eager kernel's checks)
    "dbm_mean_field ok": lambda: lib.dbm_mean_field(z(2, 6), *dbm_params(), 3, damping=0.5),
    "dbm_mean_field one hidden layer": lambda: lib.dbm_mean_field(z(2, 6), [z(6, 4)], [z(6), z(4)], 3),
    "dbm_mean_field weight shape": lambda: lib.dbm_mean_field(z(2, 6), [z(6, 4), z(3, 4)], dbm_params()[1], 3),
    "dbm_mean_field v width": lambda: lib.dbm_mean_field(z(2, 5), *dbm_params(), 3),
    # nade
    "nade_log_prob ok": lambda: lib.nade_log_prob(z(2, 4), *nade_params()),
    "nade_log_prob per-row order ok": lambda: lib.nade_log_prob(z(2, 4), *nade_params(), identity_orders(2, 4)),
    "nade_log_prob empty batch ok": lambda: lib.nade_log_prob(z(0, 4), *nade_params()),
    "nade_log_prob float16": lambda: lib.nade_log_prob(z(2, 4, dtype=f16), *nade_params(f16)),
    "nade_log_prob x dtype": lambda: lib.nade_log_prob(z(2, 4, dtype=f64), *nade_params()),
    "nade_log_prob x width": lambda: lib.nade_log_prob(z(2, 5), *nade_params()),
    "nade_log_prob weight_in 1-D": lambda: lib.nade_log_prob(z(2, 4), z(4), z(3), z(4), z(4, 3)),
    "nade_log_prob weight_out shape": lambda: lib.nade_log_prob(z(2, 4), z(4), z(3), z(4, 3), z(3, 4)),
    "nade_log_prob bias_hidden shape": lambda: lib.nade_log_prob(z(2, 4), z(4), z(4), z(4, 3), z(4, 3)),
    "nade_log_prob bias dtype": lambda: lib.nade_log_prob(z(2, 4), z(4, dtype=f64), *nade_params()[1:]),
    "nade_log_prob order dtype": lambda: lib.nade_log_prob(z(2, 4), *nade_params(), z(4, dtype=i32)),
    "nade_log_prob order shape": lambda: lib.nade_log_prob(z(2, 4), *nade_params(), z(3, 4, dtype=i64)),
    "nade_log_prob_backward ok": lambda: lib.nade_log_prob_backward(z(2), None, z(2, 4), z(2, 4), *nade_params()[1:]),
    "nade_log_prob_backward grad_logits ok": lambda: lib.nade_log_prob_backward(z(2), z(2, 4), z(2, 4), z(2, 4),
                                                                                 *nade_params()[1:]),
    "nade_log_prob_backward grad shape": lambda: lib.nade_log_prob_backward(z(3), None, z(2, 4), z(2, 4),
                                                                             *nade_params()[1:]),
    "nade_log_prob_backward grad dtype": lambda: lib.nade_log_prob_backward(z(2, dtype=f64), None, z(2, 4), z(2, 4),
                                                                             *nade_params()[1:]),
    "nade_log_prob_backward logits rows": lambda: lib.nade_log_prob_backward(z(2), None, z(2, 4), z(3, 4),
                                                                              *nade_params()[1:]),
    "nade_log_prob_backward grad_logits shape": lambda: lib.nade_log_prob_backward(z(2), z(2, 3), z(2, 4), z(2, 4),
                                                                                    *nade_params()[1:]),
    "nade_sample ok": lambda: lib.nade_sample(*nade_params(), 3),
    "nade_sample none ok": lambda: lib.nade_sample(*nade_params(f64), 0),
    "nade_sample negative": lambda: lib.nade_sample(*nade_params(), -2),
    "nade_sample order rows": lambda: lib.nade_sample(*nade_params(), 3, z(2, 4, dtype=i64)),
    "nade_sample int": lambda: lib.nade_sample(*nade_params(i64), 3),
    # parzen
    "parzen_log_density ok": lambda: lib.parzen_log_density(z(4, 3), z(5, 3), [0.5]),
    "parzen_log_density three widths ok": lambda: lib.parzen_log_density(z(4, 3), z(5, 3), [0.5, 1.0, 2.0]),
    "parzen_log_density no points ok": lambda: lib.parzen_log_density(z(0, 3), z(5, 3), [0.5]),
    "parzen_log_density float16": lambda: lib.parzen_log_density(z(4, 3, dtype=f16), z(5, 3, dtype=f16), [0.5]),
    "parzen_log_density dtypes": lambda: lib.parzen_log_density(z(4, 3), z(5, 3, dtype=f64), [0.5]),
    "parzen_log_density 1-D": lambda: lib.parzen_log_density(z(4), z(5, 3), [0.5]),
    "parzen_log_density columns": lambda: lib.parzen_log_density(z(4, 3), z(5, 2), [0.5]),
    "parzen_log_density no samples": lambda: lib.parzen_log_density(z(4, 3), z(0, 3), [0.5]),
    "parzen_log_density no widths": lambda: lib.parzen_log_density(z(4, 3), z(5, 3), []),
    "parzen_log_density sigma 0": lambda: lib.parzen_log_density(z(4, 3), z(5, 3), [1.0, 0.0]),
    "parzen_log_density sigma inf": lambda: lib.parzen_log_density(z(4, 3), z(5, 3), [float("inf")]),
    "dbm_mean_field v dtype": lambda: lib.dbm_mean_field(z(2, 6, dtype=f64), *dbm_params(), 3),
    "dbm_gibbs_chain ok": lambda: lib.dbm_gibbs_chain([z(2, 6), z(2, 4), z(2, 3)], *dbm_params(), 2),
    "dbm_gibbs_chain batch": lambda: lib.dbm_gibbs_chain([z(2, 6), z(3, 4), z(2, 3)], *dbm_params(), 2),
    "dbm_ais ok": lambda: lib.dbm_ais([z(5, 4)], *dbm_params(), dbm_params()[1], [0.0, 0.5, 1.0]),
    "dbm_ais beta range": lambda: lib.dbm_ais([z(5, 4)], *dbm_params(), dbm_params()[1], [0.0, 2.0]),
    "dbm_ais base dtype": lambda: lib.dbm_ais([z(5, 4)], *dbm_params(), [z(6), z(4, dtype=f64), z(3)], [0.0, 1.0]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fake_kernel_agrees_with_the_cpu_kernel(name, monkeypatch):
    eager = outcome(CASES[name])
    real_zeros = torch.zeros
    monkeypatch.setattr(torch, "zeros", lambda *a, **k: real_zeros(*a, **{**k, "device": "meta"}))
    fake = outcome(CASES[name])
    assert fake == eager
    assert (eager[0] == "ok") == name.endswith(" ok")  # the case list says what each case is
