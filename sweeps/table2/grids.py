"""The semi-supervised study's grids (Section 4.2, Appendix D) and the profiles that size them for a machine.

Grids (each x the three label counts x the profile's seeds), one per family (``ebgan_core.table2.families``) and one
comparison:
- ``ln``: the bottom-layer-cost ladder's 20-config tuning grid (reconstruction weight x learning rate).
- ``ebgan-ln``: EBGAN-LN at the paper's setting.
- ``mlp``: the same encoder trained on the labels alone, the supervised reference.
- ``table2``: Table 2's comparison: the best LN setting, EBGAN-LN and the MLP.
Profiles scale every schedule length (steps, decay start, margin decay) by one factor, every learning rate by
another and every width by one divisor:
- ``paper``: the paper's lengths and widths, 15 seeds (GPUs).
- ``cpu``: what fits about an hour on a 2-core CPU (docs/findings.md, "Table 2 on one CPU").
- ``smoke``: seconds; used by tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from ebgan_core.table2.config import LABEL_COUNTS, LadderConfig
from ebgan_core.table2.families import LADDER_FAMILIES
from sweeps.seeds import distinct_seeds


@dataclass(frozen=True)
class LadderProfile:
    """How the semi-supervised grids are sized for a machine."""

    name: str
    width_divisor: int
    length_scale: float  # steps, decay_start and margin_decay_steps are multiplied by this
    seeds: int  # seeds 0 .. seeds-1 unless --seeds says otherwise
    lr_scale: float = 1.0  # every learning rate (lr, lr_g) is multiplied by this (short schedules take larger steps)
    labels: tuple[int, ...] = LABEL_COUNTS
    bn_samples: int = 10_000
    max_members: int = 24
    score_every: int = 0  # also measure the test error every this many steps (0: only at the end)
    interim_samples: None = None  # the test error is always measured on the whole test set

    def size(self, row: dict, labels: int, seed: int) -> LadderConfig:
        """The config of ``row`` (fields at the paper's lengths and rates) at this profile: every schedule length
        scaled, every learning rate scaled, every width divided."""
        lengths = {key: max(1, round(row[key] * self.length_scale))
                   for key in ("steps", "decay_start", "margin_decay_steps") if key in row}
        rates = {key: row[key] * self.lr_scale for key in ("lr", "lr_g") if key in row}
        return LadderConfig(**{**row, **lengths, **rates}, labels=labels, seed=seed, width_divisor=self.width_divisor,
                            bn_samples=self.bn_samples)


LADDER_PROFILES = {
    "paper": LadderProfile("paper", width_divisor=1, length_scale=1.0, seeds=15, score_every=10_000),
    # Calibrated on the LN baseline alone (1,000 labels, one seed; docs/findings.md): at 1/40 of the paper's
    # schedules the paper's lr left LN at 6.24% test error, 10x the lr at 3.44%; every model's lrs are scaled alike.
    "cpu": LadderProfile("cpu", width_divisor=2, length_scale=1 / 40, lr_scale=10.0, seeds=3, score_every=500),
    "smoke": LadderProfile("smoke", width_divisor=16, length_scale=1 / 6000, seeds=1, labels=(100,),
                           bn_samples=500, max_members=8, score_every=10),
}


def refuse_precision(precision: str | None) -> None:
    """The semi-supervised models have no matmul precision to choose: a ``--precision`` is a one-line error."""
    if precision is not None:
        raise ValueError("--precision applies to Table 1 grids only; fix: leave it out for the semi-supervised grids")


def grid_names() -> tuple[str, ...]:
    """Every registered family's grid, and ``table2``: the paper's comparison."""
    return (*LADDER_FAMILIES.names(), "table2")


def grid_rows(name: str) -> list[dict]:
    """The config fields of grid ``name`` at the paper's lengths, before label counts and seeds."""
    if name == "table2":
        return [family.table2_row for family in LADDER_FAMILIES if family.table2_row is not None]
    if name not in LADDER_FAMILIES:
        raise ValueError(f"unknown grid {name!r}; use one of {', '.join(grid_names())}")
    return LADDER_FAMILIES[name].grid()


def ladder_grid(name: str, profile: str, seeds: Iterable[int] | None = None) -> list[LadderConfig]:
    """The configurations of grid ``name`` (ln, ebgan-ln, mlp or table2) sized by ``profile``; ``seeds`` default
    to the profile's."""
    if profile not in LADDER_PROFILES:
        raise ValueError(f"unknown profile {profile!r} for the semi-supervised grids; use one of "
                         f"{', '.join(LADDER_PROFILES)}")
    settings = LADDER_PROFILES[profile]
    seeds = distinct_seeds(range(settings.seeds) if seeds is None else seeds)
    rows = grid_rows(name)
    return [settings.size(row, labels, seed) for row, labels, seed in itertools.product(rows, settings.labels, seeds)]
