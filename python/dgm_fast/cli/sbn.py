"""``dgm-fast train sbn``: a sigmoid belief net, trained with a recognition model (as a Helmholtz
machine: ``dgm-fast train helmholtz``, whose options it takes); writes the SBN alone to sbn.pt and
the pair to helmholtz.pt."""

from __future__ import annotations

from . import helmholtz


def add_parser(train_sub) -> None:
    helmholtz.add_parser(train_sub, name="sbn", model_file="sbn.pt")
