"""DBN training: one epoch of one layer's greedy pretraining, and one epoch of up-down
fine-tuning, over `ROWS` rows of binary data.

  dgm_fast        fit_rbm on that layer's inputs as pretrain_dbn gives them (the data itself for
                  the bottom layer; for the ones above, the layer below's probabilities, computed
                  batch by batch from the rows), CD-1, SGD with momentum 0.5
  eager           the plain-PyTorch greedy stack: per batch, the upward pass of probabilities
                  through the frozen layers below, then the obvious CD-1 step and torch's SGD step
  torch.compile   that whole per-batch function compiled by inductor
Up-down (``up_down``): dgm_fast's ``fine_tune_dbn`` (CD-3 in the top RBM, SGD with momentum 0.5)
against the same algorithm written per batch in plain PyTorch (the wake pass, CD-3, the sleep
pass, the delta rules, torch's SGD step), eager and compiled.
Images per second: ROWS over the case's time.

Every timed epoch starts from the same parameters (a copy, timed in every column alike): trained
on and on, the random data drives the weights large and the sigmoids' outputs into float32's
subnormal range, where matrix products run several times slower (seen: 350 against 630 us per
up-down batch), so the timings would depend on how many rounds ran before.
"""

from __future__ import annotations

import functools

import pytest
import torch

from dgm_fast import DBN
from dgm_fast.bench._common import COMPILE, DGM_FAST, EAGER
from dgm_fast.bench.bench_rbm import binary_batch, eager_cd_grads
from dgm_fast.models.dbn import fine_tune_dbn
from dgm_fast.models.rbm import fit_rbm

ROWS = 1000
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.5, 1e-4
UP_DOWN_K = 3
QUICK = [((64, 100, 100), 20)]
FULL = [((64, 100, 100), 20), ((784, 500, 500), 100)]


def _from_start(params, epoch):
    """``epoch`` preceded by restoring ``params`` to their values now (see the module's note)."""
    start = [p.detach().clone() for p in params]

    def restarted(x):
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0)
        epoch(x)

    return restarted


def _measure_plain_epoch(group, impl, grads, params, data, batch, measure) -> None:
    """Times one epoch of the plain-PyTorch version: per batch, ``grads(x)`` (no autograd) into
    the parameters' ``.grad`` and torch's SGD step; with ``impl == COMPILE`` that per-batch
    function compiled by inductor."""
    optimizer = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)

    def plain_batch(x):
        with torch.no_grad():
            for p, g in zip(params, grads(x)):
                p.grad = g
        optimizer.step()

    step = torch.compile(plain_batch) if impl == COMPILE else plain_batch
    order = torch.randperm(ROWS, generator=torch.Generator().manual_seed(2)).to(data.device)
    batches = [data[order[i:i + batch]] for i in range(0, ROWS, batch)]

    def plain_epoch(_):
        for x in batches:
            step(x)

    measure(group, impl, _from_start(params, plain_epoch), data, warmup=3 if impl == COMPILE else 1)


def _size_id(case) -> str:
    sizes, batch = case
    return "-".join(map(str, sizes)) + f"-b{batch}"


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("case", FULL, ids=_size_id)
def test_pretrain_layer(case, layer, impl, setting, measure):
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    sizes, batch = case
    device = setting.device
    data = binary_batch(ROWS, sizes[0], device, torch.Generator().manual_seed(1))
    dbn = DBN(list(sizes), generator=torch.Generator().manual_seed(0), device=device)
    rbm = dbn.rbms[layer]
    group = f"dbn pretrain_layer{layer + 1}({ROWS} rows) {'-'.join(map(str, sizes))} batch {batch}"
    if impl == DGM_FAST:
        upward = None if layer == 0 else functools.partial(dbn.up, layers=layer)

        def dgm_fast_epoch(_):
            fit_rbm(rbm, data, inputs=upward, epochs=1, batch_size=batch, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                    progress=False, generator=torch.Generator(device=device).manual_seed(3))

        measure(group, impl, _from_start(list(rbm.parameters()), dgm_fast_epoch), data)
        return
    below = [(r.weight.detach(), r.hidden_bias.detach()) for r in dbn.rbms[:layer]]
    params = [torch.nn.Parameter(p.detach().clone()) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]

    def grads(x):
        for w, c in below:  # the upward pass of probabilities
            x = torch.sigmoid(torch.addmm(c, x, w))
        return eager_cd_grads(x, *params, WEIGHT_DECAY)

    _measure_plain_epoch(group, impl, grads, params, data, batch, measure)


