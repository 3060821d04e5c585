"""Name -> class registries for methods, data sets and backbones.

Methods and data sets register themselves with a decorator in their own file. ``load_plugins``
imports every module that may register something, so a name is known once its file exists.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            try:
                obj.registered_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj
        return decorator

    def get(self, name: str) -> T:
        load_plugins()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._entries


METHODS: Registry = Registry("method")
DATASETS: Registry = Registry("data set")
BACKBONES: Registry = Registry("backbone")

# Packages whose modules register entries. Each module is imported once.
_PLUGIN_PACKAGES = ("braincl.methods", "braincl.data", "braincl.models", "baselines")
_loaded = False


def load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in _PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")
