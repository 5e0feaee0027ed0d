"""The MADE model: exact normalisation per mask set and of the ensemble, the autoregressive
property through the Jacobian, the ensemble's law and its sampler, training, resume, files, and
masks that would break the property."""

import itertools
import math

import pytest
import torch

from dgm_fast import MADE
from dgm_fast.models.made import fit_made, made_masks


def all_states(D, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)), dtype=dtype)


def random_made(D=10, hidden=(20, 20), n_masks=4, seed=0, **kw):
    made = MADE(D, list(hidden), n_masks=n_masks, generator=torch.Generator().manual_seed(seed),
                dtype=torch.float64, **kw)
    with torch.no_grad():
        for p in made.parameters():
            p.mul_(2).add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + 1),
                                             dtype=p.dtype))
    return made


def positions(order):
    pos = torch.empty_like(order)
    pos[order] = torch.arange(len(order))
    return pos


@pytest.mark.parametrize("order_agnostic,direct", [(False, True), (True, True), (True, False)])
def test_every_mask_set_and_the_ensemble_sum_to_one(order_agnostic, direct):
    made = random_made(order_agnostic=order_agnostic, direct=direct)
    x = all_states(10)
    for m in range(made.n_masks):
        assert abs(made.log_prob(x, mask=m).exp().sum().item() - 1) < 1e-12
    assert abs(made.log_prob(x).exp().sum().item() - 1) < 1e-12


