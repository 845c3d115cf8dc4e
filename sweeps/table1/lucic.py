"""Lucic et al.'s protocol ("Are GANs Created Equal?", NeurIPS 2018) as data: every registered loss on one
architecture, a random search of ``samples`` settings per loss over the study's wide ranges, then the best setting
of each loss over many seeds.

Phase 1 (``--grid lucic [--samples N]``): for each loss a family's entry lists (``Family.losses``: NS-GAN, MM-GAN,
LSGAN, WGAN, WGAN-GP, DRAGAN, BEGAN, hinge, EBGAN, EBGAN-PT, and any a plugin registers), N samples drawn from the
ranges google/compare_gan's ``src/params.py`` calls "wide" (``SHARED_RANGES`` and the loss's own), each sample from a
seed of its own (study seed, loss, index): the first 100 samples of a 200-sample study are the 100-sample study's,
and a rerun draws the same configs, so the study is a fixed, resumable, stackable list. All samples of a loss share
the layer shapes; they stack by discriminator updates and batch norm (the group key).

Phase 3 (``--best-of SWEEP --seeds 0,...,9``): each loss's best completed sample of the phase-1 sweep (lowest
Fréchet distance on the judge's features, the study's score) again over the seeds.

The architecture is Table 1's: the generator of Appendix C's best EBGAN (Fig. 4: 5 layers of 800) and a discriminator
of 3 layers of 1,024, one more than Fig. 4's, so that batch norm in D (a searched setting) has a layer to act on; the
profile divides the widths as for Table 1 (the laptop budget: 1/16, 3,500 generator updates). Optimiser: Adam for
both networks at the sampled learning rate and beta1 (beta2 0.999), as compare_gan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ebgan_core.rng import derive_seed
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import FAMILIES, Family, Range, Row

GRID = "lucic"
DEFAULT_SAMPLES = 100  # per loss, as the study
STUDY_SEED = "lucic-2018"  # the sampler's root seed
SHAPE = {"n_layer_g": 5, "size_g": 800, "n_layer_d": 3, "size_d": 1024}
# compare_gan's wide ranges shared by every loss: beta1 U[0, 1], lr log10 U[-5, -2], D updates {1..5}, BN in D.
SHARED_RANGES: dict[str, Range] = {"adam_beta1": (0.0, 1.0, False), "lr": (1e-5, 1e-2, True)}
DISC_ITERS = (1, 2, 3, 4, 5)
PHASE3_SEEDS = tuple(range(1, 11))  # phase 3's seeds unless --seeds says otherwise: 10 fresh ones (phase 1 chose each
# loss's best by its seed-0 run; that run again would carry the selection's luck into the mean)
PHASE3_MAX_MEMBERS = 10  # members per stacked group in phase 3: one setting's seeds
BATCH_NORM_D = (True, False)


def losses() -> list[tuple[str, Family, Mapping[str, Range]]]:
    """(loss, its family, the ranges of its own settings) of every registered family's losses."""
    return [(loss, family, ranges) for family in FAMILIES for loss, ranges in family.losses.items()]


def _draw(rng: np.random.Generator, spec: Range) -> float:
    low, high, log = spec
    if log:
        return float(10 ** rng.uniform(math.log10(low), math.log10(high)))
    return float(rng.uniform(low, high))


def sample_row(loss: str, family: Family, ranges: Mapping[str, Range], index: int) -> Row:
    """Sample ``index`` of ``loss``: the shared settings, then the loss's own, from the sample's own seed."""
    rng = np.random.default_rng(derive_seed(STUDY_SEED, loss, index))
    row: Row = {"family": family.name, **SHAPE, "optim_d": "adam", "optim_g": "adam"}
    row.update({name: _draw(rng, spec) for name, spec in SHARED_RANGES.items()})
    row["disc_iters"] = int(rng.choice(DISC_ITERS))
    row["batch_norm_d"] = bool(rng.choice(BATCH_NORM_D))
    row.update({name: _draw(rng, spec) for name, spec in ranges.items()})
    return row


def rows(samples: int = DEFAULT_SAMPLES) -> list[Row]:
    """Phase 1's grid at Table 1's widths: ``samples`` rows per loss."""
    if samples < 1:
        raise ValueError(f"--samples must be >= 1, got {samples}")
    return [sample_row(loss, family, ranges, index) for loss, family, ranges in losses() for index in range(samples)]


def loss_of(config: Mapping[str, Any]) -> str:
    """The loss a config (or a stored trial's fields) trains."""
    return FAMILIES[config["family"]].loss_label(config)


def best_configs(completed: Iterable[tuple[dict[str, Any], Mapping[str, float | None]]],
                 seeds: Sequence[int]) -> list[TrialConfig]:
    """Phase 3: each loss's completed trial of lowest Fréchet distance, once per seed (its other fields as they
    were). ``completed``: (config fields, scores) of the phase-1 sweep's completed trials."""
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for fields, scores in completed:
        distance = scores.get("frechet_distance")
        if distance is None or not math.isfinite(distance):
            continue
        loss = loss_of(fields)
        if loss not in best or distance < best[loss][0]:
            best[loss] = (distance, fields)
    if not best:
        raise ValueError("the sweep has no completed trial with a Fréchet distance; fix: run (or finish) phase 1 first")
    return [TrialConfig.from_dict({**fields, "seed": seed}) for _, (_, fields) in sorted(best.items())
            for seed in seeds]
