"""Containers: ``Sequential`` and ``ModuleList`` (children named by index)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

from .module import Module


def _check_module(m: Any, where: str) -> "Module":
    if not isinstance(m, Module):
        raise TypeError(f"{where} takes Modules, got {type(m).__name__}")
    return m


class _IndexedModules(Module):
    """A module holding an ordered list of modules, named ``"0"``, ``"1"``..."""

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        self._items: List[Module] = [_check_module(m, type(self).__name__) for m in modules]

    def _slots(self) -> List[Tuple[str, Any]]:
        return [(str(i), m) for i, m in enumerate(self._items)]

    def _index(self, idx: int) -> int:
        n = len(self._items)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return idx % n

    def __getitem__(self, idx: Union[int, slice]):
        if isinstance(idx, slice):
            return type(self)(*self._items[idx]) if isinstance(self, Sequential) else type(self)(self._items[idx])
        return self._items[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        self._items[self._index(idx)] = _check_module(module, type(self).__name__)

    def __delitem__(self, idx: Union[int, slice]) -> None:
        del self._items[idx if isinstance(idx, slice) else self._index(idx)]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._items))

    def append(self, module: Module) -> "_IndexedModules":
        """Add ``module`` at the end; returns ``self``."""
        self._items.append(_check_module(module, f"{type(self).__name__}.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> "_IndexedModules":
        """Append every module of ``modules``; returns ``self``."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        self._items.insert(index, _check_module(module, f"{type(self).__name__}.insert"))


class ModuleList(_IndexedModules):
    """A list of modules that ``parameters()`` and ``modules()`` see: ``ModuleList(modules=None)``."""

    def __init__(self, modules: Optional[Iterable[Module]] = None):
        super().__init__(modules or ())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward: iterate over it and call its modules")


class Sequential(_IndexedModules):
    """``Sequential(*modules)`` (or one ``OrderedDict`` of them): calls its modules in order,
    each on the output of the previous one."""

    def __init__(self, *modules: Module):
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            self._names = list(modules[0].keys())
            modules = tuple(modules[0].values())
        super().__init__(modules)

    def _slots(self) -> List[Tuple[str, Any]]:
        names = self.__dict__.get("_names")
        if names is not None and len(names) == len(self._items):
            return list(zip(names, self._items))
        return super()._slots()

    def append(self, module: Module) -> "Sequential":
        names = self.__dict__.get("_names")
        if names is not None and len(names) == len(self._items):
            names.append(str(len(self._items)))
        return super().append(module)

    def forward(self, input):
        for m in self._items:
            input = m(input)
        return input
