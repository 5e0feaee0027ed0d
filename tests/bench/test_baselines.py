"""The benchmark suite's baselines compute what dgm_fast computes, so that its ratios compare
equal work. (Random baselines are checked in distribution: same means within stated standard
errors; deterministic ones to float tolerance.)"""

import pytest
import torch

from dgm_fast import RBM, evaluate, losses
from dgm_fast.bench.bench_evaluate import eager_ais
from dgm_fast.bench.bench_losses import eager_gan
from dgm_fast.bench.bench_rbm import WEIGHT_DECAY, eager_cd_grads, eager_sweep, looped, mixing_rbm
from dgm_fast.models.rbm import train


def _mean_and_se(draws):
    stacked = torch.stack(draws).double()
    return stacked.mean(0), stacked.std(0) / len(draws) ** 0.5


def test_eager_cd_gradient_has_dgm_fasts_expectation():
    """One CD-1 gradient on a fixed batch is random; over 3,000 draws each, the eager baseline's
    mean and dgm_fast's agree within 5 standard errors in every coordinate."""
    torch.manual_seed(0)
    rbm = mixing_rbm(6, 4, "cpu")
    v = torch.bernoulli(torch.full((20, 6), 0.4), generator=torch.Generator().manual_seed(1))
    W, b, c = (p.detach() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
    eager, fused = [], []
    for seed in range(3000):
        with torch.no_grad():
            eager.append(torch.cat([g.flatten() for g in eager_cd_grads(v, W, b, c, WEIGHT_DECAY)]))
            grads = train.cd_gradients(rbm, v, *rbm.chain(v, 1, generator=torch.Generator().manual_seed(seed)),
                                       weight_decay=WEIGHT_DECAY)
        fused.append(torch.cat([g.flatten() for g in grads]))
    (m1, s1), (m2, s2) = _mean_and_se(eager), _mean_and_se(fused)
    se = (s1**2 + s2**2).sqrt().clamp(min=1e-12)
    assert ((m1 - m2).abs() / se).max() < 5
    assert ((m1 - 0.8 * m2).abs() / se).max() > 5  # the test has power: a gradient 20% short is told apart


def test_eager_gibbs_chain_has_dgm_fasts_law():
    """After 20 sweeps from the same start, the visible marginals of 4,000 eager chains and 4,000
    dgm_fast chains agree within 5 standard errors."""
    torch.manual_seed(0)
    rbm = mixing_rbm(8, 5, "cpu")
    W, b, c = (p.detach() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
    start = torch.zeros(4000, 8)
    eager = looped(eager_sweep, 20)(start, W, b, c).mean(0)
    fused = rbm.gibbs(start, steps=20, generator=torch.Generator().manual_seed(0)).mean(0)
    se = ((eager * (1 - eager) + fused * (1 - fused)) / 4000).sqrt()
    assert ((eager - fused).abs() / se).max() < 5


@pytest.mark.parametrize("kind", losses.GAN_KINDS)
def test_eager_gan_is_the_fused_loss(kind):
    g = torch.Generator().manual_seed(0)
    real, fake = 3 * torch.randn(1000, generator=g), 3 * torch.randn(1000, generator=g)
    for a, b in zip(eager_gan(kind)(real, fake), losses.gan_losses(real, fake, kind)):
        torch.testing.assert_close(a, b)


def test_eager_ais_estimates_the_same_log_z():
    """On an RBM small enough to enumerate, the eager AIS and dgm_fast's both land within 0.05
    nats of the exact log Z (200 runs, 1,000 temperatures)."""
    torch.manual_seed(0)
    rbm = RBM(10, 6, init_std=0.5, generator=torch.Generator().manual_seed(2))
    exact = float(evaluate.exact_log_partition(rbm))
    base = torch.zeros(10)
    betas = torch.linspace(0, 1, 1000, dtype=torch.float64)
    with torch.no_grad():
        log_w = eager_ais(rbm, base, betas, 200)
    log_z_base = 10 * torch.log(torch.tensor(2.0, dtype=torch.float64)) + 6 * torch.log(torch.tensor(2.0))
    eager = float(log_z_base + torch.logsumexp(log_w, 0) - torch.log(torch.tensor(200.0)))
    fused = evaluate.ais(rbm, 200, betas, data=None, generator=torch.Generator().manual_seed(0)).log_z
    assert abs(eager - exact) < 0.05 and abs(fused - exact) < 0.05, (eager, fused, exact)
