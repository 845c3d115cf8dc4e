"""Registries of named entries (each study's families) and the plugin files that add entries to them.

A registry maps names to entries; an unknown name is a one-line error that names the registered ones and the fix,
wherever the name comes from (a config, a grid file, ``--grid``, a stored trial). Entries beyond this project's come
from plugin files: Python files that call a registry's ``register`` when imported (docs/extending.md). The files
named in ``$EBGAN_PLUGINS`` (separated by ``os.pathsep``) are imported once per process before a registry is read,
so every process that needs an entry finds it: a sweep's driver, its Ray workers, ``ebgan figures``. ``use_plugins``
adds files there for this process and every process it starts.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Generic, Protocol, TypeVar

PLUGINS_ENV = "EBGAN_PLUGINS"
PLUGIN_HELP = ("a Python file that registers families (docs/extending.md); repeatable; the files in $EBGAN_PLUGINS "
               "are read too")


class Named(Protocol):
    name: str


Entry = TypeVar("Entry", bound=Named)


class Registry(Generic[Entry]):
    """Entries by name, in the order they were registered."""

    def __init__(self, what: str) -> None:
        self.what = what  # what an entry is, in messages: "Table 1 family"
        self._entries: dict[str, Entry] = {}

    def register(self, entry: Entry) -> Entry:
        """Add ``entry``; a name registered already (by another entry), or what ``check`` refuses, is an error."""
        known = self._entries.get(entry.name)
        if known is not None and known is not entry:
            raise ValueError(f"{self.what} {entry.name!r} is registered twice; fix: give one of them another name")
        self.check(entry)
        self._entries[entry.name] = entry
        return entry

    def check(self, entry: Entry) -> None:
        """Refuse (ValueError) an entry that cannot work beside the registered ones; a registry's own rules."""

    def __getitem__(self, name: str) -> Entry:
        load_plugins()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.what} {name!r}; registered: {', '.join(self._entries)} (fix: use one of "
                             f"them, or register yours in a plugin file named in ${PLUGINS_ENV}: "
                             "docs/extending.md)") from None

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        load_plugins()
        return iter(list(self._entries.values()))

    def names(self) -> tuple[str, ...]:
        load_plugins()
        return tuple(self._entries)


_loaded: set[Path] = set()
_loaded_from = ""  # the value of $EBGAN_PLUGINS whose files are all imported


def plugin_paths() -> list[Path]:
    """The plugin files named in ``$EBGAN_PLUGINS``, resolved."""
    return [Path(p).expanduser().resolve() for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p.strip()]


def load_plugins() -> None:
    """Import every plugin file of ``$EBGAN_PLUGINS`` not imported yet in this process (a module already imported
    from the same file, such as a test module, counts as imported). Cheap while the variable stays as it was: a
    registry calls it at every read."""
    global _loaded_from
    if os.environ.get(PLUGINS_ENV, "") == _loaded_from:
        return
    for path in plugin_paths():
        if path in _loaded:
            continue
        if any(getattr(m, "__file__", None) and Path(m.__file__).resolve() == path for m in list(sys.modules.values())):
            _loaded.add(path)
            continue
        if not path.is_file():
            raise ValueError(f"plugin file {path} not found; fix: correct ${PLUGINS_ENV} or --plugin")
        spec = importlib.util.spec_from_file_location(f"ebgan_plugin_{path.stem}_{abs(hash(path))}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[spec.name]
            raise ValueError(f"plugin file {path} failed: {type(exc).__name__}: {exc}") from exc
        _loaded.add(path)
    _loaded_from = os.environ.get(PLUGINS_ENV, "")


def use_plugins(paths: Iterable[str | Path]) -> None:
    """Add plugin files to ``$EBGAN_PLUGINS`` (so that processes started from here import them too) and import them."""
    current = [str(p) for p in plugin_paths()]
    added = [str(Path(p).expanduser().resolve()) for p in paths]
    os.environ[PLUGINS_ENV] = os.pathsep.join(dict.fromkeys(current + added))
    load_plugins()

