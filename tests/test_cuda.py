"""CUDA-only checks: the RNG contract across devices, CUDA-graph replay, device errors.
Skipped cleanly on machines without a GPU or without CUDA kernels compiled in."""

import math

import pytest
import torch

from dgm_fast import losses, ops
from helpers import make_generator, requires_cuda

pytestmark = requires_cuda


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_uniform_bits_identical_on_cpu_and_cuda(seed):
    gc, gg = make_generator("cpu", seed), make_generator("cuda", seed)
    for n in (1, 5, 1 << 20):  # consecutive calls: offsets 0, 4, 8 on both devices
        a = ops.uniform_bits(n, generator=gc)
        b = ops.uniform_bits(n, generator=gg)
        assert b.is_cuda and torch.equal(a, b.cpu())


def test_default_generators_agree_after_manual_seed():
    torch.manual_seed(123)
    a = [ops.uniform_bits(1000, device="cpu") for _ in range(3)]
    b = [ops.uniform_bits(1000, device="cuda") for _ in range(3)]
    for x, y in zip(a, b):
        assert torch.equal(x, y.cpu())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_bernoulli_identical_on_cpu_and_cuda(dtype):
    torch.manual_seed(0)
    logits = (torch.randn(1000, 300, dtype=torch.float64) * 5).to(dtype)
    bias = torch.randn(300, dtype=torch.float64).to(dtype)
    s_cpu, p_cpu = ops.bernoulli_logits(logits, bias, generator=make_generator("cpu", 5), return_probs=True)
    s_gpu, p_gpu = ops.bernoulli_logits(
        logits.cuda(), bias.cuda(), generator=make_generator("cuda", 5), return_probs=True
    )
    assert torch.equal(s_cpu, s_gpu.cpu())
    assert torch.equal(p_cpu, p_gpu.cpu())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_normal_reparam_identical_on_cpu_and_cuda(dtype):
    mu = torch.randn(100_003, dtype=torch.float64).to(dtype)
    lv = torch.randn(100_003, dtype=torch.float64).to(dtype)
    z_cpu, e_cpu = ops.normal_reparam(mu, lv, generator=make_generator("cpu", 9))
    z_gpu, e_gpu = ops.normal_reparam(mu.cuda(), lv.cuda(), generator=make_generator("cuda", 9))
    assert torch.equal(e_cpu, e_gpu.cpu())
    assert torch.equal(z_cpu, z_gpu.cpu())


def test_cuda_graph_replay_draws_fresh_samples():
    logits = torch.zeros(4096, device="cuda")
    mu = torch.zeros(4096, device="cuda")
    # Warm up on a side stream, as torch.cuda.graphs asks.
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        ops.bernoulli_logits(logits)
        ops.normal_reparam(mu, mu)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        sample = ops.bernoulli_logits(logits)
        z, _ = ops.normal_reparam(mu, mu)
        words = ops.uniform_bits(64, device="cuda")
    seen_samples, seen_z, seen_words = [], [], []
    for _ in range(4):
        graph.replay()
        seen_samples.append(sample.clone())
        seen_z.append(z.clone())
        seen_words.append(words.clone())
    torch.cuda.synchronize()
    for seen in (seen_samples, seen_z, seen_words):
        for i in range(len(seen)):
            for j in range(i):
                assert not torch.equal(seen[i], seen[j])
    # Replays draw valid samples: half ones on average (4096 draws: sd 32).
    assert abs(seen_samples[-1].sum().item() - 2048) < 5 * 32


def test_compile_on_cuda():
    f = torch.compile(lambda x, b: ops.bernoulli_logits(x, b, return_probs=True), fullgraph=True)
    x, b = torch.randn(64, 32, device="cuda"), torch.randn(32, device="cuda")
    torch.manual_seed(1)
    s1, p1 = f(x, b)
    torch.manual_seed(1)
    s2, p2 = ops.bernoulli_logits(x, b, return_probs=True)
    assert torch.equal(s1, s2) and torch.equal(p1, p2)


def test_opcheck_cuda():
    x = torch.randn(8, 5, device="cuda", dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.dgm_fast.bernoulli_logits.default, (x, None), {"return_probs": True})
    torch.library.opcheck(torch.ops.dgm_fast.normal_reparam.default, (x, x.detach().clone().requires_grad_()))


