"""``dgm-fast train rbm``: an RBM on scikit-learn's digits, with checkpoints, samples and curves."""

from __future__ import annotations

import argparse
import json
import sys

import torch

from ._common import add_distributed_options, changed_options, fail, plots_unavailable, processes_phrase


_EXACT_MAX_HIDDEN = 20  # exact log-likelihood by enumerating 2^n_hidden states up to here; AIS above
AIS_RUNS, AIS_BETAS = 100, 5000  # per evaluation: 100 runs through 5,000 evenly spaced temperatures
# options that define a run: resuming with different ones would silently mix two runs
_RUN_OPTIONS = ("hidden", "method", "k", "batch_size", "lr", "lr_decay", "momentum", "weight_decay", "seed",
                "device")
SAMPLE_STEPS = 1000  # Gibbs sweeps from random states per sample


def add_parser(train_sub) -> None:
    p_rbm = train_sub.add_parser(
        "rbm", help="train an RBM on scikit-learn's digits",
        description="Trains a Bernoulli-Bernoulli RBM on scikit-learn's 1797 digits (8x8). The grey levels are "
        "binarized stochastically once, with torch.bernoulli and a generator seeded with --seed. Writes "
        "checkpoint.pt (after every epoch), samples.png, curve.png and history.json into --out; running the "
        "same command again resumes from the checkpoint (a larger --epochs continues training). Every "
        "--eval-every epochs the log-likelihood of the training data is measured: exactly, by enumerating the "
        f"hidden states, with --hidden <= {_EXACT_MAX_HIDDEN}; else by AIS and reverse AIS, which bracket it "
        f"({AIS_RUNS} runs, {AIS_BETAS} temperatures). curve.png plots it with the reconstruction error and the "
        "learning rate. dgm_fast.RBM.load(OUT/checkpoint.pt) reads the trained model back. Under torchrun (torchrun "
        "--standalone --nproc-per-node N -m dgm_fast train rbm ...) the N processes train data-parallel: each "
        "takes batches of --batch-size from its share of the data, an update averages their gradients (updates "
        "on N x --batch-size rows, the learning rate unchanged), rank 0 writes the files.",
    )
    p_rbm.add_argument("--hidden", type=int, default=100, help="hidden units (default: %(default)s)")
    p_rbm.add_argument("--method", choices=["cd", "pcd", "fpcd", "pt"], default="cd",
                       help="CD-k, persistent CD, fast-weights PCD or parallel tempering (default: %(default)s)")
    p_rbm.add_argument("--k", type=int, default=10, help="Gibbs sweeps per update (default: %(default)s)")
    p_rbm.add_argument("--epochs", type=int, default=300, help="total epochs, resumed ones included (default: %(default)s)")
    p_rbm.add_argument("--batch-size", type=int, default=20, help="(default: %(default)s)")
    p_rbm.add_argument("--lr", type=float, default=0.02, help="initial learning rate of SGD (default: %(default)s)")
    p_rbm.add_argument("--lr-decay", type=float, default=100.0, metavar="EPOCHS",
                       help="the learning rate after epoch t is lr / (1 + t / EPOCHS), so that the model settles "
                       "instead of jittering; 0 keeps it constant (default: %(default)s)")
    p_rbm.add_argument("--momentum", type=float, default=0.9, help="(default: %(default)s)")
    p_rbm.add_argument("--weight-decay", type=float, default=1e-4, help="L2 penalty on the weights (default: %(default)s)")
    p_rbm.add_argument("--eval-every", type=int, default=30, metavar="EPOCHS",
                       help="measure the log-likelihood after every EPOCHS epochs and the last (default: %(default)s)")
    p_rbm.add_argument("--seed", type=int, default=0, help="seeds the binarization, the initial weights, training and sampling (default: %(default)s)")
    p_rbm.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="(default: %(default)s)")
    p_rbm.add_argument("--out", default="runs/rbm-digits", help="output directory (default: %(default)s)")
    p_rbm.add_argument("--quiet", action="store_true",
                       help="no progress bar or preamble (the files written and final metrics are still printed)")
    p_rbm.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    p_rbm.add_argument("--restart", action="store_true", help="delete the old checkpoint and start over")
    add_distributed_options(p_rbm)
    p_rbm.set_defaults(func=run)


def digits_data(seed: int, device="cpu"):
    """The training data of the command: the digits, binarized with ``torch.bernoulli`` seeded
    with ``seed``."""
    from ..data import load_digits

    images, labels = load_digits()
    return torch.bernoulli(images, generator=torch.Generator().manual_seed(seed)).to(device), labels


