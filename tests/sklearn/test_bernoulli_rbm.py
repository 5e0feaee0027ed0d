"""dgm_fast.sklearn.BernoulliRBM: scikit-learn's estimator checks, the same update as
scikit-learn's BernoulliRBM where sampling is deterministic, comparable results on digits where it
is not, reproducibility, partial_fit, gibbs and input validation."""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from dgm_fast.sklearn import BernoulliRBM


@parametrize_with_checks([BernoulliRBM(n_iter=2, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    # No expected failures: scikit-learn exempts its own BernoulliRBM from
    # check_methods_subset_invariance and check_methods_sample_order_invariance (its
    # score_samples draws the corrupted feature of row i as the i-th draw of a stream); ours
    # hashes the row instead, so it passes them.
    check(estimator)


# ---- helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _free_energy(model, X):
    """scikit-learn's _free_energy, in numpy, from the fitted attributes."""
    return -X @ model.intercept_visible_ - np.logaddexp(
        0, X @ model.components_.T + model.intercept_hidden_
    ).sum(axis=1)


def _pseudo_likelihoods_of_every_flip(model, X):
    """``S[i, j] = n_features * log sigmoid(F(X_i with feature j flipped) - F(X_i))``: the value
    score_samples returns for row i when it flips feature j."""
    fe = _free_energy(model, X)
    scores = np.empty(X.shape)
    for j in range(X.shape[1]):
        flipped = X.copy()
        flipped[:, j] = 1 - flipped[:, j]
        scores[:, j] = -X.shape[1] * np.logaddexp(0, -(_free_energy(model, flipped) - fe))
    return scores


def _mean_score_samples(model, X, n_keys=8):
    """The mean of score_samples over the rows and over ``n_keys`` random_states (which only
    pick the corrupted features once a model is fitted): one corrupted bit per row makes a
    single call's mean noisy (about +-1 nat on digits), the average over 8 keys much less so."""
    seed = model.random_state
    means = [model.set_params(random_state=k).score_samples(X).mean() for k in range(n_keys)]
    model.set_params(random_state=seed)
    return float(np.mean(means))


def _saturated_model(cls, X, batch_size, seed=0):
    """A fitted ``cls`` whose visible units are saturated (biases +-50, so p(v|h) is 0 or 1 to
    within 2e-22 and sampling them is deterministic in both implementations), with random
    weights, hidden biases and chain states."""
    rng = np.random.RandomState(seed)
    n_components = 16
    model = cls(n_components=n_components, batch_size=batch_size, n_iter=0, random_state=seed)
    model.fit(X)
    model.components_ = np.asfortranarray(rng.normal(0, 0.1, (n_components, X.shape[1])))
    model.intercept_hidden_ = rng.normal(0, 0.5, n_components)
    model.intercept_visible_ = np.where(rng.rand(X.shape[1]) < 0.5, -50.0, 50.0)
    model.h_samples_ = (rng.rand(batch_size, n_components) < 0.5).astype(np.float64)
    return model


# ---- scikit-learn's semantics ---------------------------------------------------------------


def test_initialisation_is_sklearns_draw_for_draw(digits):
    X, _ = digits
    ours = BernoulliRBM(n_components=32, n_iter=0, random_state=3).fit(X)
    theirs = SklearnRBM(n_components=32, n_iter=0, random_state=3).fit(X)
    np.testing.assert_array_equal(ours.components_, theirs.components_)
    assert ours.components_.flags.f_contiguous  # scikit-learn keeps components_ in Fortran order
    np.testing.assert_array_equal(ours.intercept_hidden_, theirs.intercept_hidden_)
    np.testing.assert_array_equal(ours.intercept_visible_, theirs.intercept_visible_)
    np.testing.assert_array_equal(ours.h_samples_, theirs.h_samples_)


@pytest.mark.parametrize("n_rows", [10, 7, 23])
def test_one_update_equals_sklearns(n_rows):
    # With saturated visible units the negative phase is deterministic, so one partial_fit
    # step must move the parameters exactly as scikit-learn's does: learning_rate / n_rows
    # times (summed positive - summed negative statistics), the negative ones summed over the
    # batch_size = 10 persistent chains. 7 and 23 rows check the normalisation when the data
    # batch and the chains differ in size (a short last mini-batch, a large partial_fit).
    rng = np.random.RandomState(1)
    X = (rng.rand(n_rows, 12) < 0.4).astype(np.float64)
    ours = _saturated_model(BernoulliRBM, X, batch_size=10)
    theirs = _saturated_model(SklearnRBM, X, batch_size=10)
    ours.partial_fit(X)
    theirs.partial_fit(X)
    # Only the order of floating-point summation differs.
    for name in ("components_", "intercept_hidden_", "intercept_visible_"):
        np.testing.assert_allclose(
            getattr(ours, name), getattr(theirs, name), rtol=1e-12, atol=1e-14
        )


def test_transform_and_score_samples_match_sklearns_formulas(digits):
    X, _ = digits
    theirs = SklearnRBM(n_components=64, n_iter=2, random_state=0).fit(X)
    ours = BernoulliRBM(n_components=64, n_iter=0, random_state=0).fit(X)
    for name in ("components_", "intercept_hidden_", "intercept_visible_"):
        setattr(ours, name, getattr(theirs, name).copy())

    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-12)

    # Each row's score is the scikit-learn pseudo-likelihood proxy for one flipped feature...
    every_flip = _pseudo_likelihoods_of_every_flip(theirs, X)
    scores = ours.score_samples(X)
    assert np.abs(every_flip - scores[:, None]).min(axis=1).max() < 1e-9
    # ...and the flipped features are spread uniformly: the mean score estimates the exact
    # pseudo-likelihood (the mean over every flip) as well as scikit-learn's does. 1797 rows with
    # a per-row standard deviation of about 15 nats: the standard error is ~0.35 nats.
    exact = every_flip.mean()
    assert abs(scores.mean() - exact) < 1.5
    assert abs(theirs.score_samples(X).mean() - exact) < 1.5
    flipped = np.abs(every_flip - scores[:, None]).argmin(axis=1)
    assert len(np.unique(flipped)) > 55  # of 64 features (some are constant, so ties)


def test_score_samples_is_reproducible_and_per_row(digits):
    X, _ = digits
    model = BernoulliRBM(n_components=32, n_iter=1, random_state=0).fit(X[:200])
    full = model.score_samples(X[:50])
    np.testing.assert_array_equal(full, model.score_samples(X[:50]))
    np.testing.assert_allclose(full[::-1], model.score_samples(X[:50][::-1]), rtol=1e-12)
    np.testing.assert_allclose(full[10:20], model.score_samples(X[10:20]), rtol=1e-12)


# ---- comparable to scikit-learn on digits ----------------------------------------------------


def test_digits_comparable_to_sklearn(digits):
    # scikit-learn's defaults (256 hidden units, learning_rate 0.1, batch_size 10, n_iter 10),
    # a 75/25 split. Observed over random_state 0..3 (ours vs scikit-learn): initial
    # pseudo-log-likelihood -44.4 for both; after training, the 8-key score_samples mean
    # -21.1..-21.5 vs -20.8..-21.5 (largest gap 0.7), the exact pseudo-likelihood -20.8..-21.3 vs
    # -20.9..-21.6 (largest gap 0.45), test accuracy of a logistic regression on the features
    # 0.922..0.931 vs 0.922..0.933 (largest gap 1.1 points). The tolerances below are about
    # twice those seed-to-seed gaps: the two implementations draw different random streams, so
    # they are as far apart as two seeds of one implementation, not closer.
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    results = {}
    for name, cls in (("ours", BernoulliRBM), ("sklearn", SklearnRBM)):
        initial = cls(n_iter=0, random_state=0).fit(X_train)
        model = cls(random_state=0).fit(X_train)
        # One thread for the solver: its BLAS calls are small and this keeps the time stable on
        # a shared 2-core machine.
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")  # lbfgs may stop at max_iter; the score is what counts
            classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=200))
            classifier.fit(model.transform(X_train), y_train)
        results[name] = {
            "initial": _mean_score_samples(initial, X_train),
            "score_samples": _mean_score_samples(model, X_train),
            "exact": _pseudo_likelihoods_of_every_flip(model, X_train).mean(),
            "accuracy": classifier.score(model.transform(X_test), y_test),
        }
    ours, theirs = results["ours"], results["sklearn"]
    print("digits (ours, sklearn):", {k: (round(ours[k], 4), round(theirs[k], 4)) for k in ours})
    for r in (ours, theirs):
        assert r["score_samples"] > r["initial"] + 20  # -44 -> about -21
    assert abs(ours["initial"] - theirs["initial"]) < 0.5  # same initial weights
    assert abs(ours["score_samples"] - theirs["score_samples"]) < 1.5
    assert abs(ours["exact"] - theirs["exact"]) < 1.0
    assert abs(ours["accuracy"] - theirs["accuracy"]) < 0.03
    assert ours["accuracy"] > 0.88


