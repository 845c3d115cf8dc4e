"""Train one stacked group of any study where it runs (a Ray worker, or a process without Ray) and return its
member rows. A group that raises is data, not a crash: its members come back as failed rows with the traceback."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import torch

from ebgan_core.group import scoring_steps
from ebgan_core.memory import default_memory_budget
from sweeps.group_checkpoints import GroupCheckpoints
from sweeps.rows import failed_rows, member_row
from sweeps.store.result_store import now
from sweeps.studies import STUDIES

_prepared: dict[tuple[str, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}  # per process: the latest inputs


def worker_device() -> tuple[str, str]:
    """The device a group trains on here (CUDA when there is one) and its name as rows record it."""
    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name()
    return "cpu", "cpu"


def share_of_node(device: str) -> float:
    """This process's share of its node as Ray assigned it (its GPU fraction, or its CPUs over the node's CPUs); 1
    outside Ray."""
    ray = sys.modules.get("ray")  # inside a Ray worker Ray is imported; elsewhere it may not even be installed
    if ray is None or not ray.is_initialized():
        return 1.0
    assigned = ray.get_runtime_context().get_assigned_resources()
    node_cpus = os.cpu_count() or 1
    return assigned.get("GPU", 1.0) if device == "cuda" else assigned.get("CPU", node_cpus) / node_cpus


def train_members(members: list[dict[str, Any]], *, study: str, inputs: dict[str, Any], memory_budget: int | None,
                  score_every: int = 0, interim_samples: int | None = None,
                  checkpoints: GroupCheckpoints | None = None) -> list[dict[str, Any]]:
    """Train one stacked group of ``study`` (``members``: its configs as dicts) from the driver's ``inputs`` and
    return one row per member (all failed if it raises).

    Members that do not fit in ``memory_budget`` bytes (default: this process's share of the device) train in waves;
    they are also scored every ``score_every`` steps before their last (0: never) on ``interim_samples`` samples
    (None: as many as the final score); ``checkpoints`` says where the group saves its training state and resumes
    from a saved one (None: never)."""
    started_at = now()
    try:
        device, device_name = worker_device()
        spec = STUDIES[study]
        key = (study, device, *(str(v) for k, v in sorted(inputs.items()) if k.endswith("_sha")))
        if key not in _prepared:
            _prepared.clear()
            _prepared[key] = spec.prepare(**inputs, device=device)
        arguments, recorded = _prepared[key]
        configs = [spec.config_type.from_dict(m) for m in members]
        steps = configs[0].steps
        budget = default_memory_budget(device, share_of_node(device)) if memory_budget is None else memory_budget
        progress = None if checkpoints is None else checkpoints.progress_file(configs)
        checkpointing = None if checkpoints is None else checkpoints.checkpointing(study, configs, progress)
        results = spec.train(configs, *arguments, device=device, memory_budget=budget, checkpointing=checkpointing,
                             score_steps=scoring_steps(score_every, steps), progress=progress,
                             interim_samples=interim_samples)
        return [member_row(r, study, device_name, started_at, **recorded) for r in results]
    except Exception:  # a failing group is data, not a crash: its members are stored as failed
        return failed_rows(members, traceback.format_exc(), study)
