"""RBM training (one CD-1 update) and sampling (a block-Gibbs chain) against what a PyTorch,
scikit-learn or learnergy user would run instead.

CD-1 step: one training update on a batch of binary data (positive phase, one Gibbs sweep,
gradient, SGD with momentum 0.9, lr 0.01, weight decay 1e-4 on the weights).
  dgm_fast        train.cd_step(rbm, v, opt, train.CD(1), weight_decay=1e-4)
  dgm_fast bf16   the same with the products in bfloat16 (matmul_dtype; float32 master weights)
  eager           the obvious PyTorch code (eager_cd_grads), then the same torch SGD step
  torch.compile   that eager step compiled by inductor (the optimizer's step is a second graph)
  sklearn         BernoulliRBM.partial_fit on the batch: one PCD-1 step, float64 inside (CPU only)
  learnergy       one batch of learnergy's RBM.fit, without its per-batch metrics (if installed)
  bare products   only the matrix products a CD-1 step needs (8 B V H flops): the floor
Gibbs chain: `GIBBS_STEPS` sweeps v -> h -> v on a batch of chains.
  dgm_fast        rbm.gibbs(v, steps): the whole chain in one native call
  eager           a Python loop of the obvious sweep; torch.compile compiles the sweep
  bare products   the two products of each sweep, looped the same way
Training epoch: one pass of PCD-1 (as many persistent chains as a batch has rows) over `EPOCH_ROWS` rows of binary data in minibatches, SGD with momentum 0.9, lr 0.01, weight
decay 1e-4; the time per update is the case's time over EPOCH_ROWS / batch.
  dgm_fast        ops.rbm.rbm_train_epoch_: the whole epoch in one native call
  dgm_fast per update   the same updates as a Python loop of train.cd_step (what fit_rbm did before)
  eager           a Python loop of the obvious PCD-1 step (eager_pcd_step) and torch's SGD step
  torch.compile   that step compiled by inductor, in the same loop
  sklearn         BernoulliRBM(n_iter=1, batch_size=B).fit: scikit-learn's PCD-1 epoch (no momentum
                  or weight decay), float32 data (CPU only)
On CUDA, eager+graph and dgm_fast+graph replay the eager and dgm_fast versions captured in a
CUDA graph.
"""

from __future__ import annotations

import pytest
import torch

from dgm_fast import RBM, ops
from dgm_fast.bench._common import COMPILE, DGM_FAST, DGM_FAST_GRAPH, EAGER, EAGER_GRAPH, graphed, size_id
from dgm_fast.models.rbm import train

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4
GIBBS_STEPS = 100
SKLEARN, LEARNERGY, BARE = "sklearn", "learnergy", "bare products"
DGM_FAST_BF16 = "dgm_fast bf16"
QUICK = [(20, 64, 20), (100, 784, 500)]
FULL = [(20, 64, 20), (100, 784, 500), (1024, 784, 4096)]
FULL_CUDA = FULL + [(4096, 4096, 4096)]
EPOCH_ROWS = 1000
EPOCH_QUICK = [(10, 64, 100)]
EPOCH_FULL = [(10, 64, 16), (10, 64, 100), (100, 64, 100), (100, 784, 500)]
PER_UPDATE = "dgm_fast per update"


# ---- the baselines -----------------------------------------------------------------------------


def eager_cd_grads(v, W, b, c, weight_decay):
    """CD-1 gradient of the mean negative log-likelihood, written the obvious way."""
    batch = v.shape[0]
    h0p = torch.sigmoid(torch.addmm(c, v, W))
    h0 = torch.bernoulli(h0p)
    v1 = torch.bernoulli(torch.sigmoid(torch.addmm(b, h0, W.t())))
    h1p = torch.sigmoid(torch.addmm(c, v1, W))
    grad_W = (v1.t() @ h1p - v.t() @ h0p) / batch + weight_decay * W
    grad_b = (v1 - v).mean(0)
    grad_c = (h1p - h0p).mean(0)
    return grad_W, grad_b, grad_c


