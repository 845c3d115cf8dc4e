"""Group checkpoints that outlive the driver: a group saves its training state every few minutes under the sweep's
storage path, named by the group's identity (the sweep and its members' ``config_hash:seed`` keys), so that the same
command run again (after a lost worker, node or driver alike) finds it and resumes the group from it. The driver
deletes a group's checkpoint once the group's rows are stored.

The storage path is a local folder (the results folder on one machine; on a cluster, one every node mounts) or a
URI that pyarrow's filesystems read (``s3://``, ``gs://``, ``file://``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ebgan_core.checkpoint import CheckpointError, load_group_state, save_group_state
from ebgan_core.group import Checkpointing, check_resumable, member_keys
from ebgan_core.hashed_config import HashedConfig

FOLDER = "group-checkpoints"


def group_id(keys: Iterable[str]) -> str:
    """A group's identity from its members' ``config_hash:seed`` keys, whatever their order."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:24]


def storage_location(path: str) -> str:
    """A storage path as every process reads it: a URI (``s3://...``) as given, a local path made absolute."""
    return path if "://" in path else str(Path(path).resolve())


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
        return f"{self.storage.rstrip('/')}/{FOLDER}/{re.sub(r'[^A-Za-z0-9._-]', '_', self.sweep)}"

    def location(self, keys: Iterable[str]) -> str:
        """The checkpoint of the group whose members have these keys."""
        return f"{self.folder}/{group_id(keys)}.pt"

    def checkpointing(self, study: str, configs: Sequence[HashedConfig]) -> Checkpointing | None:
        """What ``run_group`` needs to save this group's state on the clock and to resume from a saved one that
        matches (printing from which step); a state that does not match is refused in one line and the group trains
        from step 0. None when checkpoints are off."""
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
        """Delete the checkpoint of the group with these member keys, if any (its rows are stored)."""
        _delete(self.location(keys))

    def saved(self) -> list[str]:
        """The checkpoints this sweep holds now (groups saved and not yet stored)."""
        return _listing(self.folder)

    def clear(self) -> None:
        """Delete every checkpoint of this sweep (it is complete; one may be left by a driver stopped between
        storing a group and deleting its checkpoint, or by a group packed otherwise before)."""
        for location in self.saved():
            _delete(location)
        if "://" not in self.folder and Path(self.folder).is_dir() and not any(Path(self.folder).iterdir()):
            Path(self.folder).rmdir()


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
    if "://" not in folder:
        return sorted(str(p) for p in Path(folder).glob("*.pt"))
    import pyarrow.fs

    filesystem, path = _filesystem(folder)
    entries = filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    scheme = folder.split("://")[0]
    return sorted(f"{scheme}://{e.path}" for e in entries if e.path.endswith(".pt"))
