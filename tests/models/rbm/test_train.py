"""Training: every method raises the exact likelihood of a small RBM on digits; checkpoints
resume to the same result; the options do what they say; bad data is refused."""

import pytest
import torch

from dgm_fast import evaluate
from dgm_fast.data import load_digits
from dgm_fast.models.rbm import RBM
from dgm_fast.models.rbm import train


@pytest.fixture(scope="module")
def digits():
    images, _ = load_digits()
    # Stochastic binarization with a fixed seed (the digits are grey levels 0..16).
    return torch.bernoulli(images, generator=torch.Generator().manual_seed(0))


def small_rbm(data, seed=0, n_hidden=12):
    rbm = RBM(64, n_hidden, generator=torch.Generator().manual_seed(seed))
    rbm.init_visible_bias_from_data(data)
    return rbm


@pytest.mark.parametrize(
    "method,options",
    [("cd", {}), ("pcd", {}), ("fpcd", {"fast_lr": 0.05}), ("pt", {"betas": 5})],
)
def test_training_raises_the_exact_likelihood(digits, method, options):
    # 64x12 RBM: log Z by enumerating 2^12 hidden states. Starting from the base-rate model
    # (visible biases at the data's log-odds, tiny weights: about -27.2 nats), 15 epochs must
    # gain at least 1.5 nats of mean training log-likelihood; the gain measured when this test
    # was written was 2-4 nats for every method. (Momentum 0.5: with 0.9, lr 0.05 is too fast
    # for the persistent chains to follow and PCD oscillates, as Tieleman 2008 describes.)
    rbm = small_rbm(digits)
    before = evaluate.exact_log_likelihood(rbm, digits).item()
    history = train.fit_rbm(
        rbm, digits, method=method, epochs=15, batch_size=20, lr=0.05, momentum=0.5, n_chains=50,
        method_options=options, generator=torch.Generator().manual_seed(1), progress=False,
        eval_fn=lambda r, epoch: {"log_likelihood": evaluate.exact_log_likelihood(r, digits).item()},
    )
    after = history[-1]["log_likelihood"]
    assert after > before + 1.5, (before, after)
    assert len(history) == 15 and history[-1]["epoch"] == 15


@pytest.mark.parametrize("method", ["cd", "pcd", "fpcd", "pt"])
def test_resume_from_checkpoint_reproduces_an_uninterrupted_run(digits, tmp_path, method):
    kwargs = dict(method=method, batch_size=50, lr=0.05, weight_decay=1e-4, sparsity_target=0.2,
                  lr_schedule="linear", progress=False, method_options={"betas": 3} if method == "pt" else None)
    straight = small_rbm(digits)
    train.fit_rbm(straight, digits, epochs=4, generator=torch.Generator().manual_seed(3), **kwargs)

    ckpt = tmp_path / "run.pt"
    calls = []

    def interrupt_in_epoch_3(rbm, epoch):  # runs after each epoch, before its checkpoint is written
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        train.fit_rbm(small_rbm(digits), digits, epochs=4, checkpoint=ckpt, eval_fn=interrupt_in_epoch_3,
                      generator=torch.Generator().manual_seed(3), **kwargs)
    # A new process would build everything afresh: a new model, optimizer and generator.
    resumed = small_rbm(digits, seed=99)
    history = train.fit_rbm(resumed, digits, epochs=4, checkpoint=ckpt, generator=torch.Generator().manual_seed(1234), **kwargs)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_corrupt_checkpoint_is_reported(digits, tmp_path):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="corrupt"):
        train.fit_rbm(small_rbm(digits), digits, epochs=1, checkpoint=ckpt, progress=False)


def test_checkpoint_write_is_atomic(digits, tmp_path, monkeypatch):
    # A crash while the checkpoint is written leaves the previous checkpoint intact.
    ckpt = tmp_path / "run.pt"
    train.fit_rbm(small_rbm(digits), digits, epochs=1, checkpoint=ckpt, progress=False)
    before = ckpt.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        train.fit_rbm(small_rbm(digits), digits, epochs=2, checkpoint=ckpt, progress=False)
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left behind


def test_gaussian_visible_with_learned_variance_trains(digits):
    # The autograd path (learned sigma): the exact likelihood (Gaussian integrated in closed form)
    # of real-valued digits must rise.
    images, _ = load_digits()
    x = (images - images.mean(0)) / (images.std(0) + 0.1)
    rbm = RBM(64, 8, visible="gaussian", learn_std=True, generator=torch.Generator().manual_seed(0))
    rbm.init_visible_bias_from_data(x)
    before = evaluate.exact_log_likelihood(rbm, x).item()
    train.fit_rbm(rbm, x, epochs=5, batch_size=20, lr=0.005, generator=torch.Generator().manual_seed(0), progress=False)
    after = evaluate.exact_log_likelihood(rbm, x).item()
    assert after > before + 5, (before, after)


