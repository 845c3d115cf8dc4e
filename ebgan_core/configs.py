"""The config type of each study: a trial's study names the dataclass its stored config is read back into."""

from __future__ import annotations

from typing import Any

from ebgan_core.table1.config import TrialConfig
from ebgan_core.table2.config import LadderConfig

CONFIG_TYPES: dict[str, type[TrialConfig] | type[LadderConfig]] = {"table1": TrialConfig, "table2": LadderConfig}


def config_from_dict(study: str, values: dict[str, Any]) -> TrialConfig | LadderConfig:
    """The config of a ``study`` trial from its fields (unknown fields and studies are errors naming the known)."""
    if study not in CONFIG_TYPES:
        raise ValueError(f"unknown study {study!r}; use one of {', '.join(CONFIG_TYPES)}")
    return CONFIG_TYPES[study].from_dict(values)
