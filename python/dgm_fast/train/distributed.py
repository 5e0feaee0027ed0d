"""Data-parallel training on ``torch.distributed``: what :func:`dgm_fast.train.fit` and the
evaluators do when the process is one of several ranks.

Launch with ``torchrun`` (gloo on CPU, NCCL on GPU); :func:`init_from_env` joins the process
group torchrun describes. Then, in :func:`~dgm_fast.train.fit`:

* every rank starts from rank 0's parameters (broadcast);
* each rank trains on its own shard of every epoch (``DistributedSampler``: one shuffle for all,
  ``set_epoch`` each epoch; ``n mod world_size`` rows of each epoch's shuffle are left out so
  that every rank takes the same number of steps);
* before every ``optimizer.step()`` the gradients are averaged over the ranks (one flat
  all-reduce, SUM then divide: gloo has no AVG). The update is then the single-process update on
  the union of the ranks' batches, a global batch of ``world_size * batch_size``: with the same
  learning rate, an epoch takes ``world_size`` times fewer updates of a ``world_size`` times less
  noisy gradient (scale the learning rate yourself if you want the single-process trajectory's
  pace; nothing here rescales it);
* each rank draws from its own random stream, a pure function of (seed, rank)
  (:func:`rank_seed`), and keeps its own persistent chains; a checkpoint holds every rank's;
* epoch metrics are averaged over the ranks before they are logged; rank 0 writes the files.

A model's update that bypasses ``optimizer.step()`` (a fused native SGD) cannot be averaged, so
:func:`fit` installs the all-reduce as an optimizer step hook, which such fused paths check for
and then leave to the plain optimizer.
"""

from __future__ import annotations

import gc
import os
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["DEFAULT_TIMEOUT_S", "RESTART_SAFE_ENV", "all_reduce_mean_", "broadcast_module", "broadcast_object", "gather_objects",
           "gather_runs", "gradient_all_reduce_hook", "init_from_env", "is_distributed", "my_share", "rank",
           "rank_generator", "rank_seed", "run_generators", "shutdown", "world_size"]

#: Seconds a rank waits for the rendezvous (and, later, for any collective) before it fails.
DEFAULT_TIMEOUT_S = 300.0

#: What torchrun's environment must set for restarts to reconnect reliably (see init_from_env).
RESTART_SAFE_ENV = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"

_MASK64 = (1 << 64) - 1


