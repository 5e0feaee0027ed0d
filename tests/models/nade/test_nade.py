"""The NADE model: exact normalisation, orderings and their ensembles, training through fit
(fixed and order-agnostic), bit-exact resume, files and bad input."""

import itertools
import math

import pytest
import torch

from dgm_fast import NADE
from dgm_fast.models.nade import fit_nade
from dgm_fast.ops.nade import nade_log_prob


def all_states(D, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)), dtype=dtype)


def random_nade(D=10, H=8, seed=0, **kw):
    nade = NADE(D, H, generator=torch.Generator().manual_seed(seed), dtype=torch.float64, **kw)
    with torch.no_grad():  # away from the initial zeros of the biases
        for p in nade.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=p.dtype))
    return nade


def binary_digits(n=300):
    from dgm_fast.data import load_digits
    images, _ = load_digits()
    return (torch.rand(images[:n].shape, generator=torch.Generator().manual_seed(0)) < images[:n]).float()


def test_probabilities_of_all_states_sum_to_one_under_any_ordering_and_their_ensemble():
    nade = random_nade(order=torch.randperm(10, generator=torch.Generator().manual_seed(3)))
    x = all_states(10)
    assert abs(nade.log_prob(x).exp().sum().item() - 1) < 1e-12
    other = torch.randperm(10, generator=torch.Generator().manual_seed(4))
    assert abs(nade.log_prob(x, order=other).exp().sum().item() - 1) < 1e-12
    ensemble = nade.ensemble_log_prob(x, 6, generator=torch.Generator().manual_seed(5))
    assert abs(ensemble.exp().sum().item() - 1) < 1e-12
    # the ensemble is the mean of the orderings' probabilities (the model's own and 5 random)
    orders = torch.rand(6, 10, generator=torch.Generator().manual_seed(5)).argsort(1)
    orders[0] = nade.order
    mean = torch.stack([nade.log_prob(x, order=o).exp() for o in orders]).mean(0)
    torch.testing.assert_close(ensemble.exp(), mean, rtol=1e-12, atol=1e-15)


def test_orderings_give_different_models_of_the_same_parameters():
    nade = random_nade()
    x = all_states(10)[::37]
    assert not torch.allclose(nade.log_prob(x), nade.log_prob(x, order=torch.arange(9, -1, -1)))


def test_per_row_orderings():
    nade = random_nade()
    x = all_states(10)[::100]
    orders = torch.stack([torch.randperm(10, generator=torch.Generator().manual_seed(r)) for r in range(len(x))])
    per_row = nade.log_prob(x, order=orders)
    one_by_one = torch.cat([nade.log_prob(x[r:r + 1], order=orders[r]) for r in range(len(x))])
    assert torch.equal(per_row, one_by_one)


def test_conditionals_are_the_log_prob_terms():
    nade = random_nade()
    x = all_states(10)[::50]
    log_prob, logits = nade.log_prob_and_logits(x)
    terms = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    torch.testing.assert_close(log_prob, terms, rtol=1e-12, atol=1e-12)


def test_samples_and_means():
    nade = random_nade()
    s = nade.sample(500, generator=torch.Generator().manual_seed(1))
    assert s.shape == (500, 10) and set(s.unique().tolist()) <= {0.0, 1.0}
    m = nade.sample(500, generator=torch.Generator().manual_seed(1), means=True)
    # the means are the probabilities of the units given the very states drawn above
    _, logits = nade.log_prob_and_logits(s)
    torch.testing.assert_close(m, torch.sigmoid(logits))
    assert nade.sample(0).shape == (0, 10)