def test_device_mismatch_errors():
    with pytest.raises(RuntimeError, match="bias is on cpu|same device"):
        ops.bernoulli_logits(torch.zeros(3, 4, device="cuda"), torch.zeros(4))
    with pytest.raises(RuntimeError, match="same device"):
        ops.normal_reparam(torch.zeros(3, device="cuda"), torch.zeros(3))
    with pytest.raises(ValueError, match="generator is on cuda"):
        ops.bernoulli_logits(torch.zeros(3), generator=torch.Generator(device="cuda"))


def test_nan_logits_propagate_on_cuda():
    # Raising would need a device synchronisation; NaN comes out where NaN went in.
    s, p = ops.bernoulli_logits(torch.tensor([0.0, float("nan")], device="cuda"), return_probs=True)
    assert torch.isnan(s[1]) and torch.isnan(p[1]) and not torch.isnan(s[0])


@pytest.mark.parametrize("visible,hidden", [("bernoulli", "bernoulli"), ("gaussian", "bernoulli"), ("bernoulli", "nrelu")])
def test_rbm_chain_identical_on_cpu_and_cuda(visible, hidden):
    from dgm_fast import RBM

    rbm = RBM(20, 12, visible=visible, hidden=hidden, init_std=0.5, generator=torch.Generator().manual_seed(0)).double()
    v0 = torch.bernoulli(torch.full((64, 20), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    cpu = rbm.chain(v0, 5, generator=make_generator("cpu", 3))
    gpu = rbm.cuda().chain(v0.cuda(), 5, generator=make_generator("cuda", 3))
    # Products differ in rounding between MKL and cuBLAS, so the hidden means agree to float64
    # tolerance; the binary samples agree exactly unless a word lands within that rounding of a
    # threshold, which for 64x20x5 draws has probability ~1e-9.
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-10, atol=1e-12)


def test_training_steps_agree_on_cpu_and_cuda():
    from dgm_fast.models.rbm import train
    from dgm_fast import RBM

    data = torch.bernoulli(torch.full((200, 30), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    models = []
    for device in ("cpu", "cuda"):
        rbm = RBM(30, 10, generator=torch.Generator().manual_seed(0)).double().to(device)
        opt = torch.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.5)
        method, g = train.PCD(1, n_chains=50), make_generator(device, 7)
        for i in range(10):
            train.cd_step(rbm, data[20 * i : 20 * i + 20].to(device), opt, method, weight_decay=1e-4, generator=g)
        models.append(rbm)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("hold,k", [(None, 1), (None, 3), ("visible", 1), ("hidden", 1)])
def test_train_epoch_on_cuda_is_the_loop_of_per_update_ops(hold, k):
    """rbm_train_epoch_ on the GPU: bit for bit the Python loop of the per-update ops there, and
    close to the CPU's (MKL and cuBLAS round products differently)."""
    from dgm_fast import reference

    def setup(device):
        g = torch.Generator().manual_seed(0)
        params = [0.3 * torch.randn(12, 7, generator=g, dtype=torch.float64), torch.zeros(12, dtype=torch.float64),
                  torch.zeros(7, dtype=torch.float64)]
        chains = None if hold is None else torch.bernoulli(
            torch.full((10, 12 if hold == "visible" else 7), 0.5, dtype=torch.float64), generator=g)
        data = torch.bernoulli(torch.full((53, 12), 0.3, dtype=torch.float64), generator=g)
        to = lambda t: None if t is None else t.to(device)  # noqa: E731
        params = [to(p) for p in params]
        return params, [torch.zeros_like(p) for p in params], to(chains), to(data)

    hyper = dict(k=k, chains_hold=hold or "visible", lr=0.05, momentum=0.9, weight_decay=1e-3)
    params, buffers, chains, data = setup("cuda")
    ops.rbm.rbm_train_epoch_(*params, *buffers, chains, data, 10, generator=make_generator("cuda", 5), **hyper)
    r_params, r_buffers, r_chains, _ = setup("cuda")
    r_chains = reference.rbm.rbm_train_epoch(r_params, r_buffers, r_chains, data, 10,
                                             generator=make_generator("cuda", 5), **hyper)
    for a, b in zip(params + buffers, r_params + r_buffers):
        assert torch.equal(a, b)
    c_params, c_buffers, c_chains, c_data = setup("cpu")
    ops.rbm.rbm_train_epoch_(*c_params, *c_buffers, c_chains, c_data, 10, generator=make_generator("cpu", 5),
                             **hyper)
    for a, b in zip(params, c_params):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("hold", [None, "visible", "hidden"])
@pytest.mark.parametrize("own_generator", [True, False])
def test_train_epoch_in_a_cuda_graph_is_the_eager_loop(hold, own_generator, monkeypatch):
    """DGM_FAST_EPOCH_CUDA_GRAPH=1: the full batches replay one captured update. The bits must be
    the eager loop's, and the generator must end where the loop leaves it, whether it is the
    caller's or the default one."""
    from dgm_fast import reference

    monkeypatch.setenv("DGM_FAST_EPOCH_CUDA_GRAPH", "1")

    def setup():
        g = torch.Generator().manual_seed(0)
        params = [0.3 * torch.randn(12, 7, generator=g), torch.zeros(12), torch.zeros(7)]
        chains = None if hold is None else torch.bernoulli(
            torch.full((10, 12 if hold == "visible" else 7), 0.5), generator=g)
        data = torch.bernoulli(torch.full((93, 12), 0.3), generator=g)  # 9 full batches and a short one
        params = [p.cuda() for p in params]
        return params, [torch.zeros_like(p) for p in params], None if chains is None else chains.cuda(), data.cuda()

    def generator():
        if own_generator:
            return make_generator("cuda", 5)
        torch.cuda.manual_seed(5)
        return None

    hyper = dict(k=1, chains_hold=hold or "visible", lr=0.05, momentum=0.9, weight_decay=1e-3)
    params, buffers, chains, data = setup()
    g = generator()
    ops.rbm.rbm_train_epoch_(*params, *buffers, chains, data, 10, generator=g, **hyper)
    after = (g or torch.cuda.default_generators[0]).get_state()
    r_params, r_buffers, r_chains, _ = setup()
    rg = generator()
    r_chains = reference.rbm.rbm_train_epoch(r_params, r_buffers, r_chains, data, 10, generator=rg, **hyper)
    for a, b in zip(params + buffers, r_params + r_buffers):
        assert torch.equal(a, b)
    if chains is not None:
        assert torch.equal(chains, r_chains)
    assert torch.equal(after, (rg or torch.cuda.default_generators[0]).get_state())


def test_dbm_ops_agree_on_cpu_and_cuda():
    """Mean-field to float64 tolerance; the chain's and AIS's draws exactly, unless a word lands
    within the products' rounding difference of a threshold (probability ~1e-9 here); AIS's
    log-weights to float64 tolerance (the CPU kernel's portable exp/log against torch's on CUDA)."""
    from helpers import random_dbm

    dbm = random_dbm([20, 12, 8, 6], scale=0.8, seed=0)
    weights = [w.detach() for w in dbm.weights]
    biases = [b.detach() for b in dbm.biases]
    cuda = lambda ts: [t.cuda() for t in ts]  # noqa: E731
    g = torch.Generator().manual_seed(1)
    states = [torch.bernoulli(torch.full((64, n), 0.5, dtype=torch.float64), generator=g) for n in dbm.layer_sizes]
    cpu_means = ops.dbm.dbm_mean_field(states[0], weights, biases, 20, damping=0.2)
    gpu_means = ops.dbm.dbm_mean_field(states[0].cuda(), cuda(weights), cuda(biases), 20, damping=0.2)
    for a, b in zip(cpu_means, gpu_means):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-10, atol=1e-12)
    cpu_chain = ops.dbm.dbm_gibbs_chain(states, weights, biases, 5, generator=make_generator("cpu", 3))
    gpu_chain = ops.dbm.dbm_gibbs_chain(cuda(states), cuda(weights), cuda(biases), 5, generator=make_generator("cuda", 3))
    for a, b in zip(cpu_chain, gpu_chain):
        assert torch.equal(a, b.cpu())
    base = [torch.zeros_like(b) for b in biases]
    betas = torch.linspace(0, 1, 200, dtype=torch.float64).tolist()
    cpu_w = ops.dbm.dbm_ais(states[1::2], weights, biases, base, betas, generator=make_generator("cpu", 4))
    gpu_w = ops.dbm.dbm_ais(cuda(states[1::2]), cuda(weights), cuda(biases), cuda(base), betas,
                            generator=make_generator("cuda", 4))
    torch.testing.assert_close(cpu_w, gpu_w.cpu(), rtol=0, atol=1e-10)


def test_dbm_chain_in_a_cuda_graph_draws_fresh_states():
    """Captured once, the chain replays with new random draws each time (the generator's offset
    advances), like the samplers it calls."""
    from helpers import random_dbm

    dbm = random_dbm([20, 12, 8], scale=0.8, seed=0, dtype=torch.float32).cuda()
    states = dbm.random_states(32, generator=make_generator("cuda", 1))
    static = [s.clone() for s in states]
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = dbm.gibbs(static, 3)
    graph.replay()
    first = [o.clone() for o in out]
    graph.replay()
    assert any(not torch.equal(a, b) for a, b in zip(first, out))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_bernoulli_layer_ops_agree_on_cpu_and_cuda(dtype):
    from dgm_fast.ops.bernoulli import bernoulli_log_prob, bernoulli_sample_log_prob

    torch.manual_seed(0)
    logits = (torch.randn(257, 301, dtype=torch.float64) * 5).to(dtype)  # rows start inside Philox blocks
    s_cpu, q_cpu = bernoulli_sample_log_prob(logits, generator=make_generator("cpu", 9))
    s_gpu, q_gpu = bernoulli_sample_log_prob(logits.cuda(), generator=make_generator("cuda", 9))
    assert torch.equal(s_cpu, s_gpu.cpu())  # the draws: bit for bit
    tol = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 1e-2}[dtype]  # sums in another order
    torch.testing.assert_close(q_gpu.cpu().double(), q_cpu.double(), rtol=tol, atol=tol)
    torch.testing.assert_close(bernoulli_log_prob(s_gpu, logits.cuda()).cpu().double(),
                               bernoulli_log_prob(s_cpu, logits).double(), rtol=tol, atol=tol)
    grad = torch.randn(257, dtype=torch.float64).to(dtype)
    back_cpu = torch.ops.dgm_fast.bernoulli_log_prob_backward(grad, s_cpu, logits)
    back_gpu = torch.ops.dgm_fast.bernoulli_log_prob_backward(grad.cuda(), s_gpu, logits.cuda())
    assert torch.equal(back_cpu, back_gpu.cpu())  # element-wise: the same bits


