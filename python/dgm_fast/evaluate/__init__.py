"""How good a model is, one module per estimator; each reports its uncertainty where it has one.

* :mod:`.exact`: enumeration of every state of one layer, or of every other layer of a DBM
  (exact log Z and log-likelihoods).
* :mod:`.ais`: annealed importance sampling and reverse AIS, which bracket log Z.
* :mod:`.importance`: importance-sampled log p(x) with an inference model (VAEs, IWAEs,
  Helmholtz machines), with standard errors and effective sample sizes.
* :mod:`.modes`: modes captured and the share of good samples, on mixtures with known modes.
* :mod:`.parzen`: Parzen-window (kernel density) log-densities for models that can only be
  sampled (GANs, GMMNs), with the bandwidth chosen on a validation set; a weak measure (see
  there).
* :mod:`.pseudo`: the pseudo-log-likelihood.
* :mod:`.reconstruction`: the reconstruction error.
* :mod:`.variational`: the variational lower bounds on a DBN's and a DBM's log-likelihood.
"""

from .ais import AISResult, ais, default_betas, reverse_ais
from .exact import exact_log_likelihood, exact_log_partition, exact_log_prob, log_likelihood
from .importance import ImportanceEstimate, importance_log_likelihood, importance_log_prob
from .modes import ModeCoverage, mode_coverage
from .parzen import ParzenSelection, parzen_log_likelihood, select_parzen_sigma
from .pseudo import pseudo_log_likelihood
from .reconstruction import reconstruction_error
from .variational import dbm_lower_bound, dbn_lower_bound

__all__ = [
    "AISResult",
    "ImportanceEstimate",
    "ModeCoverage",
    "ParzenSelection",
    "ais",
    "dbm_lower_bound",
    "dbn_lower_bound",
    "default_betas",
    "exact_log_likelihood",
    "exact_log_partition",
    "exact_log_prob",
    "importance_log_likelihood",
    "importance_log_prob",
    "log_likelihood",
    "mode_coverage",
    "parzen_log_likelihood",
    "pseudo_log_likelihood",
    "reconstruction_error",
    "reverse_ais",
    "select_parzen_sigma",
]
