"""The argument checks of the native kernels, spelled in Python for the fake kernels.

Each function here mirrors one check in ``csrc/<family>/<family>_checks.h`` (or
``csrc/common/checks.h``): the same condition, the same exception class (TORCH_CHECK_TYPE is a
TypeError, TORCH_CHECK_VALUE a ValueError, TORCH_CHECK a RuntimeError) and the same message, so
that ``torch.compile`` and meta tensors reject exactly what the eager kernels reject.
``tests/ops/test_fake_kernels.py`` holds the two to each other on every bad input it knows.
The device check also keeps a meta tensor among CPU tensors from silently routing the whole call
to the fake kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# c10's names of the scalar types, as the native messages print them
_CPP_DTYPE = {
    torch.float32: "Float", torch.float64: "Double", torch.float16: "Half", torch.bfloat16: "BFloat16",
    torch.int64: "Long", torch.int32: "Int", torch.int16: "Short", torch.int8: "Char", torch.uint8: "Byte",
    torch.bool: "Bool", torch.complex64: "ComplexFloat", torch.complex128: "ComplexDouble",
    torch.uint32: "UInt32", torch.uint64: "UInt64", torch.uint16: "UInt16",
}
FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def dtype_name(dtype: torch.dtype) -> str:
    return _CPP_DTYPE.get(dtype, str(dtype))


def sizes(t: torch.Tensor) -> str:
    """A shape as c10 prints one: ``[4, 3]``."""
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def doubles(values: Sequence[float]) -> str:
    """A list of doubles as c10 prints one: ``[1, -0.5]``."""
    return "[" + ", ".join(format(v, "g") for v in values) + "]"


def check_type(cond: bool, message) -> None:
    torch._check_type(cond, message)


def check_value(cond: bool, message) -> None:
    torch._check_value(cond, message)


def check_float_dtype(t: torch.Tensor, op: str, arg: str) -> None:
    check_type(t.dtype in FLOAT_DTYPES,
               lambda: f"{op}: {arg} must be float32, float64, bfloat16 or float16, got {dtype_name(t.dtype)}")


def check_same_device(a: torch.Tensor, b: torch.Tensor, op: str, name_a: str, name_b: str) -> None:
    torch._check(
        a.device == b.device,
        lambda: f"{op}: {name_a} is on {a.device} but {name_b} is on {b.device}; "
        "move both to the same device",
    )


def check_generator(generator: torch.Generator | None, tensor: torch.Tensor | None, op: str) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{op}: generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator is not None and tensor is not None and generator.device.type != tensor.device.type:
        raise ValueError(
            f"{op}: the generator is on {generator.device} but the input is on "
            f"{tensor.device}; pass a torch.Generator(device='{tensor.device.type}')"
        )


def check_choice(value: str, choices: tuple[str, ...], op: str, what: str) -> None:
    if value not in choices:
        raise ValueError(f"{op}: {what} must be one of {', '.join(map(repr, choices))}, got {value!r}")
