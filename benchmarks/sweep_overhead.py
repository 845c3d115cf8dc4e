"""Ray Tune's scheduling overhead per config for a profile's grid, measured from one real run.

The profile's configs are packed into the same stacked groups as a real sweep, but each trains 1 step and
scores 2 samples, so that nearly all wall time is Ray/Tune: start-up, scheduling, object transfer,
result handling and the database writes. Overhead = wall time - time spent inside the trials.

    python benchmarks/sweep_overhead.py [--profile demo] [--grid all]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from sweeps.driver import run_configs
from sweeps.settings import SweepSettings
from sweeps.studies import pack_groups
from sweeps.table1.grids import PROFILES, grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="demo", choices=sorted(PROFILES))
    parser.add_argument("--grid", default="all")
    args = parser.parse_args()
    configs = [c.replace(steps=1, score_samples=2) for c in grid(args.grid, args.profile)]
    groups = len(pack_groups(configs, PROFILES[args.profile].max_members))
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "overhead.sqlite"
        settings = SweepSettings(grid=args.grid, profile=args.profile, name="overhead", db_url=f"sqlite:///{db}",
                                 storage_path=str(Path(folder) / "ray"), quiet=True)
        started = time.perf_counter()
        counts = run_configs(configs, settings)
        wall = time.perf_counter() - started
        with sqlite3.connect(db) as connection:
            # group_seconds is stored on every member: count each group once.
            inside = sum(s / n for s, n in connection.execute("select group_seconds, group_size from trials"))
    overhead = wall - inside
    print(f"profile {args.profile}, grid {args.grid}: {counts['stored']} configs in {groups} stacked groups")
    print(f"wall time {wall:.1f} s, inside trials {inside:.1f} s (1 step + 2-sample scoring each)")
    print(f"Ray/Tune overhead {overhead:.1f} s = {overhead / len(configs):.3f} s per config, "
          f"{overhead / groups:.2f} s per group (including Ray start-up and shutdown)")


if __name__ == "__main__":
    main()
