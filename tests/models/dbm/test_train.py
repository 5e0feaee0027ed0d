"""DBM training: the joint gradient against the enumerated gradient of the log-likelihood, greedy
pretraining on digits against an exact log Z, and fit's checkpoint and resume."""

import itertools

import pytest
import torch

from dgm_fast import DBM
from dgm_fast.data import load_digits
from dgm_fast.evaluate import dbm_lower_bound, exact_log_partition
from dgm_fast.models.dbm import dbm_gradients, fit_dbm, pretrain_dbm


def binary_digits():
    images, _ = load_digits()
    return (images > 0.5).float()


def exact_mean_log_likelihood(weights, biases, v, sizes):
    """Mean log p(v) by brute force over every joint state, differentiable (the test's own sum)."""
    codes = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(sizes))), dtype=torch.float64)
    states = list(torch.split(codes, sizes, dim=1))

    def minus_energy(s):
        total = sum((x * b).sum(-1) for x, b in zip(s, biases))
        return total + sum(torch.einsum("...i,ij,...j->...", s[l], weights[l], s[l + 1]) for l in range(len(weights)))

    log_z = torch.logsumexp(minus_energy(states), 0)
    hidden = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(sizes[1:]))), dtype=torch.float64)
    h = list(torch.split(hidden, sizes[1:], dim=1))
    rows = [torch.logsumexp(minus_energy([x.expand(len(hidden), -1), *h]), 0) for x in v]
    return torch.stack(rows).mean() - log_z


def test_joint_gradient_is_the_enumerated_gradient_when_the_posterior_factorises():
    """With W_1 = 0 the posterior is p(h1 | v) p(h2), factorial, so mean-field gives the exact
    data-dependent statistics; the model's come from 200,000 chains after 50 sweeps, whose
    statistics have standard errors below 0.0012: tolerance 0.01."""
    sizes = [4, 3, 2]
    g = torch.Generator().manual_seed(0)
    dbm = DBM(sizes, generator=g, dtype=torch.float64)
    with torch.no_grad():
        dbm.weights[0].copy_(torch.randn(4, 3, generator=g, dtype=torch.float64))
        dbm.weights[1].zero_()
        for b in dbm.biases:
            b.copy_(torch.randn(b.shape, generator=g, dtype=torch.float64) * 0.5)
    v = torch.bernoulli(torch.full((30, 4), 0.4, dtype=torch.float64), generator=g)
    means = dbm.mean_field(v, iterations=100)
    chains = dbm.gibbs(dbm.random_states(200_000, generator=g), 50, generator=g)
    grads = dbm_gradients(dbm, [v, *means], chains, weight_decay=0.0)

    params = [p.detach().clone().requires_grad_(True) for p in [*dbm.weights, *dbm.biases]]
    nll = -exact_mean_log_likelihood(params[:2], params[2:], v, sizes)
    exact = torch.autograd.grad(nll, params)
    for got, want in zip(grads, exact):
        assert torch.allclose(got, want, atol=0.01), (got, want)
    # weight decay adds weight_decay * W to the weights' gradients only
    decayed = dbm_gradients(dbm, [v, *means], chains, weight_decay=0.5)
    assert torch.allclose(decayed[0], grads[0] + 0.5 * dbm.weights[0].detach())
    assert all(torch.equal(a, b) for a, b in zip(decayed[2:], grads[2:]))


