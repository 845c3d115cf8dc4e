"""How much memory a group may plan to use on a device: what is free there, and a group's share of it."""

from __future__ import annotations

import os

import torch

DEFAULT_MEMORY_SHARE = 0.8  # of the memory available on a device that training may plan to use


def available_bytes(device: torch.device | str) -> int:
    """Memory free for new tensors on ``device``: free CUDA memory, or the OS's MemAvailable on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_memory_budget(device: torch.device | str, share: float = 1.0) -> int:
    """Bytes a group may plan to use on ``device``: ``share`` (capped at 1) of ``DEFAULT_MEMORY_SHARE`` of
    the memory available there; ``share`` < 1 where the device is shared with other groups."""
    return int(min(1.0, share) * DEFAULT_MEMORY_SHARE * available_bytes(device))
