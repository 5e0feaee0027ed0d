"""The models, one package each: the ``nn.Module`` (``model.py``) and the training algorithms that
belong to it (``train.py``)."""

from .dbm import DBM
from .dbn import DBN
from .rbm import RBM

__all__ = ["DBM", "DBN", "RBM"]
