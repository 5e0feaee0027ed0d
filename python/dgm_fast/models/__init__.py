"""The models, one package each: the ``nn.Module`` (``model.py``) and the training algorithms that
belong to it (``train.py``)."""

from .dbm import DBM
from .dbn import DBN
from .gan import GAN
from .gmmn import GMMN
from .helmholtz import HelmholtzMachine
from .made import MADE
from .nade import NADE
from .rbm import RBM
from .sbn import SBN
from .vae import VAE

__all__ = ["DBM", "DBN", "GAN", "GMMN", "HelmholtzMachine", "MADE", "NADE", "RBM", "SBN", "VAE"]
