"""Table 1's space for adaptive search (Optuna), at a profile's widths and training length."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeps.table1.grids import DROPOUT, GAN_LRS, N_LAYERS, OPTIMIZERS, PROFILES, SIZES_D, SIZES_G

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

SEARCH_GRIDS = ("ebgan", "gan")


def optuna_space(grid: str, profile: str, continuous: bool = False) -> dict[str, BaseDistribution]:
    """Categorical Table 1 axes; with ``continuous``: log-uniform lr and, for EBGAN, margin and pT weight ranges."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution  # here: training needs no Optuna

    divisor = PROFILES[profile].width_divisor
    space: dict[str, BaseDistribution] = {
        "n_layer_g": CategoricalDistribution(N_LAYERS),
        "n_layer_d": CategoricalDistribution(N_LAYERS),
        "size_g": CategoricalDistribution(tuple(s // divisor for s in SIZES_G)),
        "size_d": CategoricalDistribution(tuple(s // divisor for s in SIZES_D)),
        "dropout_d": CategoricalDistribution(DROPOUT),
    }
    if grid == "gan":
        space["optim_d"] = CategoricalDistribution(OPTIMIZERS)
        space["optim_g"] = CategoricalDistribution(OPTIMIZERS)
        space["lr"] = (FloatDistribution(min(GAN_LRS), max(GAN_LRS), log=True) if continuous
                       else CategoricalDistribution(GAN_LRS))
    elif continuous:
        space["lr"] = FloatDistribution(1e-4, 1e-2, log=True)
        space["margin"] = FloatDistribution(1.0, 32.0)
        space["pt_weight"] = FloatDistribution(0.0, 0.3)
    return space


def search_base(grid: str, profile: str, seed: int, precision: str | None = None) -> dict[str, Any]:
    """The config fields the searcher does not choose: family, the profile's length, samples and precision
    (``precision`` overrides it), Table 1 fixes."""
    settings = PROFILES[profile]
    return {"family": grid, "steps": settings.steps, "batch_size": settings.batch_size,
            "score_samples": settings.score_samples, "seed": seed, "optim_d": "adam", "optim_g": "adam",
            "lr": 0.001, "margin": 10.0, "precision": precision or settings.precision}
