"""manifest.json: everything needed to trust and reproduce a run."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime

import torch

from .. import __version__


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "jaggy": __version__,
        "torch": torch.__version__,
    }
    for name in ("torchvision", "timm", "numpy", "pyarrow", "PIL"):
        try:
            module = __import__(name)
            versions[name if name != "PIL" else "pillow"] = getattr(module, "__version__", "?")
        except ImportError:
            versions[name] = "not installed"
    return versions


def device_description(device: torch.device) -> dict:
    info = {
        "type": device.type,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def command_line() -> list[str]:
    return list(sys.argv)
