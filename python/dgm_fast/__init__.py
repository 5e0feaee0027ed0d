"""dgm_fast: native (C++/CUDA) training and sampling for deep generative models on PyTorch."""

from __future__ import annotations

from . import _extension  # loads the kernels; must come before the op wrappers
from . import losses_elbo, losses_gan, losses_mmd, ops, reference
from ._build import build_info

__version__: str = _extension.BUILD_INFO["version"]

__all__ = ["build_info", "losses_elbo", "losses_gan", "losses_mmd", "ops", "reference", "__version__"]
