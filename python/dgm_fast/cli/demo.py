"""``dgm-fast demo unified-view``: the unified view of GANs and VAEs (Hu et al. 2017), run and
plotted. A VAE fits by KL(data || model) and covers every mode; a GAN's generator, read as
variational EM with the KL in the other direction, seeks modes. Shown four ways:

1. exact, in 1-D: one Gaussian fitted to a two-mode mixture by KL(p || q) and by KL(q || p);
2. trained, in 2-D: GANs (each generator loss) and a VAE on a ring of 8 Gaussians and a 5 x 5
   grid, with the modes each captures and its share of good samples;
3. Lemma 1, checked numerically on a discrete problem;
4. EM and its stochastic twin, data augmentation (two-block Gibbs), against an exact posterior.

Writes into --out: kl_1d.png, modes.png, em.png, summary.md and summary.json; the 2-D models'
samples as they finish (<data>-<model>.pt: running the command again skips the models done)."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from ._common import fail, plots_unavailable

GAN_KINDS = ("minimax", "non_saturating", "reversed")
TOY_DATA = {"ring": ("ring of 8 Gaussians (std 0.02, radius 2)", 0.02), "grid": ("5 x 5 grid (std 0.05, spacing 2)", 0.05)}
MIXTURE = ([0.3, 0.7], [-2.0, 2.0], [0.5, 0.5])  # the 1-D p: weights, means, standard deviations
SAMPLES = 2500  # drawn from each 2-D model for the counts and the plots


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="runnable demonstrations with plots")
    demos = p.add_subparsers(dest="demo", required=True)
    q = demos.add_parser("unified-view", help="GANs seek modes, VAEs cover them: exact, trained and checked",
                         description=__doc__.split(": ", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--epochs", type=int, default=60, help="epochs of the 2-D models over 20,000 points, batches of "
                   "256 (default: %(default)s)")
    q.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    q.add_argument("--out", default="runs/unified-view", help="output directory (default: %(default)s)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("--no-plots", action="store_true", help="write no PNGs (no matplotlib needed)")
    q.set_defaults(func=run)


def _kl_fits() -> dict:
    from ..unified_view import fit_gaussian_by_kl

    forward = fit_gaussian_by_kl(*MIXTURE, "forward")
    reverse = {f"from {start[0]:+g}": fit_gaussian_by_kl(*MIXTURE, "reverse", init=start)
               for start in ((1.0, 0.8), (-1.0, 0.8))}
    weights, means, stds = MIXTURE
    return {
        "forward": vars(forward),
        "reverse": {k: vars(v) for k, v in reverse.items()},
        "closed_form": {
            "forward": {"mean": sum(w * m for w, m in zip(weights, means)),
                        "std": math.sqrt(sum(w * (s * s + m * m) for w, m, s in zip(weights, means, stds))
                                         - sum(w * m for w, m in zip(weights, means)) ** 2)},
            "reverse (each mode, separated modes)": [{"mean": m, "std": s, "divergence": -math.log(w)}
                                                     for w, m, s in zip(weights, means, stds)],
        },
    }


def _lemma1(seed: int) -> dict:
    from ..unified_view import lemma1_gradients

    g = torch.Generator().manual_seed(seed)
    p_data = torch.softmax(torch.randn(10, generator=g, dtype=torch.float64), 0)
    theta0 = torch.randn(10, generator=g, dtype=torch.float64)
    lhs, rhs = lemma1_gradients(p_data, theta0)
    moved_l, moved_r = lemma1_gradients(p_data, theta0, theta=theta0 + torch.randn(10, generator=g, dtype=torch.float64))
    return {"states": 10, "max_abs_gradient": lhs.abs().max().item(), "max_abs_difference_at_theta0": (lhs - rhs).abs().max().item(),
            "max_abs_difference_elsewhere": (moved_l - moved_r).abs().max().item()}


def _em(seed: int) -> tuple[dict, dict]:
    from ..unified_view import data_augmentation_mixture_weight, em_mixture_weight, mixture_weight_posterior

    g = torch.Generator().manual_seed(seed)
    z = torch.rand(200, generator=g) < 0.3
    x = torch.where(z, torch.randn(200, generator=g, dtype=torch.float64) + 1,
                    torch.randn(200, generator=g, dtype=torch.float64) - 1)
    grid, density = mixture_weight_posterior(x)
    mean = torch.trapezoid(grid * density, grid).item()
    std = torch.trapezoid((grid - mean) ** 2 * density, grid).sqrt().item()
    path = em_mixture_weight(x, init=0.9, steps=60)
    draws = data_augmentation_mixture_weight(x, chains=1000, steps=100, init=0.9, seed=seed)
    summary = {"points": 200, "true_weight": 0.3, "posterior_mode": grid[density.argmax()].item(),
               "posterior_mean": mean, "posterior_std": std, "em_fixed_point": path[-1],
               "data_augmentation_mean": draws[-1].mean().item(), "data_augmentation_std": draws[-1].std().item(),
               "data_augmentation_chains": 1000, "data_augmentation_sweeps": 100}
    return summary, {"grid": grid, "density": density, "path": path, "draws": draws}


def _train_2d(model: str, args, data: torch.Tensor, std: float) -> torch.Tensor:
    """``SAMPLES`` samples of ``model`` (a GAN kind, or "vae") trained on ``data``."""
    from .. import GAN, VAE
    from ..models.gan import fit_gan
    from ..models.vae import fit_vae

    torch.manual_seed(args.seed)
    progress = not args.quiet
    if model == "vae":
        # The VAE's Gaussian likelihood has unit variance: on the data divided by the mixture's
        # std it is the likelihood with the data's own noise level.
        vae = VAE([2, 2], [[128, 128]], likelihood="gaussian", generator=torch.Generator().manual_seed(args.seed + 1))
        fit_vae(vae, data / std, epochs=args.epochs, batch_size=256, lr=1e-3, progress=progress,
                generator=torch.Generator().manual_seed(args.seed + 2))
        return vae.sample(SAMPLES, generator=torch.Generator().manual_seed(args.seed + 3)) * std
    gan = GAN(n_visible=2, n_latent=8, hidden_sizes=[128, 128], output="linear", discriminator_dropout=0.0,
              generator_rng=torch.Generator().manual_seed(args.seed + 1))
    fit_gan(gan, data, kind=model, epochs=args.epochs, batch_size=256, lr=1e-3, progress=progress,
            generator=torch.Generator().manual_seed(args.seed + 2))
    return gan.sample(SAMPLES, generator=torch.Generator().manual_seed(args.seed + 3))


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write
    from ..data import grid_of_gaussians, ring_of_gaussians
    from ..evaluate import mode_coverage

    if args.epochs < 1:
        return fail("--epochs must be >= 1")
    problem = plots_unavailable(args.no_plots)
    if problem:
        return fail(problem)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"kl_1d": _kl_fits(), "lemma1": _lemma1(args.seed)}
    em_summary, em_curves = _em(args.seed)
    summary["em"] = em_summary
    kl = summary["kl_1d"]
    print(f"1-D: KL(p||q) fit N({kl['forward']['mean']:.3f}, {kl['forward']['std']:.3f}^2) (covers both modes); "
          + "; ".join(f"KL(q||p) {k}: N({v['mean']:.3f}, {v['std']:.3f}^2), KL {v['divergence']:.4f}"
                      for k, v in kl["reverse"].items()), flush=True)
    lemma = summary["lemma1"]
    print(f"Lemma 1: gradients up to {lemma['max_abs_gradient']:.3g}, sides differ by "
          f"{lemma['max_abs_difference_at_theta0']:.2g} at theta0 (by {lemma['max_abs_difference_elsewhere']:.2g} "
          "elsewhere)", flush=True)
    print(f"EM: fixed point {em_summary['em_fixed_point']:.5f}, exact posterior mode {em_summary['posterior_mode']:.5f}; "
          f"data augmentation: mean {em_summary['data_augmentation_mean']:.4f} +- "
          f"{em_summary['posterior_std'] / 1000 ** 0.5:.4f}, exact {em_summary['posterior_mean']:.4f}", flush=True)

    makers = {"ring": ring_of_gaussians, "grid": grid_of_gaussians}
    samples: dict[tuple[str, str], torch.Tensor] = {}
    toy = {}
    for name, (label, std) in TOY_DATA.items():
        data, centres = makers[name](20000, generator=torch.Generator().manual_seed(args.seed))
        toy[name] = (data, centres)
        for model in (*GAN_KINDS, "vae"):
            path = out / f"{name}-{model}-e{args.epochs}-s{args.seed}.pt"
            if path.exists():
                samples[name, model] = torch.load(path)
                continue
            start = time.perf_counter()
            samples[name, model] = _train_2d(model, args, data, std)
            with atomic_write(path) as f:
                torch.save(samples[name, model], f)
            cov = mode_coverage(samples[name, model], centres, std)
            print(f"{name}, {model}: {cov.captured} of {cov.modes} modes, {100 * cov.good_share:.1f}% good samples "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    modes = {}
    for (name, model), x in samples.items():
        cov = mode_coverage(x, toy[name][1], TOY_DATA[name][1])
        modes.setdefault(name, {})[model] = {"captured": cov.captured, "modes": cov.modes, "good_share": cov.good_share}
    summary["modes"] = modes
    summary["reversed_equals_non_saturating"] = {
        name: bool(torch.equal(samples[name, "reversed"], samples[name, "non_saturating"])) for name in TOY_DATA}
    with atomic_write(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    text = _markdown(summary, args)
    with atomic_write(out / "summary.md", "w") as f:
        f.write(text)
    print(text)
    if not args.no_plots:
        _plot_kl(out / "kl_1d.png", summary["kl_1d"])
        _plot_modes(out / "modes.png", samples, toy, modes)
        _plot_em(out / "em.png", em_curves, em_summary)
        print(f"wrote {out / 'kl_1d.png'}, {out / 'modes.png'} and {out / 'em.png'}")
    print(f"wrote {out / 'summary.md'} and {out / 'summary.json'}")
    return 0


def _markdown(summary: dict, args) -> str:
    lines = [f"Modes captured (at least 10 of {SAMPLES} samples within 3 std of the centre) and the share of good "
             f"samples (within 3 std of the nearest centre); {args.epochs} epochs over 20,000 points, batches of 256, "
             "Adam lr 1e-3; GAN: MLPs 8-128-128-2 and 2-128-128-1; VAE: 2-d latent, tanh MLPs 128-128, Gaussian "
             "likelihood with the data's noise std.", "",
             "| model | ring: modes | ring: good | grid: modes | grid: good |", "|---|---|---|---|---|"]
    for model in (*GAN_KINDS, "vae"):
        label = "VAE" if model == "vae" else f"GAN, {model}"
        cells = []
        for name in TOY_DATA:
            m = summary["modes"][name][model]
            cells += [f"{m['captured']} / {m['modes']}", f"{100 * m['good_share']:.1f}%"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    same = summary["reversed_equals_non_saturating"]
    lines += ["", "The label-swapped (reversed) generator loss gives the non-saturating loss's gradient (its real "
              f"term is constant for the generator): identical samples on the ring: {same['ring']}, on the grid: "
              f"{same['grid']}.", "", f"Command: `dgm-fast demo unified-view --epochs {args.epochs} --seed {args.seed}`"]
    return "\n".join(lines) + "\n"


def _plot_kl(path: Path, kl: dict) -> None:
    from ..unified_view import mixture_log_density
    from ..viz import figure, save_figure

    x = torch.linspace(-5, 5, 2001, dtype=torch.float64)
    fig = figure(figsize=(7.0, 3.8), dpi=120, layout="constrained")
    ax = fig.subplots()
    ax.fill_between(x, mixture_log_density(x, *MIXTURE).exp(), color="0.8", label="p: 0.3 N(-2, 0.5²) + 0.7 N(2, 0.5²)")

    def normal(m, s):
        return torch.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    f = kl["forward"]
    ax.plot(x, normal(f["mean"], f["std"]), color="tab:blue", linewidth=2,
            label=f"argmin KL(p‖q): N({f['mean']:.2f}, {f['std']:.2f}²), mode covering (VAE, max. likelihood)")
    for (start, r), colour in zip(kl["reverse"].items(), ("tab:red", "tab:orange")):
        ax.plot(x, normal(r["mean"], r["std"]), color=colour, linewidth=2, linestyle="--",
                label=f"argmin KL(q‖p) {start}: N({r['mean']:.2f}, {r['std']:.2f}²), KL {r['divergence']:.3f} "
                f"(−log w of that mode: {-math.log(MIXTURE[0][_nearest_mode(r['mean'])]):.3f})")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=7.5, loc="upper left")
    ax.set_ylim(0, 0.95)
    ax.set_title("One Gaussian fitted to two modes: KL(p‖q) covers, KL(q‖p) seeks (GAN view)", fontsize=10)
    save_figure(fig, path)


def _nearest_mode(mean: float) -> int:
    return min(range(len(MIXTURE[1])), key=lambda k: abs(MIXTURE[1][k] - mean))


def _plot_modes(path: Path, samples: dict, toy: dict, modes: dict) -> None:
    from ..viz import figure, save_figure

    models = (*GAN_KINDS, "vae")
    fig = figure(figsize=(3.0 * len(models), 3.2 * len(TOY_DATA) + 0.5), dpi=110, layout="constrained")
    axes = fig.subplots(len(TOY_DATA), len(models), squeeze=False)
    for row, name in enumerate(TOY_DATA):
        data, centres = toy[name]
        for col, model in enumerate(models):
            ax = axes[row, col]
            ax.scatter(data[:3000, 0], data[:3000, 1], s=14, color="0.75", label="data")
            x = samples[name, model]
            ax.scatter(x[:, 0], x[:, 1], s=2, color="tab:red" if model != "vae" else "tab:blue", alpha=0.4,
                       label="samples")
            ax.scatter(centres[:, 0], centres[:, 1], s=12, marker="x", color="black", linewidths=0.8)
            m = modes[name][model]
            ax.set_title(f"{'VAE' if model == 'vae' else 'GAN ' + model}\n{m['captured']}/{m['modes']} modes, "
                         f"{100 * m['good_share']:.0f}% good", fontsize=9)
            lim = 3.2 if name == "ring" else 5.6
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Samples of GANs (red) and a VAE (blue) over the data (grey); x: the modes' centres", fontsize=11)
    save_figure(fig, path)


def _plot_em(path: Path, curves: dict, summary: dict) -> None:
    from ..viz import figure, save_figure

    fig = figure(figsize=(7.0, 5.6), dpi=120, layout="constrained")
    top, bottom = fig.subplots(2, 1)
    top.hist(curves["draws"][-1].numpy(), bins=40, density=True, color="tab:orange", alpha=0.6,
             label="data augmentation: 1,000 chains after 100 sweeps")
    top.plot(curves["grid"], curves["density"], color="black", linewidth=1.5, label="exact posterior of the weight")
    top.axvline(summary["em_fixed_point"], color="tab:blue", linewidth=2, label="EM's fixed point (= the mode)")
    top.set_xlim(summary["posterior_mean"] - 5 * summary["posterior_std"],
                 summary["posterior_mean"] + 5 * summary["posterior_std"])
    top.set_xlabel("mixture weight π")
    top.legend(frameon=False, fontsize=8)
    steps = range(len(curves["path"]))
    bottom.plot(steps, curves["path"], color="tab:blue", linewidth=2, marker="o", markersize=3,
                label="EM: E-step expectations, M-step mode")
    draws = curves["draws"]
    for chain in range(3):
        bottom.plot(range(1, len(steps)), draws[: len(steps) - 1, chain], color="tab:orange", alpha=0.7, linewidth=1,
                    label="data augmentation: draws of z, then of π" if chain == 0 else None)
    bottom.set_xlabel("iteration")
    bottom.set_ylabel("π")
    bottom.legend(frameon=False, fontsize=8)
    fig.suptitle("EM and its stochastic twin (two-block Gibbs) on a two-component mixture", fontsize=11)
    save_figure(fig, path)
