"""A group's training state on disk (any study), written atomically and read back safely (plain tensors only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import torch

from ebgan_core.files import write_atomically
from ebgan_core.group import GROUP_STATE_FORMAT, GROUP_STATE_VERSION


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or not one of ours."""


def save_group_state(target: Path | BinaryIO, state: dict[str, Any]) -> None:
    """Write a group's training state (``Checkpointing.save``'s argument) to a file atomically, or to an open binary
    stream; streamed either way (a state can hold GBs: weights and optimiser moments, about 12 bytes per parameter).
    A failed write (a full disk) raises its ``OSError``, not the ``RuntimeError`` torch's zip writer raises after it."""
    try:
        if isinstance(target, Path):
            write_atomically(target, lambda handle: torch.save(state, handle))
        else:
            torch.save(state, target)
    except RuntimeError as exc:
        if isinstance(exc.__context__, OSError):
            raise exc.__context__ from None
        raise


def load_group_state(path: Path, handle: BinaryIO | None = None) -> dict[str, Any]:
    """A group's training state, for ``Checkpointing.resume``, from the file ``path`` (or from ``handle``, an open
    seekable stream of it); only plain tensors and values are unpickled."""
    path = Path(path)
    fix = "fix: delete it to train the group from step 0"
    try:
        state = torch.load(path if handle is None else handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and zipfile raise many types for damaged or foreign files
        raise CheckpointError(f"group checkpoint {path} is corrupt or not ours ({type(exc).__name__}); {fix}") from None
    if not isinstance(state, dict) or state.get("format") not in (GROUP_STATE_FORMAT, 1):
        raise CheckpointError(f"group checkpoint {path} is not a group state; {fix}")
    if state.get("format") == 1 or state.get("version") != GROUP_STATE_VERSION:
        version = 1 if state.get("format") == 1 else state.get("version")
        raise CheckpointError(f"group checkpoint {path} has version {version!r}, which this ebgan-sweep does not "
                              f"resume (it reads version {GROUP_STATE_VERSION}); {fix}")
    return state
