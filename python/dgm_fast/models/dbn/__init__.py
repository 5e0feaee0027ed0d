"""Deep belief nets: the module (:mod:`.model`), greedy layer-wise pretraining (:mod:`.train`) and
up-down fine-tuning (:mod:`.finetune`)."""

from .finetune import delta_rule_gradients, fine_tune_dbn, up_down_gradients
from .model import DBN
from .train import pretrain_dbn

__all__ = ["DBN", "delta_rule_gradients", "fine_tune_dbn", "pretrain_dbn", "up_down_gradients"]
