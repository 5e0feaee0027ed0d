"""``dgm-fast repro <paper>``: the paper reproductions, one module per paper
(``repro_<paper>.py`` with ``add_parser`` and ``run``). They train for minutes to hours, so
they checkpoint as they go and resume when run again; each writes the Markdown table that
``bench/RESULTS.md`` quotes."""

from __future__ import annotations

from . import (repro_autoregressive_mnist, repro_dbm_mnist, repro_dbn_mnist, repro_iwae_mnist, repro_pm, repro_rbm_mnist,
               repro_sbn_mnist)

_PAPERS = (repro_rbm_mnist, repro_dbn_mnist, repro_dbm_mnist, repro_sbn_mnist, repro_iwae_mnist, repro_pm,
           repro_autoregressive_mnist)


def add_parser(sub) -> None:
    p = sub.add_parser("repro", help="reproduce a paper's results (long runs that resume)",
                       description=__doc__.replace("``", "'"))
    papers = p.add_subparsers(dest="paper", required=True, metavar="PAPER")
    for paper in _PAPERS:
        paper.add_parser(papers)
