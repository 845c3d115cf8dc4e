"""The images study as data: the paper's convolutional GANs (Section 4.3, Appendix C) on MNIST, their presets side by
side and a grid over what the paper leaves open.

- ``images-presets``: Appendix C's three models under one training setup (Radford et al.'s: Adam, lr 0.0002, beta1
  0.5, batch norm; the presets conv-dcgan, conv-ebgan, conv-ebgan-pt): DCGAN (the generator with DCGAN's
  discriminator), EBGAN and EBGAN-PT (the generator with the convolutional auto-encoder; margin 10, Table 1's on the
  same MNIST; lambda_PT 0.1). Figs. 5 and 6 set DCGAN beside EBGAN-PT, Figs. 12-14 EBGAN beside EBGAN-PT.
- ``images-128``: Section 4.4's deeper models at 128x128 (Fig. 7; presets conv-dcgan-128, conv-ebgan-pt-128): the
  noise-fed generator with EBGAN-PT's auto-encoder (one stride-2 layer deeper each way) or DCGAN's discriminator.
- ``images``: 80 configs around them: learning rate (4) x width multiplier (the paper's 64 maps and half) x batch
  norm in D, for DCGAN (16); the same x margin {10, 20 (Appendix C's CelebA margin)} for EBGAN (32); the same x
  lambda_PT {0.1, 0.3} at margin 10 for EBGAN-PT (32).

Rows are at the paper's shapes (64x64 or 128x128 images, width 64); a profile's image budget
(``sweeps.table1.grids.ImageBudget``) divides the image size and the widths and sets the steps. The families are the
registered ``gan`` and ``ebgan`` on architecture ``conv``; any family with a convolutional discriminator trains on it
from a grid file.
"""

from __future__ import annotations

import itertools
from typing import Any

from ebgan_core.table1.config import PRESETS, TrialConfig
from ebgan_core.table1.families import Row

GRIDS = ("images", "images-presets", "images-128")
PRESET_NAMES = {  # of ``ebgan_core.table1.config.PRESETS``
    "images-presets": ("conv-dcgan", "conv-ebgan", "conv-ebgan-pt"),
    "images-128": ("conv-dcgan-128", "conv-ebgan-pt-128")}
LRS = (0.0001, 0.0002, 0.0005, 0.001)  # around Radford et al.'s 0.0002
WIDTHS = (64, 32)  # the paper's maps of D's first layer, and half
BATCH_NORM_D = (True, False)
MARGINS = (10.0, 20.0)
PT_WEIGHTS = (0.1, 0.3)
CONV: dict[str, Any] = {"architecture": "conv", "image_size": PRESETS["conv-ebgan"].image_size}


def _around(family: str, own: dict[str, tuple]) -> list[Row]:
    """Rows of ``family`` over the shared axes and its ``own`` (field -> values), the first value of each first."""
    axes = {"lr": LRS, "width": WIDTHS, "batch_norm_d": BATCH_NORM_D, **own}
    return [{"family": family, **CONV, **dict(zip(axes, values, strict=True))}
            for values in itertools.product(*axes.values())]


def rows(grid: str) -> list[Row]:
    """The rows of ``grid`` (one of ``GRIDS``) at the paper's shapes."""
    if grid in PRESET_NAMES:
        return [{k: v for k, v in PRESETS[name].to_dict().items() if k != "seed"} for name in PRESET_NAMES[grid]]
    margin = PRESETS["conv-ebgan"].margin
    return (_around("gan", {}) + _around("ebgan", {"margin": MARGINS, "pt_weight": (0.0,)})
            + _around("ebgan", {"margin": (margin,), "pt_weight": PT_WEIGHTS}))


def is_preset(row: Row) -> bool:
    """Whether ``row`` trains one of the presets (the smoke profile's subset of ``images``: one config per model)."""
    return TrialConfig(**row) in {PRESETS[name] for names in PRESET_NAMES.values() for name in names}
