"""What a study is, as data: the driver, the store and the analysis handle every study through these fields.

Adding a study adds a ``Study`` (``sweeps/table1/study.py`` and ``sweeps/table2/study.py`` are the two) to
``sweeps.studies.STUDIES``; its core (``ebgan_core/<study>/``) gives the group runner a ``GroupModel``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ebgan_core.group import MemberResult
from ebgan_core.hashed_config import HashedConfig


@dataclass(frozen=True)
class Study:
    """One study: its configs and grids, its profiles, its workers' inputs, its trainer, its score and its
    adaptive-search space."""

    name: str  # stored with every trial: table1, table2
    config_type: type[HashedConfig]
    grids: Callable[[], tuple[str, ...]]  # its grids' names (families and plugins add grids)
    profiles: Mapping[str, Any]  # name -> profile (each with max_members and score_every)
    default_profile: str
    configs: Callable[[str, str, Sequence[int] | None, str | None, int | None], list[Any]]  # (grid, profile, seeds,
    # precision, samples: of a sampled grid, None: its default)
    member_order: Callable[[Any], tuple]  # members sort by it within a group: optimiser kind and learning rate, so
    # that consecutive members share them and the optimiser updates each run of them at once
    inputs: Callable[[], dict[str, Any]]  # driver side: what every worker needs, shipped once (names ending _sha
    # name the content, for the worker's cache)
    prepare: Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]  # worker side: (**inputs, device) -> (the
    # trainer's arguments after the configs, what every row records of them)
    train: Callable[..., list[MemberResult]]  # (configs, *arguments, device=, memory_budget=, checkpointing=,
    # score_steps=, progress=) -> one result per member
    score: str  # the score that ranks runs: i_prime (higher is better) or test_error (lower)
    higher_is_better: bool
    search_grids: Callable[[], tuple[str, ...]]  # grids adaptive search runs on
    search_space: Callable[[str, str, bool], dict[str, Any]]  # (grid, profile, continuous) -> Optuna distributions
    search_base: Callable[[str, str, int, str | None], dict[str, Any]]  # (grid, profile, seed, precision) -> fields

    @property
    def worst_score(self) -> float:
        """What a diverged or failed run reports to an adaptive search."""
        return 0.0 if self.higher_is_better else 100.0
