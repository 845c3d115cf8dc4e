"""A sweep run's settings, as the command line gives them, and the name its sweep is stored under."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweeps.table1.grids import PROFILES


def is_grid_file(grid: str) -> bool:
    """Whether ``--grid`` names a grid file rather than a grid of a study."""
    return grid.endswith(".toml")


@dataclass(frozen=True)
class SweepSettings:
    """Everything a sweep run needs; the command line fills it from flags."""

    grid: str = "all"  # a grid of any study, or a grid file (.toml)
    profile: str = "demo"  # ignored for a grid file
    db_url: str | None = None
    address: str | None = None  # None: start a local Ray; "auto" or host:port: join a cluster
    cpus_per_group: float | None = None  # default: the local CPUs shared among the groups, >= 1 each (1 on a cluster)
    gpus_per_group: float = 0.0  # fractional GPUs allowed, e.g. 0.25 packs four groups per GPU
    max_concurrent: int = 0  # 0: as many as resources allow
    seeds: tuple[int, ...] | None = None  # default: the profile's (Table 1: seed 0) or the grid file's
    samples: int | None = None  # settings drawn per loss of a sampled grid (lucic; default: its 100)
    best_of: str | None = None  # a sampled sweep's name: train its best setting of each loss over the seeds instead
    name: str | None = None  # default: "<grid>-<profile>" ("-optuna" appended for adaptive search); a file's stem
    search: str = "grid"  # "grid" or "optuna"
    max_members: int | None = None  # default: the profile's
    group_memory_gib: float | None = None  # memory one group may use; default: its share of its node's device
    precision: str | None = None  # matmul precision; default: the profile's
    retries: int = 2  # times a group whose worker or node died is run again before its members are stored failed
    checkpoint_minutes: float = 10.0  # a group saves its training state this often (0: never); a rerun resumes it
    storage_path: str = "results/ray"
    executor: str = "ray"  # "ray": one Tune trial per group; "local": the groups one after another in this process
    images: str | None = None  # a folder of images to train the convolutional configs on instead of MNIST
    fid_weights: str | None = None  # pytorch-fid's InceptionV3 weights file: FID scores of runs on ``images``
    quiet: bool = False

    @property
    def sweep_name(self) -> str:
        """``--name``, else ``<grid>-<profile>[-<precision> if not the profile's][-<search> if not grid]``."""
        if self.name:
            return self.name
        if self.best_of:
            return f"{self.best_of}-best"
        if is_grid_file(self.grid):
            return Path(self.grid).stem
        profile = PROFILES.get(self.profile)
        precision = self.precision if profile and self.precision not in (None, profile.precision) else None
        grid = self.grid if self.samples is None else f"{self.grid}{self.samples}"
        return "-".join(part for part in (grid, self.profile, precision,
                                          None if self.search == "grid" else self.search) if part)
