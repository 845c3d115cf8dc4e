"""Table 2 as a study: its grids and profiles, what every worker needs (the MNIST arrays), how a worker trains a
group, and the adaptive-search space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ebgan_core.data import MNIST_ARRAY_SHA256, load_mnist_uint8
from ebgan_core.table2.config import LadderConfig
from ebgan_core.table2.pi_mnist import pi_mnist_from_arrays
from ebgan_core.table2.train import train_ladder_group
from sweeps.study import Study
from sweeps.table2 import grids, search_space


def configs(grid: str, profile: str, seeds: Sequence[int] | None, precision: str | None,
            samples: int | None = None) -> list[LadderConfig]:
    """The configs of a Table 2 grid at ``profile`` (the profile's seeds unless ``seeds`` says otherwise)."""
    grids.refuse_precision(precision)
    if samples is not None:
        raise ValueError(f"--samples sizes a sampled grid (lucic); Table 2's grid {grid!r} is not one")
    return grids.ladder_grid(grid, profile, seeds)


def inputs() -> dict[str, Any]:
    """What the driver ships once to every worker: the four MNIST arrays (uint8 images, labels)."""
    arrays = load_mnist_uint8()
    return {"arrays": arrays, "arrays_sha": "+".join(MNIST_ARRAY_SHA256[name] for name in sorted(arrays))}


def prepare(arrays: dict[str, np.ndarray], arrays_sha: str, device: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Inside a worker: the training arguments (permutation-invariant MNIST); rows record nothing more."""
    return (pi_mnist_from_arrays(arrays),), {}


def member_order(config: LadderConfig) -> tuple:
    """Members of one learning rate (and generator learning rate) next to each other."""
    return config.lr, config.lr_g


TABLE2 = Study(
    name="table2", config_type=LadderConfig, grids=grids.grid_names, profiles=grids.LADDER_PROFILES,
    default_profile="cpu", configs=configs, member_order=member_order, inputs=inputs, prepare=prepare,
    train=train_ladder_group, score="test_error", higher_is_better=False, search_grids=search_space.search_grids,
    search_space=search_space.optuna_space, search_base=search_space.search_base,
)
