"""Gateway API durations (GEP-2257): ``1h30m``, ``500ms``, ``0s``.

Only whole numbers of ``h``, ``m``, ``s`` and ``ms``, one to four of them, each at most five
digits; no fractions, signs, spaces or bare ``0``.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["format_duration", "parse_duration"]

_DURATION: Final = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_PART: Final = re.compile(r"([0-9]{1,5})(ms|h|m|s)")
_UNIT_MS: Final = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


def parse_duration(text: str) -> float | None:
    """Seconds for a GEP-2257 duration, or ``None`` when the text is not one."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        return None
    total_ms = sum(int(n) * _UNIT_MS[unit] for n, unit in _PART.findall(text))
    return total_ms / 1000.0


def format_duration(seconds: float) -> str:
    """The canonical GEP-2257 spelling: largest units first, zero parts left out."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit in ("h", "m", "s", "ms"):
        n, ms = divmod(ms, _UNIT_MS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
