"""Training RBMs: CD-k, persistent CD, fast-weights PCD and parallel tempering.

The pieces, usable on their own in a custom loop::

    method = PCD(k=1, n_chains=100)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.9)
    for v in loader:
        cd_step(rbm, v, optimizer, method, weight_decay=1e-4)

and :func:`fit_rbm`, the RBM's use of the common loop :func:`dgm_fast.train.fit` (epochs,
learning-rate schedules, progress bars, evaluation, atomic checkpoints, exact resumption).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable

import torch
from torch.optim import optimizer as _torch_optimizer

from ... import ops
from ...train import distributed
from ...train.loop import fit
from .model import RBM

__all__ = ["CD", "PCD", "FPCD", "PT", "Sparsity", "make_method", "cd_gradients", "cd_step", "fit_rbm", "pt_swap_log_acceptance"]


# ---------------------------------------------------------------------------------------------
# negative phases


class CD:
    """Contrastive divergence: the chain starts at the data and runs ``k`` sweeps.

    Every method runs its matrix products (chain and gradient) in ``matmul_dtype`` when it is set
    (``torch.bfloat16``/``torch.float16``, accumulating in float32; the sampling, the biases and
    the update stay in float32).
    """

    name = "cd"
    matmul_dtype: torch.dtype | None = None
    needs_gradients = False  # does after_step use the gradient (fast weights)?

    def __init__(self, k: int = 1):
        if k < 1:
            raise ValueError(f"CD: k must be at least 1, got {k}")
        self.k = k

    def statistics(self, rbm: RBM, v_data, generator=None):
        """``(h_data, v_model, h_model)``: hidden means at the data, the negative samples and
        their hidden means."""
        h_data, v_model, h_model = rbm.chain(v_data, self.k, matmul_dtype=self.matmul_dtype, generator=generator)
        return h_data, v_model, h_model

    def after_step(self, rbm: RBM, grads, lr: float) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _check_n_chains(n_chains, method: str) -> int | None:
    if n_chains is None:
        return None  # one chain per example of the batch
    if isinstance(n_chains, bool) or not isinstance(n_chains, int) or n_chains < 1:
        raise ValueError(f"{method}: n_chains must be a positive integer (or None for the batch size), got {n_chains!r}")
    return n_chains


class PCD(CD):
    """Persistent CD (Tieleman 2008): ``n_chains`` chains carried across updates.

    The chains must keep up with the weights: train with little or no momentum and let the
    learning rate decay (on MNIST, runs with momentum 0.9 ended 2-7 nats of test log-probability
    behind momentum-free ones with a larger learning rate; bench/RESULTS.md)."""

    name = "pcd"

    def __init__(self, k: int = 1, n_chains: int | None = None):
        super().__init__(k)
        self.n_chains = _check_n_chains(n_chains, type(self).__name__)
        self.chains: torch.Tensor | None = None

    def _init_chains(self, rbm: RBM, v_data, generator):
        # Without n_chains, as many chains as the first batch has rows; a short last batch does
        # not restart them (each phase is averaged over its own rows).
        if self.chains is None or (self.n_chains is not None and self.chains.shape[0] != self.n_chains):
            n = self.n_chains or v_data.shape[0]
            self.chains = rbm.sample(n, steps=1, generator=generator)  # random start, one sweep

    def _chain_params(self, rbm: RBM):
        return {}

    def statistics(self, rbm: RBM, v_data, generator=None):
        self._init_chains(rbm, v_data, generator)
        h_data = rbm.hidden_probs(v_data).detach()
        params = self._chain_params(rbm)
        # Chains on other weights (FPCD) need their hidden means under the regular weights.
        _, self.chains, h_model = rbm.chain(
            self.chains, self.k, final_hidden=not params, matmul_dtype=self.matmul_dtype,
            generator=generator, **params,
        )
        if params:
            h_model = rbm.hidden_probs(self.chains).detach()
        return h_data, self.chains, h_model

    def state_dict(self) -> dict:
        return {"chains": self.chains}

    def load_state_dict(self, state: dict) -> None:
        self.chains = state["chains"]


class FPCD(PCD):
    """Fast-weights PCD (Tieleman & Hinton 2009): the chains run on ``W + W_fast``; the fast
    weights follow the same gradient with a larger learning rate and decay towards zero."""

    name = "fpcd"
    needs_gradients = True

    def __init__(self, k: int = 1, n_chains: int | None = None, fast_lr: float | None = None, fast_decay: float = 0.95):
        super().__init__(k, n_chains)
        self.fast_lr = fast_lr
        self.fast_decay = fast_decay
        self.fast: dict[str, torch.Tensor] | None = None

    def _ensure_fast(self, rbm: RBM):
        if self.fast is None:
            self.fast = {
                "weight": torch.zeros_like(rbm.weight.detach()),
                "visible_bias": torch.zeros_like(rbm.visible_bias.detach()),
                "hidden_bias": torch.zeros_like(rbm.hidden_bias.detach()),
            }

    def _chain_params(self, rbm: RBM):
        self._ensure_fast(rbm)
        return {name: getattr(rbm, name).detach() + fast for name, fast in self.fast.items()}

    def after_step(self, rbm: RBM, grads, lr: float) -> None:
        self._ensure_fast(rbm)
        fast_lr = self.fast_lr if self.fast_lr is not None else lr
        for name, grad in zip(("weight", "visible_bias", "hidden_bias"), grads):
            self.fast[name].mul_(self.fast_decay).sub_(grad, alpha=fast_lr)

    def state_dict(self) -> dict:
        return {"chains": self.chains, "fast": self.fast}

    def load_state_dict(self, state: dict) -> None:
        self.chains, self.fast = state["chains"], state["fast"]


def pt_swap_log_acceptance(rbm: RBM, v_a, v_b, beta_a, beta_b) -> torch.Tensor:
    """Log Metropolis ratio of exchanging the states of two replicas at inverse temperatures
    ``beta_a`` and ``beta_b`` (Desjardins et al. 2010): with ``p_beta(v) ∝ exp(-F_beta(v))``,
    ``log r = F_a(v_a) + F_b(v_b) - F_a(v_b) - F_b(v_a)``; the partition functions cancel."""
    return (
        _tempered_free_energy(rbm, v_a, beta_a)
        + _tempered_free_energy(rbm, v_b, beta_b)
        - _tempered_free_energy(rbm, v_b, beta_a)
        - _tempered_free_energy(rbm, v_a, beta_b)
    )


def _tempered_free_energy(rbm: RBM, v, beta):
    """``F_beta(v) = -log sum_h exp(-beta E(v, h))`` (Bernoulli hidden units)."""
    beta = torch.as_tensor(beta, dtype=v.dtype, device=v.device).reshape(-1)
    return beta * rbm._visible_energy(v) - torch.nn.functional.softplus(beta.unsqueeze(1) * rbm.hidden_preactivation(v)).sum(1)


class PT(CD):
    """Parallel tempering (Desjardins et al. 2010): ``n_chains`` chains at each of the inverse
    temperatures ``betas`` (the first must be 1, the model's); after each round of ``k`` sweeps,
    replicas at neighbouring temperatures exchange states with the Metropolis probability, even
    and odd pairs alternating. The statistics come from the chains at beta = 1.

    The default, 10 temperatures spaced evenly from 1 to 0, suits small models; for large ones
    watch ``swaps_accepted / swaps_tried``: on a 784x500 MNIST RBM neighbours below beta 0.5
    hardly ever swap, while five temperatures from 1 to 0.8 swap about half the time."""

    name = "pt"

    def __init__(self, k: int = 1, n_chains: int | None = None, betas: Iterable[float] | int = 10):
        super().__init__(k)
        betas = torch.linspace(1.0, 0.0, betas).tolist() if isinstance(betas, int) else list(betas)
        if len(betas) < 2 or betas[0] != 1.0 or any(b < 0 for b in betas):
            raise ValueError(f"PT: betas must start at 1.0, hold at least two values and be >= 0, got {betas}")
        self.betas = betas
        self.n_chains = _check_n_chains(n_chains, "PT")
        self.chains: torch.Tensor | None = None  # [n_temps, n_chains, V]
        self.parity = 0
        self.swaps_accepted = torch.zeros(len(betas) - 1)
        self.swaps_tried = torch.zeros(len(betas) - 1)

    def statistics(self, rbm: RBM, v_data, generator=None):
        if rbm.hidden != "bernoulli":
            raise ValueError("PT: parallel tempering is implemented for Bernoulli hidden units")
        n_temps, n = len(self.betas), self.n_chains or v_data.shape[0]
        if self.chains is None or self.chains.shape[1] != n:
            self.chains = rbm.sample(n_temps * n, steps=1, generator=generator).reshape(n_temps, n, -1)
        beta = torch.tensor(self.betas, dtype=v_data.dtype, device=v_data.device)
        flat = self.chains.reshape(n_temps * n, -1)
        _, flat, _ = rbm.chain(flat, self.k, beta=beta.repeat_interleave(n), final_hidden=False,
                               matmul_dtype=self.matmul_dtype, generator=generator)
        self.chains = flat.reshape(n_temps, n, -1)
        self._swap(rbm, beta, generator)
        h_data = rbm.hidden_probs(v_data).detach()
        v_model = self.chains[0]
        return h_data, v_model, rbm.hidden_probs(v_model).detach()

    @torch.no_grad()
    def _swap(self, rbm: RBM, beta, generator):
        pairs = torch.arange(self.parity, len(self.betas) - 1, 2, device=self.chains.device)
        self.parity ^= 1
        if len(pairs) == 0:
            return
        a, b = self.chains[pairs], self.chains[pairs + 1]  # [P, n, V]
        p, n, nv = a.shape
        beta_a = beta[pairs].repeat_interleave(n)
        beta_b = beta[pairs + 1].repeat_interleave(n)
        log_r = pt_swap_log_acceptance(rbm, a.reshape(-1, nv), b.reshape(-1, nv), beta_a, beta_b)
        u = torch.rand(log_r.shape, generator=generator, dtype=log_r.dtype, device=log_r.device)
        accept = (torch.log(u) < log_r).reshape(p, n, 1)
        self.chains[pairs] = torch.where(accept, b, a)
        self.chains[pairs + 1] = torch.where(accept, a, b)
        # The counters live with the chains: no device-to-host copy in the training loop.
        self.swaps_accepted = self.swaps_accepted.to(log_r.device)
        self.swaps_tried = self.swaps_tried.to(log_r.device)
        self.swaps_accepted[pairs] += accept.reshape(p, n).sum(1).to(self.swaps_accepted.dtype)
        self.swaps_tried[pairs] += n

    def state_dict(self) -> dict:
        return {"chains": self.chains, "parity": self.parity, "accepted": self.swaps_accepted, "tried": self.swaps_tried}

    def load_state_dict(self, state: dict) -> None:
        self.chains, self.parity = state["chains"], state["parity"]
        self.swaps_accepted, self.swaps_tried = state["accepted"], state["tried"]


def make_method(method: str | CD, k: int = 1, n_chains: int | None = None, **options) -> CD:
    """``"cd"``, ``"pcd"``, ``"fpcd"`` or ``"pt"`` (or a method object, returned as is)."""
    if isinstance(method, CD):
        return method
    factories = {"cd": lambda: CD(k), "pcd": lambda: PCD(k, n_chains), "fpcd": lambda: FPCD(k, n_chains, **options),
                 "pt": lambda: PT(k, n_chains, **options)}
    if method not in factories:
        raise ValueError(f"unknown training method {method!r}; choose one of {sorted(factories)}")
    return factories[method]()


# ---------------------------------------------------------------------------------------------
# one update


def cd_gradients(rbm: RBM, v_data, h_data, v_model, h_model, *, weight_decay: float = 0.0, matmul_dtype=None):
    """Writes the CD gradient of the mean negative log-likelihood into the parameters' ``.grad``
    and returns ``(grad_weight, grad_visible_bias, grad_hidden_bias)``.

    The native stacked-product op does it in one matrix product (weight decay folded in). A
    learned Gaussian variance has no closed-form statistic there, so that case differentiates
    ``mean F(v_data) - mean F(v_model)`` with autograd instead; both give the same gradient.
    """
    if isinstance(rbm.visible_log_std, torch.nn.Parameter):
        rbm.zero_grad(set_to_none=True)
        loss = rbm.free_energy(v_data).mean() - rbm.free_energy(v_model.detach()).mean()
        if weight_decay:
            loss = loss + 0.5 * weight_decay * (rbm.weight**2).sum()
        loss.backward()
        return rbm.weight.grad, rbm.visible_bias.grad, rbm.hidden_bias.grad
    grads = ops.rbm.rbm_cd_gradient(
        v_data, h_data, v_model, h_model, rbm.weight.detach(), weight_decay=weight_decay,
        visible_log_std=None if rbm.visible_log_std is None else rbm.visible_log_std.detach(),
        matmul_dtype=matmul_dtype,
    )
    for param, grad in zip((rbm.weight, rbm.visible_bias, rbm.hidden_bias), grads):
        param.grad = grad
    return grads


def _fusable_sgd(optimizer, rbm: RBM):
    """``(lr, momentum, momentum buffers)`` when ``optimizer.step()`` would be exactly SGD with
    momentum on the RBM's three parameters (one group, no dampening, Nesterov, weight decay of its
    own, maximize, hooks or tensor learning rate), so that :func:`cd_step` may fold the gradient
    into the momentum buffers in the native op; else ``None``. The buffers are the optimizer's own
    ``state[p]["momentum_buffer"]``, so checkpoints and a later unfused step see them."""
    if type(optimizer) is not torch.optim.SGD or len(optimizer.param_groups) != 1:
        return None
    # Step hooks (the optimizer's own and torch's global ones; private attributes, so a torch
    # without them reads as "hooks present" and keeps the plain path) would be skipped.
    missing = object()
    for owner, name in ((optimizer, "_optimizer_step_pre_hooks"), (optimizer, "_optimizer_step_post_hooks"),
                        (_torch_optimizer, "_global_optimizer_pre_hooks"),
                        (_torch_optimizer, "_global_optimizer_post_hooks")):
        hooks = getattr(owner, name, missing)
        if hooks is missing or hooks:
            return None
    group = optimizer.param_groups[0]
    params = (rbm.weight, rbm.visible_bias, rbm.hidden_bias)
    if isinstance(rbm.visible_log_std, torch.nn.Parameter) or len(group["params"]) != 3:
        return None
    if any(a is not b for a, b in zip(group["params"], params)):
        return None
    lr, momentum = group["lr"], group["momentum"]
    if (isinstance(lr, torch.Tensor) or momentum <= 0 or group["dampening"] != 0 or group["nesterov"]
            or group["weight_decay"] != 0 or group["maximize"] or group.get("differentiable")):
        return None
    buffers = []
    for p in params:
        state = optimizer.state[p]
        if state.get("momentum_buffer") is None:
            # torch's first step sets the buffer to the gradient; momentum * 0 + g is the same.
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        buffers.append(state["momentum_buffer"])
    return float(lr), float(momentum), buffers


def cd_step(
    rbm: RBM,
    v_data: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    method: CD | None = None,
    *,
    weight_decay: float = 0.0,
    sparsity: "Sparsity | None" = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One update: the negative phase of ``method`` (default CD-1), the gradient, the optimizer
    step. Returns the negative samples.

    With a plain ``torch.optim.SGD`` with momentum on the RBM's parameters (and no sparsity
    target, reduced-precision products or fast weights), the gradient, weight decay and momentum
    step are one native op that accumulates the phases' products straight into the optimizer's
    momentum buffers: ``.grad`` is then not written. Any other optimizer gets ``.grad`` and its
    own ``step()``."""
    method = method or CD(1)
    rbm._check_visible(v_data, "v_data")
    h_data, v_model, h_model = method.statistics(rbm, v_data, generator)
    fused = None if sparsity is not None or method.needs_gradients or method.matmul_dtype else _fusable_sgd(optimizer, rbm)
    if fused is not None:
        lr, momentum, buffers = fused
        ops.rbm.rbm_sgd_update_(
            rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach(), *buffers,
            v_data, h_data, v_model, h_model, lr=lr, momentum=momentum, weight_decay=weight_decay,
            visible_log_std=None if rbm.visible_log_std is None else rbm.visible_log_std.detach(),
        )
        # What an LR scheduler checks to tell that optimizer.step() ran before scheduler.step().
        optimizer._opt_called = True
        return v_model
    grads = cd_gradients(rbm, v_data, h_data, v_model, h_model, weight_decay=weight_decay,
                         matmul_dtype=method.matmul_dtype)
    if sparsity is not None:
        sparsity.add_penalty(rbm, v_data, h_data)
    optimizer.step()
    method.after_step(rbm, grads, optimizer.param_groups[0]["lr"])
    return v_model


