"""NADE: the log-likelihood's forward + backward (the gradient in the four parameters) over a
batch, and ancestral sampling, at the paper's MNIST size (batch 100, D = 784, H = 500) and at
digits' (batch 100, D = 64, H = 100). Float32, the fixed index ordering.

forward + backward:
  dgm_fast              ops.nade.nade_log_prob and its native backward (one sweep per row,
                        O(B (D + H) + D H) memory)
  eager loop            the recurrence as a Python loop over the D positions (loop_log_prob below:
                        reference.nade.nade_log_prob written for the index order), autograd
  eager cumsum          all positions at once through [B, D, H] tensors, the usual vectorised
                        formulation (cumsum_log_prob below: reference.nade.nade_log_prob_cumsum
                        for the index order), autograd
  torch.compile cumsum  that function compiled by inductor
  torch.compile loop    the loop compiled by inductor (digits size only: at D = 784 the unrolled
                        graph of 784 steps takes inductor too long to compile for a benchmark)
  eager+graph cumsum    (CUDA) the cumsum version's forward + backward captured in a CUDA graph
sample (100 images):
  dgm_fast              ops.nade.nade_sample: one native call, Philox draws
  eager loop            reference.nade.nade_sample's recurrence with torch.bernoulli draws
"""

from __future__ import annotations

import pytest
import torch

from dgm_fast.bench._common import COMPILE, DGM_FAST, EAGER, EAGER_GRAPH, fwd_bwd, graphed
from dgm_fast.ops.nade import nade_log_prob, nade_sample

QUICK = [(100, 64, 100)]
FULL = [(100, 64, 100), (100, 784, 500)]  # (batch, D, H): digits, MNIST as Larochelle & Murray
EAGER_LOOP, EAGER_CUMSUM = f"{EAGER} loop", f"{EAGER} cumsum"
COMPILE_LOOP, COMPILE_CUMSUM = f"{COMPILE} loop", f"{COMPILE} cumsum"
GRAPH_CUMSUM = f"{EAGER_GRAPH} cumsum"


def case_id(case) -> str:
    return "B{}-D{}-H{}".format(*case)


def _params(D, H, device):
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(D, generator=g) * 0.1, torch.randn(H, generator=g) * 0.1,
              torch.randn(D, H, generator=g) * 0.05, torch.randn(D, H, generator=g) * 0.05]
    return [p.to(device).requires_grad_() for p in params]


def _data(B, D, device):
    return (torch.rand(B, D, generator=torch.Generator().manual_seed(1)) < 0.15).float().to(device)


def loop_log_prob(x, bias_visible, bias_hidden, weight_in, weight_out):
    a = bias_hidden.expand(x.shape[0], -1)
    logits = []
    for d in range(x.shape[1]):
        logits.append(bias_visible[d] + torch.sigmoid(a) @ weight_out[d])
        a = a + x[:, d:d + 1] * weight_in[d]
    logits = torch.stack(logits, 1)
    return (x * logits - torch.nn.functional.softplus(logits)).sum(1), logits


def cumsum_log_prob(x, bias_visible, bias_hidden, weight_in, weight_out):
    terms = x[..., None] * weight_in  # [B, D, H]
    a = bias_hidden + terms.cumsum(1) - terms
    logits = bias_visible + (weight_out * torch.sigmoid(a)).sum(-1)
    return (x * logits - torch.nn.functional.softplus(logits)).sum(1), logits


def mean_log_prob(fn):
    """``-mean log p(x)`` by ``fn`` (one of the implementations), a function of the parameters."""
    return lambda x: (lambda *params: -fn(x, *params)[0].mean())


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER_LOOP, EAGER_CUMSUM, COMPILE_LOOP, COMPILE_CUMSUM, GRAPH_CUMSUM])
@pytest.mark.parametrize("case", FULL, ids=case_id)
def test_forward_backward(case, impl, setting, measure):
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    if impl == COMPILE_LOOP and case[1] > 100:
        pytest.skip("inductor compiles the 784-step unrolled loop too slowly for a benchmark")
    if impl == GRAPH_CUMSUM and setting.device.type != "cuda":
        pytest.skip("CUDA graphs need a GPU")
    B, D, H = case
    params, x = _params(D, H, setting.device), _data(B, D, setting.device)
    fn = {DGM_FAST: nade_log_prob, EAGER_LOOP: loop_log_prob, EAGER_CUMSUM: cumsum_log_prob,
          COMPILE_LOOP: torch.compile(loop_log_prob), COMPILE_CUMSUM: torch.compile(cumsum_log_prob),
          GRAPH_CUMSUM: cumsum_log_prob}[impl]
    step = fwd_bwd(mean_log_prob(fn)(x))
    if impl == GRAPH_CUMSUM:
        step = graphed(step, params)
    measure(f"nade fwd+bwd {case_id(case)}", impl, step, *params, warmup=3 if impl.startswith(COMPILE) else 1)


def eager_sample(bias_visible, bias_hidden, weight_in, weight_out, n):
    D = weight_in.shape[0]
    a = bias_hidden.expand(n, -1)
    sample = weight_in.new_zeros(n, D)
    for d in range(D):
        p = torch.sigmoid(bias_visible[d] + torch.sigmoid(a) @ weight_out[d])
        s = torch.bernoulli(p)
        sample[:, d] = s
        a = a + s[:, None] * weight_in[d]
    return sample


@pytest.mark.parametrize("impl", [DGM_FAST, EAGER_LOOP])
@pytest.mark.parametrize("case", FULL, ids=case_id)
def test_sample(case, impl, setting, measure):
    if case not in (QUICK if setting.quick else FULL):
        pytest.skip("size not selected for this run (--quick)")
    B, D, H = case
    params = [p.detach() for p in _params(D, H, setting.device)]
    group = f"nade sample {case_id(case)}"
    if impl == DGM_FAST:
        gen = torch.Generator(device=setting.device).manual_seed(2)
        measure(group, impl, lambda *p: nade_sample(*p, B, generator=gen), *params)
    else:
        with torch.no_grad():
            measure(group, impl, lambda *p: eager_sample(*p, B), *params)
