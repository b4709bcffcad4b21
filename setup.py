"""Build hook: compile slubsim's model hot path with mypyc, the trace line
scanner and the replay hit path with Cython.

The modules in ``src/slubsim/_native.py:COMPILED_MODULES`` (page allocator, machine,
slabs, sheaves, node/barn, the per-CPU layers and the cache) are compiled to C
extensions when mypyc and a C compiler are available; ``src/slubsim/trace/scan.py``
(Cython pure-Python mode: typed memoryviews, no GIL) and ``src/slubsim/hitpath.py`` with
Cython.  Anything that
stops that (no compiler, ``SLUBSIM_PURE=1`` at build time, a mypyc or Cython
failure) is reported and the package installs as pure Python: the same sources
run unchanged, only slower (see README "Speed"), and trace text is parsed with
numpy instead of the scanner.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src", "slubsim"))
from _native import COMPILED_MODULES

sys.path.pop(0)


class OptionalBuildExt(build_ext):
    """build_ext that degrades to a pure-Python install instead of failing."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # no compiler, broken toolchain, ...
            self.warn(f"slubsim: compiling the hot path failed ({e}); installing pure Python")

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:
            self.warn(f"slubsim: could not compile {ext.name} ({e}); it will run as Python")


def ext_modules() -> list[Any]:
    if os.environ.get("SLUBSIM_PURE", "") not in ("", "0"):
        print("slubsim: SLUBSIM_PURE set, building pure Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("slubsim: mypyc not available, building pure Python", file=sys.stderr)
        return []
    paths = [os.path.join("src", *m.split(".")) + ".py" for m in COMPILED_MODULES]
    try:
        exts = list(mypycify(paths, opt_level="3"))
    except BaseException as e:  # mypyc type-check failure exits via SystemExit
        print(f"slubsim: mypyc failed ({e!r}), building pure Python", file=sys.stderr)
        exts = []
    return exts + cython_exts()


#: Cython pure-Python-mode modules: name -> compiler directives.  The line
#: scanner's indices are computed within the block it checks; the hit path
#: indexes with trace values, so it keeps bounds checks (an IndexError, not a
#: crash, on a corrupt store)
CYTHON_MODULES: dict[str, dict[str, bool]] = {
    "slubsim.trace.scan": {"boundscheck": False, "wraparound": False},
    "slubsim.hitpath": {"boundscheck": True, "wraparound": False},
}


def cython_exts() -> list[Any]:
    """The Cython-compiled modules (line scanner, replay hit path), if Cython is there."""
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        print(
            "slubsim: Cython not available, trace text is parsed with numpy and"
            " replay hits run as Python",
            file=sys.stderr,
        )
        return []
    out: list[Any] = []
    for name, directives in CYTHON_MODULES.items():
        ext = Extension(
            name, [os.path.join("src", *name.split(".")) + ".py"], extra_compile_args=["-O3"]
        )
        try:
            out += cythonize([ext], language_level=3, compiler_directives=directives)
        except BaseException as e:
            print(f"slubsim: Cython failed on {name} ({e!r}); it runs as Python", file=sys.stderr)
    return out


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
