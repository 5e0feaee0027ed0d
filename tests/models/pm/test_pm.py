"""Predictability minimization: the objectives are the paper's (its worked example's values), the
predictors see only the other units, the players' gradients reach only their own parameters, the
code measures, and a run that finds a factorial code."""

import pytest
import torch

from dgm_fast.models.pm import (PredictabilityMinimization, code_report, fit_pm, pm_losses, predictor_error,
                                reconstruction_error, unpredictability)

# Schmidhuber (1992), section on non-uniformly distributed inputs: patterns a, b, c, d presented
# 1, 2, 2 and 4 times an epoch, and two codes for them.
COUNTS = [1, 2, 2, 4]
CODE_F = [(1, 1), (0, 1), (1, 0), (0, 0)]  # factorial: V_C = 2
CODE_B = [(0, 1), (0, 0), (1, 0), (1, 1)]  # invertible, not factorial: V_C = 19/10


def presentations(code):
    """The epoch's 9 presented codes, [9, 2]."""
    return torch.tensor([c for c, n in zip(code, COUNTS) for _ in range(n)], dtype=torch.float64)


def conditional_expectations(y):
    """P_i^p = E(y_i | y_k, k != i) over the presentations, computed by counting (two units)."""
    out = torch.empty_like(y)
    for i in range(2):
        other = y[:, 1 - i]
        for value in (0.0, 1.0):
            rows = other == value
            if rows.any():
                out[rows, i] = y[rows, i].mean()
    return out


@pytest.mark.parametrize("code,want", [(CODE_F, 2.0), (CODE_B, 1.9)])
def test_unpredictability_of_the_papers_two_codes(code, want):
    y = presentations(code)
    assert unpredictability(conditional_expectations(y), y).item() == pytest.approx(want, abs=1e-12)


def test_unpredictability_is_variance_minus_predictable_variance():
    # Dayan, Zemel & Pouget's reading of V_C with exact predictors:
    # V_C = 1/2 [sum_i sum_p (y_i^p - mean_i)^2 - sum_i sum_p (P_i^p - mean_i)^2]
    y = presentations(CODE_B)
    p = conditional_expectations(y)
    mean = y.mean(0)
    want = 0.5 * ((y - mean).square().sum() - (p - mean).square().sum())
    assert unpredictability(p, y).item() == pytest.approx(want.item(), abs=1e-12)


def test_objectives_are_half_sums_of_squares():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, 3, generator=g, dtype=torch.float64), torch.rand(5, 3, generator=g, dtype=torch.float64)
    assert predictor_error(a, b).item() == pytest.approx(0.5 * sum(float((x - y) ** 2) for x, y in
                                                                     zip(a.flatten(), b.flatten())), abs=1e-12)
    assert unpredictability(a, b).item() == predictor_error(a, b).item()  # the same function, opposite goals
    assert reconstruction_error(a, b).item() == predictor_error(a, b).item()


def test_each_predictor_sees_only_the_other_units():
    pm = PredictabilityMinimization(4, 3, (5,), 3, generator_rng=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.rand(1, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: pm.predict(v), y)[0, :, 0, :]  # [predictor, unit]
    assert torch.equal(jac.diagonal(), torch.zeros(3, dtype=torch.float64))
    assert (jac[~torch.eye(3, dtype=torch.bool)] != 0).all()  # and every other unit reaches it


def test_each_players_loss_reaches_only_its_own_parameters():
    pm = PredictabilityMinimization(4, 2, (4,), 3, (4,), generator_rng=torch.Generator().manual_seed(3))
    x = torch.eye(4)
    predictor_loss, code_loss, metrics = pm_losses(pm, x)
    code_loss.backward()
    assert all(p.grad is None for p in pm.predictors.parameters())
    assert all(p.grad is not None for p in (*pm.encoder.parameters(), *pm.reconstructor.parameters()))
    pm.zero_grad(set_to_none=True)
    predictor_loss.backward()
    assert all(p.grad is None for p in (*pm.encoder.parameters(), *pm.reconstructor.parameters()))
    assert all(p.grad is not None for p in pm.predictors.parameters())
    y = pm.code(x)
    assert metrics["unpredictability"].item() == pytest.approx(unpredictability(pm.predict(y), y).item())
    want = -unpredictability(pm.predict(y), y) + reconstruction_error(pm.reconstruct(y), x)
    assert code_loss.item() == pytest.approx(want.item())


def test_code_report():
    factorial = code_report(torch.tensor([[0.99, 0.02], [0.0, 1.0], [1.0, 0.97], [0.01, 0.0]]))
    assert factorial.binary and factorial.invertible and factorial.factorial
    assert factorial.distinct_codes == 4 and factorial.multi_information == 0.0
    copied = code_report(torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))  # y2 = y1: 1 bit shared
    assert not copied.invertible and copied.multi_information == pytest.approx(1.0)
    assert not code_report(torch.tensor([[0.5, 0.0], [1.0, 1.0]])).binary
    # the paper's code B under its probabilities: invertible but not factorial
    b = code_report(torch.tensor(CODE_B, dtype=torch.float64), torch.tensor(COUNTS, dtype=torch.float64))
    assert b.invertible and not b.factorial and b.multi_information > 0.05
    f = code_report(torch.tensor(CODE_F, dtype=torch.float64), torch.tensor(COUNTS, dtype=torch.float64))
    assert f.factorial


def test_training_finds_a_factorial_code_for_four_local_patterns():
    # the paper's first experiment (4 one-hot patterns, 2 code units, 4 shared hidden units, 3
    # hidden units per predictor), one seed of the settings of `dgm-fast repro pm`
    x = torch.eye(4, dtype=torch.float64)
    pm = PredictabilityMinimization(4, 2, (4,), 3, (4,), generator_rng=torch.Generator().manual_seed(2),
                                    init_scale=2.0, dtype=torch.float64)
    before = code_report(pm.code(x))
    history = fit_pm(pm, x, epochs=6000, lr=0.1, predictor_lr=1.0)
    after = code_report(pm.code(x))
    assert not before.binary and after.factorial
    assert history[-1]["unpredictability"] > 0.9  # 1 at the factorial code: 1/2 * 2 units * 4 patterns * 1/4


def test_bad_input():
    pm = PredictabilityMinimization(4, 2)
    with pytest.raises(ValueError, match=r"patterns must be a non-empty \[P, 4\]"):
        fit_pm(pm, torch.eye(3), epochs=1)
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_pm(pm, torch.full((2, 4), float("nan")), epochs=1)
    with pytest.raises(ValueError, match="n_code must be an integer >= 2"):
        PredictabilityMinimization(4, 1)
    with pytest.raises(ValueError, match="no reconstructor"):
        pm.reconstruct(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="codes must be"):
        code_report(torch.zeros(0, 2))