def test_bernoulli_layer_in_a_cuda_graph_draws_fresh_samples():
    from dgm_fast.ops.bernoulli import bernoulli_sample_log_prob

    logits = torch.zeros(64, 101, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        bernoulli_sample_log_prob(logits)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        sample, log_prob = bernoulli_sample_log_prob(logits)
    seen = []
    for _ in range(3):
        graph.replay()
        seen.append(sample.clone())
    torch.cuda.synchronize()
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    torch.testing.assert_close(log_prob, torch.full((64,), -101 * math.log(2), device="cuda"))


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_fused_losses_with_gradient_agree_on_cpu_and_cuda(reduction):
    # On the CPU the ELBO and IWAE gradients come from the forward pass (the *_with_grad ops); on
    # CUDA from the backward ops. Values and gradients must agree to rounding, and the
    # *_with_grad ops (their composite on CUDA) must give what the backward ops give.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 300, generator=g, dtype=torch.float64)
    recon, mu, lv = (torch.randn(64, n, generator=g, dtype=torch.float64) for n in (300, 7, 7))
    w = 10 * torch.randn(700, 33, generator=g, dtype=torch.float64)
    results = {}
    for device in ("cpu", "cuda"):
        params = [t.to(device).requires_grad_() for t in (recon, mu, lv)]
        loss = losses.gaussian_elbo(x.to(device), *params, reduction=reduction)
        elbo_grads = torch.autograd.grad(loss.sum(), params)
        ww = w.to(device).requires_grad_()
        bound = losses.iwae_bound(ww, reduction=reduction)
        (w_grad,) = torch.autograd.grad(bound.sum(), ww)
        results[device] = [t.detach().cpu() for t in (loss, *elbo_grads, bound, w_grad)]
    for a, b in zip(results["cpu"], results["cuda"]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-300)
    bound, grad = torch.ops.dgm_fast.iwae_bound_with_grad(w.cuda(), scale=0.5)
    want = torch.ops.dgm_fast.iwae_bound_backward(torch.full((33,), 0.5, dtype=torch.float64, device="cuda"),
                                                  w.cuda(), bound)
    assert torch.equal(grad, want)


def test_parzen_and_the_gan_update_run_on_cuda():
    # the tiled Parzen op (ATen products and the CUDA iwae_bound per tile) against the CPU; one
    # GAN update (Philox latents and dropout masks, fused losses) on CUDA
    from dgm_fast import GAN
    from dgm_fast.evaluate import parzen_log_likelihood
    from dgm_fast.models.gan import gan_update

    g = torch.Generator().manual_seed(0)
    x, s = torch.rand(5000, 20, generator=g, dtype=torch.float64), torch.rand(2500, 20, generator=g, dtype=torch.float64)
    torch.testing.assert_close(parzen_log_likelihood(x.cuda(), s.cuda(), 0.3).cpu(), parzen_log_likelihood(x, s, 0.3),
                               rtol=1e-12, atol=1e-10)
    gan = GAN(n_visible=20, n_latent=8, hidden_sizes=[32, 32], device="cuda")
    opts = (torch.optim.Adam(gan.generator.parameters()), torch.optim.Adam(gan.discriminator.parameters()))
    metrics = gan_update(gan, x[:64].float().cuda(), kind="non_saturating", optimizers=opts,
                         generator=torch.Generator(device="cuda").manual_seed(1))
    assert all(torch.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nade_ops_agree_on_cpu_and_cuda(dtype):
    from dgm_fast.ops.nade import nade_log_prob, nade_sample

    B, D, H = 37, 100, 70
    g = torch.Generator().manual_seed(3)
    params = [torch.randn(D, generator=g) * 0.5, torch.randn(H, generator=g) * 0.5,
              torch.randn(D, H, generator=g) * 0.3, torch.randn(D, H, generator=g) * 0.3]
    params = [p.to(dtype) for p in params]
    x = (torch.rand(B, D, generator=g) < 0.4).to(dtype)
    order = torch.stack([torch.randperm(D, generator=g) for _ in range(B)])
    cpu = [p.clone().requires_grad_() for p in params]
    gpu = [p.cuda().requires_grad_() for p in params]
    lp_c, logits_c = nade_log_prob(x, *cpu, order)
    lp_g, logits_g = nade_log_prob(x.cuda(), *gpu, order.cuda())
    assert torch.equal(lp_c, lp_g.cpu()) and torch.equal(logits_c, logits_g.cpu())  # the same bits
    w = torch.linspace(-1, 1, B, dtype=dtype)
    grads_c = torch.autograd.grad((lp_c * w).sum() + logits_c.sum(), cpu)
    grads_g = torch.autograd.grad((lp_g * w.cuda()).sum() + logits_g.sum(), gpu)
    for a, b in zip(grads_c, grads_g):  # rows added in another order: equal to rounding
        torch.testing.assert_close(a, b.cpu(), rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=1e-6)
    # sampling: the Philox contract
    s_c, l_c = nade_sample(*params, 50, order[0], generator=make_generator("cpu", 5))
    s_g, l_g = nade_sample(*(p.cuda() for p in params), 50, order[0].cuda(), generator=make_generator("cuda", 5))
    assert torch.equal(s_c, s_g.cpu()) and torch.equal(l_c, l_g.cpu())
    # an ordering that is not a permutation: NaN for its row on CUDA (the CPU raises)
    bad = order.clone()
    bad[4, 0] = bad[4, 1]
    lp_bad, _ = nade_log_prob(x.cuda(), *(p.cuda() for p in params), bad.cuda())
    assert torch.isnan(lp_bad[4]) and torch.isfinite(torch.cat([lp_bad[:4], lp_bad[5:]])).all()


def test_nade_sampling_in_a_cuda_graph_draws_fresh_samples():
    from dgm_fast.ops.nade import nade_sample

    params = [torch.zeros(30, device="cuda"), torch.zeros(20, device="cuda"), torch.zeros(30, 20, device="cuda"),
              torch.zeros(30, 20, device="cuda")]
    nade_sample(*params, 64)  # warm up outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        sample, _ = nade_sample(*params, 64)
    graph.replay()
    first = sample.clone()
    graph.replay()
    assert not torch.equal(first, sample)
    assert abs(sample.mean().item() - 0.5) < 0.05
