"""One rank of the data-parallel tests, started by torchrun (tests/train/test_distributed.py).

    torchrun --standalone --nproc-per-node=2 distributed_worker.py MODE OUT_DIR

MODE ``checks``: several runs in one launch, each rank writing what it saw to
``OUT_DIR/rank<r>.pt`` for the test process to compare. MODE ``train``: one PCD run on the
digits with a checkpoint every few updates; with ``--crash-after N`` rank 1 of the first attempt
dies after N updates (torchrun's --max-restarts starts both ranks again, and they resume).
"""

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from dgm_fast.data import MemmapDataset, load_digits
from dgm_fast.evaluate import ais, reverse_ais
from dgm_fast.models.rbm import RBM, cd_gradients, fit_rbm
from dgm_fast.train import distributed, fit

BATCH = 10  # per rank


def digits() -> torch.Tensor:
    images, _ = load_digits()
    return (images > 0.5).float()


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_run(out: Path, crash_after: int | None) -> None:
    """PCD-1 on the digits, 3 epochs, a checkpoint every 40 updates; records a digest of the
    parameters after every update."""
    torch.manual_seed(0)
    rbm = RBM(64, 16, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.5)
    digests = []
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    log = out / f"rank{distributed.rank()}-attempt{attempt}.digests"

    def after_step(opt, args, kwargs):
        digests.append(digest(rbm))
        log.write_text("\n".join(digests))  # what this attempt saw, update by update
        if crash_after is not None and attempt == 0 and distributed.rank() == 1 and len(digests) == crash_after:
            os._exit(17)  # killed mid-epoch, without a word to the other rank

    optimizer.register_step_post_hook(after_step)
    history = fit_rbm(rbm, digits(), method="pcd", n_chains=20, epochs=3, batch_size=BATCH, optimizer=optimizer,
                      weight_decay=1e-4, generator=torch.Generator().manual_seed(2), checkpoint=out / "run.pt",
                      checkpoint_every=40, progress=False)
    torch.save({"model": rbm.state_dict(), "history": history}, out / f"final-rank{distributed.rank()}.pt")


def checks(out: Path) -> dict:
    seen = {}
    data = digits()

    # 1. Parameters after every update, the rank's PCD chains and its random stream.
    torch.manual_seed(0)
    rbm = RBM(64, 16, generator=torch.Generator().manual_seed(distributed.rank()))  # differs until broadcast
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.5)
    digests = []
    optimizer.register_step_post_hook(lambda opt, a, k: digests.append(digest(rbm)))
    history = fit_rbm(rbm, data, method="pcd", n_chains=20, epochs=2, batch_size=BATCH, optimizer=optimizer,
                      generator=torch.Generator().manual_seed(3), checkpoint=out / "pcd.pt", progress=False)
    seen["digests"] = digests
    seen["history"] = history

    # 2. One update of two ranks against the single-process update on the union of their batches,
    # the negative samples given: each row travels with its own negative sample.
    g = torch.Generator().manual_seed(4)
    union = data[torch.randperm(data.shape[0], generator=g)[:2 * BATCH]]
    negatives = torch.bernoulli(torch.full_like(union, 0.3), generator=g)
    start = RBM(64, 16, generator=torch.Generator().manual_seed(5))
    seen["start"] = start.state_dict()
    rbm = RBM(64, 16, generator=torch.Generator().manual_seed(5))
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.5)

    def given_negatives(batch):
        v, v_model = batch
        cd_gradients(rbm, v, rbm.hidden_probs(v).detach(), v_model, rbm.hidden_probs(v_model).detach(),
                     weight_decay=1e-3)
        optimizer.step()
        return {"rows": float(v.shape[0])}

    seen["union_history"] = fit(given_negatives, TensorDataset(union, negatives), model=rbm, optimizer=optimizer,
                                epochs=1, batch_size=BATCH, progress=False)
    seen["union"], seen["negatives"], seen["after_one_update"] = union, negatives, rbm.state_dict()

    # 3. A memory-mapped file, sharded: which rows each rank trained on, epoch by epoch.
    if distributed.rank() == 0:
        np.save(out / "rows.npy", np.arange(101, dtype=np.float32)[:, None].repeat(3, 1))
    torch.distributed.barrier()
    seen_rows = []

    def record_rows(batch):
        seen_rows.append(batch[:, 0].long().tolist())

    fit(record_rows, MemmapDataset(out / "rows.npy"), epochs=2, batch_size=7, progress=False,
        shuffle_generator=torch.Generator().manual_seed(9))
    seen["memmap_rows"] = seen_rows

    # 4. AIS with its runs spread over the ranks.
    small = RBM(12, 10, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        small.weight.mul_(8)
    betas = torch.linspace(0, 1, 2001, dtype=torch.float64)
    forward = ais(small, n_runs=101, betas=betas, generator=torch.Generator().manual_seed(7))
    backward = reverse_ais(small, n_runs=101, betas=betas, burn_in=200, generator=torch.Generator().manual_seed(8))
    seen["ais"] = (forward.log_z, forward.log_weights, backward.log_z, backward.log_weights)
    seen["small"] = small.state_dict()

    # 5. Bad input: rows that do not divide among the ranks (a warning); fewer rows than ranks; a
    # DataLoader without a DistributedSampler (errors).
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(lambda b: None, data[:5], epochs=1, batch_size=BATCH, progress=False)
    seen["uneven"] = [str(w.message) for w in caught]
    for name, bad in (("one_row", data[:1]), ("plain_loader", torch.utils.data.DataLoader(TensorDataset(data)))):
        try:
            fit(lambda b: None, bad, epochs=1, batch_size=BATCH, progress=False)
            seen[name] = None
        except ValueError as exc:
            seen[name] = str(exc)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["checks", "train"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--crash-after", type=int)
    args = parser.parse_args()
    torch.set_num_threads(1)  # two ranks on two cores
    distributed.init_from_env("cpu", timeout_s=60)
    if args.mode == "checks":
        torch.save(checks(args.out), args.out / f"rank{distributed.rank()}.pt")
    else:
        train_run(args.out, args.crash_after)
    distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
