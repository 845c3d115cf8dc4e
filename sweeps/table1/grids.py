"""The paper's Table 1 grids, the Fig. 9 margin grid, and the profiles that size them for a machine.

``grid(name, profile)`` returns the configurations; ``sweeps.studies.pack_groups`` packs them into stacked groups.
Profiles (docs/sweeps.md, "Profiles"):
- ``paper``: the full grids at Table 1 widths, for GPUs; ``paper-balanced`` the balanced 327-config subset at the same
  budget (one GPU session).
- ``laptop``: the full grids at the budget the calibration chose for a CPU (``results/calibration``): 1/16 widths,
  3,500 steps, where the Fig. 4 presets of both families form digits. ``laptop-balanced`` (327 configs) and
  ``laptop-mini`` (47 configs, ``make sweep``) are balanced subsets of it at the same budget, so their numbers
  compare. ``laptop-long`` is ``laptop-mini`` at twice the steps.
- ``demo``: the balanced subset at 1/16 width and 200 steps: minutes, models barely trained; for trying the tools.
- ``smoke``: a few tiny configs of both families, seconds; used by tests.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from ebgan_core.table1.config import TrialConfig
from sweeps.seeds import distinct_seeds

N_LAYERS = (2, 3, 4, 5)
SIZES_G = (400, 800, 1600, 3200)
SIZES_D = (128, 256, 512, 1024)
DROPOUT = (True, False)
OPTIMIZERS = ("adam", "sgd")
GAN_LRS = (0.01, 0.001, 0.0001)
EBGAN_LR = 0.001
MARGINS_FIG9 = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 32.0)
PT_WEIGHT = 0.1
GRID_SIZES = {"ebgan": 512, "gan": 6144, "ebgan-pt": 512, "margin": 7}
GRID_NAMES = (*GRID_SIZES, "all")


@dataclass(frozen=True)
class Profile:
    """How a grid is sized for a machine."""

    name: str
    width_divisor: int  # Table 1 widths are divided by this (1 = the paper's widths)
    steps: int
    batch_size: int
    score_samples: int
    subset: str  # "all": every config; "demo" / "mini" / "smoke": the documented subsets below
    max_members: int  # members per stacked group (a Tune trial)
    precision: str = "fp32"  # matmul precision (TrialConfig.precision); --precision overrides it
    score_every: int = 0  # also score every this many steps before the last (table interim_scores); 0: never
    interim_samples: int | None = None  # samples behind each of those scores (None: score_samples, as the final one)

    def size(self, config: TrialConfig) -> TrialConfig:
        """``config`` at this profile's budget: widths divided, its steps, batch, samples per score and precision."""
        return config.widths_divided_by(self.width_divisor).replace(
            steps=self.steps, batch_size=self.batch_size, score_samples=self.score_samples, precision=self.precision)


PROFILES = {
    # 5 epochs of the 60k images at batch 64; 5,000 samples behind every score.
    "paper": Profile("paper", width_divisor=1, steps=4685, batch_size=64, score_samples=5000, subset="all",
                     max_members=24, score_every=937),
    # The balanced 327 configs of laptop-balanced at the paper's budget: every Table 1 family at paper widths.
    "paper-balanced": Profile("paper-balanced", width_divisor=1, steps=4685, batch_size=64, score_samples=5000,
                              subset="demo", max_members=24, score_every=937),
    # The calibrated CPU budget (sweeps/table1/calibrate_budget.py): the least costly (width, steps) where fig4b reaches
    # I' >= 3 and fig4a I' >= 1.5 (mean of 3 seeds, 1,000 samples).
    # Interim scores on 500 samples: their sampling noise (SD 0.06-0.12 in I') stays far below the seed spread at this
    # budget (SD 0.5-1.1), and they cost half (benchmarks/README.md, "Scoring"); the final score keeps 1,000.
    "laptop": Profile("laptop", width_divisor=16, steps=3500, batch_size=64, score_samples=1000, subset="all",
                      max_members=24, score_every=500, interim_samples=500),
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
                     max_members=4, score_every=3),
}


def _table1(family: str, pt_weight: float = 0.0) -> list[dict]:
    """Every Table 1 combination of one family as config fields (Table 1 widths)."""
    optimisers = [("adam", "adam", EBGAN_LR)] if family == "ebgan" else list(
        itertools.product(OPTIMIZERS, OPTIMIZERS, GAN_LRS))
    rows = []
    for n_g, n_d, size_g, size_d, dropout, (optim_d, optim_g, lr) in itertools.product(
        N_LAYERS, N_LAYERS, SIZES_G, SIZES_D, DROPOUT, optimisers
    ):
        rows.append({"family": family, "n_layer_g": n_g, "n_layer_d": n_d, "size_g": size_g, "size_d": size_d,
                     "dropout_d": dropout, "optim_d": optim_d, "optim_g": optim_g, "lr": lr, "pt_weight": pt_weight})
    return rows


