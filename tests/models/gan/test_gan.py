"""GAN: the trainer's updates against the plain BCE formulation by autograd (every kind), the
optimal discriminator at a fixed generator, a bit-exact resume, files and bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgm_fast import GAN
from dgm_fast.models.gan import discriminator_loss, fit_gan, generator_loss


def small_gan(seed=0, dtype=torch.float64):
    return GAN(n_visible=5, n_latent=3, hidden_sizes=[7, 6], generator_rng=torch.Generator().manual_seed(seed),
               discriminator_dropout=0.0, dtype=dtype)


def bce_generator_loss(gan, z, real, kind):
    """The generator objectives by the textbook BCE formulas, through autograd."""
    fake_logits = gan.discriminator(gan.generator(z)).squeeze(1)
    ones, zeros = torch.ones_like(fake_logits), torch.zeros_like(fake_logits)
    if kind == "minimax":  # E log(1 - D(G(z))) = -BCE(D(G(z)), 0)
        return -F.binary_cross_entropy_with_logits(fake_logits, zeros)
    if kind == "non_saturating":  # -E log D(G(z))
        return F.binary_cross_entropy_with_logits(fake_logits, ones)
    # reversed: fakes labelled real, reals labelled fake (the real term is constant for G)
    real_logits = gan.discriminator(real).squeeze(1).detach()
    return F.binary_cross_entropy_with_logits(fake_logits, ones) + F.binary_cross_entropy_with_logits(
        real_logits, torch.zeros_like(real_logits))


def bce_discriminator_loss(gan, real, z):
    real_logits = gan.discriminator(real).squeeze(1)
    fake_logits = gan.discriminator(gan.generator(z).detach()).squeeze(1)
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


@pytest.mark.parametrize("kind", ["minimax", "non_saturating", "reversed"])
def test_loss_gradients_equal_autograd_through_bce(kind):
    gan = small_gan()
    g = torch.Generator().manual_seed(1)
    real, z = torch.rand(11, 5, generator=g, dtype=torch.float64), torch.randn(11, 3, generator=g, dtype=torch.float64)
    d_params, g_params = list(gan.discriminator.parameters()), list(gan.generator.parameters())
    loss, real_logits, _ = discriminator_loss(gan, real, z)
    want = bce_discriminator_loss(gan, real, z)
    torch.testing.assert_close(loss, want, rtol=1e-13, atol=1e-13)
    for a, b in zip(torch.autograd.grad(loss, d_params), torch.autograd.grad(want, d_params)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    loss, _ = generator_loss(gan, z, kind, real_logits)
    want = bce_generator_loss(gan, z, real, kind)
    torch.testing.assert_close(loss, want, rtol=1e-13, atol=1e-13)
    for a, b in zip(torch.autograd.grad(loss, g_params), torch.autograd.grad(want, g_params)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


class RecordedLatents(GAN):
    """A GAN that keeps the latent draws the trainer makes, so that a test can replay them."""

    def latent(self, n, *, generator=None):
        z = super().latent(n, generator=generator)
        self.drawn.append(z.clone())
        return z


@pytest.mark.parametrize("kind", ["minimax", "non_saturating", "reversed"])
@pytest.mark.parametrize("k", [1, 2])
def test_training_updates_are_sgd_on_the_bce_losses(kind, k):
    # fit_gan with plain SGD on one batch per update, against the same updates written out with
    # the BCE formulas and autograd (the trainer's latent draws replayed)
    g = torch.Generator().manual_seed(2)
    data = torch.rand(8, 5, generator=g, dtype=torch.float64)
    gan = RecordedLatents(n_visible=5, n_latent=3, hidden_sizes=[7, 6], generator_rng=torch.Generator().manual_seed(0),
                          discriminator_dropout=0.0, dtype=torch.float64)
    gan.drawn = []
    plain = small_gan()
    lr = 0.1
    opts = (torch.optim.SGD(gan.generator.parameters(), lr=lr), torch.optim.SGD(gan.discriminator.parameters(), lr=lr))
    fit_gan(gan, data, kind=kind, k=k, epochs=2, batch_size=8, optimizers=opts, progress=False,
            generator=torch.Generator().manual_seed(3))
    drawn = iter(gan.drawn)
    for update in range(1, 3):  # one batch per epoch
        z = next(drawn)
        d_loss = bce_discriminator_loss(plain, data, z)
        d_params = list(plain.discriminator.parameters())
        grads = torch.autograd.grad(d_loss, d_params)
        with torch.no_grad():
            for p, grad in zip(d_params, grads):
                p -= lr * grad
        if update % k == 0:
            g_loss = bce_generator_loss(plain, next(drawn), data, kind)
            g_params = list(plain.generator.parameters())
            grads = torch.autograd.grad(g_loss, g_params)
            with torch.no_grad():
                for p, grad in zip(g_params, grads):
                    p -= lr * grad
    assert next(drawn, None) is None
    for (name, a), b in zip(gan.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13, msg=name)


def test_optimal_discriminator_at_a_fixed_generator():
    # Data N(0, 1), a fixed generator giving N(1, 0.5^2). With the generator never stepping
    # (k larger than the number of updates), D(x) approaches p_data / (p_data + p_g): within
    # 0.05 where both densities are above 0.05 (x in [-0.5, 1.5] here).
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(4)
    data = torch.randn(20000, 1, generator=g)
    generator = nn.Linear(1, 1)
    with torch.no_grad():
        generator.weight.fill_(0.5)
        generator.bias.fill_(1.0)
    discriminator = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    gan = GAN(generator, discriminator, n_latent=1)
    fit_gan(gan, data, k=10**9, epochs=15, batch_size=200, lr=3e-3, progress=False,
            generator=torch.Generator().manual_seed(5))
    assert torch.equal(generator.weight, torch.full((1, 1), 0.5))  # it never moved
    x = torch.linspace(-0.5, 1.5, 41).unsqueeze(1)
    normal = torch.distributions.Normal
    p_data, p_g = normal(0.0, 1.0).log_prob(x).exp(), normal(1.0, 0.5).log_prob(x).exp()
    optimal = (p_data / (p_data + p_g)).squeeze(1)
    with torch.no_grad():
        d = torch.sigmoid(gan.discriminate(x))
    assert (d - optimal).abs().max().item() < 0.05


def test_resume_is_bit_exact(tmp_path):
    # with the default discriminator's dropout, whose draws come from torch's global generator
    g = torch.Generator().manual_seed(6)
    data = torch.rand(60, 5, generator=g)

    def dropout_gan():
        return GAN(n_visible=5, n_latent=3, hidden_sizes=[7, 6], generator_rng=torch.Generator().manual_seed(0))

    def run(epochs):
        gan = dropout_gan()
        fit_gan(gan, data, kind="non_saturating", k=2, epochs=epochs, batch_size=16, progress=False,
                generator=torch.Generator().manual_seed(7), checkpoint=tmp_path / "ck.pt")
        return gan

    torch.manual_seed(0)
    whole = dropout_gan()
    fit_gan(whole, data, k=2, epochs=3, batch_size=16, progress=False, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(0)
    run(1)
    torch.manual_seed(123)  # the checkpoint restores torch's generator: what it is now must not matter
    resumed = run(3)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_save_and_load(tmp_path):
    gan = small_gan()
    gan.save(tmp_path / "gan.pt")
    back = GAN.load(tmp_path / "gan.pt")
    assert back.config() == gan.config()
    for a, b in zip(gan.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)
    own = GAN(nn.Linear(2, 3), nn.Linear(3, 1), n_latent=2)
    with pytest.raises(TypeError, match="state_dict"):
        own.save(tmp_path / "own.pt")


def test_samples_and_shapes():
    gan = small_gan()
    x = gan.sample(9, generator=torch.Generator().manual_seed(8))
    assert x.shape == (9, 5) and ((x > 0) & (x < 1)).all()
    assert torch.equal(x, gan.sample(9, generator=torch.Generator().manual_seed(8)))
    assert gan.discriminate(x).shape == (9,)


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: GAN(nn.Linear(2, 3), nn.Linear(4, 1), n_latent=2), ValueError,
         "cannot read the generator's samples, of shape \\[2, 3\\]"),
        (lambda: GAN(nn.Linear(2, 3), nn.Linear(3, 2), n_latent=2), ValueError, "one logit per sample"),
        (lambda: GAN(nn.Linear(2, 3), None, n_latent=2), ValueError, "both a generator and a discriminator"),
        (lambda: GAN(nn.Linear(2, 3), nn.Linear(3, 1)), ValueError, "give n_latent"),
        (lambda: GAN(nn.Linear(2, 3), nn.Linear(3, 1), n_latent=2, n_visible=3), ValueError, "do not apply"),
        (lambda: GAN(), ValueError, "give n_visible"),
        (lambda: GAN(n_visible=4, hidden_sizes=[0]), ValueError, "hidden_sizes"),
        (lambda: GAN(n_visible=4, output="tanh"), ValueError, "output must be"),
        (lambda: GAN(n_visible=4, discriminator_dropout=1.0), ValueError, "discriminator_dropout"),
        (lambda: GAN(n_visible=4, dtype=torch.int64), TypeError, "floating-point"),
        (lambda: GAN("g", "d", n_latent=2), TypeError, "torch.nn.Module"),
    ],
)
def test_bad_construction(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_training_input():
    gan = small_gan()
    with pytest.raises(ValueError, match=r"data must be \[rows, 5\]"):
        fit_gan(gan, torch.rand(10, 4, dtype=torch.float64), epochs=1, progress=False)
    with pytest.raises(TypeError, match="floating point"):
        fit_gan(gan, torch.ones(10, 5, dtype=torch.int64), epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_gan(gan, torch.full((10, 5), float("nan"), dtype=torch.float64), epochs=1, progress=False)
    with pytest.raises(ValueError, match="kind"):
        fit_gan(gan, torch.rand(10, 5, dtype=torch.float64), kind="wasserstein", epochs=1, progress=False)
    with pytest.raises(ValueError, match="k must be"):
        fit_gan(gan, torch.rand(10, 5, dtype=torch.float64), k=0, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"z must be \[batch, 3\]"):
        gan.generate(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="parzen_log_likelihood"):
        gan.log_prob(torch.zeros(2, 5))


def test_philox_dropout():
    from dgm_fast.models.gan import Dropout

    x = torch.ones(400, 250, dtype=torch.float64, requires_grad=True)
    drop = Dropout(0.3, generator=torch.Generator().manual_seed(9))
    y = drop(x)
    kept = (y != 0).double()
    # keep rate 0.7 within 4 standard errors (100,000 draws); kept elements scaled by 1 / 0.7
    assert abs(kept.mean().item() - 0.7) < 4 * (0.21 / 1e5) ** 0.5
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(grad, y.detach())  # d(x * mask / 0.7) / dx = mask / 0.7, here y itself
    again = Dropout(0.3, generator=torch.Generator().manual_seed(9))(x)
    assert torch.equal(again, y)  # the same seed, the same mask
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="p must lie"):
        Dropout(1.0)