class Sparsity:
    """Hinton's sparsity target: a running mean ``q`` of each hidden unit's activity
    (``q <- decay * q + (1 - decay) * mean h``) is pulled towards ``target``; the penalty's
    gradient ``cost * (q - target)`` is added to the hidden biases and, times the mean visible
    input, to the weights."""

    def __init__(self, target: float, cost: float = 0.1, decay: float = 0.9):
        if not 0 < target < 1:
            raise ValueError(f"Sparsity: target must be in (0, 1), got {target}")
        self.target, self.cost, self.decay = target, cost, decay
        self.q: torch.Tensor | None = None

    def add_penalty(self, rbm: RBM, v_data, h_data) -> None:
        mean_h = h_data.mean(0)
        self.q = mean_h if self.q is None else self.decay * self.q + (1 - self.decay) * mean_h
        penalty = self.cost * (self.q - self.target)
        rbm.hidden_bias.grad.add_(penalty)
        rbm.weight.grad.add_(torch.outer(rbm._scaled(v_data).mean(0), penalty))

    def state_dict(self) -> dict:
        return {"q": self.q}

    def load_state_dict(self, state: dict) -> None:
        self.q = state["q"]


# ---------------------------------------------------------------------------------------------
# the RBM's use of the common loop


class _FirstRows:
    """Up to 1,000 rows of the first batch a run trained on, where the reconstruction error is
    measured; checkpointed, so that a resumed run measures it on the same rows."""

    rows: torch.Tensor | None = None

    def keep(self, batch: torch.Tensor) -> None:
        if self.rows is None:
            self.rows = batch[:1000].detach().clone()

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = state["rows"]


