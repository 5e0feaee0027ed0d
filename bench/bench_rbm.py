"""Benchmark of RBM training (one CD-1 update) and sampling (block-Gibbs sweeps) against what a
PyTorch, scikit-learn or learnergy user would run instead.

    python bench/bench_rbm.py                                  # CPU: 100x784x500, 1024x784x4096
    python bench/bench_rbm.py --sizes 4096x4096x4096           # pick sizes (batch x visible x hidden)
    python bench/bench_rbm.py --device cuda                    # GPU: all three sizes, CUDA-graph columns

Everything is float32 on the chosen device (scikit-learn: float64 on the CPU). Times are medians
of torch.utils.benchmark's blocked_autorange, run on torch.get_num_threads() threads (Timer's
own default is a single thread).

CD-1 step (one training update on a batch of binary data: positive phase, one Gibbs sweep,
gradient, SGD with momentum 0.9, lr 0.01, weight decay 1e-4 on the weights):
  dgm_fast          train.cd_step(rbm, v, opt, train.CD(1), weight_decay=1e-4)
  eager             the obvious PyTorch code (eager_cd_step below), then the same torch SGD step
  torch.compile     that eager step (optimizer step included) compiled by inductor (default mode;
                    torch's Optimizer.step breaks the graph on purpose, so it is two graphs)
  sklearn           sklearn.neural_network.BernoulliRBM.partial_fit on the batch: one PCD-1 step
                    (persistent chains, no momentum or weight decay), float64 internally, float32
                    input converted by sklearn inside the timed call; always on the CPU
  learnergy         one batch of learnergy.models.bernoulli.RBM.fit with its own methods
                    (gibbs_sampling, energy, backward, its SGD step), without the per-batch MSE
                    and pseudo-likelihood metrics its fit also computes; its gradient comes from
                    autograd through the free energy (3 chain products + 2 forward and 2 backward
                    products), its SGD applies the weight decay to the biases too
  eager+graph       (CUDA) the eager step captured in a CUDA graph and replayed
  dgm_fast+graph    (CUDA) dgm_fast's step captured in a CUDA graph and replayed
  bare products     just the matrix products a CD-1 step needs: the 3 products of the chain
                    (v W, h W^T, v' W) and the gradient as one product of the stacked phases
                    ([v; v']^T [h; h'], as dgm_fast computes it): 8 B V H flops in all
Gibbs sweep (v -> h -> v on a batch of chains, per sweep: a run of --gibbs-steps sweeps / steps):
  dgm_fast          rbm.gibbs(v, steps=S): the whole chain in one native call
  eager             a Python loop of the obvious two-product sweep
  torch.compile     the eager single sweep compiled, looped from Python
  eager+graph, dgm_fast+graph   (CUDA) the S-sweep chain captured in one CUDA graph
  bare products     the two products of each sweep (addmm), looped the same way

Each implementation is warmed up (compiled, captured) once, then timed in --rounds interleaved
rounds (default 2) and the minimum of the rounds' medians is kept: on a shared machine a round
that another process slowed down is dropped (scikit-learn's 2-thread OpenBLAS is the most
sensitive to that).

Ratios are baseline time / dgm_fast time (above 1x: dgm_fast is faster), except the last column,
dgm_fast / bare products: how close dgm_fast's step gets to the cost of its matrix products.
Before timing, a sanity check prints the norms of one CD-1 gradient from each implementation
(same initial weights, same batch, different random numbers) and the cosine between the weight
gradients, next to the cosine between two independent eager draws (the noise level).
"""

from __future__ import annotations

import argparse
import datetime
import platform

import torch

import dgm_fast
from timing import graphed, time_fn
from dgm_fast.models.rbm import train

# The baselines live with the packaged suite (dgm_fast/bench/bench_rbm.py, run by `dgm-fast bench`);
# this script keeps the Markdown tables and the sanity check until RESULTS.md is generated from
# saved runs.
from dgm_fast.bench.bench_rbm import (  # noqa: E402
    LR, MOMENTUM, WEIGHT_DECAY, bare_cd_inputs, bare_cd_products, bare_gibbs_products, binary_batch,
    eager_cd_grads, eager_sweep, looped, make_eager_step, make_learnergy_step, mixing_rbm,
    new_learnergy, new_models)

