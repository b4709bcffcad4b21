"""Small helpers shared by several test modules."""

from __future__ import annotations

from typing import Any


def strip_timing(x: Any) -> Any:
    """A replay result without its wall-clock figures (seconds, rates), which
    differ from run to run while everything else must not."""
    if isinstance(x, dict):
        return {k: strip_timing(v) for k, v in x.items() if "second" not in k and k != "rate"}
    if isinstance(x, list):
        return [strip_timing(v) for v in x]
    return x
