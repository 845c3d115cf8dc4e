"""Trial rows between training and the store: built where a group trains (a Ray worker, or the GPU check without
Ray), carried as plain picklable dicts (PNG as base64), completed with provenance where they are written."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from ebgan_core.images import grid_png
from ebgan_core.ladder_train import LadderResult
from ebgan_core.train import MemberResult
from sweeps.store import now


def member_row(result: MemberResult, device: str, judge_sha: str, started_at: Any) -> dict[str, Any]:
    """A result of one member as a plain, picklable row for the store (PNG as base64)."""
    return {
        "config": result.config.to_dict(), "status": result.status, "scores": result.scores,
        "steps": result.steps, "diverged_at_step": result.diverged_at_step,
        "resumed_from_step": result.resumed_from_step, "seconds": result.seconds,
        "group_seconds": result.group_seconds, "group_size": result.group_size, "curves": result.curves,
        "interim_scores": result.interim_scores,
        "png": None if result.sample_grid is None else base64.b64encode(grid_png(result.sample_grid)).decode(),
        "device": device, "judge_sha256": judge_sha, "started_at": started_at, "finished_at": now(),
    }


def ladder_row(result: LadderResult, device: str, started_at: Any) -> dict[str, Any]:
    """A semi-supervised member's result as a plain row (Table 2 study; its test error as the score)."""
    grid = result.sample_grid
    return {
        "study": "table2", "config": result.config.to_dict(), "status": result.status,
        "scores": None if result.test_error is None else {"test_error": result.test_error},
        "steps": result.steps, "diverged_at_step": result.diverged_at_step,
        "resumed_from_step": result.resumed_from_step, "seconds": result.seconds,
        "group_seconds": result.group_seconds, "group_size": result.group_size, "curves": result.curves,
        "interim_scores": {step: {"test_error": error} for step, error in result.interim_errors.items()},
        "png": None if grid is None else base64.b64encode(grid_png(grid, columns=8)).decode(),
        "device": device, "started_at": started_at, "finished_at": now(),
    }


def failed_rows(members: Sequence[dict[str, Any]], error: str, study: str = "table1") -> list[dict[str, Any]]:
    """Rows recording each member of a group that raised (or whose worker died) as failed, with the error."""
    return [{"study": study, "config": dict(m), "status": "failed", "error": error, "finished_at": now()}
            for m in members]


def ready_to_store(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows with the sweep's provenance added and their PNGs decoded, as ``ResultStore.record`` takes them."""
    for row in rows:
        row.update(provenance)
        if row.get("png") is not None:
            row["png"] = base64.b64decode(row["png"])
    return rows
