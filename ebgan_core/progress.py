"""One progress-bar style for every long job (tqdm on stderr; silent when not a terminal and asked)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int, description: str, unit: str = "step", enabled: bool = True) -> tqdm:
    """A tqdm bar on stderr; ``enabled=False`` gives a bar that prints nothing."""
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=not enabled, dynamic_ncols=True)
