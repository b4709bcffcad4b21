"""Compiled or pure: which implementation of the model's hot path is loaded.

``pip install .`` compiles the modules below with mypyc (see ``setup.py``);
the same ``.py`` sources are the pure-Python implementation.  The compiled
modules form one unit -- compiled code checks native class types, so a
compiled ``sheaves`` cannot work on a pure ``Sheaf`` -- hence it is all or
nothing:

* ``SLUBSIM_PURE=1`` in the environment forces the pure sources;
* so does any module missing its extension (no compiler at install time);
* so does an extension older than its source (an editable checkout edited
  after ``pip install -e .``): running stale machine code would silently
  ignore the edit, so slubsim warns and runs the sources instead.  Re-run
  ``pip install -e .`` to recompile.

Both implementations give bit-identical results (tested).  This module uses
only the standard library: ``setup.py`` imports it before slubsim exists.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

#: compiled by mypyc at install time, in dependency order
COMPILED_MODULES: tuple[str, ...] = (
    "slubsim.trace.events",
    "slubsim.faults",
    "slubsim.page_alloc",
    "slubsim.shadow",
    "slubsim.machine",
    "slubsim.slab",
    "slubsim.sheaf",
    "slubsim.stats",
    "slubsim.node",
    "slubsim.pcpu",
    "slubsim.cache",
    "slubsim.sheaves",
    "slubsim.classic",
    "slubsim.optin",
    "slubsim.pca",
    "slubsim.rcu",
    "slubsim.kernel",
    "slubsim.replay",
    "slubsim.trace.ftrace",
    "slubsim.trace.ingest",
)

#: compiled by Cython at install time (setup.py); they use the mypyc modules
#: through Python's API only, so each may run as Python on its own: when the
#: pure sources are chosen, when not compiled, or when older than its source
CYTHON_MODULES: tuple[str, ...] = ("slubsim.hitpath",)

#: an extension may predate its source by this much without being called
#: stale: a wheel install unpacks files in archive order within milliseconds
#: (build_py keeps the sources' own, older, mtimes when pip preserves them)
_MTIME_SLACK = 2.0


def module_path(pkg_dir: Path, name: str, suffix: str = ".py") -> Path:
    """``slubsim.trace.events`` -> ``pkg_dir/trace/events{suffix}``."""
    *sub, short = name.split(".")[1:]
    return pkg_dir.joinpath(*sub, f"{short}{suffix}")


def _extension(pkg_dir: Path, name: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = module_path(pkg_dir, name, suffix)
        if p.is_file():
            return p
    return None


def pure_reason(pkg_dir: Path, environ: dict[str, str] | os._Environ[str]) -> str | None:
    """Why the pure sources must be used, or None when the extensions can be."""
    if environ.get("SLUBSIM_PURE", "") not in ("", "0"):
        return "SLUBSIM_PURE is set"
    for name in COMPILED_MODULES:
        ext = _extension(pkg_dir, name)
        if ext is None:
            return "not compiled at install time"
        src = module_path(pkg_dir, name)
        if src.is_file() and src.stat().st_mtime > ext.stat().st_mtime + _MTIME_SLACK:
            return f"{src.name} is newer than its compiled extension (re-run pip install)"
    return None


def _stale(pkg_dir: Path, name: str) -> bool:
    """An extension of ``name`` exists and is older than its source."""
    ext = _extension(pkg_dir, name)
    src = module_path(pkg_dir, name)
    return (
        ext is not None
        and src.is_file()
        and src.stat().st_mtime > ext.stat().st_mtime + _MTIME_SLACK
    )


class _PureSourceFinder:
    """Meta-path finder that loads the given modules from their ``.py``."""

    def __init__(self, pkg_dir: Path, names: Sequence[str]) -> None:
        self.pkg_dir = pkg_dir
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, module_path(self.pkg_dir, fullname))


def _use_sources(pkg_dir: Path, names: Sequence[str]) -> None:
    if not any(isinstance(f, _PureSourceFinder) and f.names == set(names) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureSourceFinder(pkg_dir, names))


def select(pkg_dir: Path) -> tuple[bool, str | None]:
    """Install the pure-source finder if needed; return (compiled, reason)."""
    reason = pure_reason(pkg_dir, os.environ)
    if reason is None:
        stale = [name for name in CYTHON_MODULES if _stale(pkg_dir, name)]
        if stale:
            _use_sources(pkg_dir, stale)
            warnings.warn(
                f"slubsim: {', '.join(stale)}: source newer than the compiled extension"
                " (re-run pip install); running it as Python",
                RuntimeWarning,
                stacklevel=3,
            )
        return True, None
    _use_sources(pkg_dir, COMPILED_MODULES + CYTHON_MODULES)
    if "newer than" in reason:
        warnings.warn(f"slubsim runs pure Python: {reason}", RuntimeWarning, stacklevel=3)
    return False, reason
