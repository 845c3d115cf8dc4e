"""The bodies of Ray Tune trials: one stacked group of a grid sweep, or one config proposed by adaptive search."""

from __future__ import annotations

from typing import Any

from ray import tune

from sweeps.studies import STUDIES
from sweeps.worker import train_members


def group_trainable(tune_config: dict[str, Any], *, study: str, groups: list[list[dict[str, Any]]],
                    **shared: Any) -> None:
    """One stacked group of ``study`` (checkpointed as ``shared['checkpoints']`` says; resumed when run again)."""
    rows = train_members(groups[tune_config["group_index"]], study=study, **shared)
    tune.report({"rows": rows, "members": len(rows)})


def single_trainable(tune_config: dict[str, Any], *, study: str, base: dict[str, Any], **shared: Any) -> None:
    """One config of ``study``: the searcher's choices over ``base``; reports its score to the searcher (a diverged or
    failed run reports the study's worst). Checkpointed like a group of one, outside Tune: the searcher takes every
    reported result as a score."""
    (row,) = train_members([base | tune_config], study=study, **shared)
    spec = STUDIES[study]
    score = (row.get("scores") or {}).get(spec.score)
    tune.report({"rows": [row], "members": 1, "search_score": spec.worst_score if score is None else float(score)})
