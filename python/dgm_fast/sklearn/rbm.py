"""A scikit-learn ``BernoulliRBM`` whose sampling and statistics run on dgm_fast's native ops.

:class:`BernoulliRBM` is a drop-in replacement for :class:`sklearn.neural_network.BernoulliRBM`
(scikit-learn 1.9): the same constructor, methods, fitted attributes, tags and algorithm
(persistent CD-1, i.e. stochastic maximum likelihood, on scikit-learn's mini-batches, with its
initialisation and learning-rate convention). Inputs and outputs are numpy arrays, as in
scikit-learn; in between, the work is done on torch tensors that alias the fitted arrays, by
:class:`dgm_fast.RBM`, the fused sampler :func:`dgm_fast.ops.bernoulli_logits`, the stacked
CD-gradient op :func:`dgm_fast.ops.rbm.rbm_cd_gradient` and, in ``fit``, the native epoch
:func:`dgm_fast.ops.rbm.rbm_train_epoch_` (a whole epoch of mini-batches in one call).

Randomness comes from Philox streams seeded from ``random_state``, so an int ``random_state``
makes every method reproducible, but the draws are not numpy's: a fit is statistically
equivalent to scikit-learn's, not bit-identical. The initial weights are the exception: they are
drawn from ``random_state`` exactly as scikit-learn draws them.

Deliberate differences from scikit-learn 1.9.1, each a fix rather than a change of model:

* Negative input raises ``ValueError("Negative values in data passed to BernoulliRBM ...")``
  (Bernoulli units are defined on [0, 1]; scikit-learn silently accepts it). The estimator
  therefore carries the ``positive_only`` input tag.
* ``partial_fit`` returns ``self``, as its docstring in scikit-learn promises (scikit-learn's
  returns ``None``).
* ``score_samples`` corrupts, in each row, a feature chosen by a keyed hash of the row's values
  rather than by the next draw of a stream, so that (for an int ``random_state``) a row's score
  does not depend on which other rows are scored with it or in what order. scikit-learn's scores
  do, which is why its own estimator is exempted from two of its estimator checks; this one
  passes them. The proxy itself, ``n_features * log sigmoid(F(v~) - F(v))`` with one corrupted
  bit, is unchanged and, over the key, each row's corrupted feature is uniform, as before.
* ``gibbs`` validates its input (shape, finiteness, sign) like ``transform`` does.
"""

from __future__ import annotations

import contextlib
import time
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state, gen_even_slices
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data
from threadpoolctl import threadpool_limits

from .. import ops
from ..models.rbm import RBM

__all__ = ["BernoulliRBM"]

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

# splitmix64's finaliser constants (Steele, Lea & Flood, 2014).
_MIX_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_MIX_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _as_tensor(X, dtype) -> torch.Tensor:
    """``X`` (dense or scipy sparse) as a C-contiguous tensor of numpy ``dtype``.

    Shares memory with ``X`` whenever numpy can hand it over unchanged, so that in-place updates
    of the tensor are updates of the array. Read-only arrays are copied: torch tensors are always
    writable and ``torch.from_numpy`` warns about read-only memory.
    """
    if sp.issparse(X):
        # The native ops are dense; an RBM's data is dense in the hidden layer anyway.
        X = X.toarray()
    array = np.ascontiguousarray(X, dtype=dtype)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


# Products of at most this many multiply-adds run on one thread (tens of microseconds of work on
# one core). Measured on 2 cores (bench/RESULTS.md): scikit-learn's example at batch_size=100
# (100 x 64 x 100 = 640k) fits in 78 ms on two threads against 94 ms on one; at batch_size=10 a
# second thread gains nothing.
_SERIAL_WORK = 2**19


