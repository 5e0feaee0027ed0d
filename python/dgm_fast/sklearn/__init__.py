"""scikit-learn estimators on dgm_fast's kernels: :class:`BernoulliRBM`, a drop-in replacement for
:class:`sklearn.neural_network.BernoulliRBM` (module :mod:`.rbm`)."""

from .rbm import BernoulliRBM

__all__ = ["BernoulliRBM"]
