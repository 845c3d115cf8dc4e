"""What produced a result: code version and library versions, stored with every result."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from functools import cache
from pathlib import Path

import ebgan_core

CORE_LIBRARIES = ("torch", "numpy")


def _git(*args: str) -> str:
    root = Path(ebgan_core.__file__).resolve().parent.parent
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5,
                          check=True).stdout.strip()


@cache
def code_version() -> str:
    """Package version, plus the git commit (``.dirty`` if tracked files changed) when run from a checkout."""
    version = ebgan_core.__version__
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}{'.dirty' if dirty else ''}" if commit else version


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the core libraries (and ``extra`` ones), plus Python's."""
    versions = {"python": platform.python_version()}
    for name in CORE_LIBRARIES + extra:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
