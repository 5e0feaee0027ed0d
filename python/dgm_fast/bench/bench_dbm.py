"""DBM inference, sampling, training and AIS (Salakhutdinov & Hinton 2009) at the paper's MNIST
size, 784-500-1000 with batches of 100, and a small digits-sized one.

Mean-field: 10 sweeps of the fixed-point equations from the doubled-weight bottom-up pass.
  dgm_fast        ops.dbm.dbm_mean_field (what DBM.mean_field calls)
  eager           the plain-PyTorch definition, dgm_fast.reference.dbm.dbm_mean_field
  torch.compile   that function compiled by inductor
  bare products   only the matrix products the native op makes (one per neighbour and layer per
                  sweep, layer 1's input from the clamped visible layer once): its floor
Gibbs sweep: one block Gibbs sweep (odd layers, then even) of `batch` chains.
  dgm_fast        ops.dbm.dbm_gibbs_chain (what DBM.gibbs calls)
  eager           the obvious sweep: torch.bernoulli(torch.sigmoid(input)) per layer
  torch.compile   that sweep compiled by inductor
  bare products   the sweep's four (two-hidden-layer) products alone
Joint update: an epoch of `ROWS` rows of binary data in minibatches, each one update of joint
training (10 mean-field sweeps, `K` Gibbs sweeps of `batch` persistent chains, the gradient,
torch's SGD with momentum 0.9); per update: the case's time over ROWS / batch.
  dgm_fast        models.dbm.fit_dbm
  eager           the same update written per batch in plain PyTorch (reference mean-field, the
                  obvious sweeps, the gradient's products) and torch's SGD step
  torch.compile   that per-batch gradient function compiled by inductor
AIS: `AIS_STEPS` temperatures of `batch` runs (odd layers annealed, even layers summed out, the
log-weights in float64); per temperature: the case's time over AIS_STEPS.
  dgm_fast        ops.dbm.dbm_ais (what evaluate.ais calls for a DBM)
  eager           a plain-PyTorch loop of the same algorithm (torch.bernoulli, float64 softplus)
  torch.compile   that loop's per-temperature step compiled by inductor
  bare products   the four products of each temperature alone
On CUDA, eager+graph and dgm_fast+graph replay mean-field and the sweep captured in a CUDA graph.

Every timed joint epoch starts from the same parameters (see bench_dbn.py's note on subnormals).
"""

from __future__ import annotations

import pytest
import torch

from dgm_fast import DBM, ops
from dgm_fast.bench._common import COMPILE, DGM_FAST, DGM_FAST_GRAPH, EAGER, EAGER_GRAPH, graphed
from dgm_fast.bench.bench_dbn import _from_start
from dgm_fast.bench.bench_rbm import BARE, binary_batch
from dgm_fast.models.dbm import fit_dbm
from dgm_fast.reference import dbm as reference

MEAN_FIELD = 10
K = 5
ROWS = 1000
AIS_STEPS = 100
LR, MOMENTUM, WEIGHT_DECAY = 1e-3, 0.9, 2e-4
QUICK = [((64, 100, 50), 20)]
FULL = [((64, 100, 50), 20), ((784, 500, 1000), 100)]


def _case_id(case) -> str:
    sizes, batch = case
    return "-".join(map(str, sizes)) + f"-b{batch}"


def _select(case, impl, setting) -> None:
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    if impl in (EAGER_GRAPH, DGM_FAST_GRAPH) and setting.device.type != "cuda":
        pytest.skip("CUDA graphs: GPU only")


def _model(sizes, device) -> tuple[DBM, list[torch.Tensor], list[torch.Tensor]]:
    """A DBM with weights of standard deviation 0.05 (chains that move, means away from 0 and 1),
    and its detached weights and biases."""
    dbm = DBM(list(sizes), init_std=0.05, generator=torch.Generator().manual_seed(0), device=device)
    return dbm, [w.detach() for w in dbm.weights], [b.detach() for b in dbm.biases]