ALL_SIZES = [(100, 784, 500), (1024, 784, 4096), (4096, 4096, 4096)]


# ---- the peers ---------------------------------------------------------------------------------


def import_learnergy():
    try:
        from learnergy.models.bernoulli import RBM as LearnergyRBM
    except Exception as exc:  # noqa: BLE001 - reported, column left out
        return None, f"{type(exc).__name__}: {exc}"
    return LearnergyRBM, None


def import_sklearn():
    try:
        from sklearn.neural_network import BernoulliRBM
    except Exception as exc:  # noqa: BLE001
        return None, f"{type(exc).__name__}: {exc}"
    return BernoulliRBM, None


# ---- timing ------------------------------------------------------------------------------------








def fmt_size(size):
    return "x".join(map(str, size))


def ratio(a, b):
    return f"{a / b:.2f}×" if a == a and b == b else "–"  # nan-safe


def us(t):
    return f"{t * 1e6:,.1f}" if t == t else "–"


# ---- sanity check ------------------------------------------------------------------------------


def sanity_check(sizes, device, LearnergyRBM):
    """One CD-1 gradient from each implementation on the same batch and initial weights."""
    print("Sanity check: one CD-1 gradient per implementation (same batch and initial weights, "
          "different random numbers); weight decay included in ∇W.\n")
    print("| size | implementation | ‖∇W‖ | ‖∇b‖ | ‖∇c‖ | cos(∇W, dgm_fast ∇W) | cos(∇W, eager ∇W) |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        batch, nv, nh = size
        v = binary_batch(batch, nv, device, torch.Generator().manual_seed(1))
        grads = {}
        rbm, opt, params, eager_opt = new_models(nv, nh, device)
        model = None if LearnergyRBM is None else new_learnergy(LearnergyRBM, rbm, device)
        w0 = rbm.weight.detach().clone()
        train.cd_step(rbm, v, opt, train.CD(1), weight_decay=WEIGHT_DECAY)
        # cd_step folds the gradient into SGD's momentum buffers (.grad stays unset); after a
        # first step from empty buffers, a buffer holds exactly the gradient.
        grads["dgm_fast"] = [opt.state[p]["momentum_buffer"].clone() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
        make_eager_step(params, eager_opt, WEIGHT_DECAY)(v)
        grads["eager"] = [p.grad.clone() for p in params]
        with torch.no_grad():  # a second, independent eager draw from the same initial weights
            grads["eager (2nd draw)"] = list(eager_cd_grads(v, w0, params[1].new_zeros(nv),
                                                            params[2].new_zeros(nh), WEIGHT_DECAY))
        if model is not None:
            make_learnergy_step(model)(v)  # its SGD adds the decay inside step(), not to .grad
            grads["learnergy"] = [model.W.grad + WEIGHT_DECAY * w0, model.a.grad, model.b.grad]
        for name, (gw, gb, gc) in grads.items():
            cos = [torch.nn.functional.cosine_similarity(gw.double().flatten(), grads[ref][0].double().flatten(), dim=0).item()
                   for ref in ("dgm_fast", "eager")]
            print(f"| {fmt_size(size)} | {name} | {gw.norm():.4f} | {gb.norm():.4f} | {gc.norm():.4f} | "
                  f"{cos[0]:.3f} | {cos[1]:.3f} |", flush=True)
    print()


# ---- the tables --------------------------------------------------------------------------------


def measure(impls, min_run_time, rounds):
    """{name: (fn, args, warm-up calls)} -> {name: seconds}: each is warmed up (and compiled or
    captured), then timed in `rounds` interleaved rounds; the minimum of the rounds' medians is
    kept, which filters out rounds slowed down by other work on the machine."""
    for fn, fn_args, warmup in impls.values():
        for _ in range(warmup):
            fn(*fn_args)
    best = {name: float("inf") for name in impls}
    for _ in range(rounds):
        for name, (fn, fn_args, _) in impls.items():
            best[name] = min(best[name], time_fn(fn, fn_args, min_run_time, warmup=0))
    return best


def print_header(columns, ratios):
    print("| B x V x H | " + " | ".join(f"{c} (µs)" for c in columns) + " | "
          + " | ".join(f"{a} / {b}" for a, b in ratios) + " |")
    print("|" + "---|" * (1 + len(columns) + len(ratios)))


def print_row(size, t, columns, ratios):
    row = [us(t.get(c, float("nan"))) for c in columns]
    row += [ratio(t.get(a, float("nan")), t.get(b, float("nan"))) for a, b in ratios]
    print(f"| {fmt_size(size)} | " + " | ".join(row) + " |", flush=True)


def bench_cd(sizes, device, args, LearnergyRBM, BernoulliRBM):
    cuda = device.type == "cuda"
    columns = ["dgm_fast", "eager", "torch.compile"]
    columns += [c for c, lib in (("sklearn", BernoulliRBM), ("learnergy", LearnergyRBM)) if lib is not None]
    columns += ["eager+graph", "dgm_fast+graph"] if cuda else []
    columns.append("bare products")
    ratios = [(c, "dgm_fast") for c in columns if c not in ("dgm_fast", "eager+graph", "dgm_fast+graph", "bare products")]
    ratios += [("eager+graph", "dgm_fast+graph")] if cuda else []
    ratios.append(("dgm_fast", "bare products"))
    print("### CD-1 step (time per update)\n")
    print_header(columns, ratios)
    for size in sizes:
        batch, nv, nh = size
        v = binary_batch(batch, nv, device, torch.Generator().manual_seed(1))
        impls = {}

        def cd_step(rbm, opt):
            method = train.CD(1)
            return lambda x: train.cd_step(rbm, x, opt, method, weight_decay=WEIGHT_DECAY)

        rbm, opt, params, eager_opt = new_models(nv, nh, device)
        impls["dgm_fast"] = (cd_step(rbm, opt), (v,), 1)
        impls["eager"] = (make_eager_step(params, eager_opt, WEIGHT_DECAY), (v,), 1)
        if not args.no_compile:  # warm-up: compiles, then recompiles once the momentum buffers exist
            _, _, cparams, copt = new_models(nv, nh, device)
            impls["torch.compile"] = (torch.compile(make_eager_step(cparams, copt, WEIGHT_DECAY)), (v,), 3)
        if "sklearn" in columns:
            skl = BernoulliRBM(n_components=nh, learning_rate=LR, batch_size=batch, n_iter=1, random_state=0)
            impls["sklearn"] = (skl.partial_fit, (v.cpu().numpy(),), 1)
        if "learnergy" in columns:
            impls["learnergy"] = (make_learnergy_step(new_learnergy(LearnergyRBM, rbm, device)), (v,), 1)
        if cuda:
            _, _, gparams, gopt = new_models(nv, nh, device)
            impls["eager+graph"] = (graphed(make_eager_step(gparams, gopt, WEIGHT_DECAY), (v,)), (v,), 1)
            grbm, gopt2, _, _ = new_models(nv, nh, device)
            impls["dgm_fast+graph"] = (graphed(cd_step(grbm, gopt2), (v,)), (v,), 1)

        impls["bare products"] = (bare_cd_products, bare_cd_inputs(rbm, v), 1)
        print_row(size, measure(impls, args.min_run_time, args.rounds), columns, ratios)
    print()


def bench_gibbs(sizes, device, args):
    cuda = device.type == "cuda"
    steps = args.gibbs_steps
    columns = ["dgm_fast", "eager"] + ([] if args.no_compile else ["torch.compile"])
    columns += ["eager+graph", "dgm_fast+graph"] if cuda else []
    columns.append("bare products")
    ratios = [(c, "dgm_fast") for c in ("eager", "torch.compile") if c in columns]
    ratios += [("eager+graph", "dgm_fast+graph")] if cuda else []
    ratios.append(("dgm_fast", "bare products"))
    print(f"### Gibbs sweep (time per sweep, from a chain of {steps} sweeps)\n")
    print_header(columns, ratios)
    for size in sizes:
        batch, nv, nh = size
        v = binary_batch(batch, nv, device, torch.Generator().manual_seed(1))
        rbm = mixing_rbm(nv, nh, device)
        W, b, c = (p.detach() for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
        h = torch.bernoulli(torch.full((batch, nh), 0.5, device=device))

        def fused(x):
            return rbm.gibbs(x, steps=steps)

        eager = looped(eager_sweep, steps)
        impls = {"dgm_fast": (fused, (v,), 1), "eager": (eager, (v, W, b, c), 1)}
        if not args.no_compile:
            impls["torch.compile"] = (looped(torch.compile(eager_sweep), steps), (v, W, b, c), 1)
        if cuda:
            impls["eager+graph"] = (graphed(eager, (v, W, b, c)), (v, W, b, c), 1)
            impls["dgm_fast+graph"] = (graphed(fused, (v,)), (v,), 1)
        impls["bare products"] = (bare_gibbs_products(steps), (v, h, W, b, c), 1)
        t = {k: x / steps for k, x in measure(impls, args.min_run_time, args.rounds).items()}
        print_row(size, t, columns, ratios)
    print()


def numpy_blas():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    blas = [f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info() if i["user_api"] == "blas"]
    return f", BLAS: {blas[0]}" if blas else ""


def parse_size(text):
    try:
        batch, nv, nh = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is BATCHxVISIBLExHIDDEN, e.g. 100x784x500, got {text!r}")
    return batch, nv, nh


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=None, metavar="BxVxH",
                        help="default: 100x784x500 1024x784x4096 on the CPU, also 4096x4096x4096 on CUDA")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved timing rounds per case; the minimum of the rounds' medians is kept")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads, and numpy's BLAS pools through threadpoolctl (default: theirs)")
    parser.add_argument("--gibbs-steps", type=int, default=100, help="sweeps per timed Gibbs chain")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    parser.add_argument("--no-learnergy", action="store_true", help="skip learnergy")
    parser.add_argument("--no-check", action="store_true", help="skip the gradient sanity check")
    parser.add_argument("--only", choices=["cd", "gibbs"], default=None, help="run one of the two tables")
    args = parser.parse_args()
    device = torch.device(args.device)
    sizes = args.sizes or (ALL_SIZES if device.type == "cuda" else ALL_SIZES[:2])

    LearnergyRBM, learnergy_error = (None, "skipped (--no-learnergy)") if args.no_learnergy else import_learnergy()
    BernoulliRBM, sklearn_error = (None, "skipped (--no-sklearn)") if args.no_sklearn else import_sklearn()
    if args.threads:  # after the imports, so that numpy's BLAS is loaded and gets limited too
        torch.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)  # called as a function, the limits stay set
        except ImportError:
            pass
    info = dgm_fast.build_info()
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else None
    print(f"date: {datetime.date.today()}  machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads{', ' + gpu if gpu else ''}")
    versions = [f"torch {torch.__version__}",
                f"dgm_fast {info['version']} (cpu_isa={info['cpu_isa']}, cuda kernels={info['cuda']})"]
    if BernoulliRBM is not None:
        import numpy
        import sklearn

        versions.append(f"scikit-learn {sklearn.__version__} (numpy {numpy.__version__}{numpy_blas()})")
    if LearnergyRBM is not None:
        import learnergy

        versions.append(f"learnergy {learnergy.__version__}")
    print(", ".join(versions))
    for name, error in (("scikit-learn", sklearn_error), ("learnergy", learnergy_error)):
        if error:
            print(f"{name}: not benchmarked: {error}")
    print(f"lr={LR}, momentum={MOMENTUM}, weight_decay={WEIGHT_DECAY}, float32 "
          f"(sklearn: float64), min_run_time={args.min_run_time}s, rounds={args.rounds}\n")

    if not args.no_check:
        sanity_check(sizes, device, LearnergyRBM)
    if args.only in (None, "cd"):
        bench_cd(sizes, device, args, LearnergyRBM, BernoulliRBM)
    if args.only in (None, "gibbs"):
        bench_gibbs(sizes, device, args)


if __name__ == "__main__":
    main()