def _threads_for(n_rows: int, n_features: int, n_components: int):
    """A context that runs torch's CPU kernels on one OpenMP thread when the products of
    ``n_rows`` samples are small.

    Mini-batch PCD is a long serial sequence of small products (10 x 64 x 256 with the
    defaults). Splitting one of those over threads saves microseconds at best, and each OpenMP
    barrier costs a scheduler time slice whenever the cores are shared (joblib workers, other
    processes): we measured a 10 x 64 x 256 float64 product go from 7 us on one thread to 12 ms
    on two on a busy 2-core machine. threadpoolctl is how scikit-learn itself limits threads.
    """
    if n_rows * n_features * n_components <= _SERIAL_WORK:
        return threadpool_limits(limits=1, user_api="openmp")
    return contextlib.nullcontext()


def _torch_generator(rng: np.random.RandomState) -> torch.Generator:
    """A Philox generator seeded with one draw of ``rng``, so that the numpy ``random_state``
    scikit-learn users pass governs the native samplers."""
    seed = int(rng.randint(0, np.iinfo(np.int64).max, dtype=np.int64))
    return torch.Generator().manual_seed(seed)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array (wrapping arithmetic): a bijection that
    spreads every input bit over every output bit."""
    z ^= z >> _MIX_SHIFTS[0]
    z *= _MIX_MULTIPLIERS[0]
    z ^= z >> _MIX_SHIFTS[1]
    z *= _MIX_MULTIPLIERS[1]
    z ^= z >> _MIX_SHIFTS[2]
    return z


def _corrupted_features(v: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """The feature to flip in each row of ``v`` for the pseudo-likelihood proxy.

    Row ``i`` gets ``hash_key(v[i]) mod n_features``, with a key of ``n_features + 1`` words
    drawn from ``rng``: each element's float64 bits are xor-ed with its column's word and mixed,
    the row sums them (modulo 2^64, so the order of summation does not matter) and the sum is
    mixed with the last word. Over the key, the index of every row is (up to the hash's quality)
    uniform and those of distinct rows independent, as with scikit-learn's ``rng.randint``; for
    a fixed key, it depends on the row alone, which makes ``score_samples`` invariant to subsets
    and orderings. Equal rows share their index within one call, where scikit-learn would draw
    one for each: the mean score is as unbiased, slightly noisier on data with many duplicates.
    """
    n_features = v.shape[1]
    key = rng.randint(0, np.iinfo(np.uint64).max, size=n_features + 1, dtype=np.uint64)
    # float64 bits, so that equal values hash alike whatever the input dtype; adding 0.0 turns
    # -0.0 into 0.0 for the same reason.
    bits = (np.asarray(v, dtype=np.float64) + 0.0).view(np.uint64)
    row_hash = _mix64(bits ^ key[:n_features]).sum(axis=1, dtype=np.uint64)
    row_hash = _mix64(row_hash ^ key[n_features])
    return (row_hash % np.uint64(n_features)).astype(np.intp)


class BernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli Restricted Boltzmann Machine (RBM), trained on dgm_fast's native kernels.

    A drop-in replacement for :class:`sklearn.neural_network.BernoulliRBM`: binary visible and
    hidden units, parameters estimated by Stochastic Maximum Likelihood (persistent contrastive
    divergence with one Gibbs step per update, Tieleman 2008), with scikit-learn's parameters,
    attributes and semantics. Computation runs in float64, or in float32 when ``fit`` is given
    float32 data, on the CPU. See the module docstring for the few deliberate differences.

    Parameters
    ----------
    n_components : int, default=256
        Number of binary hidden units.

    learning_rate : float, default=0.1
        The learning rate for weight updates. Each update adds ``learning_rate / n`` times the
        difference of the positive and negative statistics summed over the mini-batch of ``n``
        samples and over the ``batch_size`` persistent chains, as scikit-learn does.

    batch_size : int, default=10
        Number of examples per minibatch, and number of persistent chains.

    n_iter : int, default=10
        Number of iterations/sweeps over the training dataset to perform during training.

    verbose : int, default=0
        The verbosity level. The default, zero, means silent mode.

    random_state : int, RandomState instance or None, default=None
        Determines the initial weights (drawn exactly as scikit-learn draws them), the seeds of
        the native samplers used by ``fit``, ``partial_fit`` and ``gibbs``, and the corrupted
        features of ``score_samples``. Pass an int for reproducible results across calls.

    Attributes
    ----------
    intercept_hidden_ : ndarray of shape (n_components,)
        Biases of the hidden units.

    intercept_visible_ : ndarray of shape (n_features,)
        Biases of the visible units.

    components_ : ndarray of shape (n_components, n_features)
        Weight matrix (the transpose of :attr:`dgm_fast.RBM.weight`).

    h_samples_ : ndarray of shape (batch_size, n_components)
        The states of the persistent chains' hidden units.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X` has feature names
        that are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from dgm_fast.sklearn import BernoulliRBM
    >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    >>> model = BernoulliRBM(n_components=2)
    >>> model.fit(X)
    BernoulliRBM(n_components=2)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state

    # ---- the torch side ------------------------------------------------------------------

    def _module(self, dtype) -> RBM:
        """An :class:`RBM` whose parameters are the fitted arrays, in numpy ``dtype``.

        In the fitted dtype, the parameters alias ``components_`` (whose transpose, kept in
        Fortran order as scikit-learn keeps it, is the C-ordered ``[n_visible, n_hidden]``
        weight the module expects) and the intercepts; in another, they are copies.
        """
        # RBM.__init__ draws random weights; a 1x1 module makes that free before the fitted
        # parameters replace its own.
        rbm = RBM(1, 1, dtype=_TORCH_DTYPES[np.dtype(dtype)])
        for name, array in (
            ("weight", self.components_.T),
            ("visible_bias", self.intercept_visible_),
            ("hidden_bias", self.intercept_hidden_),
        ):
            setattr(rbm, name, torch.nn.Parameter(_as_tensor(array, dtype), requires_grad=False))
        return rbm

    def _store(self, rbm: RBM, h_samples: torch.Tensor) -> None:
        """Publishes the module's parameters and the chains' hidden states as the fitted
        (numpy) attributes. No copies: ``components_`` is a Fortran-ordered view, as in
        scikit-learn."""
        self.components_ = rbm.weight.detach().numpy().T
        self.intercept_visible_ = rbm.visible_bias.detach().numpy()
        self.intercept_hidden_ = rbm.hidden_bias.detach().numpy()
        self.h_samples_ = h_samples.numpy()

    def _pcd_step(
        self, rbm: RBM, v_pos: torch.Tensor, h_chains: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One stochastic-maximum-likelihood update on the mini-batch ``v_pos``, in place on
        ``rbm``'s parameters; returns the chains' new hidden states.

        scikit-learn's ``_fit``: the positive phase is ``E[h | v_pos]``; the negative phase
        advances the persistent chains one half-step from their hidden states ``h_chains`` to
        ``v_neg ~ p(v | h_chains)`` and takes ``E[h | v_neg]``; the parameters move by
        ``learning_rate / n_pos`` times (summed positive - summed negative statistics); and the
        chains' hidden states become a draw from ``p(h | v_neg)`` under the old parameters.
        """
        with torch.no_grad():
            h_pos = rbm.hidden_probs(v_pos)
            v_neg = rbm.sample_visible(h_chains, generator=generator)
            # One fused pass gives both E[h | v_neg] (the statistic) and the chains' next states.
            h_next, h_neg = ops.bernoulli_logits(
                rbm.hidden_preactivation(v_neg), generator=generator, return_probs=True
            )
            n_pos, n_neg = v_pos.shape[0], v_neg.shape[0]
            # The op divides each phase by its own size; scikit-learn divides both sums by
            # n_pos. They differ when the last mini-batch is short, or when partial_fit is given
            # other than batch_size rows. Scaling h_neg by n_neg / n_pos makes the op's weight
            # and hidden-bias terms n_pos-normalised; the visible-bias term, which does not
            # involve h_neg, is rescaled after.
            scale = n_neg / n_pos
            grad_weight, grad_visible, grad_hidden = ops.rbm.rbm_cd_gradient(
                v_pos, h_pos, v_neg, h_neg if scale == 1 else h_neg * scale, rbm.weight
            )
            if scale != 1:
                grad_visible += (scale - 1) * v_neg.mean(0)
            # The op returns the gradient of the negative log-likelihood: descend it.
            lr = float(self.learning_rate)
            rbm.weight.sub_(grad_weight, alpha=lr)
            rbm.visible_bias.sub_(grad_visible, alpha=lr)
            rbm.hidden_bias.sub_(grad_hidden, alpha=lr)
        return h_next

    def _compute_dtype(self, X):
        """numpy's promotion of the input's and the model's dtypes, which scikit-learn's numpy
        products would compute in (float64 for integer input)."""
        return np.result_type(X.dtype, self.components_.dtype, np.float32)

    def _check_non_negative(self, X, method: str) -> None:
        check_non_negative(X, f"{type(self).__name__}.{method} (input X)")

    # ---- scikit-learn API ------------------------------------------------------------------

    def transform(self, X):
        """Compute the hidden layer activation probabilities, P(h=1|v=X).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to be transformed.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            Latent representations of the data.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse="csr", reset=False, dtype=(np.float64, np.float32)
        )
        self._check_non_negative(X, "transform")
        dtype = self._compute_dtype(X)
        with torch.no_grad(), _threads_for(*X.shape, self.n_components):
            return self._module(dtype).hidden_probs(_as_tensor(X, dtype)).numpy()

    def gibbs(self, v):
        """Perform one Gibbs sampling step.

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer to start from.

        Returns
        -------
        v_new : ndarray of bool, shape (n_samples, n_features)
            Values of the visible layer after one Gibbs step.
        """
        check_is_fitted(self)
        v = validate_data(
            self, v, accept_sparse="csr", reset=False, dtype=(np.float64, np.float32)
        )
        self._check_non_negative(v, "gibbs")
        if not hasattr(self, "random_state_"):
            self.random_state_ = check_random_state(self.random_state)
        dtype = self._compute_dtype(v)
        generator = _torch_generator(self.random_state_)
        with _threads_for(*v.shape, self.n_components):
            # h ~ p(h | v), then v' ~ p(v | h): one native sweep.
            v_new = self._module(dtype).gibbs(_as_tensor(v, dtype), 1, generator=generator)
        return v_new.numpy() != 0

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Fit the model to the partial segment of the data X.

        One update on all of ``X`` (however many rows it has), continuing the persistent chains.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : BernoulliRBM
            The fitted model.
        """
        first_pass = not hasattr(self, "components_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=first_pass)
        self._check_non_negative(X, "partial_fit")
        if not hasattr(self, "random_state_"):
            self.random_state_ = check_random_state(self.random_state)
        if not hasattr(self, "components_"):
            self.components_ = np.asarray(
                self.random_state_.normal(0, 0.01, (self.n_components, X.shape[1])), order="F"
            )
            self._n_features_out = self.components_.shape[0]
        if not hasattr(self, "intercept_hidden_"):
            self.intercept_hidden_ = np.zeros(self.n_components)
        if not hasattr(self, "intercept_visible_"):
            self.intercept_visible_ = np.zeros(X.shape[1])
        if not hasattr(self, "h_samples_"):
            self.h_samples_ = np.zeros((self.batch_size, self.n_components))

        # The model keeps its dtype (float32 after a float32 fit), as scikit-learn's in-place
        # updates do.
        dtype = self.components_.dtype
        rbm = self._module(dtype)
        generator = _torch_generator(self.random_state_)
        with _threads_for(max(X.shape[0], self.batch_size), X.shape[1], self.n_components):
            h_chains = self._pcd_step(
                rbm, _as_tensor(X, dtype), _as_tensor(self.h_samples_, dtype), generator
            )
        self._store(rbm, h_chains)
        return self

    def score_samples(self, X):
        """Compute the pseudo-likelihood of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer. Must be all-boolean (not checked).

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            Value of the pseudo-likelihood (proxy for likelihood).

        Notes
        -----
        This method is stochastic, as scikit-learn's: it computes the free energy on X, then on
        a copy of X with one feature per sample flipped (``v_i -> 1 - v_i``), and returns
        ``n_features * log(sigmoid(F(corrupted) - F(X)))``. The flipped feature is a keyed hash
        of the sample (see :func:`_corrupted_features`), the key drawn from ``random_state``,
        so with an int ``random_state`` a sample's score does not depend on the other samples.
        """
        check_is_fitted(self)
        v = validate_data(self, X, accept_sparse="csr", reset=False)
        self._check_non_negative(v, "score_samples")
        rng = check_random_state(self.random_state)
        dtype = self._compute_dtype(v)
        v = _as_tensor(v, dtype)

        rows = torch.arange(v.shape[0])
        cols = torch.from_numpy(_corrupted_features(v.numpy(), rng))
        v_corrupted = v.clone()
        v_corrupted[rows, cols] = 1 - v_corrupted[rows, cols]

        with torch.no_grad(), _threads_for(*v.shape, self.n_components):
            rbm = self._module(dtype)
            fe = rbm.free_energy(v)
            fe_corrupted = rbm.free_energy(v_corrupted)
            # log sigmoid(x) = -softplus(-x), with x = fe_corrupted - fe.
            pseudo_ll = -v.shape[1] * torch.nn.functional.softplus(fe - fe_corrupted)
        return pseudo_ll.numpy()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to the data X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : BernoulliRBM
            The fitted model.
        """
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32))
        self._check_non_negative(X, "fit")
        n_samples = X.shape[0]
        rng = check_random_state(self.random_state)

        # scikit-learn's initialisation, draw for draw.
        self.components_ = np.asarray(
            rng.normal(0, 0.01, (self.n_components, X.shape[1])), order="F", dtype=X.dtype
        )
        self._n_features_out = self.components_.shape[0]
        self.intercept_hidden_ = np.zeros(self.n_components, dtype=X.dtype)
        self.intercept_visible_ = np.zeros(X.shape[1], dtype=X.dtype)
        self.h_samples_ = np.zeros((self.batch_size, self.n_components), dtype=X.dtype)

        generator = _torch_generator(rng)
        rbm = self._module(X.dtype)
        data = _as_tensor(X, X.dtype)
        h_chains = _as_tensor(self.h_samples_, X.dtype)

        # scikit-learn's batching: ceil(n / batch_size) slices of batch_size rows, the last
        # one cut short.
        n_batches = int(np.ceil(float(n_samples) / self.batch_size))
        batch_slices = list(
            gen_even_slices(n_batches * self.batch_size, n_batches, n_samples=n_samples)
        )
        # The full mini-batches of an epoch run as one native call (rbm_train_epoch_, its chains
        # holding hidden states as scikit-learn's do; plain SGD is momentum 0); a short last
        # batch, whose two phases scikit-learn normalises by its own size, takes _pcd_step.
        n_full = n_samples // self.batch_size
        full, rest = data[: n_full * self.batch_size], batch_slices[n_full:]
        buffers = [torch.zeros_like(p) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
        verbose = self.verbose
        begin = time.time()
        # One thread limit for the whole fit: threadpoolctl's scan of the loaded libraries costs
        # about 1.5 ms each time it is entered.
        with _threads_for(self.batch_size, X.shape[1], self.n_components), torch.no_grad():
            for iteration in range(1, self.n_iter + 1):
                if n_full:
                    ops.rbm.rbm_train_epoch_(
                        rbm.weight, rbm.visible_bias, rbm.hidden_bias, *buffers, h_chains, full,
                        self.batch_size, chains_hold="hidden", lr=float(self.learning_rate), momentum=0.0,
                        generator=generator,
                    )
                for batch_slice in rest:
                    h_chains = self._pcd_step(rbm, data[batch_slice], h_chains, generator)

                if verbose:
                    self._store(rbm, h_chains)
                    end = time.time()
                    print(
                        "[%s] Iteration %d, pseudo-likelihood = %.2f, time = %.2fs"
                        % (type(self).__name__, iteration, self.score_samples(X).mean(), end - begin)
                    )
                    begin = end

        self._store(rbm, h_chains)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # Bernoulli units take values in [0, 1]: negative input is rejected.
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