def _states(sizes, batch, device, seed=1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [binary_batch(batch, n, device, g) for n in sizes]


# ---- the plain-PyTorch baselines ----------------------------------------------------------------


def eager_sweep(states, weights, biases):
    """One block Gibbs sweep written the obvious way: odd layers, then even ones."""
    states = list(states)
    for parity in (1, 0):
        for layer in range(parity, len(states), 2):
            x = reference.dbm_layer_input(weights, biases, states, layer)
            states[layer] = torch.bernoulli(torch.sigmoid(x))
    return states


def eager_joint_grads(v, chains, weights, biases, weight_decay):
    """One update's gradients (and the chains' new states) written the obvious way: mean-field
    for the data, K sweeps of the persistent chains, the products of both phases."""
    data = [v, *reference.dbm_mean_field(weights, biases, v, iterations=MEAN_FIELD)]
    for _ in range(K):
        chains = eager_sweep(chains, weights, biases)
    nd, nm = v.shape[0], chains[0].shape[0]
    grads = [chains[l].t() @ chains[l + 1] / nm - data[l].t() @ data[l + 1] / nd + weight_decay * w
             for l, w in enumerate(weights)]
    grads += [m.mean(0) - d.mean(0) for d, m in zip(data, chains)]
    return grads, chains


def eager_ais_step(odd, weights, biases, base, previous, beta, log_w):
    """One temperature of DBM AIS in plain PyTorch: ``(new odd states, new log-weights)``."""
    top = len(weights)
    states = [None] * (top + 1)
    for layer, s in zip(range(1, top + 1, 2), odd):
        states[layer] = s
    inputs = {layer: reference.dbm_layer_input(weights, biases, states, layer) for layer in range(0, top + 1, 2)}
    for layer in range(1, top + 1, 2):
        log_w = log_w + (states[layer].double() @ (biases[layer] - base[layer]).double()) * (beta - previous)
    for layer, x in inputs.items():
        x64, a64 = x.double(), base[layer].double()
        log_w = log_w + (torch.nn.functional.softplus(x64 * beta + a64 * (1 - beta))
                         - torch.nn.functional.softplus(x64 * previous + a64 * (1 - previous))).sum(1)
    for layer, x in inputs.items():
        states[layer] = torch.bernoulli(torch.sigmoid(x * beta + base[layer] * (1 - beta)))
    for layer in range(1, top + 1, 2):
        x = reference.dbm_layer_input(weights, biases, states, layer)
        states[layer] = torch.bernoulli(torch.sigmoid(x * beta + base[layer] * (1 - beta)))
    return [states[layer] for layer in range(1, top + 1, 2)], log_w


# ---- the cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE, EAGER_GRAPH, DGM_FAST_GRAPH, BARE])
@pytest.mark.parametrize("case", FULL, ids=_case_id)
def test_mean_field(case, impl, setting, measure):
    _select(case, impl, setting)
    sizes, batch = case
    _, weights, biases = _model(sizes, setting.device)
    v = _states(sizes, batch, setting.device)[0]
    group = f"dbm mean_field({MEAN_FIELD} sweeps) {'-'.join(map(str, sizes))} batch {batch}"

    def fused(x):
        return ops.dbm.dbm_mean_field(x, weights, biases, MEAN_FIELD)

    def eager(x):
        return reference.dbm_mean_field(weights, biases, x, iterations=MEAN_FIELD)

    if impl == DGM_FAST:
        measure(group, impl, fused, v)
    elif impl == EAGER:
        measure(group, impl, eager, v)
    elif impl == COMPILE:
        measure(group, impl, torch.compile(eager), v, warmup=3)
    elif impl == EAGER_GRAPH:
        measure(group, impl, graphed(eager, (v,)), v)
    elif impl == DGM_FAST_GRAPH:
        measure(group, impl, graphed(fused, (v,)), v)
    else:
        means = ops.dbm.dbm_mean_field(v, weights, biases, 1)
        top = len(weights)

        def bare(x):
            x @ weights[0]
            for l in range(2, top + 1):  # the bottom-up pass
                means[l - 2] @ weights[l - 1]
            for _ in range(MEAN_FIELD):
                for l in range(1, top + 1):
                    if l > 1:
                        means[l - 2] @ weights[l - 1]
                    if l < top:
                        means[l] @ weights[l].t()

        measure(group, impl, bare, v)


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE, EAGER_GRAPH, DGM_FAST_GRAPH, BARE])
@pytest.mark.parametrize("case", FULL, ids=_case_id)
def test_gibbs_sweep(case, impl, setting, measure):
    _select(case, impl, setting)
    sizes, batch = case
    _, weights, biases = _model(sizes, setting.device)
    states = _states(sizes, batch, setting.device)
    group = f"dbm gibbs_sweep({batch} chains) {'-'.join(map(str, sizes))}"

    def fused(*s):
        return ops.dbm.dbm_gibbs_chain(list(s), weights, biases, 1)

    def eager(*s):
        return eager_sweep(s, weights, biases)

    if impl == DGM_FAST:
        measure(group, impl, fused, *states)
    elif impl == EAGER:
        measure(group, impl, eager, *states)
    elif impl == COMPILE:
        measure(group, impl, torch.compile(eager), *states, warmup=3)
    elif impl == EAGER_GRAPH:
        measure(group, impl, graphed(eager, states), *states)
    elif impl == DGM_FAST_GRAPH:
        measure(group, impl, graphed(fused, states), *states)
    else:
        def bare(*s):
            for parity in (1, 0):
                for layer in range(parity, len(s), 2):
                    reference.dbm_layer_input(weights, biases, s, layer, bias=False)

        measure(group, impl, bare, *states)


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("case", FULL, ids=_case_id)
def test_joint_update(case, impl, setting, measure):
    _select(case, impl, setting)
    sizes, batch = case
    device = setting.device
    dbm, _, _ = _model(sizes, device)
    data = binary_batch(ROWS, sizes[0], device, torch.Generator().manual_seed(1))
    group = f"dbm joint_update({ROWS} rows) {'-'.join(map(str, sizes))} batch {batch}"
    if impl == DGM_FAST:
        optimizer = torch.optim.SGD(dbm.parameters(), lr=LR, momentum=MOMENTUM)

        def dgm_fast_epoch(_):
            fit_dbm(dbm, data, epochs=1, batch_size=batch, n_chains=batch, k=K, mean_field_iterations=MEAN_FIELD,
                    optimizer=optimizer, weight_decay=WEIGHT_DECAY, progress=False,
                    generator=torch.Generator(device=device).manual_seed(3))

        measure(group, impl, _from_start(list(dbm.parameters()), dgm_fast_epoch), data)
        return
    params = [torch.nn.Parameter(p.detach().clone()) for p in (*dbm.weights, *dbm.biases)]
    weights, biases = params[:len(dbm.weights)], params[len(dbm.weights):]
    optimizer = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    grads_fn = torch.compile(eager_joint_grads) if impl == COMPILE else eager_joint_grads
    order = torch.randperm(ROWS, generator=torch.Generator().manual_seed(2)).to(device)
    batches = [data[order[i:i + batch]] for i in range(0, ROWS, batch)]
    chains = _states(sizes, batch, device, seed=4)

    def plain_epoch(_):
        nonlocal chains
        for x in batches:
            with torch.no_grad():
                grads, chains = grads_fn(x, chains, [w.detach() for w in weights], [b.detach() for b in biases],
                                         WEIGHT_DECAY)
                for p, g in zip(params, grads):
                    p.grad = g
            optimizer.step()

    measure(group, impl, _from_start(params, plain_epoch), data, warmup=3 if impl == COMPILE else 1)


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE, BARE])
@pytest.mark.parametrize("case", FULL, ids=_case_id)
def test_ais(case, impl, setting, measure):
    _select(case, impl, setting)
    sizes, runs = case
    device = setting.device
    _, weights, biases = _model(sizes, device)
    base = [torch.zeros_like(b) for b in biases]
    odd = _states(sizes, runs, device)[1::2]
    betas = torch.linspace(0, 1, AIS_STEPS + 1, dtype=torch.float64).tolist()
    group = f"dbm ais({AIS_STEPS} temperatures) {'-'.join(map(str, sizes))} runs {runs}"
    if impl == DGM_FAST:
        measure(group, impl, lambda: ops.dbm.dbm_ais(odd, weights, biases, base, betas))
    elif impl in (EAGER, COMPILE):
        step = torch.compile(eager_ais_step) if impl == COMPILE else eager_ais_step
        # As 0-dim tensors, so that the compiled step is not recompiled for every temperature.
        tensor_betas = [torch.tensor(b, dtype=torch.float64, device=device) for b in betas]

        def plain():
            states, log_w = odd, torch.zeros(runs, dtype=torch.float64, device=device)
            for previous, beta in zip(tensor_betas, tensor_betas[1:]):
                states, log_w = step(states, weights, biases, base, previous, beta, log_w)
            return log_w

        measure(group, impl, plain, warmup=2 if impl == COMPILE else 1)
    else:
        states = _states(sizes, runs, device)

        def bare():
            for _ in range(AIS_STEPS):
                for parity in (0, 1):
                    for layer in range(parity, len(states), 2):
                        reference.dbm_layer_input(weights, biases, states, layer, bias=False)

        measure(group, impl, bare)
