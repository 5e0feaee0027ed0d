"""Loads the native extension ``dgm_fast._C`` and checks it matches the running torch."""

from __future__ import annotations

import torch

_REBUILD = (
    "Rebuild dgm_fast against the torch you have: in a checkout of dgm_fast run "
    "`pip install --no-build-isolation --no-deps --force-reinstall .`"
)

try:
    from . import _C
except ImportError as exc:  # most often: built against another torch (undefined symbols)
    raise ImportError(
        f"dgm_fast's native extension could not be loaded with torch {torch.__version__}: {exc}. "
        + _REBUILD
    ) from exc

BUILD_INFO: dict = dict(_C.build_info())

if BUILD_INFO["torch_version"] != torch.__version__:
    raise ImportError(
        f"dgm_fast was built against torch {BUILD_INFO['torch_version']} but torch "
        f"{torch.__version__} is installed; its kernels would not match torch's ABI. " + _REBUILD
    )
