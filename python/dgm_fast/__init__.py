"""dgm_fast: native (C++/CUDA) training and sampling for deep generative models on PyTorch.

Models are at the top level (:class:`RBM`, :class:`DBN`, :class:`DBM`, :class:`SBN`,
:class:`HelmholtzMachine`, :class:`VAE`, :class:`GAN`, :class:`GMMN`, :class:`NADE`, :class:`MADE`); the
subpackages hold the rest:

* :mod:`dgm_fast.ops`: the fused native ops, one module per family; :mod:`dgm_fast.reference`:
  their plain-PyTorch definitions;
* :mod:`dgm_fast.losses`: the fused losses (ELBO/IWAE, GAN, MMD);
* :mod:`dgm_fast.models`: one package per model, with its training algorithms;
* :mod:`dgm_fast.train`, :mod:`dgm_fast.evaluate`, :mod:`dgm_fast.data`, :mod:`dgm_fast.viz`,
  :mod:`dgm_fast.sklearn`.
"""

from __future__ import annotations

import importlib

from . import _extension  # loads the kernels; must come before the op wrappers
from . import losses, models, ops
from ._build import build_info
from .models import DBM, DBN, GAN, GMMN, MADE, NADE, RBM, SBN, VAE, HelmholtzMachine

__version__: str = _extension.BUILD_INFO["version"]

# Imported on first use: they pull in numpy-heavy or optional dependencies (scikit-learn,
# matplotlib) that `import dgm_fast` should not pay for.
_LAZY_SUBMODULES = ("data", "evaluate", "reference", "sklearn", "train", "viz")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dgm_fast' has no attribute {name!r}")


__all__ = ["DBM", "DBN", "GAN", "GMMN", "HelmholtzMachine", "MADE", "NADE", "RBM", "SBN", "VAE", "build_info", "losses", "models", "ops", "__version__", *_LAZY_SUBMODULES]