def test_native_and_autograd_gradients_agree():
    rbm = RBM(10, 6, visible="gaussian", generator=torch.Generator().manual_seed(0)).double()
    g = torch.Generator().manual_seed(1)
    vd, vm = torch.randn(8, 10, generator=g, dtype=torch.float64), torch.randn(12, 10, generator=g, dtype=torch.float64)
    native = [t.clone() for t in train.cd_gradients(rbm, vd, rbm.hidden_probs(vd).detach(), vm, rbm.hidden_probs(vm).detach(), weight_decay=0.01)]
    rbm.visible_log_std = torch.nn.Parameter(rbm.visible_log_std.clone())  # now learned: autograd path
    auto = train.cd_gradients(rbm, vd, None, vm, None, weight_decay=0.01)
    for a, b in zip(native, auto):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


def test_sparsity_target_pulls_hidden_activity_down(digits):
    def mean_activity(target):
        rbm = small_rbm(digits, n_hidden=20)
        train.fit_rbm(rbm, digits, epochs=5, batch_size=20, sparsity_target=target, sparsity_cost=0.5,
                      generator=torch.Generator().manual_seed(0), progress=False)
        return rbm.hidden_probs(digits).mean().item()

    assert mean_activity(0.05) < mean_activity(None) - 0.05


def test_linear_schedule_and_custom_optimizer(digits):
    rbm = small_rbm(digits)
    opt = torch.optim.Adam(rbm.parameters(), lr=1e-3)
    history = train.fit_rbm(rbm, digits, epochs=4, optimizer=opt, lr_schedule="linear",
                            generator=torch.Generator().manual_seed(0), progress=False)
    assert [round(h["lr"], 8) for h in history] == [7.5e-4, 5e-4, 2.5e-4, 0.0]


def test_fit_accepts_a_dataloader(digits):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(digits), batch_size=32, shuffle=True)
    history = train.fit_rbm(small_rbm(digits), loader, epochs=1, progress=False)
    assert history[0]["reconstruction_error"] < 0.25


@pytest.mark.parametrize(
    "data,error,match",
    [
        (torch.full((10, 64), float("nan")), ValueError, "NaN or Inf"),
        (torch.zeros(0, 64), ValueError, "empty"),
        (torch.zeros(10, 63), ValueError, r"v_data must be \[batch, 64\]"),
        (torch.zeros(64), ValueError, r"\[n_samples, n_visible\]"),
        ([[0.0] * 64], TypeError, "Tensor, a Dataset or a DataLoader"),
    ],
)
def test_bad_data(digits, data, error, match):
    with pytest.raises(error, match=match):
        train.fit_rbm(small_rbm(digits), data, epochs=1, progress=False)


def test_eval_every(digits):
    seen = []
    history = train.fit_rbm(small_rbm(digits), digits[:200], epochs=5, eval_every=2, progress=False,
                            eval_fn=lambda rbm, epoch: seen.append(epoch) or {"evaluated": epoch})
    assert seen == [2, 4, 5]  # every second epoch, and the last
    assert [h.get("evaluated") for h in history] == [None, 2, None, 4, 5]
    assert all("reconstruction_error" in h for h in history)  # the cheap measure every epoch


@pytest.mark.parametrize("method", [train.PCD, train.FPCD, train.PT])
@pytest.mark.parametrize("n_chains", [0, -1, 2.5])
def test_n_chains_must_be_positive(method, n_chains):
    with pytest.raises(ValueError, match=r"n_chains must be a positive integer \(or None for the batch size\)"):
        method(1, n_chains)


def test_unknown_method(digits):
    with pytest.raises(ValueError, match="unknown training method"):
        train.fit_rbm(small_rbm(digits), digits, method="cd2", progress=False)


# ---- the fused SGD update ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_cd_step_trains_like_torch_sgd(digits, dtype):
    # The same CD-1 run twice from the same seeds: once with the fused update (plain SGD with
    # momentum), once through .grad and torch's SGD.step (a step hook makes cd_step leave the
    # fused path). Same samples, parameters and optimizer state to rounding after 20 updates.
    data = digits[:200].to(dtype)
    runs = []
    for fused in (True, False):
        rbm = small_rbm(digits).to(dtype)
        opt = torch.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.9)
        if not fused:
            opt.register_step_pre_hook(lambda *args: None)
        assert (train._fusable_sgd(opt, rbm) is not None) == fused
        gen = torch.Generator().manual_seed(7)
        for batch in data.split(10):
            train.cd_step(rbm, batch, opt, train.CD(1), weight_decay=1e-3, generator=gen)
        runs.append((rbm, opt))
    (fused_rbm, fused_opt), (ref_rbm, ref_opt) = runs
    assert fused_rbm.weight.grad is None and ref_rbm.weight.grad is not None
    tol = {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    for a, b in zip(fused_rbm.parameters(), ref_rbm.parameters()):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
        torch.testing.assert_close(fused_opt.state[a]["momentum_buffer"], ref_opt.state[b]["momentum_buffer"],
                                   rtol=tol, atol=tol)


def test_fused_path_is_left_when_the_optimizer_differs(digits):
    rbm = small_rbm(digits)
    assert train._fusable_sgd(torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.9), rbm) is not None
    for opt in (torch.optim.SGD(rbm.parameters(), lr=0.1),  # no momentum
                torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.9, nesterov=True),
                torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
                torch.optim.SGD([rbm.weight], lr=0.1, momentum=0.9),
                torch.optim.Adam(rbm.parameters())):
        assert train._fusable_sgd(opt, rbm) is None


