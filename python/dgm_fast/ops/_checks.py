"""Checks shared by the Python side of the ops (wrappers and fake kernels).

The native kernels check the same things; the fake kernels need the device check because a meta
tensor among CPU tensors would otherwise route the whole call to them and return meta tensors.
"""

from __future__ import annotations

import torch


def check_same_device(a: torch.Tensor, b: torch.Tensor, op: str, name_a: str, name_b: str) -> None:
    torch._check(
        a.device == b.device,
        lambda: f"{op}: {name_a} is on {a.device} but {name_b} is on {b.device}; "
        "move both to the same device",
    )


def check_generator(generator: torch.Generator | None, tensor: torch.Tensor, op: str) -> None:
    if generator is not None and generator.device.type != tensor.device.type:
        raise ValueError(
            f"{op}: the generator is on {generator.device} but the input is on "
            f"{tensor.device}; pass a torch.Generator(device='{tensor.device.type}')"
        )


def check_choice(value: str, choices: tuple[str, ...], op: str, what: str) -> None:
    if value not in choices:
        raise ValueError(f"{op}: {what} must be one of {', '.join(map(repr, choices))}, got {value!r}")