# ---- reproducibility, dtypes, sparse input ----------------------------------------------------


def test_same_random_state_same_model(digits):
    X, _ = digits
    X = X[:300]
    a = BernoulliRBM(n_components=32, n_iter=3, random_state=7).fit(X)
    b = BernoulliRBM(n_components=32, n_iter=3, random_state=7).fit(X)
    c = BernoulliRBM(n_components=32, n_iter=3, random_state=8).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.intercept_hidden_, b.intercept_hidden_)
    np.testing.assert_array_equal(a.intercept_visible_, b.intercept_visible_)
    np.testing.assert_array_equal(a.h_samples_, b.h_samples_)
    assert not np.array_equal(a.components_, c.components_)
    # Refitting starts over from random_state.
    np.testing.assert_array_equal(a.fit(X).components_, b.components_)


def test_float32_is_preserved_float64_by_default(digits):
    X, _ = digits
    X = X[:200]
    m64 = BernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(X)
    m32 = BernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(X.astype(np.float32))
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        assert getattr(m64, name).dtype == np.float64
        assert getattr(m32, name).dtype == np.float32
    assert m32.transform(X.astype(np.float32)).dtype == np.float32
    assert m32.score_samples(X.astype(np.float32)).dtype == np.float32
    # As in scikit-learn, numpy's promotion decides: float64 data through a float32 model (or
    # integer data through any model) gives float64.
    assert m32.transform(X).dtype == np.float64
    assert m64.transform(X.astype(np.float32)).dtype == np.float64
    assert m64.score_samples((X > 0.5).astype(np.int64)).dtype == np.float64
    # The same initial weights and the same number of updates keep the two close; the random
    # streams are the same too, so they differ only where float32 rounding flips a sample.
    assert np.abs(m32.transform(X) - m64.transform(X)).mean() < 0.05


