"""scikit-learn's own example, "Restricted Boltzmann Machine features for digit classification",
with scikit-learn's BernoulliRBM and with dgm_fast's drop-in: the time of the RBM's ``fit`` and
the pipeline's test accuracy, over three seeds.

    python bench/check_sklearn_example.py [--seeds 0 1 2] [--batch-size 10]

The example's data and settings: the digits nudged by one pixel in four directions (8,985 x 64,
float32, minmax-scaled), an 80/20 split (random_state=0), BernoulliRBM(n_components=100,
learning_rate=0.06, n_iter=10, batch_size=10) and LogisticRegression(C=6000, max_iter=1000) on
its features. The two estimators' fits alternate, each timed alone (time.perf_counter around
``fit``) on the threads torch and numpy have by default, after a pause (--pause): OpenBLAS's and
OpenMP's worker threads spin for a while after a call, and on two cores they slow whatever runs
next (without the pause, dgm_fast's fit measured 25% slower right after scikit-learn's).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.ndimage import convolve
from sklearn import datasets, linear_model
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import minmax_scale

from dgm_fast._machine import describe
from dgm_fast.sklearn import BernoulliRBM as DgmRBM


def nudged_digits():
    """The example's data: each digit and its four one-pixel shifts."""
    X, y = datasets.load_digits(return_X_y=True)
    X = np.asarray(X, "float32")
    directions = [[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
                  [[0, 0, 0], [0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]]]

    def shift(x, w):
        return convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()

    X = np.concatenate([X] + [np.apply_along_axis(shift, 1, X, w) for w in directions])
    y = np.concatenate([y for _ in range(5)], axis=0)
    return minmax_scale(X, feature_range=(0, 1)), y


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds of sleep before each timed fit (default: %(default)s)")
    args = parser.parse_args()
    X, y = nudged_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    print(f"machine: {describe()}; data {X_train.shape} {X_train.dtype}; batch_size {args.batch_size}\n")
    print("| seed | estimator | fit (s) | updates | µs per update | test accuracy |")
    print("|---|---|---|---|---|---|")
    results = {"scikit-learn": [], "dgm_fast": []}
    updates = 10 * int(np.ceil(X_train.shape[0] / args.batch_size))
    for seed in args.seeds:
        for name, cls in (("scikit-learn", SklearnRBM), ("dgm_fast", DgmRBM)):
            rbm = cls(n_components=100, learning_rate=0.06, n_iter=10, batch_size=args.batch_size, random_state=seed)
            time.sleep(args.pause)  # let the previous fit's BLAS/OpenMP threads stop spinning
            start = time.perf_counter()
            rbm.fit(X_train)
            seconds = time.perf_counter() - start
            logistic = linear_model.LogisticRegression(C=6000, max_iter=1000)
            logistic.fit(rbm.transform(X_train), y_train)
            accuracy = Pipeline([("rbm", rbm), ("logistic", logistic)]).score(X_test, y_test)
            results[name].append((seconds, accuracy))
            print(f"| {seed} | {name} | {seconds:.3f} | {updates} | {1e6 * seconds / updates:.1f} | {accuracy:.4f} |",
                  flush=True)
    (skl_t, skl_a), (dgm_t, dgm_a) = (np.mean(results[n], axis=0) for n in ("scikit-learn", "dgm_fast"))
    print(f"\nmean fit: scikit-learn {skl_t:.3f} s, dgm_fast {dgm_t:.3f} s: dgm_fast {skl_t / dgm_t:.2f}x faster; "
          f"mean accuracy {skl_a:.4f} vs {dgm_a:.4f} (torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
