"""What the benchmark families share: CUDA-graph capture and the implementations' names."""

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


def size_id(size) -> str:
    return "x".join(map(str, size))
