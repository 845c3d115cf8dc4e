"""A group's mid-training checkpoints through Ray Tune: saved by the worker every few minutes, resumed when Tune
reruns a group whose worker or node died, and deleted by the driver once the group's rows are stored."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray import tune

from ebgan_core.checkpoint import CheckpointError, load_group_state, save_group_state
from ebgan_core.group import Checkpointing

GROUP_STATE_FILE = "group_state.pt"  # inside each Tune checkpoint of a group


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


def drop_checkpoints(trial: Any) -> None:
    """Delete an ended group's saved states: its rows are stored, and a state can take GBs (on local disk, a cloud
    bucket or NFS alike, through Tune's own filesystem handle)."""
    storage = trial.storage
    if storage is None:
        return
    filesystem = storage.storage_filesystem
    for entry in filesystem.get_file_info(pyarrow.fs.FileSelector(storage.trial_fs_path, allow_not_found=True)):
        if entry.type == pyarrow.fs.FileType.Directory and entry.base_name.startswith("checkpoint_"):
            filesystem.delete_dir(entry.path)
