"""Speed settings of the training step: mixed precision, channels-last memory, ``torch.compile``.

- Mixed precision (Micikevicius et al., "Mixed Precision Training", ICLR 2018): ``--amp`` autocasts
  the network's forward pass. bfloat16 is the default where the hardware has it (CUDA compute
  capability ≥ 8.0, and the CPU): its exponent range is float32's, so no loss scaling is needed.
  Elsewhere float16 with a ``GradScaler``, which scales the loss so small gradients do not flush
  to zero. The loss itself always runs in float32 (the training loop casts the embeddings), so
  margins, exponentials of proxy losses and mined distances are not computed at 8 bits of mantissa.
- ``channels_last`` (NHWC) lets cuDNN use its tensor-core convolution kernels without transposes;
  applied to the network's weights, and to each input through a forward pre-hook so the training
  loop and evaluation need not know. Only on CUDA: on a CPU it is not reliably faster.
- ``--compile``: ``torch.compile`` of the (DDP-wrapped) network. The saved state dicts stay those of
  the plain network (main.py saves ``model``, not the compiled wrapper).
"""

from __future__ import annotations

import importlib
import shutil
from typing import Literal

import torch
from torch import nn

AmpChoice = Literal["auto", "bf16", "fp16"]
AMP_CHOICES = ("auto", "bf16", "fp16")


class AccelerationError(ValueError):
    """A speed setting this machine cannot honour; the message says what to change."""


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu"


def amp_dtype(device: torch.device, choice: str = "auto") -> torch.dtype:
    """The autocast dtype of ``--amp`` on ``device``: bf16 where supported, else fp16."""
    if choice not in AMP_CHOICES:
        raise AccelerationError(
            f"--amp_dtype {choice!r} is not allowed; choose one of: " + ", ".join(AMP_CHOICES)
        )
    if choice == "fp16":
        if device.type != "cuda":
            raise AccelerationError("--amp_dtype fp16 needs a CUDA GPU; use bf16 on the CPU")
        return torch.float16
    if choice == "bf16" and not bf16_supported(device):
        raise AccelerationError(
            f"--amp_dtype bf16 is not supported on {device} (CUDA compute "
            "capability 8.0 or newer needed); use --amp_dtype fp16"
        )
    return torch.bfloat16 if bf16_supported(device) else torch.float16


def grad_scaler(dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 autocast on CUDA; None for bf16, fp32 and the CPU."""
    if dtype == torch.float16 and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype`` (None: full precision)."""
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)


def _to_channels_last(module: nn.Module, args: tuple) -> tuple:
    x = args[0]
    if torch.is_tensor(x) and x.dim() == 4:
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return args


def use_channels_last(model: nn.Module, device: torch.device, enabled: bool = True) -> nn.Module:
    """Weights and inputs of ``model`` in NHWC on CUDA (the same module, changed in place)."""
    if enabled and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        model.register_forward_pre_hook(_to_channels_last)
    return model


def check_compile(enabled: bool, backend: str = "inductor") -> None:
    """Raise AccelerationError (one line) when ``--compile`` cannot work on this machine, so the
    run stops at start-up rather than at its first step."""
    if not enabled:
        return
    if not hasattr(torch, "compile"):
        raise AccelerationError("--compile needs torch >= 2.0; drop --compile")
    try:
        importlib.import_module("torch._inductor")  # the default backend
    except Exception as err:
        raise AccelerationError(
            f"--compile is unavailable here ({type(err).__name__}: {err}); drop --compile"
        ) from None
    if backend == "inductor" and not (
        shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    ):
        raise AccelerationError(
            "--compile needs a C++ compiler (g++/clang++) on the PATH for "
            "torch's inductor; install one or drop --compile"
        )


def compile_model(model: nn.Module, enabled: bool = False, **kwargs) -> nn.Module:
    """``torch.compile(model)`` when enabled (checked first by :func:`check_compile`)."""
    if not enabled:
        return model
    check_compile(True, kwargs.get("backend", "inductor"))
    return torch.compile(model, **kwargs)


def describe(
    dtype: torch.dtype | None, channels_last: bool, compiled: bool, device: torch.device
) -> str:
    """One line for the run's log: what the step runs with."""
    amp = {
        None: "fp32",
        torch.bfloat16: "bf16 autocast",
        torch.float16: "fp16 autocast + GradScaler",
    }[dtype]
    layout = "channels_last" if channels_last and device.type == "cuda" else "NCHW"
    return f"{amp}, {layout}{', compiled' if compiled else ''}"
