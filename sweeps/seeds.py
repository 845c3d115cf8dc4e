"""The seeds of a sweep, checked the same way for every study and grid file."""

from __future__ import annotations

from collections.abc import Iterable


def distinct_seeds(seeds: Iterable[int]) -> list[int]:
    """``seeds`` as a list, refused unless they are distinct integers, at least one (any study's grids)."""
    try:
        seeds = list(seeds)
    except TypeError:
        raise ValueError(f"seeds must be a list of distinct integers, got {seeds!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or not all(type(s) is int for s in seeds):
        raise ValueError(f"seeds must be distinct integers, at least one; got {seeds}")
    return seeds