def test_sparse_input_equals_dense(digits):
    X, _ = digits
    X = X[:200]
    dense = BernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(X)
    for fmt in (sp.csr_matrix, sp.csc_array):
        sparse = BernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(fmt(X))
        np.testing.assert_array_equal(sparse.components_, dense.components_)
        np.testing.assert_allclose(sparse.transform(fmt(X)), dense.transform(X), rtol=1e-12)
        np.testing.assert_allclose(sparse.score_samples(fmt(X)), dense.score_samples(X), rtol=1e-12)


# ---- partial_fit ---------------------------------------------------------------------------


def test_partial_fit_learns_incrementally(digits):
    X, _ = digits
    model = BernoulliRBM(n_components=64, batch_size=10, random_state=0)
    assert model.partial_fit(X[:10]) is model  # scikit-learn's returns None; its docs say self
    assert model.n_features_in_ == 64
    assert model.components_.shape == (64, 64)
    assert model.h_samples_.shape == (10, 64)
    start = _mean_score_samples(model, X, n_keys=2)

    before = model.components_.copy()
    model.partial_fit(X[10:20])
    assert not np.array_equal(before, model.components_)  # continues, does not reinitialise

    for _ in range(3):
        for i in range(0, len(X), 10):
            model.partial_fit(X[i : i + 10])
    # Three sweeps of partial_fit: from about -44 to about -23 (3 epochs of the same updates
    # fit makes); 10 nats is a wide margin.
    assert _mean_score_samples(model, X, n_keys=2) > start + 10

    # Same random_state, same sequence of partial_fit calls: the same model.
    a = BernoulliRBM(n_components=8, random_state=5)
    b = BernoulliRBM(n_components=8, random_state=5)
    for i in range(0, 100, 10):
        a.partial_fit(X[i : i + 10])
        b.partial_fit(X[i : i + 10])
    np.testing.assert_array_equal(a.components_, b.components_)


