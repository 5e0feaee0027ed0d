"""Does the README's main job, `dgm-fast train rbm` with its defaults, give varied digits?

Runs the command (or reads a finished run with --out), draws 200 samples exactly as the command
draws them (`dgm_fast.cli.rbm.draw_samples`), and classifies them with a logistic regression
trained on the same binarized digits. A sample counts as a confident digit when the classifier
gives one class probability >= --confidence. The check passes when all 10 classes occur among
the confident samples and no class is more than 25% of them.

    python bench/check_main_job.py                  # trains with the defaults into a temp dir
    python bench/check_main_job.py --out runs/rbm-digits   # checks a run that exists
    python bench/check_main_job.py -- --k 5 --lr 0.1       # other options for the command
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from dgm_fast import RBM
from dgm_fast.cli.rbm import digits_data, draw_samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="a finished run's directory (default: train one now in a temp dir)")
    parser.add_argument("--n", type=int, default=200, help="samples to classify (default: %(default)s)")
    parser.add_argument("--confidence", type=float, default=0.9, help="(default: %(default)s)")
    parser.add_argument("--max-share", type=float, default=0.25, help="(default: %(default)s)")
    parser.add_argument("command_args", nargs="*", help="options passed on to dgm-fast train rbm")
    args = parser.parse_args()

    seconds = None
    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="main-job-"))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dgm_fast", "train", "rbm", "--quiet", "--out", str(out),
                        *args.command_args], check=True)
        seconds = time.perf_counter() - start
    else:
        out = Path(args.out)
    options = json.loads((out / "history.json").read_text())
    seed = options["options"]["seed"]
    history = options["history"]

    data, labels = digits_data(seed)
    classifier = LogisticRegression(max_iter=5000).fit(data.numpy(), labels.numpy())
    rbm = RBM.load(out / "checkpoint.pt")
    samples = draw_samples(rbm, args.n, seed).numpy()
    probs = classifier.predict_proba(samples)
    confident = probs.max(1) >= args.confidence
    classes = probs.argmax(1)[confident]
    counts = np.bincount(classes, minlength=10)
    shares = counts / max(1, confident.sum())
    passed = bool((counts > 0).all() and shares.max() <= args.max_share)

    print(f"run: {out}  options: {json.dumps(options['options'])}")
    if seconds is not None:
        print(f"training and sampling: {seconds:.1f} s on {torch.get_num_threads()} threads")
    last = history[-1]
    key = "exact_log_likelihood" if "exact_log_likelihood" in last else "ais_log_likelihood"
    tail = [(r["epoch"], round(r[key], 3)) for r in history if key in r][-5:]
    print(f"train log-likelihood ({key}), last 5 evaluations (epoch, nats): {tail}")
    print(f"classifier accuracy on the training digits: {classifier.score(data.numpy(), labels.numpy()):.3f}")
    print(f"{confident.sum()} of {args.n} samples classified with confidence >= {args.confidence}")
    print("class:   " + " ".join(f"{c:>5d}" for c in range(10)))
    print("count:   " + " ".join(f"{c:>5d}" for c in counts))
    print("share:   " + " ".join(f"{s:>5.0%}" for s in shares))
    print(f"classes present: {(counts > 0).sum()} of 10; largest share {shares.max():.0%} "
          f"(limit {args.max_share:.0%}): {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
