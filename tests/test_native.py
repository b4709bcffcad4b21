"""The compiled (mypyc) and pure-Python hot path: selection and equality."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import slubsim
from helpers import strip_timing
from slubsim import _native

DATA = Path(__file__).parent / "data"


def _fake_pkg(tmp_path: Path, *, compiled: bool) -> Path:
    ext = importlib.machinery.EXTENSION_SUFFIXES[0]
    for name in _native.COMPILED_MODULES:
        src = _native.module_path(tmp_path, name)
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text("")
        if compiled:
            _native.module_path(tmp_path, name, ext).write_bytes(b"")
    return tmp_path


def test_all_extensions_present_means_compiled(tmp_path: Path) -> None:
    assert _native.pure_reason(_fake_pkg(tmp_path, compiled=True), {}) is None


def test_env_forces_pure(tmp_path: Path) -> None:
    pkg = _fake_pkg(tmp_path, compiled=True)
    assert _native.pure_reason(pkg, {"SLUBSIM_PURE": "1"}) == "SLUBSIM_PURE is set"
    assert _native.pure_reason(pkg, {"SLUBSIM_PURE": "0"}) is None


def test_one_missing_extension_means_all_pure(tmp_path: Path) -> None:
    pkg = _fake_pkg(tmp_path, compiled=True)
    ext = importlib.machinery.EXTENSION_SUFFIXES[0]
    (pkg / f"sheaves{ext}").unlink()
    assert _native.pure_reason(pkg, {}) == "not compiled at install time"


def test_source_edited_after_compiling_means_pure(tmp_path: Path) -> None:
    pkg = _fake_pkg(tmp_path, compiled=True)
    ext = importlib.machinery.EXTENSION_SUFFIXES[0]
    t = (pkg / f"cache{ext}").stat().st_mtime
    os.utime(pkg / "cache.py", (t + 3600, t + 3600))
    reason = _native.pure_reason(pkg, {})
    assert reason is not None and "cache.py is newer" in reason
    # unpacking a wheel may leave sources a little newer: not stale
    os.utime(pkg / "cache.py", (t + 1, t + 1))
    assert _native.pure_reason(pkg, {}) is None


def test_modules_in_subpackages_are_found_there(tmp_path: Path) -> None:
    pkg = _fake_pkg(tmp_path, compiled=True)
    assert _native.module_path(pkg, "slubsim.trace.events") == pkg / "trace" / "events.py"
    ext = importlib.machinery.EXTENSION_SUFFIXES[0]
    (pkg / "trace" / f"events{ext}").unlink()
    assert _native.pure_reason(pkg, {}) == "not compiled at install time"


def _run(env_pure: bool, *args: str) -> tuple[str, dict[str, Any]]:
    env = dict(os.environ)
    env.pop("SLUBSIM_PURE", None)
    if env_pure:
        env["SLUBSIM_PURE"] = "1"
    code = (
        "import json, sys, slubsim, slubsim.sheaves as s\n"
        "print(json.dumps([slubsim.COMPILED, s.__file__]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    res = subprocess.run(
        [sys.executable, "-m", "slubsim", "replay", *args, "--json", "-"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out, json.loads(res)


@pytest.mark.skipif(not slubsim.COMPILED, reason=f"not compiled: {slubsim.PURE_REASON}")
@pytest.mark.parametrize(
    "args",
    [
        (),  # the embedded sample: 7.3 without NUMA, compiled on the hit path
        (str(DATA / "numa2-cut"),),
        (str(DATA / "v612-cut"),),
        (str(DATA / "numa2-cut"), "--kernel", "6.12"),
        (str(DATA / "numa2-cut"), "--kernel", "rfc-pca"),
        (str(DATA / "numa2-cut"), "--kernel", "6.18"),
    ],
)
def test_compiled_and_pure_give_identical_results(args: tuple[str, ...]) -> None:
    info_c, compiled = _run(False, *args)
    info_p, pure = _run(True, *args)
    assert json.loads(info_c)[0] is True and json.loads(info_c)[1].endswith((".so", ".pyd"))
    assert json.loads(info_p)[0] is False and json.loads(info_p)[1].endswith(".py")
    assert strip_timing(compiled) == strip_timing(pure)
    assert compiled["caches"], "replay produced no caches"
