"""The studies a sweep can run, and how their configs are packed into stacked groups.

- ``table1``: the MNIST grid search of Table 1 and Fig. 9 (``sweeps.table1``).
- ``table2``: the semi-supervised EBGAN-LN study of Table 2 (``sweeps.table2``).
A user's grid file (``sweeps.grid_file``) is a grid of either study's configs.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable

from ebgan_core.table1.config import TrialConfig
from ebgan_core.table2.config import LadderConfig
from sweeps.projection import sweep_flops
from sweeps.study import Study
from sweeps.table1.study import TABLE1
from sweeps.table2.study import TABLE2

Config = TrialConfig | LadderConfig
# Groups per round of ``in_seeded_random_rounds``: 4 per worker on this 2-core machine's 2 one-CPU workers.
ROUND_SIZE = 8
STUDIES: dict[str, Study] = {study.name: study for study in (TABLE1, TABLE2)}


def study_of_grid(grid: str) -> Study:
    """The study whose grids include ``grid``; an unknown grid is an error naming every known one."""
    for study in STUDIES.values():
        if grid in study.grids():
            return study
    known = [g for s in STUDIES.values() for g in s.grids()]
    raise ValueError(f"unknown grid {grid!r}; use one of {', '.join(known)}, or a grid file (.toml)")


def search_study(grid: str) -> Study:
    """The study adaptive search on ``grid`` belongs to; a grid no study searches is an error naming those that do."""
    for study in STUDIES.values():
        if grid in study.search_grids():
            return study
    searchable = [g for s in STUDIES.values() for g in s.search_grids()]
    raise ValueError(f"adaptive search runs on one family or model: --grid must be one of {', '.join(searchable)}, "
                     f"got {grid!r}")


def study_of_config(config: Config) -> Study:
    """The study a config belongs to."""
    return next(study for study in STUDIES.values() if isinstance(config, study.config_type))


def pack_groups(configs: Iterable[Config], max_members: int) -> list[list[Config]]:
    """Configs sharing a group key, in the study's member order, in chunks of at most ``max_members``, costliest
    groups first (the projection's FLOPs of training and a final score)."""
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    by_key: dict[tuple, list[Config]] = defaultdict(list)
    for config in configs:
        by_key[(type(config).__name__, config.group_key())].append(config)
    ordered = [sorted(members, key=study_of_config(members[0]).member_order) for members in by_key.values()]
    groups = [members[i : i + max_members] for members in ordered for i in range(0, len(members), max_members)]
    return sorted(groups, key=lambda group: -sweep_flops(group, score_every=0))


def in_seeded_random_order(groups: list[list[Config]], seed: str) -> list[list[Config]]:
    """The groups in a random order drawn from ``seed`` (the sweep's name) and each group's key, so that a sweep
    stopped, or still running, at any point holds an unbiased sample of its grid; the order is the same on every
    rerun, whatever is stored already (chunks of one key keep their order)."""
    def rank(group: list[Config]) -> str:
        return hashlib.sha256(f"{seed}|{type(group[0]).__name__}|{group[0].group_key()!r}".encode()).hexdigest()

    return sorted(groups, key=rank)


def in_seeded_random_rounds(groups: list[list[Config]], seed: str, cost: Callable[[list[Config]], float],
                            round_size: int = ROUND_SIZE) -> list[list[Config]]:
    """``in_seeded_random_order`` cut into rounds of ``round_size`` groups, each round costliest first (by ``cost``):
    a sweep stopped between rounds holds an unbiased sample of its grid, and the workers end each round, the sweep's
    last above all, with its cheapest groups instead of waiting on a costly one drawn late (longest-first list
    scheduling: 48 configs in 8 groups on 2 workers spent 14% of their worker-time idle in the random order)."""
    ordered = in_seeded_random_order(groups, seed)
    return [group for start in range(0, len(ordered), round_size)
            for group in sorted(ordered[start:start + round_size], key=cost, reverse=True)]