@pytest.mark.parametrize("order_agnostic,direct", [(False, True), (True, True), (True, False)])
def test_output_d_depends_only_on_the_inputs_before_d_by_the_jacobian(order_agnostic, direct):
    made = random_made(hidden=(30, 30, 30), order_agnostic=order_agnostic, direct=direct)
    x = torch.rand(1, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.1
    for m in range(made.n_masks):
        jacobian = torch.autograd.functional.jacobian(lambda v: made.logits(v, m), x)[0, :, 0, :]  # [out, in]
        pos = positions(made.orders[m])
        before = pos[None, :] < pos[:, None]  # input e comes before output d
        assert not jacobian[~before].any()
        if direct:  # the direct connections reach every allowed pair
            assert (jacobian[before] != 0).all()


def test_the_ensemble_averages_probabilities_not_logits():
    made = random_made(order_agnostic=True)
    x = all_states(10)
    per_mask = torch.stack([made.log_prob(x, mask=m) for m in range(made.n_masks)])
    torch.testing.assert_close(made.log_prob(x).exp(), per_mask.exp().mean(0), rtol=1e-12, atol=1e-15)
    mean_logits = torch.stack([made.logits(x, m) for m in range(made.n_masks)]).mean(0)
    from_mean_logits = -torch.nn.functional.binary_cross_entropy_with_logits(mean_logits, x, reduction="none").sum(1)
    assert (from_mean_logits.exp().sum() - 1).abs() > 1e-3  # averaged logits are not even normalised here
    assert not torch.allclose(made.log_prob(x), from_mean_logits)


def test_the_ensemble_sampler_follows_the_ensemble_law():
    # 100,000 samples over the 256 states of D = 8. The expected total-variation distance of an
    # empirical law is about sum_s sqrt(p_s / (2 pi N)) (0.0195 here; 0.0214 measured); the bound
    # is 1.25 times it.
    D, n = 8, 100_000
    made = random_made(D=D, hidden=(16,), n_masks=3, order_agnostic=True)
    with torch.no_grad():
        for p in made.parameters():
            p.mul_(0.5)
    exact = made.log_prob(all_states(D)).exp()
    expected = (exact / (2 * math.pi * n)).sqrt().sum().item()
    sample = made.sample(n, generator=torch.Generator().manual_seed(4))
    index = (sample.long() * 2 ** torch.arange(D - 1, -1, -1)).sum(1)
    empirical = torch.bincount(index, minlength=2**D).double() / n
    tv = 0.5 * (empirical - exact).abs().sum().item()
    assert 0.019 < expected < 0.020 and tv < 1.25 * expected, (tv, expected)
    # one mask set's sampler against that mask set's law
    exact_1 = made.log_prob(all_states(D), mask=1).exp()
    sample_1 = made.sample(n, mask=1, generator=torch.Generator().manual_seed(5))
    empirical_1 = torch.bincount((sample_1.long() * 2 ** torch.arange(D - 1, -1, -1)).sum(1), minlength=2**D) / n
    assert 0.5 * (empirical_1.double() - exact_1).abs().sum().item() < 1.25 * (exact_1 / (2 * math.pi * n)).sqrt().sum()


def test_training_raises_the_log_likelihood():
    from dgm_fast.data import load_digits
    images, _ = load_digits()
    data = (torch.rand(images.shape, generator=torch.Generator().manual_seed(0)) < images).float()
    made = MADE(64, [100], n_masks=4, generator=torch.Generator().manual_seed(0))
    before = made.log_prob(data).mean().item()
    history = fit_made(made, data, epochs=8, batch_size=50, lr=3e-3, generator=torch.Generator().manual_seed(1),
                       progress=False)
    after = made.log_prob(data).mean().item()
    assert history[-1]["log_prob"] > history[0]["log_prob"] + 3 and after > before + 10, (before, after)


def test_resume_is_bit_exact_and_files_round_trip(tmp_path):
    from dgm_fast.data import load_digits
    images, _ = load_digits()
    data = (torch.rand(images[:100].shape, generator=torch.Generator().manual_seed(0)) < images[:100]).float()

    def run(epochs, path):
        made = MADE(64, [24, 24], n_masks=3, order_agnostic=True, generator=torch.Generator().manual_seed(0))
        fit_made(made, data, epochs=epochs, batch_size=25, generator=torch.Generator().manual_seed(1),
                 checkpoint=path, progress=False)
        return made

    straight = run(3, tmp_path / "a.pt")
    run(1, tmp_path / "b.pt")
    resumed = run(3, tmp_path / "b.pt")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    straight.save(tmp_path / "made.pt")
    for path in (tmp_path / "a.pt", tmp_path / "made.pt"):
        loaded = MADE.load(path)
        assert loaded.config() == straight.config()
        assert torch.equal(loaded.log_prob(data), straight.log_prob(data))


def test_masks_that_break_the_autoregressive_property_are_refused():
    made = MADE(5, [6], n_masks=2)
    orders = made.orders.clone()
    masks = made_masks(orders, [6], torch.Generator().manual_seed(0))
    made.set_masks(masks, orders)  # Germain et al.'s masks pass
    leaky = [list(s) for s in masks]
    leaky[1][-1] = torch.ones(5, 5)  # direct connections from every input, itself included
    with pytest.raises(ValueError, match=r"mask set 1 connects input 0 to output 0, but 0 does not come before 0"):
        made.set_masks(leaky, orders)
    leaky = [list(s) for s in masks]
    leaky[0][0] = torch.ones(6, 5)
    leaky[0][1] = torch.ones(5, 6)  # every output through the hidden layer
    with pytest.raises(ValueError, match="would not be autoregressive"):
        made.set_masks(leaky, orders)
    with pytest.raises(ValueError, match="must hold only 0 and 1"):
        made.set_masks([[m * 0.5 for m in s] for s in masks], orders)
    with pytest.raises(ValueError, match=r"mask 0 of set 0 must be \[6, 5\], got \[5, 6\]"):
        made.set_masks([[s[0].T, *s[1:]] for s in masks], orders)
    with pytest.raises(ValueError, match="mask set 0 must hold 3 masks"):
        made.set_masks([s[:2] for s in masks], orders)
    with pytest.raises(ValueError, match=r"permutation of 0..4; this one \(row 0\) holds 1 twice"):
        made.set_masks(masks, torch.tensor([[0, 1, 1, 3, 4], [0, 1, 2, 3, 4]]))
    # the reversed ordering with index-order masks: output 4 would see inputs after it
    with pytest.raises(ValueError, match="would not be autoregressive"):
        made.set_masks(masks, torch.arange(4, -1, -1).expand(2, 5))


def test_bad_input():
    made = MADE(6, [8], n_masks=2)
    with pytest.raises(ValueError, match="binary values"):
        made.log_prob(torch.full((2, 6), 0.5))
    with pytest.raises(ValueError, match="binary values"):
        fit_made(made, torch.full((4, 6), 0.5), progress=False)
    with pytest.raises(ValueError, match=r"x must be \[batch, 6\]"):
        made.log_prob(torch.zeros(2, 7))
    with pytest.raises(ValueError, match=r"mask must be an index in 0..1, got 2"):
        made.log_prob(torch.zeros(2, 6), mask=2)
    with pytest.raises(ValueError, match="hidden_sizes must list"):
        MADE(6, [])
    with pytest.raises(ValueError, match="n_masks must be a positive integer"):
        MADE(6, [4], n_masks=0)
