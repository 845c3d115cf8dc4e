"""What every study's config shares: a frozen dataclass whose fields are type-checked, built from and written to
plain mappings, and hashed (sha256 of its canonical form, the fields that change the result except the seed)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Self


def fail(problem: str) -> None:
    """Refuse a config: a ValueError whose message names the problem."""
    raise ValueError(f"invalid config: {problem}")


class HashedConfig:
    """Mixin for frozen config dataclasses; subclasses define ``_validate()`` and ``canonical()``."""

    def __post_init__(self) -> None:
        self._check_field_types()
        self._validate()

    def _validate(self) -> None:
        """Refuse (``fail``) values or combinations the config cannot train."""
        raise NotImplementedError

    def _check_field_types(self) -> None:
        """Fields annotated float take any number (stored as float), int only integers, bool only true or false."""
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.type == "float":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"config field {spec.name} must be a number, got {value!r}")
                object.__setattr__(self, spec.name, float(value))
            elif spec.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"config field {spec.name} must be an integer, got {value!r}")
            elif spec.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"config field {spec.name} must be true or false, got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Build from a mapping; unknown keys are an error naming the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field {unknown[0]!r}; known fields: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """All fields, as plain JSON-able values."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def canonical(self) -> dict[str, Any]:
        """The fields that change the result, except the seed."""
        raise NotImplementedError

    def config_hash(self) -> str:
        """sha256 (hex) of the canonical form as sorted-key JSON: stable across processes and versions."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
