"""AIS and reverse AIS on DBMs (the odd layers annealed, the even ones summed out) against the
exact log Z of enumeration, and their bad input."""

import math

import pytest
import torch

from dgm_fast import DBM
from dgm_fast.evaluate import AISResult, ais, exact_log_partition, reverse_ais
from helpers import random_dbm

BETAS = torch.linspace(0, 1, 2001, dtype=torch.float64)


def coupled(sizes, scale, seed=0) -> DBM:
    return random_dbm(sizes, scale, bias_scale=1.0, seed=seed)


@pytest.mark.parametrize("sizes, scale", [([10, 8, 6], 2.0), ([6, 5, 4, 3], 2.0)])
def test_ais_and_reverse_ais_bracket_the_exact_log_z_within_a_tenth_of_a_nat(sizes, scale):
    """Weights of standard deviation 2: far from the base model, where a wrong weight update or
    transition shows as a bias of nats (100 runs, 2,001 temperatures)."""
    dbm = coupled(sizes, scale)
    exact = float(exact_log_partition(dbm))
    data = torch.bernoulli(torch.full((50, sizes[0]), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    forward = ais(dbm, 100, BETAS, data=data, generator=torch.Generator().manual_seed(1))
    backward = reverse_ais(dbm, 100, BETAS, data=data, burn_in=500, generator=torch.Generator().manual_seed(2))
    for result in (forward, backward):
        assert isinstance(result, AISResult) and result.log_weights.shape == (100,)
        assert abs(result.log_z - exact) < 0.1, (result, exact)
        assert result.log_z_lower - 0.05 <= exact <= result.log_z_upper + 0.05
        assert result.ess > 10
    assert backward.reverse and not forward.reverse


def test_the_base_model_takes_the_datas_mean_field_marginals():
    """With data, A's hidden biases are the log-odds of the data's mean-field marginals (A is then
    closer to the DBM than independent fair coins), and AIS stays exact: within 0.1 nats of log Z
    at a third of the temperatures the test above uses."""
    import importlib

    ais_module = importlib.import_module("dgm_fast.evaluate.ais")
    dbm = coupled([10, 8, 6], 2.0, seed=1)
    data = torch.bernoulli(torch.full((200, 10), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    base = ais_module._dbm_base(dbm, data)
    means = dbm.mean_field(data, iterations=30)
    for layer in (1, 2):
        p = means[layer - 1].mean(0).clamp(1e-3, 1 - 1e-3)
        torch.testing.assert_close(base[layer], torch.log(p) - torch.log1p(-p))
    assert all(torch.equal(b, torch.zeros_like(b)) for b in ais_module._dbm_base(dbm, None))
    exact = float(exact_log_partition(dbm))
    result = ais(dbm, 100, torch.linspace(0, 1, 700, dtype=torch.float64), data=data,
                 generator=torch.Generator().manual_seed(1))
    assert abs(result.log_z - exact) < 0.1, (result.log_z, exact)


def test_reverse_ais_takes_given_starts_one_per_run():
    dbm = coupled([6, 4, 3], 1.0)
    starts = dbm.gibbs(dbm.random_states(20, generator=torch.Generator().manual_seed(0)), 300,
                       generator=torch.Generator().manual_seed(1))
    result = reverse_ais(dbm, 20, BETAS, init=starts, generator=torch.Generator().manual_seed(2))
    assert abs(result.log_z - float(exact_log_partition(dbm))) < 0.1
    with pytest.raises(ValueError, match="init has 20 rows but n_runs is 10"):
        reverse_ais(dbm, 10, BETAS, init=starts)


def test_non_finite_parameters_are_refused_not_turned_into_a_nan_log_z():
    dbm = coupled([6, 4, 3], 1.0)
    with torch.no_grad():
        dbm.weights[1][0, 0] = math.nan
    for estimator in (ais, reverse_ais):
        with pytest.raises(ValueError, match=r"parameter weights.1 contains NaN or Inf"):
            estimator(dbm, 10, BETAS)


def test_bad_schedules_and_data_are_refused():
    dbm = coupled([6, 4, 3], 1.0)
    with pytest.raises(ValueError, match="betas must be a 1-D schedule from 0 to 1"):
        ais(dbm, 10, torch.linspace(0.1, 1, 5))
    with pytest.raises(ValueError, match=r"data must be \[batch, 6\]"):
        ais(dbm, 10, BETAS, data=torch.zeros(4, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="RBM or DBM"):
        ais(torch.nn.Linear(2, 2), 10, BETAS)
