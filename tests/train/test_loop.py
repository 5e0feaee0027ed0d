"""dgm_fast.train.fit, the common loop: epochs or updates, streaming data, schedules, the metrics
history, and bit-exact resumption from a checkpoint written in the middle of an epoch."""

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from dgm_fast import train
from dgm_fast.cli.rbm import draw_samples
from dgm_fast.data import load_digits
from dgm_fast.models.rbm import RBM, fit_rbm
from dgm_fast.models.rbm import train as rbm_train


@pytest.fixture(scope="module")
def digits():
    images, _ = load_digits()
    return images


class Run:
    """A denoising linear autoencoder trained with Adam and a cosine schedule: an ordinary PyTorch
    model with its own random stream (the input noise), built afresh as a new process would."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 64))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.steps = 0

    def step(self, batch):
        (x,) = batch
        noisy = x + 0.1 * torch.randn(x.shape, generator=self.noise)
        loss = torch.nn.functional.mse_loss(self.model(noisy), x)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return {"loss": loss.item()}

    def fit(self, data, **kwargs):
        return train.fit(self.step, data, model=self.model, optimizer=self.optimizer, batch_size=100,
                         lr_schedule="cosine", generators={"noise": self.noise},
                         shuffle_generator=torch.Generator().manual_seed(5), progress=False, **kwargs)


def test_history_holds_the_mean_step_metrics_and_the_schedule(digits):
    run = Run()
    history = run.fit(digits, epochs=3)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["updates"] for h in history] == [18, 36, 54]  # 1797 rows in batches of 100
    assert history[0]["lr"] == pytest.approx(1e-2 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi / 3)).item()))
    assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert history[-1]["loss"] < history[0]["loss"]


def test_resume_in_the_middle_of_an_epoch_is_bit_exact(digits, tmp_path):
    straight = Run()
    expected = straight.fit(digits, epochs=3)

    ckpt = tmp_path / "run.pt"
    interrupted = Run()
    original_step = interrupted.step

    def step_then_crash(batch):
        if interrupted.steps == 25:  # the 26th update, 8 batches into the second epoch
            raise KeyboardInterrupt
        return original_step(batch)

    interrupted.step = step_then_crash
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(digits, epochs=3, checkpoint=ckpt, checkpoint_every=4)  # last written: update 24
    assert train.load_checkpoint(ckpt)["batch"] == 6

    resumed = Run(seed=123)  # other weights, other noise, other global RNG: all must come from the file
    history = resumed.fit(digits, epochs=3, checkpoint=ckpt, checkpoint_every=4)
    assert resumed.steps == 54 - 24
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert history[1:] == expected[1:]  # the epochs trained after the resume; the first was restored
    assert history[0]["epoch"] == 1 and history[0]["updates"] == 18


def test_rbm_pcd_resume_mid_epoch_is_bit_exact(digits, tmp_path, monkeypatch):
    data = torch.bernoulli(digits, generator=torch.Generator().manual_seed(0))

    def make():
        rbm = RBM(64, 12, generator=torch.Generator().manual_seed(0))
        rbm.init_visible_bias_from_data(data)
        return rbm

    kwargs = dict(method="pcd", epochs=2, batch_size=50, lr=0.05, lr_schedule="linear", sparsity_target=0.2,
                  progress=False)
    straight = make()
    fit_rbm(straight, data, generator=torch.Generator().manual_seed(3), **kwargs)

    ckpt = tmp_path / "rbm.pt"
    calls = []
    real_cd_step = rbm_train.cd_step

    def crash_at_update_50(*args, **kw):
        calls.append(1)
        if len(calls) == 50:
            raise KeyboardInterrupt
        return real_cd_step(*args, **kw)

    monkeypatch.setattr(rbm_train, "cd_step", crash_at_update_50)
    with pytest.raises(KeyboardInterrupt):
        fit_rbm(make(), data, generator=torch.Generator().manual_seed(3), checkpoint=ckpt, checkpoint_every=5, **kwargs)
    monkeypatch.setattr(rbm_train, "cd_step", real_cd_step)
    resumed = RBM(64, 12, generator=torch.Generator().manual_seed(99))
    fit_rbm(resumed, data, generator=torch.Generator().manual_seed(1234), checkpoint=ckpt, checkpoint_every=5, **kwargs)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    # the model alone, as a user loads it for sampling
    loaded = RBM.load(ckpt)
    assert torch.equal(loaded.weight, straight.weight) and loaded.n_hidden == 12
    assert torch.equal(draw_samples(loaded, 16, seed=7), draw_samples(straight, 16, seed=7))  # same seed, same samples


def test_a_number_of_updates_instead_of_epochs(digits):
    run = Run()
    history = train.fit(run.step, digits, steps=25, batch_size=100, progress=False)
    assert run.steps == 25
    assert [h["updates"] for h in history] == [18, 25]


class Stream(IterableDataset):
    """Rows produced on the fly, as from a file too large to hold: no length, no shuffling."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(self.n):
            yield (torch.rand(64, generator=g),)


