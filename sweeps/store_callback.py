"""The driver's side of a sweep on Ray Tune: a callback that writes each finished group's rows to the database (the
only writer), prints one progress line per group, and records a group whose worker died for good as failed."""

from __future__ import annotations

import traceback
from typing import Any

from ray import tune

from sweeps.group_checkpoints import GroupCheckpoints
from sweeps.row_writer import RowWriter
from sweeps.rows import failed_rows
from sweeps.store.connection import StoreError
from sweeps.store.result_store import ResultStore


class StoreCallback(tune.Callback):
    """Writes each group's rows through a ``RowWriter`` on the driver's one store."""

    def __init__(self, store: ResultStore, sweep_id: int, provenance: dict[str, Any], total_configs: int,
                 already_done: int, quiet: bool, study: str, groups: list[list[dict[str, Any]]] | None = None,
                 base: dict[str, Any] | None = None, checkpoints: GroupCheckpoints | None = None) -> None:
        """``groups`` (grid sweeps) or ``base`` (adaptive search) say which configs of ``study`` a trial trained;
        ``checkpoints``: where the groups save their state (deleted once stored)."""
        self.db_url, self.study, self.groups, self.base, self.quiet = store.url, study, groups, base, quiet
        self.writer: RowWriter | None = RowWriter(store, sweep_id, provenance, total_configs, already_done, quiet,
                                                  checkpoints)
        self.store_error: StoreError | None = None  # the database refused rows: the sweep stops and says why

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks with the experiment's state: not the engine
        return {k: v for k, v in self.__dict__.items() if k != "writer"} | {"writer": None}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        rows = result.pop("rows", None)  # Tune lets callbacks edit the result before it is kept
        if rows:
            self._write(rows)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            self.writer.write(rows)
        except StoreError as exc:  # Tune stops on a callback's error; the driver reports this one in one line
            self.store_error = exc
            raise

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if not self.quiet:
            error = trial.get_error()
            reason = str(error).strip().splitlines()[0] if error and str(error).strip() else "its worker died"
            print(f"[sweep] a group lost its worker ({reason[:200]}); running it again (attempt "
                  f"{trial.num_failures + 1} of {trial.max_failures + 1})", flush=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.get_error()
        text = "".join(traceback.format_exception(error)) if error else "the trial's worker died"
        members = self.groups[trial.config["group_index"]] if self.groups is not None else [self.base | trial.config]
        self._write(failed_rows(members, text, self.study))
