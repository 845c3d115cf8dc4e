"""Checkpoints, loaded safely: one trained member (config, weights as B=1 slices, metadata), or a group mid-training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ebgan_core.config import TrialConfig
from ebgan_core.files import write_atomically
from ebgan_core.models import StackedGan
from ebgan_core.train import GROUP_STATE_FORMAT, build_group

CHECKPOINT_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or not one of ours."""


def save_checkpoint(
    path: Path, config: TrialConfig, state: dict[str, dict[str, torch.Tensor]], metadata: dict[str, Any]
) -> None:
    """Write atomically: a crash never leaves a half-written checkpoint."""
    payload = {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "state": state, "metadata": metadata}
    write_atomically(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[TrialConfig, StackedGan, dict[str, Any]]:
    """The config, the model (a group of one, eval mode) and the metadata; only plain tensors are unpickled."""
    path = Path(path)
    fix = "fix: point to a checkpoint.pt written by `ebgan train`, or retrain"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; {fix}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"checkpoint {path} has format {payload.get('format')!r}, expected {CHECKPOINT_FORMAT}; {fix}"
            )
        config = TrialConfig.from_dict(payload["config"])
        model, _ = build_group([config], "cpu")
        model.generator.load_state_dict(payload["state"]["generator"])
        model.discriminator.load_state_dict(payload["state"]["discriminator"])
    except CheckpointError:
        raise
    except Exception as exc:  # torch and zipfile raise many types for damaged or foreign files
        raise CheckpointError(f"checkpoint {path} is corrupt or not ours ({type(exc).__name__}); {fix}") from None
    return config, model.to(device).eval(), dict(payload["metadata"])


def save_group_state(path: Path, state: dict[str, Any]) -> None:
    """Write a group's training state (``train.Checkpointing.save``'s argument) atomically, streamed to disk (a
    state can hold GBs: weights and optimiser moments, about 12 bytes per parameter)."""
    write_atomically(path, lambda handle: torch.save(state, handle))


def load_group_state(path: Path) -> dict[str, Any]:
    """A group's training state, for ``train.Checkpointing.resume``; only plain tensors and values are unpickled."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and zipfile raise many types for damaged or foreign files
        raise CheckpointError(f"group checkpoint {path} is corrupt or not ours ({type(exc).__name__}); "
                              "fix: delete it to train the group from step 0") from None
    if not isinstance(state, dict) or state.get("format") != GROUP_STATE_FORMAT:
        raise CheckpointError(f"group checkpoint {path} is not a group state of format {GROUP_STATE_FORMAT}; "
                              "fix: delete it to train the group from step 0")
    return state
