"""Table 2's families: the ladder network (LN), its EBGAN extension (EBGAN-LN) and the supervised MLP, each one
registered ``LadderFamily`` (``LADDER_FAMILIES``), as Table 1's are (``ebgan_core.table1.families``).

An entry carries what differs between them: label and colour, whether a generator trains against the ladder (its
fields ``lr_g``, ``margin``, ``margin_decay_steps`` and ``noise_dim`` then apply, else they stay out of the hash),
whether the ladder reconstructs (a reconstruction cost and corrupting noise), further validation, its grid at the
paper's lengths (``--grid <name>``), its row in Table 2's comparison (``--grid table2``) and its adaptive-search space.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ebgan_core.hashed_config import fail
from ebgan_core.registry import Registry

if TYPE_CHECKING:
    from ebgan_core.table2.config import LadderConfig

LN_RECON_WEIGHTS = (5000.0, 2000.0, 1000.0, 500.0)  # x 1/784 on the summed error, as the paper writes them
LN_LRS = (0.002, 0.001, 0.0005, 0.0002, 0.0001)
LN_STEPS, LN_DECAY = 120_000, 80_000
Row = dict[str, Any]


@dataclass(frozen=True)
class LadderFamily:
    """One family of Table 2's study (see the module's docstring)."""

    name: str  # the config's ``family``
    label: str
    color: str
    adversarial: bool  # a generator trains against the ladder (EBGAN-LN)
    reconstructs: bool  # the ladder has a reconstruction cost (and noise); the MLP learns from the labels alone
    grid: Callable[[], list[Row]]  # its grid's rows at the paper's lengths
    table2_row: Row | None = None  # its row in Table 2's comparison (the paper's families only)
    check: Callable[[LadderConfig], None] | None = None  # further validation: ``ebgan_core.hashed_config.fail``
    search: Mapping[str, tuple] = field(default_factory=dict)  # adaptive search's choices (learning rates are
    # scaled as the profile scales them)
    search_ranges: Mapping[str, tuple[float, float, bool]] = field(default_factory=dict)  # (low, high, log): with
    # --continuous, or always where it has no choices


LADDER_FAMILIES: Registry[LadderFamily] = Registry("Table 2 family")


def _mlp_check(config: LadderConfig) -> None:
    if config.recon_weight or config.noise_std:
        fail("family mlp trains on the labels alone: set recon_weight and noise_std to 0")


def _ebgan_ln_check(config: LadderConfig) -> None:
    if not config.recon_weight:
        fail("EBGAN-LN's energy is the weighted reconstruction cost: recon_weight must be > 0")


_LN = {"family": "ln", "steps": LN_STEPS, "decay_start": LN_DECAY}
_EBGAN_LN = {"family": "ebgan-ln", "recon_weight": 1000.0, "lr": 0.0005, "lr_g": 0.00025, "margin": 16.0,
             "steps": 180_000, "decay_start": 120_000, "margin_decay_steps": 60_000}
_MLP = {**_LN, "family": "mlp", "recon_weight": 0.0, "noise_std": 0.0, "lr": 0.0002}

LN = LADDER_FAMILIES.register(LadderFamily(
    name="ln", label="LN", color="tab:blue", adversarial=False, reconstructs=True,
    grid=lambda: [{**_LN, "recon_weight": w, "lr": lr} for w, lr in itertools.product(LN_RECON_WEIGHTS, LN_LRS)],
    table2_row={**_LN, "recon_weight": 1000.0, "lr": 0.0002},  # Appendix D's best tuned setting
    search={"recon_weight": LN_RECON_WEIGHTS, "lr": LN_LRS},
    search_ranges={"recon_weight": (min(LN_RECON_WEIGHTS), max(LN_RECON_WEIGHTS), True),
                   "lr": (min(LN_LRS), max(LN_LRS), True)},
))
EBGAN_LN = LADDER_FAMILIES.register(LadderFamily(
    name="ebgan-ln", label="EBGAN-LN", color="tab:green", adversarial=True, reconstructs=True,
    grid=lambda: [_EBGAN_LN], table2_row=_EBGAN_LN, check=_ebgan_ln_check,
    search_ranges={"lr": (min(LN_LRS), max(LN_LRS), True), "lr_g": (min(LN_LRS), max(LN_LRS), True),
                   "margin": (2.0, 64.0, True)},
))
MLP = LADDER_FAMILIES.register(LadderFamily(
    name="mlp", label="MLP", color="tab:gray", adversarial=False, reconstructs=False,
    grid=lambda: [_MLP], table2_row=_MLP, check=_mlp_check,
))
