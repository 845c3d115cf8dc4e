"""A sweep's groups run one after another in this process, without Ray: the same groups, waves, rows, store, resume
and progress lines as on Ray Tune, for a machine where Ray is not installed (a bare GPU machine) or for debugging a
group in one process. Ctrl+C or SIGTERM stops it between steps (never inside a database write); the rows stored so
far stay and the same command resumes, each unfinished group from its last checkpoint."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any

from sweeps.row_writer import RowWriter
from sweeps.store.result_store import ResultStore
from sweeps.worker import train_members


def run_locally(groups: Sequence[list[dict[str, Any]]], store: ResultStore, sweep_id: int, provenance: dict[str, Any],
                shared: dict[str, Any], total_configs: int, already_done: int, quiet: bool) -> None:
    """Train and store ``groups`` (each a list of member config dicts) in order through the driver's ``store``;
    ``shared``: the worker's other arguments (study, inputs, memory budget, scoring interval, checkpoints)."""
    writer = RowWriter(store, sweep_id, provenance, total_configs, already_done, quiet, shared["checkpoints"])
    state = {"stop": False, "writing": False}

    def stop(*_: object) -> None:
        """A stop lands mid-training at once, but waits for a database write in progress to commit."""
        state["stop"] = True
        if not state["writing"]:
            raise KeyboardInterrupt

    relay = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)} if relay else {}
    try:
        for members in groups:
            rows = train_members(members, **shared)
            state["writing"] = True
            writer.write(rows)
            state["writing"] = False
            if state["stop"]:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        if not quiet:
            print("[sweep] stopped; the rows stored so far stay, and the same command resumes", flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
