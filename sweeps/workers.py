"""What runs inside a Ray worker: train one stacked group of a study and return its member rows.

A group that raises is data, not a crash: its members come back as failed rows with the traceback.
"""

from __future__ import annotations

import logging
import os
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from ebgan_core.checkpoint import CheckpointError, load_group_state, save_group_state
from ebgan_core.classifier import MnistConvNet, weights_sha256
from ebgan_core.config import TrialConfig
from ebgan_core.data import to_model_images
from ebgan_core.footprint import default_memory_budget
from ebgan_core.ladder_config import LadderConfig
from ebgan_core.ladder_train import train_ladder_group
from ebgan_core.pi_mnist import PiMnist, pi_mnist_from_arrays
from ebgan_core.train import Checkpointing, train_group
from sweeps.rows import failed_rows, ladder_row, member_row
from sweeps.store import now

GROUP_STATE_FILE = "group_state.pt"  # inside each Tune checkpoint of a group
_worker_data: dict[str, Any] = {}  # per worker process (actors are reused): decoded data, by content checksum


def _cached(sha: str, build: Any) -> Any:
    if sha not in _worker_data:
        _worker_data.clear()
        _worker_data[sha] = build()
    return _worker_data[sha]


def worker_device() -> tuple[str, str]:
    """The device a group trains on here (CUDA when there is one) and its name as rows record it."""
    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name()
    return "cpu", "cpu"


def trial_memory_budget(device: str) -> int:
    """Bytes this Tune trial may use: its share of the node (its GPU fraction, or its CPUs over the node's
    CPUs) of what ``train_group`` would take alone (80% of the memory available on the device)."""
    assigned = ray.get_runtime_context().get_assigned_resources()
    node_cpus = os.cpu_count() or 1
    share = assigned.get("GPU", 1.0) if device == "cuda" else assigned.get("CPU", node_cpus) / node_cpus
    return default_memory_budget(device, share)


def tune_checkpointing(every_s: float, total_steps: int) -> Checkpointing | None:
    """A group's training state saved through Tune every ``every_s`` seconds (None: ``every_s`` <= 0); a trial that
    Tune runs again after its worker or node died resumes from its latest one.

    Tune needs storage every node can reach for checkpoints from other nodes than the driver's (a cloud URI or a
    shared filesystem as ``storage_path``); where it has none, the group says so once and trains on without.
    """
    if every_s <= 0:
        return None
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # one line per checkpoint otherwise
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        try:
            with checkpoint.as_directory() as directory:
                resume = load_group_state(Path(directory) / GROUP_STATE_FILE)
            print(f"[group] resuming from its checkpoint at step {resume['run']['step']}/{total_steps}", flush=True)
        except CheckpointError as exc:
            print(f"[group] {exc}; training from step 0", flush=True)
    unsaved = False

    def save(state: dict[str, Any]) -> None:
        nonlocal unsaved
        if unsaved:
            return
        with tempfile.TemporaryDirectory(prefix="ebgan-group-") as directory:
            save_group_state(Path(directory) / GROUP_STATE_FILE, state)
            try:
                tune.report({"members": 0, "checkpoint_step": state["run"]["step"], "total_steps": total_steps},
                            checkpoint=tune.Checkpoint.from_directory(directory))
            except RuntimeError as exc:  # Tune refuses a checkpoint its storage path cannot take from this node
                unsaved = True
                print(f"[group] checkpoints off for this group: {str(exc).splitlines()[0]} (fix: a --storage-path "
                      "every node can reach, e.g. s3://bucket/ray or an NFS mount)", flush=True)

    return Checkpointing(every_s, save, resume)


def train_table1_members(members: list[dict[str, Any]], images: np.ndarray, images_sha: str,
                   judge_state: dict[str, torch.Tensor], judge_sha: str,
                   memory_budget: int | None, score_every: int = 0, checkpoint_s: float = 0.0,
                   ) -> list[dict[str, Any]]:
    """Inside a Ray worker: train one stacked group and return its member rows (all failed if it raises).

    Members that do not fit in ``memory_budget`` bytes (default: ``trial_memory_budget``) train in waves; they are
    also scored every ``score_every`` steps before their last (0: never). With ``checkpoint_s`` > 0 the group saves
    its state that often through Tune, and resumes from it when rerun."""
    started_at = now()
    try:
        device, device_name = worker_device()
        judge = MnistConvNet()
        judge.load_state_dict(judge_state)
        if weights_sha256(judge.state_dict()) != judge_sha:
            raise RuntimeError("the judge's weights changed in transit (sha256 mismatch)")
        data = _cached(images_sha, lambda: to_model_images(images))
        configs = [TrialConfig.from_dict(m) for m in members]
        budget = trial_memory_budget(device) if memory_budget is None else memory_budget
        results = train_group(configs, data, judge.to(device), device=device,
                              memory_budget=budget, checkpointing=tune_checkpointing(checkpoint_s, configs[0].steps),
                              score_steps=range(score_every, configs[0].steps, score_every) if score_every else ())
        return [member_row(r, device_name, judge_sha, started_at) for r in results]
    except Exception:  # a failing group is data, not a crash: its members are stored as failed
        return failed_rows(members, traceback.format_exc())


def train_table2_members(members: list[dict[str, Any]], arrays: dict[str, np.ndarray], arrays_sha: str,
                         score_every: int = 0, checkpoint_s: float = 0.0, **_: Any) -> list[dict[str, Any]]:
    """Inside a Ray worker: train one group of the semi-supervised study (``arrays``: the four MNIST arrays) and
    return its member rows; the test error is also measured every ``score_every`` steps before the last (0: never).
    With ``checkpoint_s`` > 0 the group saves its state that often through Tune, and resumes from it when rerun."""
    started_at = now()
    try:
        device, device_name = worker_device()
        data: PiMnist = _cached(arrays_sha, lambda: pi_mnist_from_arrays(arrays))
        configs = [LadderConfig.from_dict(m) for m in members]
        steps = configs[0].steps
        results = train_ladder_group(configs, data, device=device,
                                     eval_steps=range(score_every, steps, score_every) if score_every else (),
                                     checkpointing=tune_checkpointing(checkpoint_s, steps))
        return [ladder_row(r, device_name, started_at) for r in results]
    except Exception:
        return failed_rows(members, traceback.format_exc(), study="table2")
