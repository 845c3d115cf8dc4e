"""Group checkpoints that outlive the driver: a group saves its training state every few minutes under the sweep's
storage path, named by the group's identity (the sweep and its members' ``config_hash:seed`` keys), so that the same
command run again (after a lost worker, node or driver alike) finds it and resumes the group from it. The driver
deletes a group's checkpoint once the group's rows are stored.

The storage path is a local folder (the results folder on one machine; on a cluster, one every node mounts) or a
URI that pyarrow's filesystems read (``s3://``, ``gs://``, ``file://``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ebgan_core.checkpoint import CheckpointError, load_group_state, save_group_state
from ebgan_core.files import write_atomically
from ebgan_core.group import Checkpointing, check_resumable, member_keys
from ebgan_core.hashed_config import HashedConfig

FOLDER = "group-checkpoints"
PROGRESS_SUFFIX = ".progress.json"
PROGRESS_EVERY_S = 1.0


def group_id(keys: Iterable[str]) -> str:
    """A group's identity from its members' ``config_hash:seed`` keys, whatever their order."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:24]


def storage_location(path: str) -> str:
    """A storage path as every process reads it: a URI (``s3://...``) as given, a local path made absolute."""
    return path if "://" in path else str(Path(path).resolve())


def sweep_folder(storage: str, sweep: str) -> str:
    """Where the sweep ``sweep`` keeps its groups' checkpoints and progress files under ``storage``."""
    return f"{storage.rstrip('/')}/{FOLDER}/{re.sub(r'[^A-Za-z0-9._-]', '_', sweep)}"


@dataclass(frozen=True)
class GroupCheckpoints:
    """Where one sweep's groups save their state (``<storage>/group-checkpoints/<sweep>/<group id>.pt``), how often
    (``every_s``; 0: never) and the code version a state must have been saved by to be resumed."""

    storage: str  # absolute local path or URI (``storage_location``)
    sweep: str
    code_version: str
    every_s: float

    @property
    def folder(self) -> str:
        return sweep_folder(self.storage, self.sweep)

    def location(self, keys: Iterable[str]) -> str:
        """The checkpoint of the group whose members have these keys."""
        return f"{self.folder}/{group_id(keys)}.pt"

    def progress_location(self, keys: Iterable[str]) -> str:
        """The progress file of the group whose members have these keys, beside its checkpoint."""
        return f"{self.folder}/{group_id(keys)}{PROGRESS_SUFFIX}"

    def progress_file(self, configs: Sequence[HashedConfig]) -> ProgressFile | None:
        """The group's progress file (``run_group``'s ``progress``), on a local storage path with checkpoints on."""
        if self.every_s <= 0 or "://" in self.folder:
            return None
        return ProgressFile(self.progress_location(member_keys(configs)), len(configs))

    def checkpointing(self, study: str, configs: Sequence[HashedConfig],
                      progress: ProgressFile | None = None) -> Checkpointing | None:
        """What ``run_group`` needs to save this group's state on the clock and to resume from a saved one that
        matches (printing from which step); a state that does not match is refused in one line and the group trains
        from step 0. ``progress`` is told of each save. None when checkpoints are off."""
        if self.every_s <= 0:
            return None
        location, total = self.location(member_keys(configs)), configs[0].steps
        resume = self._matching_state(location, study, configs)
        if resume is not None:
            print(f"[group] resuming from its checkpoint at step {resume['run']['step']}/{total} ({location})",
                  flush=True)

        unsaved = False

        def save(state: dict[str, Any]) -> None:
            nonlocal unsaved
            if unsaved:
                return
            try:
                _write(location, state | {"sweep": self.sweep, "code_version": self.code_version})
            except OSError as exc:  # a full disk, a lost mount or bucket: training needs no disk, so it goes on
                unsaved = True
                print(f"[group] cannot save its state to {location} ({exc.strerror or exc}); training on without "
                      "checkpoints (fix: free space, or a --storage-path with room)", flush=True)
                return
            if progress is not None:
                progress.saved_here()
            print(f"[group] saved its state at step {state['run']['step']}/{total}", flush=True)

        return Checkpointing(self.every_s, save, resume)

    def _matching_state(self, location: str, study: str, configs: Sequence[HashedConfig]) -> dict[str, Any] | None:
        try:
            state = _read(location)
            if state is None:
                return None
            if state.get("code_version") != self.code_version:
                raise CheckpointError(f"group checkpoint {location} was saved by code {state.get('code_version')!r}, "
                                      f"not this {self.code_version!r}")
            if state.get("sweep") != self.sweep:
                raise CheckpointError(f"group checkpoint {location} belongs to sweep {state.get('sweep')!r}")
            try:
                check_resumable(state, study, configs)
            except ValueError as exc:
                raise CheckpointError(f"group checkpoint {location}: {str(exc).split(';')[0]}") from None
        except CheckpointError as exc:
            print(f"[group] {str(exc).split('; fix:')[0]}: refused, training from step 0", flush=True)
            return None
        return state

    def drop(self, keys: Iterable[str]) -> None:
        """Delete the checkpoint (and progress file) of the group with these member keys, if any (it is stored)."""
        keys = list(keys)
        location = self.location(keys)
        _delete(location)
        if "://" not in location:  # its progress file, and what a process killed while writing either left
            progress = Path(self.progress_location(keys))
            for path in (progress, *progress.parent.glob(f"{group_id(keys)}.*.tmp")):
                path.unlink(missing_ok=True)

    def saved(self) -> list[str]:
        """The checkpoints this sweep holds now (groups saved and not yet stored)."""
        return [location for location in _listing(self.folder) if location.endswith(".pt")]

    def clear(self) -> None:
        """Delete this sweep's folder of checkpoints (it is complete): every file in it, also those left by a driver
        stopped between storing a group and deleting its checkpoint, by a group packed otherwise before, or half
        written by a process killed while writing."""
        for location in _listing(self.folder):
            _delete(location)
        if "://" not in self.folder and Path(self.folder).is_dir() and not any(Path(self.folder).iterdir()):
            Path(self.folder).rmdir()