def test_partial_fit_after_fit_continues_in_the_fitted_dtype(digits):
    X, _ = digits
    model = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(X[:100].astype(np.float32))
    before = model.components_.copy()
    model.partial_fit(X[100:110])
    assert model.components_.dtype == np.float32
    assert np.abs(model.components_ - before).max() > 0


# ---- gibbs -----------------------------------------------------------------------------------


def test_gibbs_returns_booleans_of_the_input_shape(digits):
    X, _ = digits
    model = BernoulliRBM(n_components=32, n_iter=1, random_state=0).fit(X[:200])
    v = model.gibbs(X[:25])
    assert v.shape == (25, 64) and v.dtype == np.bool_
    theirs = SklearnRBM(n_components=32, n_iter=1, random_state=0).fit(X[:200])
    assert theirs.gibbs(X[:25]).dtype == np.bool_  # scikit-learn's is boolean too
    # The chain moves on: successive calls draw afresh...
    assert not np.array_equal(v, model.gibbs(X[:25]))
    # ...and the same random_state replays the same draws.
    twin = BernoulliRBM(n_components=32, n_iter=1, random_state=0).fit(X[:200])
    np.testing.assert_array_equal(v, twin.gibbs(X[:25]))


def test_gibbs_samples_p_v_given_h():
    # Saturated visible units: one Gibbs step must land on sign(intercept_visible_) exactly,
    # whatever the hidden sample.
    rng = np.random.RandomState(0)
    X = (rng.rand(40, 12) < 0.5).astype(np.float64)
    model = _saturated_model(BernoulliRBM, X, batch_size=10)
    v = model.gibbs(X)
    np.testing.assert_array_equal(v, np.broadcast_to(model.intercept_visible_ > 0, X.shape))
    # Unsaturated, with zero weights: every visible unit is on with probability
    # sigmoid(intercept) = 0.8; 40000 draws put the frequency within 0.01 (5 sigma).
    model.components_ = np.zeros_like(model.components_, order="F")
    model.intercept_visible_ = np.full(12, np.log(4.0))
    freq = model.gibbs(np.zeros((40000 // 12 + 1, 12))).mean()
    assert abs(freq - 0.8) < 0.01


# ---- errors ----------------------------------------------------------------------------------


def test_bad_input_errors(digits):
    X, _ = digits
    model = BernoulliRBM(n_components=8, n_iter=1, random_state=0)
    with pytest.raises(NotFittedError, match="This BernoulliRBM instance is not fitted yet"):
        model.transform(X)
    with pytest.raises(ValueError, match="Negative values in data passed to BernoulliRBM.fit"):
        model.fit(X - 0.5)
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(bad)
    bad[3, 5] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        model.fit(bad)
    with pytest.raises(ValueError, match="The 'n_components' parameter of BernoulliRBM must be"):
        BernoulliRBM(n_components=0).fit(X)

    model.fit(X[:100])
    message = "X has 10 features, but BernoulliRBM is expecting 64 features as input"
    for method in (model.transform, model.score_samples, model.partial_fit, model.gibbs):
        with pytest.raises(ValueError, match=message):
            method(X[:5, :10])
    for method in ("transform", "score_samples", "partial_fit", "gibbs"):
        message = f"Negative values in data passed to BernoulliRBM.{method}"
        with pytest.raises(ValueError, match=message):
            getattr(model, method)(-X[:5])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.transform(np.full((2, 64), np.nan))


def test_verbose_reports_pseudo_likelihood(digits, capsys):
    X, _ = digits
    BernoulliRBM(n_components=8, n_iter=2, verbose=1, random_state=0).fit(X[:100])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"\[BernoulliRBM\] Iteration 2, pseudo-likelihood = -\d+\.\d\d, time = \d+\.\d\ds", lines[1]
    )
