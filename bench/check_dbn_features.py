"""A linear classifier on a DBN's top-layer features against one on the raw pixels: MNIST test
error.

    python bench/check_dbn_features.py [--layers 500,500] [--epochs 5]

The DBN (784-500-500 by default) is pretrained greedily with CD-1 (batches of 100, lr 0.05,
momentum 0.5, weight decay 2e-4) on MNIST's 50,000 training images binarized stochastically
once; `transform` gives the top layer's probabilities. Both classifiers are scikit-learn's
LogisticRegression (lbfgs, C=1, max_iter=200) on the same 50,000 images (raw pixels: the grey
levels in [0, 1]; the DBN's input: the binarized ones), scored on the 10,000 test images.
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.linear_model import LogisticRegression

from dgm_fast import DBN
from dgm_fast._machine import describe
from dgm_fast.data import load_mnist
from dgm_fast.models.dbn import pretrain_dbn


def test_error(train_x, train_y, test_x, test_y) -> tuple[float, float]:
    start = time.perf_counter()
    clf = LogisticRegression(C=1.0, max_iter=200).fit(train_x.numpy(), train_y.numpy())
    return 100 * (1 - clf.score(test_x.numpy(), test_y.numpy())), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", default="500,500")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per layer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    grey, train_y = load_mnist("train")
    test_grey, test_y = load_mnist("test")
    binary = torch.bernoulli(grey, generator=torch.Generator().manual_seed(args.seed))
    test_binary = torch.bernoulli(test_grey, generator=torch.Generator().manual_seed(args.seed + 1))
    sizes = [784, *map(int, args.layers.split(","))]
    dbn = DBN(sizes, generator=torch.Generator().manual_seed(args.seed))
    dbn.rbms[0].init_visible_bias_from_data(binary)
    start = time.perf_counter()
    pretrain_dbn(dbn, binary, epochs=args.epochs, batch_size=100, lr=0.05, momentum=0.5, weight_decay=2e-4,
                 generator=torch.Generator().manual_seed(args.seed + 2), progress=False)
    pretrain_s = time.perf_counter() - start
    print(f"machine: {describe()}; DBN {'-'.join(map(str, sizes))}, CD-1, {args.epochs} epochs per layer: "
          f"pretrained in {pretrain_s:.0f} s\n")
    rows = [("raw pixels (784)", *test_error(grey, train_y, test_grey, test_y)),
            (f"DBN top-layer features ({sizes[-1]})", *test_error(dbn.transform(binary), train_y,
                                                                  dbn.transform(test_binary), test_y))]
    print("| logistic regression on | MNIST test error (%) | fit time (s) |")
    print("|---|---|---|")
    for name, error, seconds in rows:
        print(f"| {name} | {error:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
