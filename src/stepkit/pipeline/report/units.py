"""How a duration reads, the same on the report page and in every CLI table and summary.

Always seconds, with the precision that matters at that size; minutes once seconds stop
being read at a glance. (A stage of 0.2 s and one of 20 s then read on one scale, which
``ms`` beside ``s`` does not.)
"""

from __future__ import annotations


def format_duration(seconds: float | None) -> str:
    """``0.238 s``, ``2.46 s``, ``12.3 s``, ``3 min 20.0 s``; ``–`` for a duration not known."""
    if seconds is None:
        return "–"
    if seconds >= 180:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)} min {rest:04.1f} s"
    if seconds < 1:
        return f"{seconds:.3f} s"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
