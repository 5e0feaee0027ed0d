"""Peak memory of RBM pretraining streamed from files of growing size: flat, or not.

    dgm-fast data mnist-large --out big/mnist-1gb.npy --gigabytes 1
    dgm-fast data mnist-large --out big/mnist-8gb.npy --gigabytes 8 --distortion noise
    python bench/check_streaming_memory.py big/mnist-1gb.npy big/mnist-8gb.npy [--epochs 1]

Each file is trained on in a fresh process: a 784-500 RBM, CD-1, batches of 100, SGD with
momentum 0.5, ``fit_rbm`` over ``MemmapDataset(file, scale=1/255, flatten=True)`` (grey levels as
the visible probabilities' targets: what is read is what counts here), shuffled every epoch. The
process reports its peak resident set (``ru_maxrss``), and at the end its resident anonymous and
file-backed memory (``/proc/self/status``), the wall time and the rows per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def child(path: str, epochs: int) -> None:
    import torch

    from dgm_fast.data import MemmapDataset
    from dgm_fast.models.rbm import RBM, fit_rbm

    data = MemmapDataset(path, scale=1 / 255, flatten=True)
    rbm = RBM(784, 500, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    fit_rbm(rbm, data, epochs=epochs, batch_size=100, lr=0.01, momentum=0.5, progress=False,
            generator=torch.Generator().manual_seed(1))
    seconds = time.perf_counter() - start
    status = {line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
              if line.startswith(("RssAnon", "RssFile", "VmHWM"))}
    print(json.dumps({"rows": len(data), "file_gb": Path(path).stat().st_size / 1e9, "seconds": seconds,
                      "rows_per_second": epochs * len(data) / seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_anon_mb": status["RssAnon"] / 1024, "rss_file_mb": status["RssFile"] / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.files[0], args.epochs)
        return
    from dgm_fast._machine import describe

    print(f"{describe()}; {time.strftime('%Y-%m-%d')}; `python bench/check_streaming_memory.py "
          f"{' '.join(args.files)} --epochs {args.epochs}`\n")
    print("| file | rows | epochs | time (s) | rows / s | peak RSS (MB) | RSS anonymous / file-backed at the end (MB) |")
    print("|---|---|---|---|---|---|---|")
    for path in args.files:
        proc = subprocess.run([sys.executable, __file__, path, "--epochs", str(args.epochs), "--child"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {Path(path).name} ({r['file_gb']:.2f} GB) | {r['rows']:,} | {args.epochs} | {r['seconds']:.0f} | "
              f"{r['rows_per_second']:,.0f} | {r['peak_rss_mb']:.0f} | {r['rss_anon_mb']:.0f} / {r['rss_file_mb']:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
