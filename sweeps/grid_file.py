"""A user's own grid, from a TOML file: any config fields of one study, every combination of the listed values.

    study = "table1"        # or "table2" (default: table1)
    seeds = [0, 1]          # optional; --seeds overrides (default: [0])
    max_members = 24        # optional: members per stacked group
    score_every = 500       # optional: also score every this many steps (0: only at the end)

    [base]                  # fields every config shares; fields left out keep the config's defaults
    family = "ebgan"
    steps = 3500

    [axes]                  # each a list of values; the grid is their product
    lr = [0.001, 0.0003]
    margin = [5.0, 10.0, 20.0]

Example: ``results/grids/margin_by_lr.toml``.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from sweeps.seeds import distinct_seeds
from sweeps.studies import STUDIES, Config, Study

KEYS = ("study", "seeds", "max_members", "score_every", "base", "axes")


@dataclass(frozen=True)
class GridFile:
    """A parsed grid file: its study, configs and packing, and its text (stored with the sweep)."""

    study: Study
    configs: list[Config]
    max_members: int
    score_every: int
    text: str


def load_grid_file(path: Path, seeds: Sequence[int] | None = None) -> GridFile:
    """Parse and validate ``path``; every problem is a one-line error naming the file, the problem and the fix."""
    def fail(problem: str) -> ValueError:
        return ValueError(f"grid file {path}: {problem}")

    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(f"cannot read it ({exc.strerror}); fix: give the path of a .toml grid file") from None
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML ({exc}); fix: see the example in results/grids/") from None
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}; use {', '.join(KEYS)}")
    study_name = spec.get("study", "table1")
    if study_name not in STUDIES:
        raise fail(f"unknown study {study_name!r}; use one of {', '.join(STUDIES)}")
    study = STUDIES[study_name]
    config_type = study.config_type
    known = {f.name for f in fields(config_type)}
    base, axes = spec.get("base", {}), spec.get("axes", {})
    if not isinstance(base, dict) or not isinstance(axes, dict):
        raise fail("[base] and [axes] must be tables; fix: see the example in results/grids/")
    for where, names in (("[base] field", base), ("axis", axes)):
        for name in names:
            if name not in known:
                raise fail(f"{where} {name!r} is not a config field of {study_name}; known: {', '.join(sorted(known))}")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise fail(f"axis {name!r} must be a non-empty list of values, got {values!r}")
    both = sorted(set(base) & set(axes))
    if both:
        raise fail(f"{both[0]!r} is both in [base] and an axis; fix: keep it in one place")
    if "seed" in base or "seed" in axes:
        raise fail("seeds are set by the top-level key seeds (or --seeds), not as a config field")
    try:
        seeds = distinct_seeds(seeds if seeds is not None else spec.get("seeds", [0]))
    except ValueError as exc:
        raise fail(f"{exc}; fix: list them as seeds = [0, 1]") from None
    configs = []
    for values in itertools.product(*axes.values()):
        for seed in seeds:
            try:
                configs.append(config_type.from_dict({**base, **dict(zip(axes, values, strict=True)), "seed": seed}))
            except (TypeError, ValueError) as exc:
                raise fail(f"{exc}; fix: change that value") from None
    max_members, score_every = spec.get("max_members", 24), spec.get("score_every", 0)
    if not isinstance(max_members, int) or max_members < 1:
        raise fail(f"max_members must be an integer >= 1, got {max_members!r}")
    if not isinstance(score_every, int) or score_every < 0:
        raise fail(f"score_every must be an integer >= 0, got {score_every!r}")
    return GridFile(study, configs, max_members, score_every, text)

