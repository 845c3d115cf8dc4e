"""One trained Table 1 member on disk (``ebgan train``'s ``checkpoint.pt``): config, weights as B=1 slices and
metadata, written atomically and loaded safely (plain tensors only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ebgan_core.checkpoint import CheckpointError
from ebgan_core.files import write_atomically
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.models import StackedGan
from ebgan_core.table1.train import build_group

CHECKPOINT_FORMAT = "ebgan-sweep member checkpoint"
CHECKPOINT_VERSION = 1
STUDY = "table1"


def save_checkpoint(
    path: Path, config: TrialConfig, state: dict[str, dict[str, torch.Tensor]], metadata: dict[str, Any]
) -> None:
    """Write atomically: a crash never leaves a half-written checkpoint."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "study": STUDY,
               "config": config.to_dict(), "state": state, "metadata": metadata}
    write_atomically(path, lambda handle: torch.save(payload, handle))


def _check_format(path: Path, payload: Any, fix: str) -> None:
    """Accept this format, and the same layout from before formats were named (``format`` 1, Table 1 only)."""
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} is not a member checkpoint; {fix}")
    named = (payload.get("format"), payload.get("version"), payload.get("study"))
    if named != (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, STUDY) and payload.get("format") != 1:
        raise CheckpointError(f"checkpoint {path} has format {named[0]!r} (version {named[1]!r}, study {named[2]!r}); "
                              f"expected {CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION} of {STUDY}; {fix}")


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[TrialConfig, StackedGan, dict[str, Any]]:
    """The config, the model (a group of one, eval mode) and the metadata; only plain tensors are unpickled."""
    path = Path(path)
    fix = "fix: point to a checkpoint.pt written by `ebgan train`, or retrain"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; {fix}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        _check_format(path, payload, fix)
        config = TrialConfig.from_dict(payload["config"])
        model, _ = build_group([config], "cpu")
        model.generator.load_state_dict(payload["state"]["generator"])
        model.discriminator.load_state_dict(payload["state"]["discriminator"])
    except CheckpointError:
        raise
    except Exception as exc:  # torch and zipfile raise many types for damaged or foreign files
        raise CheckpointError(f"checkpoint {path} is corrupt or not ours ({type(exc).__name__}); {fix}") from None
    return config, model.to(device).eval(), dict(payload["metadata"])