def _check_eval_fn(eval_fn) -> None:
    """eval_fn is called as eval_fn(rbm, epoch): say so before training, not after an epoch."""
    if not callable(eval_fn):
        raise TypeError(f"fit_rbm: eval_fn must be a function of (rbm, epoch), got {type(eval_fn).__name__}")
    try:
        inspect.signature(eval_fn).bind(None, 0)
    except TypeError:
        raise TypeError("fit_rbm: eval_fn must accept two arguments, (rbm, epoch), and return a dict of "
                        f"metrics; {getattr(eval_fn, '__name__', eval_fn)!s} does not") from None
    except ValueError:  # no signature to inspect (some builtins): find out when it is called
        pass


def fit_rbm(
    rbm: RBM,
    data,
    *,
    method: str | CD = "cd",
    k: int = 1,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    sparsity_target: float | None = None,
    sparsity_cost: float = 0.1,
    n_chains: int | None = None,
    method_options: dict | None = None,
    matmul_dtype: torch.dtype | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    momentum_schedule: Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    progress: bool = True,
    eval_fn: Callable[[RBM, int], dict] | None = None,
    eval_every: int = 1,
    progress_keys: Iterable[str] | None = None,
    native_epochs: bool = True,
    inputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
    input_generator: torch.Generator | None = None,
) -> list[dict]:
    """Trains ``rbm`` on ``data`` (a ``[n, n_visible]`` tensor, a ``Dataset`` or a ``DataLoader``)
    with :func:`cd_step` in the common loop, :func:`dgm_fast.train.fit`.

    ``method``: ``"cd"``, ``"pcd"``, ``"fpcd"``, ``"pt"`` or a method object (``CD``, ``PCD``,
    ``FPCD``, ``PT``), with ``k`` sweeps per update and ``n_chains`` persistent chains (default:
    the batch size); ``method_options`` go to the method (``fast_lr``, ``fast_decay``, ``betas``).
    ``matmul_dtype=torch.bfloat16`` runs the chains' products in bfloat16 (off by default).
    The default optimizer is ``torch.optim.SGD(lr, momentum)``; weight decay applies to the
    weights only, inside the gradient. ``lr_schedule``: ``"linear"``, ``"cosine"`` or a function
    of the epoch (a ``LambdaLR`` factor); ``momentum_schedule``: a function of the epoch giving
    the momentum (e.g. ``lambda e: 0.5 if e < 5 else 0.9``, Hinton's practical guide).

    With ``checkpoint``, the whole state (model, optimizer, schedule, chains, fast weights, RNG,
    position, history) is written atomically after every epoch (and every ``checkpoint_every``
    updates), and a run started again with the same path resumes where the last checkpoint left
    it and ends exactly where an uninterrupted run would. ``RBM.load(checkpoint)`` reads the model
    alone back.

    ``inputs``: a function applied to each batch of rows before the RBM sees it (a DBN's upward
    pass through the layers below: the RBM's inputs are computed batch by batch, never stored).
    ``input_generator``: the generator ``inputs`` draws from, if it draws (sampled upward
    passes); it is checkpointed with the run, so that a resumed run draws what an uninterrupted
    one would.

    ``native_epochs``: when ``data`` is a tensor and the update is CD-k or PCD-k of a
    Bernoulli RBM with the plain ``torch.optim.SGD`` the fused update recognises (no sparsity
    target or reduced-precision products), each epoch's updates run in one native call
    (``rbm_train_epoch_``), which at small sizes is several times faster than one call per update
    and gives the same bits. False: one call per update.

    Returns the history: one dict per epoch with ``epoch``, ``updates``, ``lr``,
    ``reconstruction_error`` (on up to 1,000 rows of the first batch the run trained on) and
    whatever ``eval_fn(rbm, epoch)`` returns, called after every ``eval_every``-th epoch and the
    last one. ``progress_keys``: the history keys the progress bar shows (default: all).
    """
    if isinstance(data, torch.Tensor) and data.dim() != 2:
        raise ValueError(f"fit_rbm: data must be [n_samples, n_visible], got {list(data.shape)}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"fit_rbm: generator must be a torch.Generator or None, got {type(generator).__name__}")
    if eval_fn is not None:
        _check_eval_fn(eval_fn)
    if generator is None:  # drawn from torch's default generator, so torch.manual_seed governs it
        seed = int(torch.randint(2**62, (1,)).item())
        generator = torch.Generator(device=rbm.weight.device).manual_seed(seed)
    if generator.device != rbm.weight.device:
        raise ValueError(f"fit_rbm: the generator is on {generator.device} but the model on {rbm.weight.device}")
    # DataLoader shuffles with a CPU generator; seed it from ours.
    shuffle_seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device).item())
    shuffle_gen = torch.Generator().manual_seed(shuffle_seed)
    # In a process group: each rank's own stream, a function of rank 0's seed and the rank.
    generator = distributed.rank_generator(generator, rbm.weight.device)
    method = make_method(method, k, n_chains, **(method_options or {}))
    if matmul_dtype is not None:
        method.matmul_dtype = matmul_dtype
    optimizer = optimizer or torch.optim.SGD(rbm.parameters(), lr=lr, momentum=momentum)
    sparsity = Sparsity(sparsity_target, sparsity_cost) if sparsity_target is not None else None
    device, dtype = rbm.weight.device, rbm.weight.dtype
    eval_rows = _FirstRows()

    def step(batch) -> None:
        v = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device=device, dtype=dtype)
        if inputs is not None:
            v = inputs(v)
        cd_step(rbm, v, optimizer, method, weight_decay=weight_decay, sparsity=sparsity, generator=generator)
        eval_rows.keep(v)

    def run_batches(rows: torch.Tensor, batch: int) -> None:
        """The updates of many minibatches in one native call; cd_step per batch where the
        fused epoch does not apply (another optimizer, a hook added meanwhile)."""
        rows = rows.to(device=device, dtype=dtype)
        if inputs is not None:  # batch by batch, as step would: the same products, the same bits
            rows = torch.cat([inputs(rows[start:start + batch]) for start in range(0, rows.shape[0], batch)])
        eval_rows.keep(rows[:batch])
        fused = _fusable_sgd(optimizer, rbm)
        if fused is None:
            for start in range(0, rows.shape[0], batch):
                cd_step(rbm, rows[start:start + batch], optimizer, method, weight_decay=weight_decay,
                        sparsity=sparsity, generator=generator)
            return
        rbm._check_visible(rows, "v_data")  # the message the per-update path gives
        lr_now, momentum_now, buffers = fused
        if isinstance(method, PCD):
            method._init_chains(rbm, rows[:batch], generator)  # as the first statistics call does
        ops.rbm.rbm_train_epoch_(
            rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach(), *buffers,
            method.chains if isinstance(method, PCD) else None, rows, batch, k=method.k, lr=lr_now,
            momentum=momentum_now, weight_decay=weight_decay, generator=generator,
        )
        optimizer._opt_called = True  # what an LR scheduler checks, as in cd_step

    # The native epoch runs CD-k and PCD-k exactly; FPCD, PT, sparsity, bfloat16 products and
    # other units keep the per-update path.
    epoch_op = (native_epochs and type(method) in (CD, PCD) and sparsity is None and method.matmul_dtype is None
                and rbm.visible == "bernoulli" and rbm.hidden == "bernoulli")

    if eval_every < 1:
        raise ValueError(f"fit_rbm: eval_every must be >= 1, got {eval_every}")

    def evaluate(epoch: int) -> dict:
        record = {}
        if eval_rows.rows is not None:
            from ...evaluate.reconstruction import reconstruction_error

            record["reconstruction_error"] = float(reconstruction_error(rbm, eval_rows.rows))
        if eval_fn is not None and (epoch % eval_every == 0 or epoch == epochs):
            results = eval_fn(rbm, epoch)
            if not isinstance(results, dict):
                raise TypeError(f"fit_rbm: eval_fn must return a dict of metric names to values, got "
                                f"{type(results).__name__} {results!r}")
            record.update(results)
        return record

    state = {"method": method, "eval_rows": eval_rows, **({"sparsity": sparsity} if sparsity is not None else {})}
    return fit(step, data, run_batches=run_batches if epoch_op else None, model=rbm, optimizer=optimizer,
               epochs=epochs, batch_size=batch_size,
               lr_schedule=lr_schedule, momentum_schedule=momentum_schedule, state=state,
               generators={"generator": generator, **({"inputs": input_generator} if input_generator else {})},
               shuffle_generator=shuffle_gen, eval_fn=evaluate, checkpoint=checkpoint,
               checkpoint_every=checkpoint_every, resume=resume, extra=rbm.checkpoint_header(),
               progress=progress, progress_keys=progress_keys)
