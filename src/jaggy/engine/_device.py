"""Which device a run uses, and whether the asked options can work on it (checked before any
work starts)."""

from __future__ import annotations

import os
import shutil

import torch

from ..errors import ArgumentError
from ._config import AuditConfig
from ._distributed import Ranks


def resolve_device(name: str, ranks: Ranks | None = None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' -> a torch.device that exists here.
    Under torchrun a bare 'cuda' means this process's GPU (cuda:LOCAL_RANK)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArgumentError(f"unknown --device '{name}'; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArgumentError("--device cuda: no CUDA device is available here; use --device cpu")
        if device.index is None and ranks is not None and ranks.distributed:
            device = torch.device("cuda", ranks.local_rank)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ArgumentError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ArgumentError("--device mps: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ArgumentError(f"--device {name}: unsupported; use cpu, cuda, cuda:N, mps or auto")
    return device


def check_device_options(config: AuditConfig, device: torch.device) -> None:
    """Refuse, with the reason and an alternative, options that cannot work on `device`."""
    if config.dtype == "float16" and device.type == "cpu":
        raise ArgumentError("--dtype float16 needs a GPU; on the CPU use float32 or bfloat16")
    if config.dtype == "bfloat16" and device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise ArgumentError(
                f"--dtype bfloat16: {torch.cuda.get_device_name(device)} does not support "
                "bfloat16; use float16"
            )
    if config.compile:
        problem = compile_problem(device)
        if problem:
            raise ArgumentError(f"--compile cannot work here: {problem}; run without --compile")


def compile_problem(device: torch.device) -> str | None:
    """Why `torch.compile` cannot run on `device` (None when it can)."""
    try:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return "torch.compile does not support this Python version"
    except Exception as exc:  # an exotic build without dynamo
        return f"torch.compile is unavailable ({type(exc).__name__})"
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:
            return "triton is not installed"
        if not has_triton():
            return "triton is not installed or does not support this GPU"
    elif device.type == "cpu":
        compiler = os.environ.get("CXX") or "c++"
        if not any(shutil.which(c) for c in (compiler, "g++", "clang++")):
            return "no C++ compiler found (torch.compile on the CPU needs g++ or clang++)"
    elif device.type == "mps":
        return "torch.compile is not supported on MPS in jaggy"
    return None
