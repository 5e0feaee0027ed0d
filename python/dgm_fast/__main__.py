"""``python -m dgm_fast`` is the ``dgm-fast`` command (``torchrun -m dgm_fast ...`` runs it too)."""

import sys

from .cli import main

sys.exit(main())