class ProgressFile:
    """Where a running group stands, in ``<id>.progress.json`` beside its checkpoint, rewritten at each save and
    at most once a second between: the step it reached and the step its latest save holds (or its attempt started
    from), both counted over all its waves, its speed in steps per second since the attempt started, its members and
    the process training it. Deleted with the checkpoint. ``ebgan status`` shows the running groups from these, and
    ``make chaos`` reads them to count the training a fault lost."""

    def __init__(self, path: str, members: int) -> None:
        self.path, self.members = Path(path), members
        self.step = self.saved = self.total = self.first = 0
        self.started: float | None = None
        self.written = float("-inf")

    def __call__(self, step: int, total: int) -> None:
        if self.started is None:  # the first step of this attempt (which started from the step before) just ended
            self.started, self.saved, self.first = time.monotonic(), step - 1, step
        self.step, self.total = step, total
        if time.monotonic() - self.written >= PROGRESS_EVERY_S:
            self._write()

    def saved_here(self) -> None:
        """The group's state was just saved at the step it reached."""
        self.saved = self.step
        self._write()

    def _write(self) -> None:
        self.written = time.monotonic()
        elapsed = self.written - (self.started or self.written)  # the steps after the first took this long
        record = {"step": self.step, "saved": self.saved, "total": self.total, "members": self.members,
                  "steps_per_s": (self.step - self.first) / elapsed if elapsed > 0 else 0.0, "pid": os.getpid(),
                  "time": time.time()}
        with contextlib.suppress(OSError):  # a progress file is a courtesy: a full disk must not stop training
            write_atomically(self.path, json.dumps(record).encode())


# Local paths through pathlib (no pyarrow needed on a bare machine), URIs through pyarrow's filesystems.

def _filesystem(location: str) -> tuple[Any, str]:
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(location)


def _read(location: str) -> dict[str, Any] | None:
    if "://" not in location:
        return load_group_state(Path(location)) if Path(location).is_file() else None
    import pyarrow.fs

    filesystem, path = _filesystem(location)
    if filesystem.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with filesystem.open_input_file(path) as handle:
        return load_group_state(Path(location), handle)


def _write(location: str, state: dict[str, Any]) -> None:
    if "://" not in location:
        save_group_state(Path(location), state)
        return
    filesystem, path = _filesystem(location)
    filesystem.create_dir(path.rsplit("/", 1)[0])
    with filesystem.open_output_stream(path + ".tmp") as handle:
        save_group_state(handle, state)
    filesystem.move(path + ".tmp", path)


def _delete(location: str) -> None:
    if "://" not in location:
        Path(location).unlink(missing_ok=True)
        return
    import pyarrow.fs

    filesystem, path = _filesystem(location)
    if filesystem.get_file_info(path).type == pyarrow.fs.FileType.File:
        filesystem.delete_file(path)


def _listing(folder: str) -> list[str]:
    """Every file in ``folder`` (checkpoints, progress files, leftovers of interrupted writes)."""
    if "://" not in folder:
        return sorted(str(p) for p in Path(folder).glob("*") if p.is_file())
    import pyarrow.fs

    filesystem, path = _filesystem(folder)
    entries = filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    scheme = folder.split("://")[0]
    return sorted(f"{scheme}://{e.path}" for e in entries if e.type == pyarrow.fs.FileType.File)