def eager_up_down_batch(v, directed, top, k, weight_decay):
    """One batch of up-down written the obvious way: ``directed`` holds each directed layer's
    (generative W, generative bias b, recognition R, recognition bias c), ``top`` the top RBM's
    (W, b, c); returns the gradients in the same order."""
    n = v.shape[0]
    wake = [v]
    for _, _, r, c in directed:
        wake.append(torch.bernoulli(torch.sigmoid(torch.addmm(c, wake[-1], r))))
    top_w, top_b, top_c = top
    pen = wake[-1]
    h0p = torch.sigmoid(torch.addmm(top_c, pen, top_w))
    vk, hkp = pen, h0p
    for _ in range(k):
        hk = torch.bernoulli(hkp)
        vk = torch.bernoulli(torch.sigmoid(torch.addmm(top_b, hk, top_w.t())))
        hkp = torch.sigmoid(torch.addmm(top_c, vk, top_w))
    grads_top = [(vk.t() @ hkp - pen.t() @ h0p) / n + weight_decay * top_w, (vk - pen).mean(0), (hkp - h0p).mean(0)]
    sleep = [vk]
    for i, (w, b, _, _) in reversed(list(enumerate(directed))):
        mean = torch.sigmoid(torch.addmm(b, sleep[0], w.t()))
        sleep.insert(0, mean if i == 0 else torch.bernoulli(mean))
    grads = []
    for i, (w, b, r, c) in enumerate(directed):
        gen_error = wake[i] - torch.sigmoid(torch.addmm(b, wake[i + 1], w.t()))
        rec_error = sleep[i + 1] - torch.sigmoid(torch.addmm(c, sleep[i], r))
        grads += [-(gen_error.t() @ wake[i + 1]) / n + weight_decay * w, -gen_error.mean(0),
                  -(sleep[i].t() @ rec_error) / n + weight_decay * r, -rec_error.mean(0)]
    return grads + grads_top


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER, COMPILE])
@pytest.mark.parametrize("case", FULL, ids=_size_id)
def test_up_down(case, impl, setting, measure):
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    sizes, batch = case
    device = setting.device
    data = binary_batch(ROWS, sizes[0], device, torch.Generator().manual_seed(1))
    dbn = DBN(list(sizes), generator=torch.Generator().manual_seed(0), device=device).untie()
    group = f"dbn up_down({ROWS} rows) {'-'.join(map(str, sizes))} batch {batch}"
    if impl == DGM_FAST:
        optimizer = torch.optim.SGD(dbn.parameters(), lr=LR, momentum=MOMENTUM)

        def dgm_fast_epoch(_):
            fine_tune_dbn(dbn, data, epochs=1, batch_size=batch, k=UP_DOWN_K, optimizer=optimizer,
                          weight_decay=WEIGHT_DECAY, progress=False, generator=torch.Generator(device=device).manual_seed(3))

        measure(group, impl, _from_start(list(dbn.parameters()), dgm_fast_epoch), data)
        return
    directed = [[torch.nn.Parameter(t.detach().clone()) for t in (rbm.weight, rbm.visible_bias, r, rbm.hidden_bias)]
                for rbm, r in zip(dbn.rbms[:-1], dbn.recognition_weights)]
    top = [torch.nn.Parameter(t.detach().clone()) for t in dbn.rbms[-1].parameters()]
    params = [p for layer in directed for p in layer] + top

    _measure_plain_epoch(group, impl, lambda x: eager_up_down_batch(x, directed, top, UP_DOWN_K, WEIGHT_DECAY),
                         params, data, batch, measure)
