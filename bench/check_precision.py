"""What reduced-precision products (``matmul_dtype=torch.bfloat16``) do to the CD-1 gradient.
(Their speed: the suite's ``dgm_fast bf16`` cases, ``dgm-fast bench --only rbm -- -k cd_step``.)

    python bench/check_precision.py

Gradient: an RBM (64 visible, 256 hidden) is trained for 5 epochs on binarized digits in
float32; then, for 200 batches of 100 rows, the CD-1 gradient is computed three times: float32
with seed s, bfloat16 products (chain and gradient) with the same seed s (the same random words), and float32 with
another seed (the Monte Carlo noise floor). Reported: the mean cosine of each against the
float32 gradient, the relative difference of the gradients averaged over all batches (the bias
that would accumulate over training), and how many hidden samples flip.
"""

from __future__ import annotations

import datetime
import platform

import torch

from dgm_fast.models.rbm import train
from dgm_fast.data import load_digits
from dgm_fast import RBM


def cd1_gradient(rbm, v, seed, matmul_dtype):
    g = torch.Generator().manual_seed(seed)
    h0, v1, h1 = rbm.chain(v, 1, matmul_dtype=matmul_dtype, generator=g)
    grads = torch.ops.dgm_fast.rbm_cd_gradient(v, h0, v1, h1, rbm.weight.detach(), matmul_dtype=matmul_dtype)
    return torch.cat([t.reshape(-1) for t in grads]), v1


def main():
    print(f"date: {datetime.date.today()}  machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}\n")
    images, _ = load_digits()
    data = torch.bernoulli(images, generator=torch.Generator().manual_seed(0))
    rbm = RBM(64, 256, generator=torch.Generator().manual_seed(0))
    rbm.init_visible_bias_from_data(data)
    train.fit_rbm(rbm, data, epochs=5, batch_size=20, lr=0.05, momentum=0.5,
                  generator=torch.Generator().manual_seed(0), progress=False)

    cos = {"bf16": [], "fp32 other seed": []}
    sums = {"fp32": 0, "bf16": 0, "fp32 other seed": 0}
    flips = []
    for b in range(200):
        v = data[torch.randint(0, data.shape[0], (100,), generator=torch.Generator().manual_seed(b))]
        g32, v32 = cd1_gradient(rbm, v, 10_000 + b, None)
        g16, v16 = cd1_gradient(rbm, v, 10_000 + b, torch.bfloat16)
        g32b, _ = cd1_gradient(rbm, v, 20_000 + b, None)
        cos["bf16"].append(torch.nn.functional.cosine_similarity(g16, g32, 0).item())
        cos["fp32 other seed"].append(torch.nn.functional.cosine_similarity(g32b, g32, 0).item())
        sums["fp32"] = sums["fp32"] + g32
        sums["bf16"] = sums["bf16"] + g16
        sums["fp32 other seed"] = sums["fp32 other seed"] + g32b
        flips.append((v32 != v16).float().mean().item())
    print("| gradient vs float32 (same seed) | mean cosine | relative difference of the 200-batch mean gradient |")
    print("|---|---|---|")
    for name in ("bf16", "fp32 other seed"):
        rel = ((sums[name] - sums["fp32"]).norm() / sums["fp32"].norm()).item()
        label = "bfloat16 products, same seed" if name == "bf16" else "float32, another seed (noise floor)"
        print(f"| {label} | {sum(cos[name]) / len(cos[name]):.4f} | {rel:.4f} |")
    print(f"\nvisible samples after one sweep that differ between bfloat16 and float32 (same words): "
          f"{100 * sum(flips) / len(flips):.3f}%\n")


if __name__ == "__main__":
    main()
