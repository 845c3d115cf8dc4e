"""The paper's Table 1 grids, the Fig. 9 margin grid, and the profiles that size them for a machine.

``grid(name, profile)`` returns the configurations of a family's grid (``ebgan_core.table1.families``: the paper's
``ebgan`` (512), ``gan`` (6,144), ``ebgan-pt`` (512) and ``margin`` (7), and any a plugin registers) or of ``all``, the
paper's four; ``sweeps.studies.pack_groups`` packs them into stacked groups.
Profiles (docs/sweeps.md, "Profiles"):
- ``paper``: the full grids at Table 1 widths, for GPUs; ``paper-balanced`` the balanced 327-config subset at the same
  budget (one GPU session).
- ``laptop``: the full grids at the budget the calibration chose for a CPU (``results/calibration``): 1/16 widths,
  3,500 steps, where the Fig. 4 presets of both families form digits. ``laptop-balanced`` (327 configs) and
  ``laptop-mini`` (47 configs, ``make sweep``) are balanced subsets of it at the same budget, so their numbers
  compare. ``laptop-long`` is ``laptop-mini`` at twice the steps.
- ``demo``: the balanced subset at 1/16 width and 200 steps: minutes, models barely trained; for trying the tools.
- ``smoke``: a few tiny configs of both families, seconds; used by tests.
The convolutional images grids (``sweeps.table1.images``) run at the profiles with an image budget: ``paper`` (the
paper's sizes and widths), ``laptop`` (half the side: 64x64 -> 32x32; a quarter of the widths, at the steps the
calibration chose) and ``smoke``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from ebgan_core.conv.models import MIN_IMAGE_SIZE
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import FAMILIES, Family, Grid
from sweeps.seeds import distinct_seeds
from sweeps.table1 import images, lucic


@dataclass(frozen=True)
class ImageBudget:
    """How a profile sizes the convolutional configs (the images grids): the divisors of their image side (64x64 at
    2: 32x32; 128x128: 64x64) and of their widths, and their steps; batch, samples per score and scoring along the way
    are the profile's."""

    size_divisor: int
    width_divisor: int
    steps: int

    def image_size(self, paper_size: int) -> int:
        """The side a config at the paper's ``paper_size`` trains at (at least the networks' least, 16)."""
        return max(MIN_IMAGE_SIZE, paper_size // self.size_divisor)


@dataclass(frozen=True)
class Profile:
    """How a grid is sized for a machine."""

    name: str
    width_divisor: int  # Table 1 widths are divided by this (1 = the paper's widths)
    steps: int
    batch_size: int
    score_samples: int
    subset: str  # "all": every config; "demo" / "mini" / "smoke": each family's subset of that name
    max_members: int  # members per stacked group (a Tune trial)
    precision: str = "fp32"  # matmul precision (TrialConfig.precision); --precision overrides it
    score_every: int = 0  # also score every this many steps before the last (table interim_scores); 0: never
    interim_samples: int | None = None  # samples behind each of those scores (None: score_samples, as the final one)
    images: ImageBudget | None = None  # the convolutional configs' budget; None: the profile runs none

    def size(self, config: TrialConfig) -> TrialConfig:
        """``config`` at this profile's budget: widths divided, its steps, batch, samples per score and precision (a
        convolutional config: the image budget's size, divisor and steps)."""
        if config.architecture == "conv":
            if self.images is None:
                with_images = ", ".join(name for name, profile in PROFILES.items() if profile.images is not None)
                raise ValueError(f"profile {self.name!r} has no budget for convolutional configs; use one of "
                                 f"{with_images}")
            budget = self.images
            return config.widths_divided_by(budget.width_divisor).replace(
                image_size=budget.image_size(config.image_size), steps=budget.steps, batch_size=self.batch_size,
                score_samples=self.score_samples)
        return config.widths_divided_by(self.width_divisor).replace(
            steps=self.steps, batch_size=self.batch_size, score_samples=self.score_samples, precision=self.precision)


LAPTOP_IMAGE_STEPS = 1500  # where conv-dcgan and conv-ebgan-pt both reach I' >= 3 (mean of 3 seeds; calibration)
PROFILES = {
    # 5 epochs of the 60k images at batch 64; 5,000 samples behind every score.
    "paper": Profile("paper", width_divisor=1, steps=4685, batch_size=64, score_samples=5000, subset="all",
                     max_members=24, score_every=937, images=ImageBudget(1, 1, 4685)),
    # The balanced 327 configs of laptop-balanced at the paper's budget: every Table 1 family at paper widths.
    "paper-balanced": Profile("paper-balanced", width_divisor=1, steps=4685, batch_size=64, score_samples=5000,
                              subset="demo", max_members=24, score_every=937),
    # The calibrated CPU budget (sweeps/table1/calibrate_budget.py): the least costly (width, steps) where fig4b reaches
    # I' >= 3 and fig4a I' >= 1.5 (mean of 3 seeds, 1,000 samples).
    # Interim scores on 500 samples: their sampling noise (SD 0.06-0.12 in I') stays far below the seed spread at this
    # budget (SD 0.5-1.1), and they cost half (benchmarks/README.md, "Scoring"); the final score keeps 1,000.
    # Its image budget: half the side (64x64 -> 32x32: one stride-2 layer fewer each way) at a quarter of the paper's
    # widths (16 and 8 maps),
    # LAPTOP_IMAGE_STEPS from the calibration (results/calibration/images).
    "laptop": Profile("laptop", width_divisor=16, steps=3500, batch_size=64, score_samples=1000, subset="all",
                      max_members=24, score_every=500, interim_samples=500,
                      images=ImageBudget(2, 4, LAPTOP_IMAGE_STEPS)),
    "laptop-balanced": Profile("laptop-balanced", width_divisor=16, steps=3500, batch_size=64, score_samples=1000,
                               subset="demo", max_members=24, score_every=500, interim_samples=500),
    "laptop-mini": Profile("laptop-mini", width_divisor=16, steps=3500, batch_size=64, score_samples=1000,
                           subset="mini", max_members=24, score_every=500, interim_samples=500),
    # Twice the laptop budget on the mini subset: does the EBGAN-GAN gap close with more training?
    "laptop-long": Profile("laptop-long", width_divisor=16, steps=7000, batch_size=64, score_samples=1000,
                           subset="mini", max_members=24, score_every=500, interim_samples=500),
    "demo": Profile("demo", width_divisor=16, steps=200, batch_size=64, score_samples=250, subset="demo",
                    max_members=24, score_every=100),
    "smoke": Profile("smoke", width_divisor=16, steps=6, batch_size=16, score_samples=32, subset="smoke",
                     max_members=4, score_every=3, images=ImageBudget(4, 16, 6)),
}


def paper_grids() -> list[str]:
    """The grids of the paper's families (``--grid all``): 7,175 configs in all, whatever else is registered."""
    return [name for family in FAMILIES if family.in_the_paper for name in family.grids]


def grid_names() -> tuple[str, ...]:
    """Every registered family's grids, ``all``, Lucic et al.'s sampled study of every loss (``lucic``) and the
    convolutional images grids."""
    return (*(name for family in FAMILIES for name in family.grids), "all", lucic.GRID, *images.GRIDS)


def _grid(name: str) -> tuple[Family, Grid]:
    for family in FAMILIES:
        if name in family.grids:
            return family, family.grids[name]
    raise ValueError(f"unknown grid {name!r}; use one of {', '.join(grid_names())}")


def grid(name: str, profile: str = "paper", seeds: Iterable[int] = (0,), precision: str | None = None,
         samples: int | None = None) -> list[TrialConfig]:
    """The configurations of grid ``name`` (a family's grid, such as ebgan, gan, ebgan-pt or margin; all: the
    paper's; lucic: ``samples`` per loss, ``sweeps.table1.lucic``) sized by ``profile``, in ``precision`` (default:
    the profile's). A profile's subset does not apply to ``lucic``: ``samples`` sizes it."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    if samples is not None and name != lucic.GRID:
        raise ValueError(f"--samples sizes the sampled grid {lucic.GRID}; {name!r} is not sampled")
    seeds = distinct_seeds(seeds)
    settings = PROFILES[profile]
    sized = settings if precision is None else dataclasses.replace(settings, precision=precision)
    if name == lucic.GRID:
        rows = lucic.rows(lucic.DEFAULT_SAMPLES if samples is None else samples)
        return [sized.size(TrialConfig(**row, seed=seed)) for row, seed in itertools.product(rows, seeds)]
    if name == "all":
        return [c for part in paper_grids() for c in grid(part, profile, seeds, precision)]
    if name in images.GRIDS:
        if precision not in (None, "fp32"):
            raise ValueError(f"--precision {precision} applies to the fully connected grids only; the convolutional "
                             f"{name!r} trains in fp32")
        rows = images.rows(name)
        if settings.subset == "smoke":
            rows = [row for row in rows if images.is_preset(row)]
        return [sized.size(TrialConfig(**row, seed=seed)) for row, seed in itertools.product(rows, seeds)]
    family, spec = _grid(name)
    rows = spec.rows()
    if spec.subsetted and settings.subset != "all":
        if settings.subset not in family.subsets:
            raise ValueError(f"family {family.name!r} defines no {settings.subset!r} subset for profile {profile!r}; "
                             f"fix: add it to the family's subsets (docs/extending.md)")
        rows = [r for r in rows if family.subsets[settings.subset](r)]
    return [sized.size(TrialConfig(**row, seed=seed)) for row, seed in itertools.product(rows, seeds)]
