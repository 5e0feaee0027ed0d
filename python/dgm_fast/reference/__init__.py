"""Plain-PyTorch definitions of every dgm_fast op, one module per native family (mirroring
:mod:`dgm_fast.ops`): slow, obvious, and what the tests hold the native kernels to. Random ops
take their random words explicitly, so that a test can feed a reference the very words the
native op drew (:func:`dgm_fast.ops.uniform_bits` with the same seed)."""

from . import bernoulli, dbm, elbo, gan, mmd, nade, parzen, rbm, samplers

__all__ = ["bernoulli", "dbm", "elbo", "gan", "mmd", "nade", "parzen", "rbm", "samplers"]
