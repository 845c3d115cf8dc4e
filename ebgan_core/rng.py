"""Random streams derived from (seed, config hash): a member draws the same numbers alone or in any group."""

from __future__ import annotations

import hashlib

import torch

from ebgan_core.config import TrialConfig

STREAMS = ("init", "noise", "dropout", "score")
FIXED_Z_SEED = 20161111  # the fixed z of every sample grid: the same across members, configs and sweeps


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, via sha256 (stable across processes, unlike hash())."""
    text = ":".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def member_generators(config: TrialConfig, device: torch.device | str = "cpu") -> dict[str, torch.Generator]:
    """One generator per stream for this config and seed."""
    base = config.config_hash()
    return {
        stream: torch.Generator(device=device).manual_seed(derive_seed(config.seed, base, stream))
        for stream in STREAMS
    }


def fixed_noise(count: int, noise_dim: int) -> torch.Tensor:
    """The fixed z behind every sample grid (CPU float32 [count, noise_dim])."""
    return torch.randn(count, noise_dim, generator=torch.Generator().manual_seed(FIXED_Z_SEED))


def real_batches(data: torch.Tensor, batch_size: int, data_seed: int):
    """Endless real batches from ``data`` [N, ...]: a fresh permutation each epoch (last partial batch dropped)."""
    per_epoch = data.shape[0] // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} is larger than the {data.shape[0]} training images")
    epoch = 0
    while True:
        order = torch.randperm(data.shape[0], generator=torch.Generator().manual_seed(derive_seed(data_seed, epoch)))
        order = order.to(data.device)
        for start in range(0, per_epoch * batch_size, batch_size):
            yield data[order[start : start + batch_size]]
        epoch += 1
