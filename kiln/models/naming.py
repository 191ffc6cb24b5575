"""Unique layer names inside one model ("dense", "dense_1", ...), without global counters."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["unique_name"]


def unique_name(base: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"