def _margin_grid() -> list[dict]:
    base = {"family": "ebgan", "n_layer_g": 5, "n_layer_d": 2, "size_g": 1600, "size_d": 1024, "dropout_d": False,
            "optim_d": "adam", "optim_g": "adam", "lr": EBGAN_LR}
    return [{**base, "margin": m} for m in MARGINS_FIG9]


def demo_shapes(family: str) -> list[tuple[int, int, int, int]]:
    """The (nLayerG, nLayerD, sizeG, sizeD) shapes of the demo subset, at Table 1 widths.

    EBGAN: 32 shapes, every cell (i, j) of the 4x4 layer-count table twice, with sizeG indices (i+j)%4 and
    (i+j+2)%4 and sizeD indices (i+2j)%4 and (i+2j+1)%4, so each width appears equally often in every row
    and column of the table. GAN: the 8 cells with i+j even, sizeG index (i + 2*(j//2))%4 and sizeD index
    (i+2j)%4, so every layer count and every width appears twice; with all 24 optimiser/lr/dropout settings
    of each shape that is 192 configs.
    """
    cells = list(itertools.product(range(4), range(4)))
    if family == "gan":
        return [(N_LAYERS[i], N_LAYERS[j], SIZES_G[(i + 2 * (j // 2)) % 4], SIZES_D[(i + 2 * j) % 4])
                for i, j in cells if (i + j) % 2 == 0]
    return [(N_LAYERS[i], N_LAYERS[j], SIZES_G[(i + j + 2 * k) % 4], SIZES_D[(i + 2 * j + k) % 4])
            for i, j in cells for k in (0, 1)]


def mini_shapes(family: str) -> list[tuple[int, int, int, int]]:
    """The (nLayerG, nLayerD, sizeG, sizeD) shapes of the mini subset (``laptop-mini``, ``make sweep``): demo shapes
    sized to fit about 10 minutes on a 2-core CPU at the laptop budget.

    EBGAN: the 4 diagonal cells (i, i) of the 4x4 layer-count table with the demo's first width choice (sizeG index
    2i%4, sizeD index 3i%4): every layer count and every sizeD once, sizeG 400 and 1600 twice each. GAN: the
    demo's cell (2, 2), with all 24 optimiser / lr / dropout settings, so every Fig. 3 sub-grid is present.
    """
    if family == "gan":
        return [shape for shape in demo_shapes("gan") if shape[:2] == (4, 4)]
    return [(N_LAYERS[i], N_LAYERS[i], SIZES_G[(2 * i) % 4], SIZES_D[(3 * i) % 4]) for i in range(4)]


def _in_subset(row: dict, subset: str) -> bool:
    shape = (row["n_layer_g"], row["n_layer_d"], row["size_g"], row["size_d"])
    if subset == "all":
        return True
    if subset == "demo":
        return shape in demo_shapes(row["family"])
    if subset == "mini":
        return shape in mini_shapes(row["family"])
    # smoke: the smallest shape of each family; EBGAN both dropouts, GAN four optimiser settings.
    if shape != (2, 2, 400, 128):
        return False
    return row["family"] == "ebgan" or (row["lr"] == 0.01 and not row["dropout_d"])


def grid(name: str, profile: str = "paper", seeds: Iterable[int] = (0,), precision: str | None = None
         ) -> list[TrialConfig]:
    """The configurations of grid ``name`` (ebgan, gan, ebgan-pt, margin or all) sized by ``profile``, in
    ``precision`` (default: the profile's)."""
    if name not in GRID_NAMES:
        raise ValueError(f"unknown grid {name!r}; use one of {', '.join(GRID_NAMES)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    seeds = distinct_seeds(seeds)
    if name == "all":
        return [c for part in GRID_SIZES for c in grid(part, profile, seeds, precision)]
    rows = {"ebgan": lambda: _table1("ebgan"), "gan": lambda: _table1("gan"),
            "ebgan-pt": lambda: _table1("ebgan", PT_WEIGHT), "margin": _margin_grid}[name]()
    assert len(rows) == GRID_SIZES[name], (name, len(rows))
    settings = PROFILES[profile]
    if name != "margin":
        rows = [r for r in rows if _in_subset(r, settings.subset)]
    sized = settings if precision is None else dataclasses.replace(settings, precision=precision)
    return [sized.size(TrialConfig(**row, seed=seed)) for row, seed in itertools.product(rows, seeds)]
