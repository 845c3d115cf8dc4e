"""Trial rows between training and the store: built where a group trains (a Ray worker, or a process without Ray),
carried as plain picklable dicts (PNG as base64), completed with provenance where they are written."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from ebgan_core.group import MemberResult
from ebgan_core.images import grid_png
from sweeps.store.result_store import now

INTERIM_GRID_SCALE = 1  # grids along training are stored at their own size (the final one is upscaled 2x): a quarter
# of the pixels keeps a study's database small (docs/database.md); the page scales them up


def member_row(result: MemberResult, study: str, device: str, started_at: Any, **recorded: Any) -> dict[str, Any]:
    """A result of one member of ``study`` as a plain, picklable row for the store (its sample grids, final and along
    training, as base64 PNGs); ``recorded``: what the study's rows record besides (Table 1: the judge's sha256)."""
    grid = result.sample_grid
    return {
        "study": study, "config": result.config.to_dict(), "status": result.status, "scores": result.scores,
        "steps": result.steps, "diverged_at_step": result.diverged_at_step,
        "resumed_from_step": result.resumed_from_step, "seconds": result.seconds,
        "group_seconds": result.group_seconds, "group_size": result.group_size, "curves": result.curves,
        "interim_scores": result.interim_scores,
        "png": None if grid is None else _base64(grid_png(grid)),
        "interim_pngs": {step: _base64(grid_png(g, scale=INTERIM_GRID_SCALE))
                         for step, g in result.interim_sample_grids.items()},
        "device": device, "started_at": started_at, "finished_at": now(), **recorded,
    }


def _base64(png: bytes) -> str:
    return base64.b64encode(png).decode()


def failed_rows(members: Sequence[dict[str, Any]], error: str, study: str) -> list[dict[str, Any]]:
    """Rows recording each member of a group that raised (or whose worker died) as failed, with the error."""
    return [{"study": study, "config": dict(m), "status": "failed", "error": error, "finished_at": now()}
            for m in members]


def ready_to_store(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows with the sweep's provenance added and their PNGs decoded, as ``ResultStore.record`` takes them."""
    for row in rows:
        row.update(provenance)
        if row.get("png") is not None:
            row["png"] = base64.b64decode(row["png"])
        row["interim_pngs"] = {step: base64.b64decode(png) for step, png in (row.get("interim_pngs") or {}).items()}
    return rows
