"""Table 2's space for adaptive search (Optuna): the ladder's or EBGAN-LN's settings at a profile's lengths, widths
and first label count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeps.table2.grids import LADDER_PROFILES, LN_LRS, LN_RECON_WEIGHTS, grid_rows, refuse_precision

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

SEARCH_GRIDS = ("ln", "ebgan-ln")


def optuna_space(grid: str, profile: str, continuous: bool = False) -> dict[str, BaseDistribution]:
    """LN: Appendix D's reconstruction weights and learning rates (scaled as the profile scales them); with
    ``continuous``, log-uniform over their ranges. EBGAN-LN: both learning rates and the margin, log-uniform."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution  # here: training needs no Optuna

    scale = LADDER_PROFILES[profile].lr_scale
    lrs = tuple(lr * scale for lr in LN_LRS)
    if grid == "ebgan-ln":
        return {"lr": FloatDistribution(min(lrs), max(lrs), log=True),
                "lr_g": FloatDistribution(min(lrs), max(lrs), log=True),
                "margin": FloatDistribution(2.0, 64.0, log=True)}
    if continuous:
        return {"recon_weight": FloatDistribution(min(LN_RECON_WEIGHTS), max(LN_RECON_WEIGHTS), log=True),
                "lr": FloatDistribution(min(lrs), max(lrs), log=True)}
    return {"recon_weight": CategoricalDistribution(LN_RECON_WEIGHTS), "lr": CategoricalDistribution(lrs)}


def search_base(grid: str, profile: str, seed: int, precision: str | None = None) -> dict[str, Any]:
    """The config fields the searcher does not choose: the grid's first config at the profile's lengths, widths,
    batch-norm samples and first label count (the searcher's choices replace its own)."""
    refuse_precision(precision)
    settings = LADDER_PROFILES[profile]
    return settings.size(grid_rows(grid)[0], settings.labels[0], seed).to_dict()