def is_distributed() -> bool:
    """Whether this process is one rank of an initialized process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init_from_env(device: str | torch.device = "cpu", timeout_s: float | None = None) -> bool:
    """Joins the process group that ``torchrun`` (or the ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/
    ``MASTER_PORT`` variables) describes, with gloo for a CPU ``device`` and NCCL for CUDA; a
    CUDA rank takes the GPU ``LOCAL_RANK``. Returns False, doing nothing, outside such a launch.

    A rank that cannot reach the rendezvous within ``timeout_s`` (default
    :data:`DEFAULT_TIMEOUT_S`) raises a RuntimeError that says where it looked."""
    if "WORLD_SIZE" not in os.environ or is_distributed():
        return is_distributed()
    timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else float(timeout_s)
    if not timeout_s > 0:
        raise ValueError(f"init_from_env: timeout_s must be positive, got {timeout_s}")
    if int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0 and os.environ.get(RESTART_SAFE_ENV) != "1":
        # torchrun shares its rendezvous store with the process group; a restarted rank may read
        # the address a dead one published and fail to connect (pytorch/pytorch#135712).
        raise RuntimeError(f"dgm_fast: torchrun --max-restarts needs {RESTART_SAFE_ENV}=1 in torchrun's environment "
                           f"(e.g. `{RESTART_SAFE_ENV}=1 torchrun --max-restarts 3 ...`), else a restarted rank may "
                           "fail to reconnect (pytorch/pytorch#135712)")
    device = torch.device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    except Exception as exc:  # torch raises several types here (DistNetworkError, RuntimeError, ValueError)
        raise RuntimeError(
            f"dgm_fast: rank {os.environ.get('RANK', '?')} of {os.environ['WORLD_SIZE']} could not join the process "
            f"group at {where} within {timeout_s:g} s ({type(exc).__name__}: {exc}). Are all ranks started, and is "
            "MASTER_ADDR:MASTER_PORT (torchrun's --rdzv-endpoint / --master-addr) reachable from this machine?"
        ) from exc
    return True


def shutdown() -> None:
    """Leaves the process group once every rank is done (a rank that tears gloo down while
    another still talks to it aborts)."""
    if is_distributed():
        dist.barrier()
        # Collectives' work objects (and the tensors they hold) die now, while the group and the
        # interpreter are alive: gloo's worker threads holding them into interpreter shutdown is
        # a known way to die with SIGABRT (pytorch#179291). Once, in CI, both ranks of the
        # suite's 2-rank check aborted ("terminate called without an active exception") after
        # their last collective; 25 local repeats did not reproduce it.
        gc.collect()
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random stream: a pure function of (seed, rank) that spreads
    neighbouring ranks and seeds far apart (SplitMix64's finalizer on the pair)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + (int(rank) + 1) * 0xD1B54A32D192ED03) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


def rank_generator(generator: torch.Generator | None, device: str | torch.device) -> torch.Generator | None:
    """In a process group, a new generator on ``device`` for this rank: seeded with
    :func:`rank_seed` of a seed that rank 0 draws from ``generator`` (torch's default generator
    if None) and broadcasts, so the result depends only on rank 0's seed and the rank. Outside
    one, ``generator`` itself."""
    if not is_distributed():
        return generator
    seed = int(torch.randint(2**62, (1,), generator=generator,
                             device=generator.device if generator is not None else "cpu").item())
    seed = broadcast_object(seed)
    return torch.Generator(device=device).manual_seed(rank_seed(seed, rank()))


def run_generators(generator: torch.Generator | None, device: str | torch.device) -> tuple[torch.Generator, torch.Generator]:
    """A training run's two generators from the user's ``generator`` (seeded from torch's default
    generator if None): this rank's random stream on ``device`` (:func:`rank_generator`) and the
    CPU generator that shuffles the batches, drawn from ``generator`` first, so the same on every
    rank."""
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,)).item()))
    shuffle = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator,
                                                              device=generator.device).item()))
    return rank_generator(generator, device), shuffle


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_objects(obj, dst: int | None = None) -> list | None:
    """Every rank's ``obj``, in rank order: on every rank, or with ``dst`` on that rank only (the
    others get None)."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size() if dst is None or rank() == dst else None
    if dst is None:
        dist.all_gather_object(out, obj)
    else:
        dist.gather_object(obj, out, dst=dst)
    return out


@torch.no_grad()
def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers, copied into every rank's ``module``."""
    if not is_distributed():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


_BUCKET_NUMEL = 1 << 16  # tensors at least this large are reduced in place; smaller ones share one buffer


@torch.no_grad()
def all_reduce_mean_(tensors) -> None:
    """Each tensor replaced by its mean over the ranks (SUM, then divide: gloo has no AVG). Large
    tensors are reduced in place, without a copy; the small ones (biases) travel together in one
    buffer per dtype and device, so that each costs no call of its own. All calls are in flight
    at once."""
    if world_size() == 1:
        return
    scale = 1.0 / world_size()
    pending, small = [], {}
    for t in tensors:
        if t.numel() >= _BUCKET_NUMEL and t.is_contiguous():
            pending.append((dist.all_reduce(t, async_op=True), t, None))
        else:
            small.setdefault((t.dtype, t.device), []).append(t)
    for group in small.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        pending.append((dist.all_reduce(flat, async_op=True), flat, group))
    for work, reduced, group in pending:
        work.wait()
        reduced.mul_(scale)
        offset = 0
        for t in group or ():
            t.copy_(reduced[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def gradient_all_reduce_hook(optimizer, args, kwargs) -> None:
    """An optimizer step pre-hook: the mean over the ranks of every gradient it will apply."""
    all_reduce_mean_([p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None])


def gather_runs(local: torch.Tensor) -> torch.Tensor:
    """The 1-D tensors of all ranks (of any lengths), concatenated in rank order, on every rank:
    the log-weights of AIS runs spread over the ranks."""
    if not is_distributed():
        return local
    return torch.cat([part.to(local.device) for part in gather_objects(local.detach().cpu())])


def my_share(n: int) -> slice:
    """The slice of ``range(n)`` this rank takes when ``n`` items are spread over the ranks
    (the first ``n mod world_size`` ranks take one more)."""
    size, r = world_size(), rank()
    base, extra = divmod(n, size)
    start = r * base + min(r, extra)
    return slice(start, start + base + (r < extra))
