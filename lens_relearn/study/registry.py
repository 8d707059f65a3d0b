"""Registries of plug-ins by name: the analyses a study runs and the removals its arms apply.

A registry keeps its entries in the order they were added, which is the order the runner
iterates them. The package registers its own analyses and removals when it is imported; a user
adds one with ``register`` (for good) or ``registered`` (for a ``with`` block, as tests do).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar, runtime_checkable

from lens_relearn.errors import LensRelearnError


@runtime_checkable
class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Plug-ins of one kind by name, in the order they were added.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Thing:
        ...     name: str
        >>> things = Registry[Thing]("thing")
        >>> things.register(Thing("a"))
        Thing(name='a')
        >>> with things.registered(Thing("b")):
        ...     things.names()
        ('a', 'b')
        >>> things.names(), things.get("c")
        Traceback (most recent call last):
        ...
        lens_relearn.errors.LensRelearnError: Unknown thing 'c'; the registered ones are a.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under its name (``replace=True`` lets it take an existing name over)."""
        if not entry.name or not entry.name.isidentifier():
            raise LensRelearnError(f"A {self.kind}'s name must be an identifier, not {entry.name!r}.")
        if entry.name in self._entries and not replace:
            raise LensRelearnError(f"A {self.kind} named {entry.name!r} is registered already; pass replace=True.")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Take an entry out (nothing happens if there is none)."""
        self._entries.pop(name, None)

    @contextmanager
    def registered(self, entry: T) -> Iterator[T]:
        """``entry`` registered for the ``with`` block only."""
        self.register(entry)
        try:
            yield entry
        finally:
            self.unregister(entry.name)

    def get(self, name: str) -> T:
        """The entry of that name, or ``LensRelearnError`` listing the registered ones."""
        if name not in self._entries:
            raise LensRelearnError(f"Unknown {self.kind} {name!r}; the registered ones are {', '.join(self._entries)}.")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        """Every registered name, in order."""
        return tuple(self._entries)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
