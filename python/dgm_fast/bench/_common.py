"""What the benchmark families share: the implementations' names, CUDA-graph capture, and a
loss's forward + backward."""

from __future__ import annotations

import torch

# The implementations a case may have, in the order they are listed.
DGM_FAST, EAGER, COMPILE = "dgm_fast", "eager", "torch.compile"
EAGER_GRAPH, DGM_FAST_GRAPH = "eager+graph", "dgm_fast+graph"  # CUDA only


def graphed(fn, args):
    """``fn`` captured in a CUDA graph; the returned callable replays it (with any arguments)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # also creates an optimizer's momentum buffers before the capture
            fn(*args)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(*args)
    return lambda *_: graph.replay()


def fwd_bwd(loss_fn):
    """``loss_fn`` followed by the gradient of its output (or of the sum of its outputs) with
    respect to every input: what a training step spends on a loss."""

    def run(*tensors):
        out = loss_fn(*tensors)
        loss = out if isinstance(out, torch.Tensor) else sum(out)
        return torch.autograd.grad(loss, tensors)

    return run


def optimizer_update(loss_fn, optimizer):
    """One training update from a batch: ``loss_fn(batch)``, its backward pass, ``optimizer``'s step."""

    def update(batch):
        loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return update


def size_id(size) -> str:
    return "x".join(map(str, size))
