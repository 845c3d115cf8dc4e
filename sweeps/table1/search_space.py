"""Table 1's space for adaptive search (Optuna), at a profile's widths and training length: the shape axes and
dropout of every family, and the choices (or, with ``--continuous``, the ranges) its family entry gives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ebgan_core.table1.families import DROPOUT, FAMILIES, N_LAYERS, SIZES_D, SIZES_G
from sweeps.table1.grids import PROFILES

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


def search_grids() -> tuple[str, ...]:
    """Adaptive search runs on one family at a time: ``--grid`` names it."""
    return FAMILIES.names()


def optuna_space(grid: str, profile: str, continuous: bool = False) -> dict[str, BaseDistribution]:
    """Categorical Table 1 axes and the family's own choices; with ``continuous``: its ranges instead (the GAN's:
    log-uniform lr; EBGAN's: lr, margin and pT weight)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution  # here: training needs no Optuna

    family, divisor = FAMILIES[grid], PROFILES[profile].width_divisor
    space: dict[str, BaseDistribution] = {
        "n_layer_g": CategoricalDistribution(N_LAYERS),
        "n_layer_d": CategoricalDistribution(N_LAYERS),
        "size_g": CategoricalDistribution(tuple(s // divisor for s in SIZES_G)),
        "size_d": CategoricalDistribution(tuple(s // divisor for s in SIZES_D)),
        "dropout_d": CategoricalDistribution(DROPOUT),
    }
    space.update({name: CategoricalDistribution(choices) for name, choices in family.search.items()})
    if continuous:
        space.update({name: FloatDistribution(low, high, log=log)
                      for name, (low, high, log) in family.search_ranges.items()})
    return space


def search_base(grid: str, profile: str, seed: int, precision: str | None = None) -> dict[str, Any]:
    """The config fields the searcher does not choose: family, the profile's length, samples and precision
    (``precision`` overrides it), Table 1 fixes."""
    settings = PROFILES[profile]
    return {"family": FAMILIES[grid].name, "steps": settings.steps, "batch_size": settings.batch_size,
            "score_samples": settings.score_samples, "seed": seed, "optim_d": "adam", "optim_g": "adam",
            "lr": 0.001, "precision": precision or settings.precision}
