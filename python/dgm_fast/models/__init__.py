"""The models, one package each: the ``nn.Module`` (``model.py``) and the training algorithms that
belong to it (``train.py``)."""

from .dbm import DBM
from .dbn import DBN
from .gan import GAN
from .gmmn import GMMN
from .helmholtz import HelmholtzMachine
from .rbm import RBM
from .sbn import SBN
from .vae import VAE

__all__ = ["DBM", "DBN", "GAN", "GMMN", "HelmholtzMachine", "RBM", "SBN", "VAE"]
