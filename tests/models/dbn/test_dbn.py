"""Deep belief nets: the sampler's law against the exact law of a tiny DBN, the RBM chain as an
unrolled tied-weights belief net, the upward pass, greedy pretraining (streamed, resumable),
and bad input."""

import itertools

import pytest
import torch

from dgm_fast import DBN, RBM, ops
from dgm_fast.models.dbn import pretrain_dbn


def _states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def _random_dbn(sizes, seed=0, scale=1.0):
    dbn = DBN(sizes, generator=torch.Generator().manual_seed(seed), init_std=scale, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for rbm in dbn.rbms:
            rbm.visible_bias.copy_(0.5 * torch.randn(rbm.n_visible, generator=g, dtype=torch.float64))
            rbm.hidden_bias.copy_(0.5 * torch.randn(rbm.n_hidden, generator=g, dtype=torch.float64))
    return dbn


def exact_visible_law(dbn):
    """p(v) of a DBN with one directed layer below its top RBM: the top RBM's equilibrium
    marginal on the penultimate layer (its hidden layer summed out), then p(v | h1)."""
    bottom, top = dbn.rbms
    h1 = _states(top.n_visible)
    log_p_h1 = h1 @ top.visible_bias + torch.nn.functional.softplus(h1 @ top.weight + top.hidden_bias).sum(1)
    p_h1 = torch.softmax(log_p_h1, 0)
    v = _states(bottom.n_visible)
    logits = h1 @ bottom.weight.t() + bottom.visible_bias  # [H1 states, V]
    log_p_v_given_h1 = v @ torch.nn.functional.logsigmoid(logits).t() + (1 - v) @ torch.nn.functional.logsigmoid(-logits).t()
    return (log_p_v_given_h1.exp() * p_h1).sum(1)  # [V states]


def test_sample_follows_the_exact_law_of_the_dbn():
    """40,000 samples of a 4-3-2 DBN (200 sweeps in the top RBM, then the down pass): their
    distribution over the 16 visible states is within 0.02 total variation of the exact law (the
    sampling noise alone is about 0.008 here; measured 0.0096)."""
    dbn = _random_dbn([4, 3, 2], scale=2.0)  # strong weights: laws far apart from the wrong ones below
    samples = dbn.sample(40_000, steps=200, generator=torch.Generator().manual_seed(3))
    assert samples.shape == (40_000, 4)
    index = (samples * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    empirical = torch.bincount(index, minlength=16).double() / len(index)
    tv = 0.5 * (empirical - exact_visible_law(dbn)).abs().sum().item()
    assert tv < 0.02, tv
    # and the check has power: the top RBM's law alone, without its hidden layer, is told apart
    wrong = DBN([4, 3, 2], dtype=torch.float64)
    wrong.load_state_dict(dbn.state_dict())
    with torch.no_grad():
        wrong.rbms[1].weight.zero_()
    assert 0.5 * (empirical - exact_visible_law(wrong)).abs().sum().item() > 0.04  # measured 0.062


def test_the_rbm_chain_is_ancestral_sampling_in_an_unrolled_tied_net():
    """k Gibbs sweeps from v0 draw h0 ~ p(h | v0), v1 ~ p(v | h0), ...: the layers of a 2k-layer
    directed net whose weights alternate W, W^T (the complementary prior behind greedy training),
    sampled top-down from v0. Same generator, same draws: the same bits."""
    rbm = RBM(6, 4, init_std=0.7, generator=torch.Generator().manual_seed(0))
    v0 = torch.bernoulli(torch.full((50, 6), 0.5), generator=torch.Generator().manual_seed(1))
    chain = rbm.gibbs(v0, steps=3, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    layer = v0
    with torch.no_grad():
        for depth in range(6):  # the unrolled net: layer d+1 ~ sigmoid(bias + layer_d (W or W^T))
            if depth % 2 == 0:
                layer = ops.bernoulli_logits(layer @ rbm.weight, rbm.hidden_bias, generator=g)
            else:
                layer = ops.bernoulli_logits(layer @ rbm.weight.t(), rbm.visible_bias, generator=g)
    assert torch.equal(chain, layer)


def test_transform_is_the_upward_pass_of_probabilities():
    dbn = _random_dbn([5, 4, 3, 2])
    x = torch.bernoulli(torch.full((7, 5), 0.5, dtype=torch.float64))
    expected = x
    for rbm in dbn.rbms:
        expected = torch.sigmoid(expected @ rbm.weight + rbm.hidden_bias)
    torch.testing.assert_close(dbn.transform(x), expected)
    assert dbn.up(x, 1).shape == (7, 4) and torch.equal(dbn.up(x, 0), x)
    assert dbn.layer_sizes == [5, 4, 3, 2]


def test_pretraining_streams_each_layers_inputs_and_resumes(digits, tmp_path, monkeypatch):
    """The upper layers see the layer below's probabilities, computed batch by batch (one upward
    pass per batch fetched, never the whole set); a second run resumes from the checkpoints and
    ends where one run ends."""
    kwargs = dict(epochs=[2, 2], batch_size=50, lr=0.05, momentum=0.5, progress=False)
    straight = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    calls = []
    up = DBN.up

    def counting_up(self, x, layers=None):
        calls.append(x.shape[0])
        return up(self, x, layers)

    monkeypatch.setattr(DBN, "up", counting_up)
    histories = pretrain_dbn(straight, digits, generator=torch.Generator().manual_seed(1), **kwargs)
    assert [len(h) for h in histories] == [2, 2]
    assert max(calls) <= 50 and len(calls) == 2 * 36  # 1797 rows: 36 batches per epoch, 2 epochs
    monkeypatch.setattr(DBN, "up", up)

    first = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(first, digits, generator=torch.Generator().manual_seed(1), checkpoint_dir=tmp_path,
                 **{**kwargs, "epochs": [2, 1]})
    resumed = DBN([64, 20, 10], generator=torch.Generator().manual_seed(99))  # all from the files
    pretrain_dbn(resumed, digits, generator=torch.Generator().manual_seed(1), checkpoint_dir=tmp_path, **kwargs)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_pretraining_raises_the_first_layers_likelihood(digits):
    from dgm_fast import evaluate

    dbn = DBN([64, 12, 8], generator=torch.Generator().manual_seed(0))
    dbn.rbms[0].init_visible_bias_from_data(digits)
    before = evaluate.exact_log_likelihood(dbn.rbms[0], digits).item()
    pretrain_dbn(dbn, digits, epochs=[10, 2], batch_size=20, lr=0.05, momentum=0.5, progress=False,
                 generator=torch.Generator().manual_seed(1))
    assert evaluate.exact_log_likelihood(dbn.rbms[0], digits).item() > before + 1.0


@pytest.mark.parametrize("sizes,match", [([64, 10], "at least three layers"), ([64, 0, 5], "positive integers"),
                                         ([64, 2.5, 5], "positive integers"), ("64", "at least three")])
def test_bad_layer_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        DBN(sizes)


def test_layers_that_do_not_chain():
    with pytest.raises(ValueError, match="do not chain: RBM 0 has 20 hidden units but RBM 1 has 30 visible units"):
        DBN.from_rbms([RBM(64, 20), RBM(30, 10)])
    with pytest.raises(ValueError, match="RBM 1 has gaussian visible units"):
        DBN.from_rbms([RBM(64, 20), RBM(20, 10, "gaussian")])
    with pytest.raises(ValueError, match="at least two dgm_fast.RBMs"):
        DBN.from_rbms([RBM(64, 20)])
    dbn = DBN([64, 20, 10])
    dbn.rbms[1] = RBM(30, 10)  # replaced by hand after construction
    with pytest.raises(ValueError, match="do not chain"):
        dbn.transform(torch.zeros(2, 64))
    rbms = [RBM(64, 20), RBM(20, 10)]
    stacked = DBN.from_rbms(rbms)
    assert stacked.layer_sizes == [64, 20, 10] and stacked.rbms[1] is rbms[1]


def test_bad_data_and_epochs(digits):
    dbn = DBN([64, 10, 5])
    with pytest.raises(ValueError, match=r"data must be \[batch, 64\]"):
        pretrain_dbn(dbn, digits[:, :60], progress=False)
    with pytest.raises(ValueError, match="one per layer"):
        pretrain_dbn(dbn, digits, epochs=[1, 2, 3], progress=False)
    with pytest.raises(ValueError, match=r"x must be \[batch, 64\]"):
        dbn.transform(torch.zeros(3, 10))


# ---- the variational lower bound (Salakhutdinov & Murray 2008) ---------------------------------


def test_bound_is_exact_for_the_complementary_prior():
    """A 5-4-5 DBN whose top RBM is the bottom one transposed has the bottom RBM's law, and its
    recognition pass is the true posterior: the bound equals log p(v) exactly."""
    from dgm_fast import evaluate

    dbn = _random_dbn([5, 4, 5])
    bottom, top = dbn.rbms
    with torch.no_grad():
        top.weight.copy_(bottom.weight.t())
        top.visible_bias.copy_(bottom.hidden_bias)
        top.hidden_bias.copy_(bottom.visible_bias)
    v = _states(5)
    bound = evaluate.dbn_lower_bound(dbn, v, evaluate.exact_log_partition(top), samples=None)
    exact = -bottom.free_energy(v) - evaluate.exact_log_partition(bottom)
    torch.testing.assert_close(bound, exact, rtol=0, atol=1e-10)


def test_bound_lies_below_the_exact_log_likelihood():
    from dgm_fast import evaluate

    dbn = _random_dbn([4, 3, 2], scale=2.0)
    v = _states(4)
    bound = evaluate.dbn_lower_bound(dbn, v, evaluate.exact_log_partition(dbn.rbms[-1]), samples=None)
    exact = exact_visible_law(dbn).log()
    assert (bound <= exact + 1e-12).all()
    assert (exact - bound).max() > 0.05  # a posterior that q does not match: a gap


def test_monte_carlo_bound_estimates_the_exact_bound():
    """20,000 draws from q per row: within 0.03 nats of the enumerated expectation (the
    estimator's standard error here is below 0.01)."""
    from dgm_fast import evaluate

    dbn = _random_dbn([6, 4, 3, 2], scale=1.0)
    v = torch.bernoulli(torch.full((5, 6), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(4))
    log_z = evaluate.exact_log_partition(dbn.rbms[-1])
    exact = evaluate.dbn_lower_bound(dbn, v, log_z, samples=None)
    estimate = evaluate.dbn_lower_bound(dbn, v, log_z, samples=20_000, generator=torch.Generator().manual_seed(5))
    assert (estimate - exact).abs().max() < 0.03


def _gaussian_dbn(sizes, seed=0):
    dbn = _random_dbn(sizes, seed=seed)
    gaussian = DBN(sizes, "gaussian", dtype=torch.float64)
    gaussian.load_state_dict({**gaussian.state_dict(), **dbn.state_dict()})
    with torch.no_grad():
        gaussian.rbms[0].visible_log_std.copy_(torch.linspace(-0.5, 0.5, sizes[0], dtype=torch.float64))
    return gaussian


def test_gaussian_bound_is_exact_when_the_data_is_independent_of_the_layers_above():
    """Zero bottom weights: p(v | h1) = N(b, sigma^2) whatever h1, and a top RBM with zero
    weights and visible biases c0 makes the prior on h1 the factorial q(h1 | v): the bound is
    the Gaussian log-density itself."""
    from dgm_fast import evaluate

    dbn = _gaussian_dbn([4, 3, 2])
    bottom, top = dbn.rbms
    with torch.no_grad():
        bottom.weight.zero_()
        top.weight.zero_()
        top.visible_bias.copy_(bottom.hidden_bias)
    v = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bound = evaluate.dbn_lower_bound(dbn, v, evaluate.exact_log_partition(top), samples=None)
    std = bottom.visible_log_std.exp()
    exact = torch.distributions.Normal(bottom.visible_bias, std).log_prob(v).sum(1)
    torch.testing.assert_close(bound, exact.detach(), rtol=0, atol=1e-10)


def test_gaussian_bound_lies_below_the_exact_log_density():
    """log p(v) = log sum_h1 p(h1) N(v; b + sigma h1 W^T, sigma^2), p(h1) the top RBM's marginal,
    by enumeration; the Monte Carlo bound agrees with the enumerated one."""
    from dgm_fast import evaluate

    dbn = _gaussian_dbn([4, 3, 2])
    bottom, top = dbn.rbms
    v = 2 * torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h1 = _states(3)
    log_prior = -top.free_energy(h1) - evaluate.exact_log_partition(top)
    std = bottom.visible_log_std.exp()
    means = bottom.visible_bias + std * (h1 @ bottom.weight.t())  # [8, 4]
    log_lik = torch.distributions.Normal(means.unsqueeze(0), std).log_prob(v.unsqueeze(1)).sum(-1)  # [5, 8]
    exact = torch.logsumexp(log_lik + log_prior, 1).detach()
    log_z = evaluate.exact_log_partition(top)
    bound = evaluate.dbn_lower_bound(dbn, v, log_z, samples=None)
    assert (bound <= exact + 1e-12).all() and (exact - bound).max() > 0.01
    estimate = evaluate.dbn_lower_bound(dbn, v, log_z, samples=20_000, generator=torch.Generator().manual_seed(2))
    assert (estimate - bound).abs().max() < 0.05


def test_bound_refuses_bad_input():
    from dgm_fast import evaluate

    dbn = _random_dbn([4, 3, 2])
    with pytest.raises(ValueError, match=r"x must be \[batch, 4\]"):
        evaluate.dbn_lower_bound(dbn, torch.zeros(3, 5, dtype=torch.float64), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        evaluate.dbn_lower_bound(dbn, torch.full((2, 4), float("nan"), dtype=torch.float64), 0.0)
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        evaluate.dbn_lower_bound(dbn, torch.zeros(2, 4, dtype=torch.float64), 0.0, samples=0)
    with pytest.raises(TypeError, match="must be a dgm_fast.DBN"):
        evaluate.dbn_lower_bound(dbn.rbms[0], torch.zeros(2, 4, dtype=torch.float64), 0.0)


def test_save_load_and_a_checkpoint_of_another_architecture(digits, tmp_path):
    dbn = _random_dbn([5, 4, 3])
    dbn.save(tmp_path / "dbn.pt")
    loaded = DBN.load(tmp_path / "dbn.pt")
    assert loaded.layer_sizes == [5, 4, 3] and all(torch.equal(a, b) for a, b in zip(dbn.parameters(), loaded.parameters()))
    RBM(5, 4).save(tmp_path / "rbm.pt")
    with pytest.raises(ValueError, match="does not hold a DBN"):
        DBN.load(tmp_path / "rbm.pt")
    pretrain_dbn(DBN([64, 10, 5]), digits, epochs=1, progress=False, checkpoint_dir=tmp_path / "run")
    before = (tmp_path / "run" / "layer1.pt").read_bytes()
    with pytest.raises(ValueError, match=r"layer1.pt holds a 10x5 RBM, but layer 1 of this DBN .* is 10x7"):
        pretrain_dbn(DBN([64, 10, 7]), digits, epochs=1, progress=False, checkpoint_dir=tmp_path / "run")
    assert (tmp_path / "run" / "layer1.pt").read_bytes() == before  # nothing on disk is lost


@pytest.mark.parametrize("method,upward", [("cd", "probabilities"), ("pcd", "probabilities"), ("pcd", "samples")])
def test_upper_layers_train_in_native_epochs_with_the_bits_of_one_call_per_update(digits, method, upward):
    kwargs = dict(epochs=[1, 2], batch_size=20, lr=0.05, momentum=0.5, method=method, upward=upward, progress=False)
    native = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(native, digits, generator=torch.Generator().manual_seed(1), **kwargs)
    looped = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(looped, digits, generator=torch.Generator().manual_seed(1), native_epochs=False, **kwargs)
    for a, b in zip(native.parameters(), looped.parameters()):
        assert torch.equal(a, b)


def test_sampled_upward_pass_draws_each_layer_given_the_states_below():
    dbn = _random_dbn([6, 5, 4, 3])
    x = torch.bernoulli(torch.full((50, 6), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    states = dbn.up(x, 2, sample=True, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    h = x
    for rbm in dbn.rbms[:2]:
        h = ops.bernoulli_logits(h @ rbm.weight, rbm.hidden_bias, generator=g)
    assert torch.equal(states, h) and set(states.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(dbn.up(x, 2), dbn.rbms[1].hidden_probs(dbn.rbms[0].hidden_probs(x)))


def test_pretraining_on_sampled_inputs_resumes_with_the_same_bits(digits, tmp_path):
    """The upward samples come from a generator of their own, checkpointed with each layer."""
    kwargs = dict(batch_size=50, lr=0.05, momentum=0.5, method="pcd", upward="samples", progress=False)
    straight = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(straight, digits, epochs=[1, 3], generator=torch.Generator().manual_seed(1), **kwargs)
    first = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(first, digits, epochs=[1, 2], generator=torch.Generator().manual_seed(1), checkpoint_dir=tmp_path,
                 **kwargs)
    resumed = DBN([64, 20, 10], generator=torch.Generator().manual_seed(99))
    pretrain_dbn(resumed, digits, epochs=[1, 3], generator=torch.Generator().manual_seed(1), checkpoint_dir=tmp_path,
                 **kwargs)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    probabilities = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(probabilities, digits, epochs=[1, 3], generator=torch.Generator().manual_seed(1),
                 **{**kwargs, "upward": "probabilities"})
    assert torch.equal(probabilities.rbms[0].weight, straight.rbms[0].weight)  # the bottom layer sees the data
    assert not torch.equal(probabilities.rbms[1].weight, straight.rbms[1].weight)
    with pytest.raises(ValueError, match="upward must be 'probabilities' or 'samples'"):
        pretrain_dbn(probabilities, digits, epochs=1, upward="means", progress=False)


def test_pretraining_streams_a_memory_mapped_file_with_the_bits_of_the_tensor(digits, tmp_path):
    """A MemmapDataset goes through a DataLoader batch by batch (nothing but the batch in memory)
    and trains exactly as the same rows held in a tensor."""
    import numpy as np

    from dgm_fast.data import MemmapDataset

    np.save(tmp_path / "rows.npy", digits.numpy())
    kwargs = {"epochs": [1, 2], "batch_size": 50, "lr": 0.05, "momentum": 0.5, "method": "pcd", "progress": False}
    in_memory = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(in_memory, digits, generator=torch.Generator().manual_seed(1), **kwargs)
    streamed = DBN([64, 20, 10], generator=torch.Generator().manual_seed(0))
    pretrain_dbn(streamed, MemmapDataset(tmp_path / "rows.npy"), generator=torch.Generator().manual_seed(1), **kwargs)
    for a, b in zip(in_memory.parameters(), streamed.parameters()):
        assert torch.equal(a, b)
    np.save(tmp_path / "narrow.npy", digits[:, :63].numpy())
    with pytest.raises(ValueError, match=r"rows must hold 64 values for layer sizes \[64, 20, 10\], got \[63\]"):
        pretrain_dbn(streamed, MemmapDataset(tmp_path / "narrow.npy"), epochs=1, progress=False)
