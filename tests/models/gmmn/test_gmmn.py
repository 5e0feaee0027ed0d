"""GMMN: the loss and its gradient against the plain-PyTorch MMD by autograd, training that moves
a generator onto a known distribution, GMMN+AE's autoencoder, a bit-exact resume, files and bad
input."""

import pytest
import torch

from dgm_fast import GMMN, reference
from dgm_fast.models.gmmn import Autoencoder, fit_autoencoder, fit_gmmn, gmmn_loss


def test_loss_and_gradient_equal_the_reference_mmd_by_autograd():
    gmmn = GMMN(4, n_latent=3, hidden_sizes=[8, 8], generator_rng=torch.Generator().manual_seed(0), dtype=torch.float64)
    batch = torch.rand(13, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    bw = (0.5, 2.0)
    loss = gmmn_loss(gmmn, batch, bw, generator=torch.Generator().manual_seed(2))
    z = gmmn.latent(13, generator=torch.Generator().manual_seed(2))  # the same draws
    want = reference.mmd.mmd(gmmn.generator(z), batch, bw)
    torch.testing.assert_close(loss, want, rtol=1e-12, atol=1e-14)
    params = list(gmmn.parameters())
    for a, b in zip(torch.autograd.grad(loss, params), torch.autograd.grad(want, params)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-13)


def test_training_matches_a_shifted_gaussian():
    # Data N((2, -1), diag(0.25, 1)); a linear-output GMMN starts near the origin. After
    # training, its samples' means are within 0.15 and standard deviations within 0.15 of the
    # data's (10,000 samples: sampling error about 0.01).
    g = torch.Generator().manual_seed(3)
    data = torch.randn(4000, 2, generator=g) * torch.tensor([0.5, 1.0]) + torch.tensor([2.0, -1.0])
    gmmn = GMMN(2, n_latent=2, hidden_sizes=[32, 32], output="linear", generator_rng=torch.Generator().manual_seed(4))
    history = fit_gmmn(gmmn, data, bandwidths=(0.25, 0.5, 1.0, 2.0, 4.0), epochs=40, batch_size=400, lr=3e-3,
                       progress=False, generator=torch.Generator().manual_seed(5))
    assert history[-1]["mmd2"] < 0.05 * history[0]["mmd2"]
    samples = gmmn.sample(10000, generator=torch.Generator().manual_seed(6))
    assert (samples.mean(0) - torch.tensor([2.0, -1.0])).abs().max() < 0.15
    assert (samples.std(0) - torch.tensor([0.5, 1.0])).abs().max() < 0.15


def test_autoencoder_learns_to_reconstruct():
    g = torch.Generator().manual_seed(7)
    prototypes = (torch.rand(4, 16, generator=g) > 0.5).float()
    data = prototypes[torch.randint(4, (800,), generator=g)]
    ae = Autoencoder([16, 12, 2], generator_rng=torch.Generator().manual_seed(8))
    history = fit_autoencoder(ae, data, epochs=60, batch_size=50, lr=1e-2, progress=False,
                              generator=torch.Generator().manual_seed(9))
    assert history[-1]["reconstruction"] < 0.25 * history[0]["reconstruction"]
    with torch.no_grad():
        recon = ae.decode(ae.encode(prototypes))
        codes = ae.encode(prototypes)
    assert ((recon > 0.5).float() == prototypes).all()
    assert codes.shape == (4, 2) and ((codes > 0) & (codes < 1)).all()


def test_resume_is_bit_exact(tmp_path):
    data = torch.rand(90, 3, generator=torch.Generator().manual_seed(10))

    def model():
        return GMMN(3, n_latent=2, hidden_sizes=[5], generator_rng=torch.Generator().manual_seed(11))

    whole = model()
    fit_gmmn(whole, data, bandwidths=(1.0,), epochs=3, batch_size=20, progress=False,
             generator=torch.Generator().manual_seed(12))
    first = model()
    fit_gmmn(first, data, bandwidths=(1.0,), epochs=1, batch_size=20, progress=False,
             generator=torch.Generator().manual_seed(12), checkpoint=tmp_path / "ck.pt")
    resumed = model()
    fit_gmmn(resumed, data, bandwidths=(1.0,), epochs=3, batch_size=20, progress=False,
             generator=torch.Generator().manual_seed(12), checkpoint=tmp_path / "ck.pt")
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    whole.save(tmp_path / "gmmn.pt")
    back = GMMN.load(tmp_path / "gmmn.pt")
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), back.state_dict().values()))


def test_bad_input():
    gmmn = GMMN(3, n_latent=2, hidden_sizes=[5])
    with pytest.raises(ValueError, match=r"data must be \[rows, 3\]"):
        fit_gmmn(gmmn, torch.rand(10, 4), progress=False)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        fit_gmmn(gmmn, torch.rand(10, 3), batch_size=1, progress=False)
    with pytest.raises(ValueError, match="positive and finite"):
        fit_gmmn(gmmn, torch.rand(10, 3), bandwidths=(1.0, 0.0), epochs=1, batch_size=5, progress=False)
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_gmmn(gmmn, torch.full((10, 3), float("inf")), progress=False)
    with pytest.raises(ValueError, match="hidden_sizes"):
        GMMN(3, hidden_sizes=[])
    with pytest.raises(TypeError, match="parzen_log_likelihood"):
        gmmn.log_prob(torch.zeros(2, 3))
    ae = Autoencoder([3, 2])
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        fit_autoencoder(ae, torch.full((10, 3), 2.0), progress=False)