def draw_samples(rbm, n: int, seed: int):
    """``n`` samples as the command draws them: chains from random states, ``SAMPLE_STEPS``
    sweeps, shown as the visible probabilities given the last hidden means (grey levels read
    better than binary pixels). ``[n, n_visible]`` in [0, 1]."""
    device = rbm.weight.device
    with torch.no_grad():
        v = rbm.sample(n, steps=SAMPLE_STEPS, generator=torch.Generator(device=device).manual_seed(seed + 1))
        return rbm.visible_probs(rbm.hidden_probs(v))


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from .. import build_info, evaluate
    from .._io import atomic_write
    from ..models.rbm import RBM, fit_rbm
    from ..train import distributed, load_checkpoint

    # Under torchrun every rank runs this; rank 0 alone checks the files, writes and prints.
    writer = distributed.rank() == 0

    def say(*lines: str) -> None:
        if not args.quiet and writer:
            print(*lines, sep="\n", flush=True)

    if args.device == "cuda" and not (torch.cuda.is_available() and build_info()["cuda"]):
        return fail("--device cuda needs a GPU visible to PyTorch and a build of dgm_fast with CUDA kernels")
    if args.epochs < 0 or args.batch_size < 1 or args.k < 1 or args.hidden < 1 or args.lr_decay < 0 or args.eval_every < 1:
        return fail("--epochs and --lr-decay must be >= 0 and --batch-size, --k, --hidden, --eval-every >= 1")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    ckpt, config_path = out / "checkpoint.pt", out / "config.json"
    config = {name: getattr(args, name) for name in _RUN_OPTIONS}
    config["data"] = "sklearn digits, binarized with torch.bernoulli (seed)"

    def prepare() -> tuple[str | None, int]:
        """(what is wrong with the files in --out, or None; the epochs already trained)."""
        if args.restart:
            for path in (ckpt, config_path):
                path.unlink(missing_ok=True)
        if not ckpt.exists():
            with atomic_write(config_path, "w") as f:
                json.dump(config, f, indent=2)
            return None, 0
        try:
            previous = load_checkpoint(ckpt)  # read once: the model and the epoch count
            trained, done = RBM.from_checkpoint(previous, ckpt), previous["epoch"]
            processes = previous.get("world_size", 1)
            del previous
        except (RuntimeError, ValueError, KeyError) as exc:  # truncated, overwritten, not a checkpoint
            return (f"could not read the checkpoint {ckpt} ({exc.__cause__ or exc}); it is corrupt or not a "
                    "checkpoint of this command. Run again with --restart to delete it and start over."), 0
        if trained.n_hidden != args.hidden:  # also caught below, unless config.json is gone
            return (f"{ckpt} holds an RBM with {trained.n_hidden} hidden units, not --hidden {args.hidden}. "
                    "Pass --restart to start over, or another --out."), 0
        if processes != distributed.world_size():  # each rank's chains and random stream are in it
            return (f"{ckpt} was written by {processes} process(es), this run has {distributed.world_size()}: resume "
                    f"it with as many ({'torchrun --nproc-per-node ' + str(processes) if processes > 1 else 'no torchrun'}), "
                    "--restart to start over, or another --out."), 0
        changed = changed_options(config_path, config, _RUN_OPTIONS)
        if changed:
            return (f"{ckpt} was trained with {changed[0]}, not {changed[1]}. Pass the same options to resume "
                    "it, --restart to start over, or another --out."), 0
        if done >= args.epochs:
            say(f"{ckpt} already holds {done} epochs (asked for {args.epochs}); nothing to train, "
                "writing the outputs. Pass a larger --epochs to continue.")
        else:
            say(f"resuming {ckpt} after epoch {done} of {args.epochs}")
        return None, done

    problem, done = distributed.broadcast_object(prepare() if writer else None)
    if problem:
        return fail(problem)

    data, _ = digits_data(args.seed, args.device)
    init_gen = torch.Generator().manual_seed(args.seed)  # the initial weights are drawn on the CPU
    rbm = RBM(data.shape[1], args.hidden, generator=init_gen).to(args.device)
    rbm.init_visible_bias_from_data(data)
    exact = args.hidden <= _EXACT_MAX_HIDDEN

    def eval_fn(model, epoch: int) -> dict:
        if exact:
            return {"exact_log_likelihood": float(evaluate.exact_log_likelihood(model, data))}
        # A generator per epoch: the estimates do not depend on where a run was resumed.
        gen = torch.Generator(device=args.device).manual_seed(args.seed * 1_000_003 + epoch)
        betas = torch.linspace(0, 1, AIS_BETAS, dtype=torch.float64)
        forward = evaluate.ais(model, AIS_RUNS, betas, data=data, generator=gen)
        backward = evaluate.reverse_ais(model, AIS_RUNS, betas, data=data, generator=gen)
        ll = lambda log_z: float(evaluate.log_likelihood(model, data, log_z))  # noqa: E731
        # a larger log Z means a smaller likelihood: the +-3 sigma band of log Z, upside down
        return {"ais_log_likelihood": ll(forward.log_z), "ais_log_likelihood_low": ll(forward.log_z_upper),
                "ais_log_likelihood_high": ll(forward.log_z_lower), "ais_ess": forward.ess,
                "reverse_ais_log_likelihood": ll(backward.log_z)}

    tau = args.lr_decay
    say(f"training an RBM ({data.shape[1]} Bernoulli visible, {args.hidden} Bernoulli hidden) with "
        f"{args.method.upper()}-{args.k} on {data.shape[0]} digits binarized with seed {args.seed}, "
        f"{args.epochs} epochs of batches of {args.batch_size} on {args.device}"
        + processes_phrase(args.batch_size)
        + f"; {'exact' if exact else 'AIS'} log-likelihood every {args.eval_every} epochs")
    start = time.perf_counter()
    try:
        history = fit_rbm(
            rbm, data, method=args.method, k=args.k, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
            lr_schedule=(lambda epoch: 1.0 / (1.0 + epoch / tau)) if tau > 0 else None,
            generator=torch.Generator(device=args.device).manual_seed(args.seed),
            checkpoint=ckpt, resume=True, progress=not args.quiet and writer, eval_fn=eval_fn, eval_every=args.eval_every,
            progress_keys=("lr", "reconstruction_error", "exact_log_likelihood", "ais_log_likelihood"),
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted; {ckpt} holds the last completed epoch: run the same command to resume",
              file=sys.stderr)
        return 130
    seconds = time.perf_counter() - start
    if not writer:
        return 0

    samples_png, curve_png, history_json = out / "samples.png", out / "curve.png", out / "history.json"
    with atomic_write(history_json, "w") as f:
        json.dump({"options": config, "history": history}, f, indent=2)
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        samples = draw_samples(rbm, 100, args.seed)
        save_image_grid(samples_png, samples.cpu().reshape(-1, 8, 8), nrow=10,
                        title=f"RBM 64-{args.hidden}: 100 samples, {SAMPLE_STEPS} Gibbs sweeps from noise")
        if history:
            save_curves(curve_png, history, [
                {"ylabel": "train log-likelihood\n(nats per image)",
                 "series": {"exact": "exact_log_likelihood", "AIS": "ais_log_likelihood",
                            "reverse AIS": "reverse_ais_log_likelihood"},
                 "bands": {"AIS \u00b13\u03c3": ("ais_log_likelihood_low", "ais_log_likelihood_high")}},
                {"ylabel": "reconstruction error\n(mean squared, per pixel)", "series": {"recon": "reconstruction_error"}},
                {"ylabel": "learning rate", "series": {"lr": "lr"}},
            ], title=f"RBM 64-{args.hidden} on digits, {args.method.upper()}-{args.k}")
        else:  # --epochs 0: no curve, and none left over from an earlier run
            curve_png.unlink(missing_ok=True)

    p = data.mean(0).clamp(1e-3, 1 - 1e-3)  # independent pixels, for scale
    baseline = float((data * p.log() + (1 - data) * (-p).log1p()).sum(1).mean())
    if ckpt.exists():
        print(f"wrote {ckpt} (epoch {history[-1]['epoch'] if history else 0}); "
              "dgm_fast.RBM.load(path) reads the model back")
    if not args.no_plots:
        print(f"wrote {samples_png}: 100 samples, visible probabilities after {SAMPLE_STEPS} Gibbs sweeps from random states")
        if history:
            print(f"wrote {curve_png}: {'exact' if exact else 'AIS and reverse AIS'} log-likelihood, "
                  "reconstruction error and learning rate")
    print(f"wrote {history_json}")
    if history:
        last = history[-1]
        line = f"epoch {last['epoch']}: reconstruction error {last['reconstruction_error']:.4f}"
        measured = [r for r in history if "exact_log_likelihood" in r or "ais_log_likelihood" in r]
        if measured and exact:
            line += (f", exact train log-likelihood {measured[-1]['exact_log_likelihood']:.3f} nats per image "
                     f"(independent pixels: {baseline:.3f})")
        elif measured:
            m = measured[-1]
            line += (f", train log-likelihood {m['ais_log_likelihood']:.3f} (AIS) / "
                     f"{m['reverse_ais_log_likelihood']:.3f} (reverse AIS) nats per image "
                     f"(independent pixels: {baseline:.3f})")
        trained_now = len(history) - done
        if trained_now > 0:
            line += f"; {trained_now} epochs in {seconds:.1f} s this run"
        print(line)
    return 0
