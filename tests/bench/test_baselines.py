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


def _flat_grads(loss, params):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


@pytest.mark.parametrize("algorithm", ["wake-sleep", "rws", "nvil"])
def test_eager_helmholtz_updates_have_dgm_fasts_expectation(algorithm):
    """The benchmark's plain-PyTorch wake-sleep, RWS and NVIL losses give the gradients of
    dgm_fast's in expectation: over 1,500 draws each on a fixed batch, every coordinate's means
    agree within 5 standard errors (the running statistics of NVIL start equal on both sides)."""
    from dgm_fast import HelmholtzMachine
    from dgm_fast.bench import bench_helmholtz as bench
    from dgm_fast.models.helmholtz import NVILBaseline, nvil_loss, rws_loss, wake_sleep_loss

    torch.manual_seed(0)
    sizes = [6, 4, 3]
    hm = HelmholtzMachine(sizes, init_std=0.8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    baseline = NVILBaseline(sizes, hidden=5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = torch.bernoulli(torch.full((8, 6), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    params = list(hm.parameters())
    gw, gb = list(hm.generative.weights), list(hm.generative.biases)
    rw, rb = list(hm.recognition_weights), list(hm.recognition_biases)
    nets = [[net[0].weight, net[0].bias, net[2].weight, net[2].bias] for net in baseline.nets]
    gen = torch.Generator().manual_seed(4)
    fused, eager = [], []
    for _ in range(1500):
        if algorithm == "wake-sleep":
            ours, plain = wake_sleep_loss(hm, x, generator=gen)[0], bench.eager_wake_sleep_loss(gw, gb, rw, rb, x)
        elif algorithm == "rws":
            ours, plain = rws_loss(hm, x, bench.K, generator=gen)[0], bench.eager_rws_loss(gw, gb, rw, rb, x)
        else:  # fresh running statistics on both sides, so that each draw is the same computation
            baseline.mean.zero_()
            baseline.var.fill_(1.0)
            stats = torch.stack([torch.zeros(2), torch.ones(2)]).double()
            ours = nvil_loss(hm, x, baseline, generator=gen)[0]
            plain = bench.eager_nvil_loss(gw, gb, rw, rb, nets, stats, x)
        fused.append(_flat_grads(ours, params))
        eager.append(_flat_grads(plain, params))
    (m1, s1), (m2, s2) = _mean_and_se(eager), _mean_and_se(fused)
    se = (s1**2 + s2**2).sqrt().clamp(min=1e-12)
    assert ((m1 - m2).abs() / se).max() < 5
    assert ((m1 - 0.8 * m2).abs() / se).max() > 5  # the test has power


@pytest.mark.parametrize("objective,k", [("elbo", 1), ("iwae", 5)])
def test_eager_vae_loss_has_dgm_fasts_expectation(objective, k):
    """The benchmark's plain-PyTorch VAE objective and dgm_fast's agree in expectation (loss and
    gradient): 1,000 draws each, within 5 standard errors."""
    from dgm_fast import VAE
    from dgm_fast.bench.bench_vae import eager_loss
    from dgm_fast.models.vae import vae_loss

    torch.manual_seed(0)
    vae = VAE([6, 2], [[5]], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = torch.bernoulli(torch.full((8, 6), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    params = list(vae.parameters())
    gen = torch.Generator().manual_seed(4)
    fused, eager = [], []
    for _ in range(1000):
        ours = vae_loss(vae, x, objective, k, generator=gen)[0]
        plain = eager_loss(vae.encoders[0], vae.decoders[0], x, objective, k)
        fused.append(torch.cat([ours.detach().reshape(1), _flat_grads(ours, params)]))
        eager.append(torch.cat([plain.detach().reshape(1), _flat_grads(plain, params)]))
    (m1, s1), (m2, s2) = _mean_and_se(eager), _mean_and_se(fused)
    se = (s1**2 + s2**2).sqrt().clamp(min=1e-12)
    assert ((m1 - m2).abs() / se).max() < 5


def test_eager_bernoulli_layer_is_the_op():
    from dgm_fast.bench.bench_bernoulli import eager_log_prob, eager_sample_log_prob
    from dgm_fast.ops.bernoulli import bernoulli_log_prob, bernoulli_sample_log_prob

    logits = torch.randn(50, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    sample, log_q = eager_sample_log_prob(logits)
    torch.testing.assert_close(log_q, bernoulli_log_prob(sample, logits))
    torch.testing.assert_close(eager_log_prob(sample, logits), bernoulli_log_prob(sample, logits))
    ours, ours_log_q = bernoulli_sample_log_prob(logits.expand(20000, 50, 30).reshape(-1, 30))
    torch.testing.assert_close(ours.reshape(20000, 50, 30).mean(0), torch.sigmoid(logits), atol=0.02, rtol=0)


def test_parzen_baseline_is_the_op():
    from dgm_fast.bench.bench_evaluate import eager_parzen

    g = torch.Generator().manual_seed(0)
    x, s = torch.rand(2100, 16, generator=g, dtype=torch.float64), torch.rand(700, 16, generator=g, dtype=torch.float64)
    torch.testing.assert_close(eager_parzen(x, s, 0.2), evaluate.parzen_log_likelihood(x, s, 0.2), rtol=1e-10, atol=1e-9)


def test_nade_baselines_compute_the_op_and_draw_from_its_law():
    import itertools

    from dgm_fast.bench.bench_nade import cumsum_log_prob, eager_sample, loop_log_prob
    from dgm_fast.ops.nade import nade_log_prob

    g = torch.Generator().manual_seed(0)
    params = [torch.randn(6, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64),
              torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)]
    x = (torch.rand(7, 6, generator=g) < 0.5).double()
    expected = nade_log_prob(x, *params)
    for fn in (loop_log_prob, cumsum_log_prob):
        for got, want in zip(fn(x, *params), expected):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the eager sampler's law over the 64 states: total variation within 1.3 times its expectation
    n = 40_000
    torch.manual_seed(1)
    sample = eager_sample(*params, n)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)), dtype=torch.float64)
    exact = nade_log_prob(states, *params)[0].exp()
    empirical = torch.bincount((sample.long() * 2 ** torch.arange(5, -1, -1)).sum(1), minlength=64).double() / n
    tv = 0.5 * (empirical - exact).abs().sum().item()
    assert tv < 1.3 * (exact / (2 * torch.pi * n)).sqrt().sum().item()
