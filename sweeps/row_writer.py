"""The driver's writer: stores each finished group's rows (the sweep's only writer) and prints one progress line per
group, whether groups run on Ray or in this process."""

from __future__ import annotations

import time
from typing import Any

from ebgan_core.configs import config_from_dict
from ebgan_core.group import member_keys
from sweeps.group_checkpoints import GroupCheckpoints
from sweeps.rows import ready_to_store
from sweeps.store.result_store import ResultStore


class RowWriter:
    """Writes rows with the sweep's provenance and counts what is stored, failed and diverged for the progress line
    (configs stored / total, failures, divergences, elapsed, ETA); deletes a group's checkpoint once it is stored."""

    def __init__(self, store: ResultStore, sweep_id: int, provenance: dict[str, Any], total_configs: int,
                 already_done: int, quiet: bool, checkpoints: GroupCheckpoints | None = None) -> None:
        """``store``: the driver's one store (the writer does not close it)."""
        self.store = store
        self.sweep_id, self.provenance, self.quiet, self.checkpoints = sweep_id, provenance, quiet, checkpoints
        self.total, self.done = total_configs, already_done
        self.failed = self.diverged = self.finished_now = 0
        self.started = time.monotonic()

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Store one group's rows (then delete its checkpoint) and print the progress line."""
        self.store.record(self.sweep_id, ready_to_store(rows, self.provenance))
        if self.checkpoints is not None:
            self.checkpoints.drop(member_keys([config_from_dict(r["study"], r["config"]) for r in rows]))
        self.done += len(rows)
        self.finished_now += len(rows)
        self.failed += sum(r["status"] == "failed" for r in rows)
        self.diverged += sum(r["status"] == "diverged" for r in rows)
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            remaining = self.total - self.done
            eta = elapsed / self.finished_now * remaining if self.finished_now else float("nan")
            print(f"[sweep] {self.done}/{self.total} configs stored ({self.failed} failed, {self.diverged} "
                  f"diverged) | {elapsed:.0f} s elapsed, ETA {eta:.0f} s", flush=True)
