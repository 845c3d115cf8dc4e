"""What produced a result: code version and library versions, stored with every result."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from functools import cache
from pathlib import Path

import ebgan_core

CORE_LIBRARIES = ("torch", "numpy")


@cache
def code_version() -> str:
    """Package version, plus the git commit (``+dirty`` if the tree has changes) when run from a checkout."""
    version = ebgan_core.__version__
    root = Path(ebgan_core.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
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