def test_pretraining_and_joint_training_raise_the_bound_on_digits():
    """64-16-8 on binarised digits: the mean-field bound with the exact log Z (2^16 states of
    h1 enumerated) rises from 64 log(1/2) = -44.4 at the start."""
    x = binary_digits()
    dbm = DBM([64, 16, 8], generator=torch.Generator().manual_seed(0))

    def bound():
        return float(dbm_lower_bound(dbm, x, exact_log_partition(dbm)).mean())

    start = bound()
    assert abs(start + 64 * torch.log(torch.tensor(2.0)).item()) < 0.1
    pretrain_dbm(dbm, x, epochs=5, batch_size=20, generator=torch.Generator().manual_seed(1), progress=False)
    pretrained = bound()
    assert pretrained < 0 and pretrained > start + 10
    history = fit_dbm(dbm, x, epochs=3, batch_size=20, lr=0.005, n_chains=50,
                      generator=torch.Generator().manual_seed(2), progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert bound() > pretrained - 0.5  # joint training at a small rate does not undo pretraining


@pytest.mark.parametrize("sizes", [[64, 12, 6], [64, 12, 8, 6]])
def test_pretraining_composes_each_hidden_bias_from_the_two_rbms_that_share_the_layer(sizes, tmp_path):
    """Visible bias: the bottom RBM's; a layer between two RBMs: the mean of the hidden bias of
    the RBM below and the visible bias of the RBM above; the top layer: the top RBM's hidden
    bias (read from each layer's checkpoint: [weight, visible bias, hidden bias])."""
    from dgm_fast.train.checkpoint import load_checkpoint

    dbm = DBM(sizes, generator=torch.Generator().manual_seed(0))
    pretrain_dbm(dbm, binary_digits(), epochs=2, batch_size=50, checkpoint_dir=tmp_path,
                 generator=torch.Generator().manual_seed(1), progress=False)
    rbms = [load_checkpoint(tmp_path / f"pretrain{l}.pt")["model"] for l in range(len(sizes) - 1)]
    biases = [b.detach() for b in dbm.biases]
    assert torch.equal(biases[0], rbms[0]["1"]) and torch.equal(biases[-1], rbms[-1]["2"])
    for layer in range(1, len(sizes) - 1):
        torch.testing.assert_close(biases[layer], (rbms[layer - 1]["2"] + rbms[layer]["1"]) / 2)
        assert not torch.allclose(rbms[layer - 1]["2"], rbms[layer]["1"])  # the two do differ
    for w, rbm in zip(dbm.weights, rbms):
        assert torch.equal(w.detach(), rbm["0"])


def test_a_sparsity_target_pulls_the_hidden_means_towards_it():
    """64-16-8 on digits, 5 epochs of joint training from the same start, with and without a
    target of 0.05 at cost 1: the penalty brings each hidden layer's mean activation on the data
    closer to the target (the same draws otherwise)."""
    x = binary_digits()

    def mean_activations(**sparsity):
        dbm = DBM([64, 16, 8], generator=torch.Generator().manual_seed(0), init_std=0.1)
        fit_dbm(dbm, x, epochs=5, batch_size=20, lr=0.01, n_chains=20, generator=torch.Generator().manual_seed(2),
                progress=False, **sparsity)
        return [float(m.mean()) for m in dbm.mean_field(x)]

    free = mean_activations()
    sparse = mean_activations(sparsity_target=0.05, sparsity_cost=1.0)
    for f, s in zip(free, sparse):
        assert abs(s - 0.05) < abs(f - 0.05) - 0.05, (free, sparse)
    with pytest.raises(ValueError, match="sparsity_target must lie in"):
        mean_activations(sparsity_target=1.0)


def test_an_interrupted_joint_training_resumes_bit_for_bit(tmp_path):
    x = binary_digits()[:300]

    def run(epochs, checkpoint):
        dbm = DBM([64, 12, 6], generator=torch.Generator().manual_seed(0))
        fit_dbm(dbm, x, epochs=epochs, batch_size=25, n_chains=20, lr=0.01,
                generator=torch.Generator().manual_seed(5), checkpoint=checkpoint, progress=False)
        return dbm

    whole = run(3, tmp_path / "whole.pt")
    run(1, tmp_path / "split.pt")  # stops after one epoch ...
    resumed = run(3, tmp_path / "split.pt")  # ... and a new process picks the run up
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_training_input_is_refused():
    dbm = DBM([64, 12, 6])
    with pytest.raises(ValueError, match=r"data must be \[rows, 64\]"):
        fit_dbm(dbm, torch.zeros(10, 63), epochs=1)
    with pytest.raises(ValueError, match="data is empty"):
        pretrain_dbm(dbm, torch.zeros(0, 64), epochs=1)
    with pytest.raises(ValueError, match="data contains NaN"):
        fit_dbm(dbm, torch.full((4, 64), float("nan")), epochs=1)
    with pytest.raises(ValueError, match="n_chains must be a positive integer"):
        fit_dbm(dbm, torch.zeros(4, 64), epochs=1, n_chains=0)
    with pytest.raises(ValueError, match="epochs lists 3 values for 2 layers"):
        pretrain_dbm(dbm, torch.zeros(4, 64), epochs=[1, 1, 1])
