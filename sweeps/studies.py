"""Studies as data: each names its grids, its profiles, how its configs are built and packed, what its workers need
and which worker trains a group. The driver, the store and the analysis handle every study the same way.

- ``table1``: the MNIST grid search of Table 1 and Fig. 9 (``sweeps.grids``).
- ``table2``: the semi-supervised EBGAN-LN study of Table 2 (``sweeps.table2_grids``).
A user's grid file (``sweeps.grid_file``) is a grid of either study's configs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ebgan_core.classifier import load_classifier
from ebgan_core.config import TrialConfig
from ebgan_core.configs import CONFIG_TYPES
from ebgan_core.data import MNIST_ARRAY_SHA256, load_mnist_uint8
from ebgan_core.ladder_config import LadderConfig
from sweeps import grids, table2_grids, workers

Config = TrialConfig | LadderConfig


@dataclass(frozen=True)
class Study:
    """One study: ``configs(grid, profile, seeds, precision)`` builds a grid; ``worker(members, **inputs)`` trains
    one group inside a Ray worker from the ``inputs()`` the driver ships once to every worker."""

    name: str
    config_type: type[TrialConfig] | type[LadderConfig]
    grids: tuple[str, ...]
    profiles: Mapping[str, Any]  # name -> profile (with max_members and score_every)
    default_profile: str
    configs: Callable[[str, str, Sequence[int] | None, str | None], list[Config]]
    group_cost: Callable[[Config], float]  # larger groups are started first
    inputs: Callable[[], dict[str, Any]]
    worker: Callable[..., list[dict[str, Any]]]


def _table1_configs(grid: str, profile: str, seeds: Sequence[int] | None, precision: str | None) -> list[Config]:
    return grids.grid(grid, profile, (0,) if seeds is None else seeds, precision)


def _table1_inputs() -> dict[str, Any]:
    judge, judge_meta = load_classifier()
    # load_mnist_uint8 has verified this content, so its known checksum names it (no re-hash of 47 MB).
    return {"images": load_mnist_uint8()["train_images"], "images_sha": MNIST_ARRAY_SHA256["train_images"],
            "judge_state": {k: v.cpu() for k, v in judge.state_dict().items()},
            "judge_sha": judge_meta["weights_sha256"]}


def _table2_configs(grid: str, profile: str, seeds: Sequence[int] | None, precision: str | None) -> list[Config]:
    if precision is not None:
        raise ValueError("--precision applies to Table 1 grids only; fix: leave it out for the semi-supervised grids")
    return table2_grids.ladder_grid(grid, profile, seeds)


def _table2_inputs() -> dict[str, Any]:
    arrays = load_mnist_uint8()
    return {"arrays": arrays, "arrays_sha": "+".join(MNIST_ARRAY_SHA256[name] for name in sorted(arrays))}


STUDIES = {
    "table1": Study("table1", CONFIG_TYPES["table1"], grids.GRID_NAMES, grids.PROFILES, "demo", _table1_configs,
                    lambda c: c.n_layer_g * c.size_g ** 2 + c.n_layer_d * c.size_d ** 2, _table1_inputs,
                    workers.train_table1_members),
    "table2": Study("table2", CONFIG_TYPES["table2"], table2_grids.TABLE2_GRIDS, table2_grids.LADDER_PROFILES, "cpu",
                    _table2_configs,
                    table2_grids.ladder_group_cost, _table2_inputs, workers.train_table2_members),
}


def study_of_grid(grid: str) -> Study:
    """The study whose grids include ``grid``; an unknown grid is an error naming every known one."""
    for study in STUDIES.values():
        if grid in study.grids:
            return study
    known = [g for s in STUDIES.values() for g in s.grids]
    raise ValueError(f"unknown grid {grid!r}; use one of {', '.join(known)}, or a grid file (.toml)")


def study_of_config(config: Config) -> Study:
    """The study a config belongs to."""
    return next(study for study in STUDIES.values() if isinstance(config, study.config_type))


def pack_groups(configs: Iterable[Config], max_members: int) -> list[list[Config]]:
    """Configs sharing a group key, in chunks of at most ``max_members``, costliest first."""
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    by_key: dict[tuple, list[Config]] = defaultdict(list)
    for config in configs:
        by_key[(type(config).__name__, config.group_key())].append(config)
    groups = [members[i : i + max_members] for members in by_key.values()
              for i in range(0, len(members), max_members)]
    return sorted(groups, key=lambda g: -study_of_config(g[0]).group_cost(g[0]))