def test_streaming_data(digits):
    run = Run()
    history = train.fit(run.step, Stream(250), epochs=2, batch_size=100, progress=False)
    assert run.steps == 6 and [h["updates"] for h in history] == [3, 6]
    loader = DataLoader(Stream(30), batch_size=10)
    assert len(train.fit(Run().step, loader, steps=3, progress=False)) == 1


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(), ValueError, "exactly one of epochs and steps"),
        (dict(epochs=1, steps=1), ValueError, "exactly one of epochs and steps"),
        (dict(epochs=-1), ValueError, "must be >= 0"),
        (dict(epochs=1, checkpoint_every=0), ValueError, "checkpoint_every must be >= 1"),
        (dict(epochs=1, batch_size=0), ValueError, "batch_size must be >= 1"),
    ],
)
def test_bad_arguments(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        train.fit(Run().step, digits, progress=False, **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="yielded no batches"):
        train.fit(Run().step, Stream(0), epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN or Inf"):
        train.fit(Run().step, torch.full((4, 64), float("inf")), epochs=1, progress=False)
    with pytest.raises(TypeError, match="a Tensor, a Dataset or a DataLoader"):
        train.fit(Run().step, [[0.0] * 64], epochs=1, progress=False)


def test_a_checkpoint_of_another_format_is_refused(digits, tmp_path):
    ckpt = tmp_path / "old.pt"
    train.save_checkpoint(ckpt, {"rbm": {}, "epoch": 3})
    with pytest.raises(RuntimeError, match="not a checkpoint of this version"):
        Run().fit(digits, epochs=1, checkpoint=ckpt)


def test_rbm_load_refuses_other_files(tmp_path):
    ckpt = tmp_path / "x.pt"
    train.save_checkpoint(ckpt, {"format": 1, "model_class": "DBN", "model": {}})
    with pytest.raises(ValueError, match="does not hold an RBM"):
        RBM.load(ckpt)
    rbm = RBM(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rbm.save(tmp_path / "rbm.pt")
    again = RBM.load(tmp_path / "rbm.pt")
    assert again.weight.dtype == torch.float64 and torch.equal(again.weight, rbm.weight)


def test_momentum_schedule_sets_each_epochs_momentum_and_survives_a_resume(digits, tmp_path):
    """Hinton's schedule (0.5, then 0.9 from epoch 2 here): the momentum SGD used in each epoch is
    the schedule's, also after a resume in the middle of an epoch, where the optimizer's saved
    settings carry it."""
    schedule = lambda epoch: 0.5 if epoch < 2 else 0.9  # noqa: E731
    seen = []

    def run(checkpoint=None, crash_at=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 64)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.0)
        count = [0]

        def step(batch):
            if count[0] == crash_at:
                raise KeyboardInterrupt
            count[0] += 1
            seen.append(optimizer.param_groups[0]["momentum"])
            loss = torch.nn.functional.mse_loss(model(batch[0]), batch[0])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        train.fit(step, digits, model=model, optimizer=optimizer, epochs=3, batch_size=200,
                  momentum_schedule=schedule, shuffle_generator=torch.Generator().manual_seed(1),
                  checkpoint=checkpoint, checkpoint_every=2, progress=False)
        return model

    straight = run()
    assert seen == [0.5] * 18 + [0.9] * 9  # 9 batches of 200 per epoch
    seen.clear()
    ckpt = tmp_path / "m.pt"
    with pytest.raises(KeyboardInterrupt):
        run(ckpt, crash_at=23)  # last checkpoint: update 22, four batches into the third epoch
    seen.clear()
    resumed = run(ckpt)
    assert seen == [0.9] * 5
    assert torch.equal(straight.weight, resumed.weight)


def test_momentum_schedule_needs_an_optimizer_with_momentum(digits):
    model = torch.nn.Linear(64, 64)
    with pytest.raises(ValueError, match="momentum_schedule needs an optimizer with a 'momentum'"):
        train.fit(lambda b: None, digits, model=model, optimizer=torch.optim.Adam(model.parameters()), epochs=1,
                  momentum_schedule=lambda e: 0.5, progress=False)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"momentum_schedule\(0\) gave 1.5"):
        train.fit(lambda b: None, digits, model=model, optimizer=sgd, epochs=1, momentum_schedule=lambda e: 1.5,
                  progress=False)


@pytest.mark.parametrize("shuffle", [True, False])
def test_tensor_batches_are_those_of_a_plain_dataloader(shuffle):
    # make_loader indexes a tensor a batch at a time; the batches, their order and what the
    # shuffle generator draws must be those of DataLoader(TensorDataset(x), shuffle=...).
    x = torch.randn(103, 5, generator=torch.Generator().manual_seed(0))
    ours_generator, theirs_generator = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    ours = train.make_loader(x, 10, shuffle=shuffle, generator=ours_generator)
    theirs = DataLoader(torch.utils.data.TensorDataset(x), batch_size=10, shuffle=shuffle, generator=theirs_generator)
    assert len(ours) == len(theirs) == 11
    for _ in range(2):  # two epochs: the generator's state carries over alike
        pairs = list(zip(ours, theirs, strict=True))
        for (a,), (b,) in pairs:
            assert torch.equal(a, b)
    assert torch.equal(ours_generator.get_state(), theirs_generator.get_state())


def test_dataset_batches_are_those_of_a_plain_dataloader():
    rows = torch.utils.data.TensorDataset(torch.randn(57, 3, generator=torch.Generator().manual_seed(0)))
    ours_generator, theirs_generator = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ours = train.make_loader(rows, 8, generator=ours_generator)
    theirs = DataLoader(rows, batch_size=8, shuffle=True, generator=theirs_generator)
    for _ in range(2):
        for (a,), (b,) in zip(ours, theirs, strict=True):
            assert torch.equal(a, b)
    assert torch.equal(ours_generator.get_state(), theirs_generator.get_state())


@pytest.mark.parametrize("n, ranks", [(1797, 2), (100, 3), (7, 7)])
def test_the_shards_are_those_of_torchs_distributed_sampler(n, ranks):
    from torch.utils.data import DistributedSampler

    from dgm_fast.train.loop import _CompactDistributedSampler

    rows = list(range(n))
    for rank in range(ranks):
        for epoch in (0, 5):
            ours = _CompactDistributedSampler(rows, num_replicas=ranks, rank=rank, seed=11, drop_last=True)
            theirs = DistributedSampler(rows, num_replicas=ranks, rank=rank, seed=11, drop_last=True)
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == n // ranks