@pytest.mark.parametrize("order_agnostic", [False, True])
def test_training_raises_the_log_likelihood(order_agnostic):
    data = binary_digits()
    nade = NADE(64, 32, generator=torch.Generator().manual_seed(0))
    before = nade.log_prob(data).mean().item()
    history = fit_nade(nade, data, epochs=5, batch_size=20, lr=3e-3, order_agnostic=order_agnostic,
                       generator=torch.Generator().manual_seed(1), progress=False)
    assert history[-1]["log_prob"] > history[0]["log_prob"] + 3
    after = nade.log_prob(data).mean().item()
    assert after > before + 8, (before, after)
    if order_agnostic:  # trained for every ordering: a random one does about as well as the own
        other = nade.log_prob(data, order=torch.randperm(64, generator=torch.Generator().manual_seed(2)))
        assert abs(other.mean().item() - after) < 2


def test_order_agnostic_steps_use_a_random_ordering_per_row(monkeypatch):
    seen = []
    import dgm_fast.models.nade.train as train

    def spy(x, *params):
        seen.append(params[-1])
        return nade_log_prob(x, *params)

    monkeypatch.setattr(train, "nade_log_prob", spy)
    data = binary_digits(40)
    fit_nade(NADE(64, 8), data, epochs=1, batch_size=20, order_agnostic=True, progress=False,
             generator=torch.Generator().manual_seed(0))
    assert len(seen) == 2 and all(o.shape == (20, 64) for o in seen)
    assert not torch.equal(seen[0][0], seen[0][1]) and not torch.equal(seen[0], seen[1])
    assert all(torch.equal(o.sort(1).values, torch.arange(64).expand(20, 64)) for o in seen)


def test_resume_is_bit_exact_and_files_round_trip(tmp_path):
    data = binary_digits(100)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(9))

    def run(epochs, path):
        nade = NADE(64, 16, order=order, generator=torch.Generator().manual_seed(0))
        fit_nade(nade, data, epochs=epochs, batch_size=25, order_agnostic=True,
                 generator=torch.Generator().manual_seed(1), checkpoint=path, progress=False)
        return nade

    straight = run(3, tmp_path / "a.pt")
    run(1, tmp_path / "b.pt")
    resumed = run(3, tmp_path / "b.pt")
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    straight.save(tmp_path / "nade.pt")
    for path in (tmp_path / "a.pt", tmp_path / "nade.pt"):
        loaded = NADE.load(path)
        assert loaded.config() == straight.config() and torch.equal(loaded.order, order)
        assert torch.equal(loaded.log_prob(data), straight.log_prob(data))


def test_bad_input():
    nade = NADE(6, 4)
    with pytest.raises(ValueError, match="binary values"):
        nade.log_prob(torch.full((2, 6), 0.5))
    with pytest.raises(ValueError, match="binary values"):
        fit_nade(nade, torch.full((4, 6), 0.5), progress=False)
    with pytest.raises(ValueError, match=r"x must be \[batch, 6\]"):
        nade.log_prob(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"a permutation of 0..5; this one holds 3 twice"):
        NADE(6, 4, order=[0, 1, 3, 3, 4, 5])
    with pytest.raises(ValueError, match=r"this one \(row 1\) holds 6, outside 0..5"):
        nade.log_prob(torch.zeros(2, 6), order=torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]))
    with pytest.raises(ValueError, match=r"an ordering must be \[6\] or \[3, 6\], got \[2, 6\]"):
        nade.sample(3, order=torch.zeros(2, 6, dtype=torch.int64))
    with pytest.raises(TypeError, match="integer unit indices"):
        nade.log_prob(torch.zeros(2, 6), order=torch.arange(6.0))
    with pytest.raises(TypeError, match="float32 or float64"):
        NADE(6, 4, dtype=torch.float16)
    with pytest.raises(ValueError, match="n_hidden must be a positive integer"):
        NADE(6, 0)
    with pytest.raises(ValueError, match="n_orderings must be a positive integer"):
        nade.ensemble_log_prob(torch.zeros(2, 6), 0)
    with torch.no_grad():
        nade.weight_in[0, 0] = math.nan
    with pytest.raises(ValueError, match="weight_in holds NaN"):
        fit_nade(nade, torch.zeros(4, 6), progress=False)
