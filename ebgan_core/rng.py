"""Random streams derived from (seed, config hash): a member draws the same numbers alone or in any group."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from ebgan_core.hashed_config import HashedConfig

FIXED_Z_SEED = 20161111  # the fixed z of every sample grid: the same across members, configs and sweeps


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, via sha256 (stable across processes, unlike hash())."""
    text = ":".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def member_generators(config: HashedConfig, streams: Sequence[str], device: torch.device | str = "cpu"
                      ) -> dict[str, torch.Generator]:
    """One generator per named stream for this config and seed, seeded from (seed, config hash, stream name)."""
    base = config.config_hash()
    return {
        stream: torch.Generator(device=device).manual_seed(derive_seed(config.seed, base, stream))
        for stream in streams
    }


def draw_noise(
    generators: Sequence[torch.Generator],
    count: int,
    noise_dim: int,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """z ~ N(0, 1): [B, count, noise_dim], member b from its own generator (drawn in float32, then cast)."""
    return member_draws(generators, (count, noise_dim), device, dtype, torch.Tensor.normal_)


def member_draws(generators: Sequence[torch.Generator], shape: tuple[int, ...], device: torch.device | str,
                 dtype: torch.dtype, fill=torch.Tensor.uniform_) -> torch.Tensor:
    """[B, *shape] random numbers, member b's from ``generators[b]`` by ``fill`` (``Tensor.uniform_``: U[0, 1), or
    ``Tensor.normal_``), drawn in float32 and then cast: the numbers ``torch.rand`` / ``torch.randn`` would draw for
    the member alone, with no stacking copy."""
    draws = torch.empty(len(generators), *shape, device=device)
    for member, generator in enumerate(generators):
        fill(draws[member], generator=generator)
    return draws.to(dtype)


def fixed_noise(count: int, noise_dim: int) -> torch.Tensor:
    """The fixed z behind every sample grid (CPU float32 [count, noise_dim])."""
    return torch.randn(count, noise_dim, generator=torch.Generator().manual_seed(FIXED_Z_SEED))


def real_batches(data: torch.Tensor, batch_size: int, data_seed: int, skip: int = 0):
    """Endless real batches from ``data`` [N, ...]: a fresh permutation each epoch (last partial batch dropped).

    ``skip`` batches are passed over without being drawn: a run resumed at step ``skip`` sees the batches an
    uninterrupted run would (each epoch's order is derived from (``data_seed``, epoch) alone)."""
    per_epoch = data.shape[0] // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} is larger than the {data.shape[0]} training images")
    epoch, first = divmod(skip, per_epoch)
    while True:
        order = torch.randperm(data.shape[0], generator=torch.Generator().manual_seed(derive_seed(data_seed, epoch)))
        order = order.to(data.device)
        for start in range(first * batch_size, per_epoch * batch_size, batch_size):
            yield data[order[start : start + batch_size]]
        epoch, first = epoch + 1, 0