def test_fused_steps_under_an_lr_schedule_do_not_warn(digits):
    import warnings

    rbm = small_rbm(digits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns if scheduler.step() seems to precede optimizer.step()
        train.fit_rbm(rbm, digits[:100], epochs=2, batch_size=20, momentum=0.9, lr_schedule="linear",
                      generator=torch.Generator().manual_seed(0), progress=False)


def test_eval_fn_must_return_a_dict(digits):
    with pytest.raises(TypeError, match="eval_fn must return a dict of metric names to values, got int 5"):
        train.fit_rbm(small_rbm(digits), digits[:40], epochs=1, progress=False, eval_fn=lambda rbm, epoch: 5)


def test_generator_and_eval_fn_are_checked_before_training(digits):
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        train.fit_rbm(small_rbm(digits), digits, epochs=1, generator=0, progress=False)
    with pytest.raises(TypeError, match=r"eval_fn must accept two arguments, \(rbm, epoch\)"):
        train.fit_rbm(small_rbm(digits), digits, epochs=1, progress=False, eval_fn=lambda rbm: {})


# ---- one native call per epoch -----------------------------------------------------------------


def _trained(digits, native, tmp_path=None, crash_at=None, **kw):
    """fit_rbm on the digits (1797 rows: batches of 20 end with a short one of 17), with the
    native epoch or one call per update; optionally killed after ``crash_at`` updates and
    resumed from its checkpoint."""
    args = dict(epochs=3, batch_size=20, lr=0.05, lr_schedule="linear", momentum_schedule=lambda e: 0.5 if e < 1 else 0.9,
                weight_decay=1e-3, progress=False, native_epochs=native)
    args.update(kw)
    rbm = small_rbm(digits)
    if crash_at is not None:
        calls = [0]
        original = train.ops.rbm.rbm_train_epoch_ if native else train.cd_step

        def dying(*a, **k):
            calls[0] += 1
            if calls[0] == crash_at:
                raise KeyboardInterrupt
            return original(*a, **k)

        target = (train.ops.rbm, "rbm_train_epoch_") if native else (train, "cd_step")
        setattr(*target, dying)
        try:
            with pytest.raises(KeyboardInterrupt):
                train.fit_rbm(rbm, digits, generator=torch.Generator().manual_seed(1), checkpoint=tmp_path / "c.pt",
                              **args)
        finally:
            setattr(*target, original)
        rbm = small_rbm(digits, seed=99)  # everything must come back from the checkpoint
    history = train.fit_rbm(rbm, digits, generator=torch.Generator().manual_seed(1),
                            checkpoint=None if tmp_path is None else tmp_path / "c.pt", **args)
    return rbm, history


@pytest.mark.parametrize("method,k", [("cd", 1), ("cd", 3), ("pcd", 1), ("pcd", 2)])
def test_native_epochs_give_the_bits_of_one_call_per_update(digits, method, k):
    native, native_history = _trained(digits, True, method=method, k=k)
    looped, looped_history = _trained(digits, False, method=method, k=k)
    for a, b in zip(native.parameters(), looped.parameters()):
        assert torch.equal(a, b)
    assert native_history == looped_history


def test_native_epochs_resume_mid_epoch_to_the_same_bits(digits, tmp_path):
    # checkpoint_every=40: the native call runs 40 updates at a time; the third call dies, so the
    # run resumes from update 80, inside the first epoch (90 updates per epoch).
    straight, _ = _trained(digits, True, method="pcd", checkpoint_every=40)
    resumed, history = _trained(digits, True, tmp_path=tmp_path, crash_at=3, method="pcd", checkpoint_every=40)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert [h["updates"] for h in history] == [90, 180, 270]


def test_native_epochs_step_where_the_optimizer_is_not_the_fused_sgd(digits):
    # Adam: cd_step per update (the native epoch only does SGD with momentum).
    rbm = small_rbm(digits)
    optimizer = torch.optim.Adam(rbm.parameters(), lr=1e-3)
    history = train.fit_rbm(rbm, digits, epochs=1, batch_size=20, optimizer=optimizer, progress=False,
                            generator=torch.Generator().manual_seed(1))
    assert history[0]["updates"] == 90 and optimizer.state[rbm.weight]["step"] == 90