def make_eager_step(params, optimizer, weight_decay):
    W, b, c = params

    def eager_cd_step(v):
        with torch.no_grad():
            grads = eager_cd_grads(v, W, b, c, weight_decay)
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()

    return eager_cd_step


def make_eager_pcd_step(params, optimizer, weight_decay):
    """One PCD-1 update written the obvious way: the persistent chains advance one sweep."""
    W, b, c = params

    def eager_pcd_step(v, chains):
        with torch.no_grad():
            h_data = torch.sigmoid(torch.addmm(c, v, W))
            h = torch.bernoulli(torch.sigmoid(torch.addmm(c, chains, W)))
            chains.copy_(torch.bernoulli(torch.sigmoid(torch.addmm(b, h, W.t()))))
            h_model = torch.sigmoid(torch.addmm(c, chains, W))
            grads = ((chains.t() @ h_model) / chains.shape[0] - (v.t() @ h_data) / v.shape[0] + weight_decay * W,
                     chains.mean(0) - v.mean(0), h_model.mean(0) - h_data.mean(0))
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()

    return eager_pcd_step


def eager_sweep(v, W, b, c):
    h = torch.bernoulli(torch.sigmoid(torch.addmm(c, v, W)))
    return torch.bernoulli(torch.sigmoid(torch.addmm(b, h, W.t())))


def looped(sweep, steps):
    def chain(v, W, b, c):
        for _ in range(steps):
            v = sweep(v, W, b, c)
        return v

    return chain


def make_learnergy_step(model):
    """One batch of learnergy's RBM.fit (learnergy/models/bernoulli/rbm.py), metrics left out."""

    def learnergy_step(samples):
        _, _, _, _, visible_states = model.gibbs_sampling(samples)
        visible_states = visible_states.detach()
        cost = torch.mean(model.energy(samples)) - torch.mean(model.energy(visible_states))
        model.optimizer.zero_grad()
        cost.backward()
        model.optimizer.step()

    return learnergy_step


def binary_batch(batch, n_visible, device, generator):
    """Binary data with per-unit rates spread over (0.05, 0.95), like pixels of a binarised image."""
    rates = 0.05 + 0.9 * torch.rand(n_visible, generator=generator)
    return (torch.rand(batch, n_visible, generator=generator) < rates).float().to(device)


