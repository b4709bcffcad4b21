"""The few names of Cython's pure-Python mode that :mod:`slubsim.hitpath`
uses at run time, as no-ops, for running its source as plain Python where
Cython (and so its ``cython`` shadow module) is not installed.

Only decorators, ``declare`` and the C type names it is given are needed:
the module's type annotations are never evaluated (``from __future__ import
annotations``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: the module using this shim is running as Python, not as a Cython extension
compiled = False


def _same(x: T) -> T:
    return x


cclass = final = ccall = cfunc = inline = _same

# C types as the Python types holding their values
int = longlong = ulonglong = Py_ssize_t = builtins.int
double = builtins.float
bint = builtins.bool


def declare(_type: Any, value: Any = None, **_k: Any) -> Any:
    """``cython.declare(type, value)``: the value."""
    return value


def cast(_type: Any, value: T, **_k: Any) -> T:
    """``cython.cast(type, value)``: the value."""
    return value


def locals(**_types: Any) -> Callable[[T], T]:
    return _same


def exceptval(*_a: Any, **_k: Any) -> Callable[[T], T]:
    return _same


def boundscheck(_on: bool) -> Callable[[T], T]:
    return _same
