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



def check_torch_version(built_against: str, running: str) -> None:
    """Raises ImportError unless the extension was built against the running torch."""
    if built_against != running:
        raise ImportError(
            f"dgm_fast was built against torch {built_against} but torch {running} is "
            "installed; its kernels would not match torch's ABI. " + _REBUILD
        )


BUILD_INFO: dict = dict(_C.build_info())
check_torch_version(BUILD_INFO["torch_version"], torch.__version__)
