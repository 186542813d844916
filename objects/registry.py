"""The registry of durable object classes: every DurableObject subclass adds itself when defined.

Process-wide, because classes register as they are defined (at import). The API and
workers import the modules named in SOLO_OBJECTS (`load_object_modules`) and look
classes and methods up here by name.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from solo.objects.errors import UnknownClass, UnknownMethod

if TYPE_CHECKING:
    from solo.objects.definition import DurableObject
    from solo.objects.signatures import MethodSpec


class ClassRegistry:
    """Durable object classes by name."""

    def __init__(self) -> None:
        self._classes: dict[str, type[DurableObject]] = {}
        self._lock = threading.Lock()

    def conflicts(self, cls: type) -> bool:
        other = self._classes.get(cls.__name__)
        # The same class imported again (reload, test re-collection) replaces itself.
        return other is not None and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__)

    def add(self, cls: type[DurableObject]) -> None:
        with self._lock:
            self._classes[cls.__name__] = cls

    def get(self, class_name: str) -> type[DurableObject]:
        try:
            return self._classes[class_name]
        except KeyError:
            close = close_matches(class_name, self._classes)
            raise UnknownClass(f"no durable object class named {class_name!r}{_did_you_mean(close)}", close) from None

    def method(self, class_name: str, method: str) -> MethodSpec:
        cls = self.get(class_name)
        try:
            return cls.__solo_methods__[method]
        except KeyError:
            close = close_matches(method, cls.__solo_methods__)
            raise UnknownMethod(f"{class_name} has no rpc method {method!r}{_did_you_mean(close)}", close) from None

    def names(self) -> list[str]:
        return sorted(self._classes)

    def in_definition_order(self) -> list[str]:
        """The names in the order their classes were first defined (imported)."""
        return list(self._classes)


def close_matches(name: str, known: Iterable[str]) -> list[str]:
    """The known names most like `name` (difflib's ratio, best first): "Countr" -> ["Counter"]."""
    return difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)


def _did_you_mean(names: list[str]) -> str:
    return f" (did you mean {' or '.join(repr(n) for n in names)}?)" if names else ""


_REGISTRY = ClassRegistry()


def registry() -> ClassRegistry:
    return _REGISTRY


def load_object_modules(modules: Iterable[str]) -> ClassRegistry:
    """Import the modules named in SOLO_OBJECTS so their classes register themselves."""
    for module in modules:
        importlib.import_module(module)
    return _REGISTRY
