"""Table 2's space for adaptive search (Optuna): the ladder's or EBGAN-LN's settings at a profile's lengths, widths
and first label count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ebgan_core.table2.families import LADDER_FAMILIES
from sweeps.table2.grids import LADDER_PROFILES, grid_rows, refuse_precision

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

LEARNING_RATES = ("lr", "lr_g")  # scaled as the profile scales them


def search_grids() -> tuple[str, ...]:
    """The families with a search space: adaptive search runs on one at a time."""
    return tuple(f.name for f in LADDER_FAMILIES if f.search or f.search_ranges)


def optuna_space(grid: str, profile: str, continuous: bool = False) -> dict[str, BaseDistribution]:
    """The family's choices (LN: Appendix D's reconstruction weights and learning rates); with ``continuous``, or for
    a family without choices (EBGAN-LN: both learning rates and the margin), its log-uniform ranges. Learning rates
    are scaled as the profile scales them."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution  # here: training needs no Optuna

    family, scale = LADDER_FAMILIES[grid], LADDER_PROFILES[profile].lr_scale

    def scaled(name: str, value: float) -> float:
        return value * scale if name in LEARNING_RATES else value

    if continuous or not family.search:
        return {name: FloatDistribution(scaled(name, low), scaled(name, high), log=log)
                for name, (low, high, log) in family.search_ranges.items()}
    return {name: CategoricalDistribution(tuple(scaled(name, v) for v in choices))
            for name, choices in family.search.items()}


def search_base(grid: str, profile: str, seed: int, precision: str | None = None) -> dict[str, Any]:
    """The config fields the searcher does not choose: the grid's first config at the profile's lengths, widths,
    batch-norm samples and first label count (the searcher's choices replace its own)."""
    refuse_precision(precision)
    settings = LADDER_PROFILES[profile]
    return settings.size(grid_rows(grid)[0], settings.labels[0], seed).to_dict()