def new_models(n_visible, n_hidden, device, seed=0):
    """dgm_fast's RBM and eager parameters (W, b, c) with the same initial values, each with its
    own SGD optimizer."""
    rbm = RBM(n_visible, n_hidden, device=device, generator=torch.Generator().manual_seed(seed))
    params = [torch.nn.Parameter(p.detach().clone()) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
    opt = torch.optim.SGD(rbm.parameters(), lr=LR, momentum=MOMENTUM)
    eager_opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    return rbm, opt, params, eager_opt


def new_learnergy(LearnergyRBM, rbm, device):
    model = LearnergyRBM(n_visible=rbm.n_visible, n_hidden=rbm.n_hidden, steps=1, learning_rate=LR,
                         momentum=MOMENTUM, decay=WEIGHT_DECAY, use_gpu=device.type == "cuda")
    with torch.no_grad():
        model.W.copy_(rbm.weight)
        model.a.copy_(rbm.visible_bias)
        model.b.copy_(rbm.hidden_bias)
    return model


def mixing_rbm(n_visible, n_hidden, device):
    """An RBM whose Gibbs chains mix, not one at its near-zero initial weights."""
    rbm = RBM(n_visible, n_hidden, device=device, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rbm.weight.normal_(0, 0.1)
        rbm.hidden_bias.fill_(-1.0)
    return rbm


def bare_cd_inputs(rbm, v):
    """The arguments of bare_cd_products for a CD-1 step of ``rbm`` on the batch ``v``."""
    batch, n_hidden = v.shape[0], rbm.n_hidden
    W, b, c = (p.detach() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
    h = torch.bernoulli(torch.full((batch, n_hidden), 0.5, device=v.device))
    v_stack = torch.cat([v, v]).t()  # [V, 2B] view, as the stacked op passes it
    h_stack = torch.rand(2 * batch, n_hidden, device=v.device)
    return v, h, W, b, c, v_stack, h_stack


def bare_cd_products(v, h, W, b, c, v_stack, h_stack):
    """Only the matrix products of a CD-1 step: the 3 of the chain and the stacked gradient."""
    torch.addmm(c, v, W)
    torch.addmm(b, h, W.t())
    torch.addmm(c, v, W)
    torch.addmm(W, v_stack, h_stack, beta=WEIGHT_DECAY)


def bare_gibbs_products(steps):
    """Only the two products of each of ``steps`` sweeps: (v, h, W, b, c) -> None."""

    def bare(v, h, W, b, c):
        for _ in range(steps):
            torch.addmm(c, v, W)
            torch.addmm(b, h, W.t())

    return bare


# ---- the cases ---------------------------------------------------------------------------------


def _skip_unless_selected(size, impl, setting):
    cuda = setting.device.type == "cuda"
    if size not in (QUICK if setting.quick else FULL_CUDA if cuda else FULL):
        pytest.skip("size not selected for this run (--quick, or CUDA only)")
    if impl in (EAGER_GRAPH, DGM_FAST_GRAPH) and not cuda:
        pytest.skip("CUDA graphs: GPU only")
    if impl == SKLEARN and cuda:
        pytest.skip("scikit-learn: CPU only")


def _batch(size, setting):
    batch, nv, _ = size
    return binary_batch(batch, nv, setting.device, torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "impl", [DGM_FAST, DGM_FAST_BF16, EAGER, COMPILE, SKLEARN, LEARNERGY, EAGER_GRAPH, DGM_FAST_GRAPH, BARE])
@pytest.mark.parametrize("size", FULL_CUDA, ids=size_id)
def test_cd_step(size, impl, setting, measure):
    _skip_unless_selected(size, impl, setting)
    device = setting.device
    batch, nv, nh = size
    v = _batch(size, setting)
    rbm, opt, params, eager_opt = new_models(nv, nh, device)
    group = f"rbm cd_step {size_id(size)}"

    def dgm_fast_step(x):
        train.cd_step(rbm, x, opt, train.CD(1), weight_decay=WEIGHT_DECAY)

    eager_step = make_eager_step(params, eager_opt, WEIGHT_DECAY)
    if impl == DGM_FAST:
        measure(group, impl, dgm_fast_step, v)
    elif impl == DGM_FAST_BF16:
        method = train.CD(1)
        method.matmul_dtype = torch.bfloat16
        measure(group, impl, lambda x: train.cd_step(rbm, x, opt, method, weight_decay=WEIGHT_DECAY), v)
    elif impl == EAGER:
        measure(group, impl, eager_step, v)
    elif impl == COMPILE:  # compiles, then recompiles once the momentum buffers exist
        measure(group, impl, torch.compile(eager_step), v, warmup=3)
    elif impl == SKLEARN:
        BernoulliRBM = pytest.importorskip("sklearn.neural_network").BernoulliRBM
        skl = BernoulliRBM(n_components=nh, learning_rate=LR, batch_size=batch, n_iter=1, random_state=0)
        measure(group, impl, skl.partial_fit, v.cpu().numpy())
    elif impl == LEARNERGY:
        LearnergyRBM = pytest.importorskip("learnergy.models.bernoulli").RBM
        measure(group, impl, make_learnergy_step(new_learnergy(LearnergyRBM, rbm, device)), v)
    elif impl == EAGER_GRAPH:
        measure(group, impl, graphed(eager_step, (v,)), v)
    elif impl == DGM_FAST_GRAPH:
        measure(group, impl, graphed(dgm_fast_step, (v,)), v)
    else:
        measure(group, impl, bare_cd_products, *bare_cd_inputs(rbm, v))


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE, EAGER_GRAPH, DGM_FAST_GRAPH, BARE])
@pytest.mark.parametrize("size", FULL_CUDA, ids=size_id)
def test_gibbs_chain(size, impl, setting, measure):
    _skip_unless_selected(size, impl, setting)
    batch, nv, nh = size
    v = _batch(size, setting)
    rbm = mixing_rbm(nv, nh, setting.device)
    W, b, c = (p.detach() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
    group = f"rbm gibbs_chain({GIBBS_STEPS} sweeps) {size_id(size)}"

    def fused(x):
        return rbm.gibbs(x, steps=GIBBS_STEPS)

    eager = looped(eager_sweep, GIBBS_STEPS)
    if impl == DGM_FAST:
        measure(group, impl, fused, v)
    elif impl == EAGER:
        measure(group, impl, eager, v, W, b, c)
    elif impl == COMPILE:
        measure(group, impl, looped(torch.compile(eager_sweep), GIBBS_STEPS), v, W, b, c)
    elif impl == EAGER_GRAPH:
        measure(group, impl, graphed(eager, (v, W, b, c)), v)
    elif impl == DGM_FAST_GRAPH:
        measure(group, impl, graphed(fused, (v,)), v)
    else:
        h = torch.bernoulli(torch.full((batch, nh), 0.5, device=setting.device))
        measure(group, impl, bare_gibbs_products(GIBBS_STEPS), v, h, W, b, c)


@pytest.mark.parametrize("impl", [DGM_FAST, PER_UPDATE, EAGER, COMPILE, SKLEARN, EAGER_GRAPH, DGM_FAST_GRAPH])
@pytest.mark.parametrize("size", EPOCH_FULL, ids=size_id)
def test_train_epoch(size, impl, setting, measure):
    cuda = setting.device.type == "cuda"
    if size not in (EPOCH_QUICK if setting.quick else EPOCH_FULL):
        pytest.skip("size not selected for this run (--quick)")
    if impl in (EAGER_GRAPH, DGM_FAST_GRAPH) and not cuda:
        pytest.skip("CUDA graphs: GPU only")
    if impl == SKLEARN and cuda:
        pytest.skip("scikit-learn: CPU only")
    batch, nv, nh = size
    device = setting.device
    data = binary_batch(EPOCH_ROWS, nv, device, torch.Generator().manual_seed(1))
    rbm, opt, params, eager_opt = new_models(nv, nh, device)
    chains = binary_batch(batch, nv, device, torch.Generator().manual_seed(2))
    group = f"rbm train_epoch(PCD-1, {EPOCH_ROWS} rows) {size_id(size)}"
    batches = [data[i:i + batch] for i in range(0, EPOCH_ROWS, batch)]
    for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias):  # the buffers the fused update uses
        opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    buffers = [opt.state[p]["momentum_buffer"] for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
    w, b, c = (p.detach() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))

    def native_epoch(x):
        ops.rbm.rbm_train_epoch_(w, b, c, *buffers, chains, x, batch, lr=LR, momentum=MOMENTUM,
                                 weight_decay=WEIGHT_DECAY)

    if impl == DGM_FAST:
        measure(group, impl, native_epoch, data)
    elif impl == PER_UPDATE:
        method = train.PCD(1)
        method.chains = chains

        def per_update(_):
            for v in batches:
                train.cd_step(rbm, v, opt, method, weight_decay=WEIGHT_DECAY)

        measure(group, impl, per_update, data)
    elif impl in (EAGER, COMPILE):
        step = make_eager_pcd_step(params, eager_opt, WEIGHT_DECAY)
        step = torch.compile(step) if impl == COMPILE else step

        def eager_epoch(_):
            for v in batches:
                step(v, chains)

        measure(group, impl, eager_epoch, data, warmup=3 if impl == COMPILE else 1)
    elif impl == SKLEARN:
        BernoulliRBM = pytest.importorskip("sklearn.neural_network").BernoulliRBM
        x = data.cpu().numpy()

        def sklearn_epoch(_):
            BernoulliRBM(n_components=nh, learning_rate=LR, batch_size=batch, n_iter=1, random_state=0).fit(x)

        measure(group, impl, sklearn_epoch, data)
    elif impl == DGM_FAST_GRAPH:
        measure(group, impl, graphed(native_epoch, (data,)), data)
    else:
        step = make_eager_pcd_step(params, eager_opt, WEIGHT_DECAY)
        measure(group, impl, graphed(lambda _: [step(v, chains) for v in batches], (data,)), data)
