"""Files of the models rebuilt from their constructor's shape arguments (SBN, Helmholtz machine,
VAE): one format for the model alone and for a training checkpoint."""

from __future__ import annotations

import os

import torch

from ..train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["ModelFile"]


class ModelFile:
    """Files of a model that is rebuilt from ``config()`` (its constructor's shape arguments):
    :meth:`save` writes the model alone, atomically; :meth:`load` reads that file or a training
    checkpoint of :func:`dgm_fast.train.fit` whose ``extra`` holds :meth:`checkpoint_header`."""

    def config(self) -> dict:
        """The constructor arguments that rebuild this model's shape."""
        return {"layer_sizes": self.layer_sizes}

    def checkpoint_header(self) -> dict:
        """What a checkpoint needs, besides the state dict, to rebuild the model from the file."""
        return {"model_class": type(self).__name__, "model_config": self.config()}

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model alone (atomically); :meth:`load` reads it back."""
        save_checkpoint(path, {**self.checkpoint_header(), "model": self.state_dict()})

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: torch.device | str = "cpu"):
        """The model from a file written by :meth:`save` or from a training checkpoint."""
        return cls.from_checkpoint(load_checkpoint(path), path).to(map_location)

    @classmethod
    def from_checkpoint(cls, state: dict, source: str | os.PathLike = "the checkpoint"):
        """The model from a checkpoint already read with :func:`dgm_fast.train.load_checkpoint`."""
        if not isinstance(state, dict) or state.get("model_class") != cls.__name__ or "model" not in state:
            got = state.get("model_class") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{source} does not hold a {cls.__name__} (model_class: {got!r})")
        dtype = next(iter(state["model"].values())).dtype
        model = cls(**state["model_config"], dtype=dtype)
        model.load_state_dict(state["model"])
        return model
