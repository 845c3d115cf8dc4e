"""A sweep's groups run one after another in this process, without Ray: the same groups, waves, rows, store, resume
and progress lines as on Ray Tune, for a machine where Ray is not installed (a bare GPU machine) or for debugging a
group in one process. Ctrl+C or SIGTERM stops it between steps; the rows stored so far stay and the same command
resumes."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

from sweeps.row_writer import RowWriter
from sweeps.worker import train_members


def run_locally(groups: Sequence[list[dict[str, Any]]], db_url: str, sweep_id: int, provenance: dict[str, Any],
                shared: dict[str, Any], total_configs: int, already_done: int, quiet: bool) -> None:
    """Train and store ``groups`` (each a list of member config dicts) in order; ``shared``: the worker's other
    arguments (study, inputs, memory budget, scoring interval)."""
    writer = RowWriter(db_url, sweep_id, provenance, total_configs, already_done, quiet, shared["checkpoints"])
    relay = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT)) if relay else None
    try:
        for members in groups:
            writer.write(train_members(members, **shared))
    except KeyboardInterrupt:
        if not quiet:
            print("[sweep] stopped; the rows stored so far stay, and the same command resumes", flush=True)
    finally:
        if relay:
            signal.signal(signal.SIGTERM, previous)
        writer.close()
