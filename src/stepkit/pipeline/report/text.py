"""How wide a label will be drawn, known without a browser: boxes are sized to their text.

The page asks for DejaVu Sans (Linux's default sans-serif) and falls back to Verdana,
about as wide; the advance widths below are DejaVu Sans's own (per 1000 units of em, for
the printable ASCII characters), and any other character counts as a full em. A small
margin (:data:`SLACK`) covers a fallback font a little wider than the one measured.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FONT_FAMILY = "'DejaVu Sans', Verdana, 'Bitstream Vera Sans', sans-serif"

# fmt: off
_REGULAR = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698,
    770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732,
    684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635,
    634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592,
    525, 636, 337, 636, 838,
)
_BOLD = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734,
    830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812,
    774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716,
    712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652,
    582, 712, 365, 712, 838,
)
# fmt: on

#: Room left for a fallback font a little wider than the one measured.
SLACK = 1.06


def text_width(text: str, *, size: float, bold: bool = False) -> float:
    """Pixels ``text`` takes at ``size`` px (an upper bound for the fonts the page names)."""
    table = _BOLD if bold else _REGULAR
    units = sum(table[ord(c) - 32] if 32 <= ord(c) < 127 else 1000 for c in text)
    return units * size / 1000 * SLACK


def wrap_words(text: str, *, size: float, bold: bool, max_width: float) -> list[str]:
    """``text`` on as few lines as fit ``max_width``, broken only between words of a name
    (CamelCase humps, ``_``, ``-``, ``.``, spaces); a word wider than the line stays whole."""
    words = _WORD.findall(text) or [text]
    lines: list[str] = []
    for word in words:
        if lines and text_width(lines[-1] + word, size=size, bold=bold) <= max_width:
            lines[-1] += word
        else:
            lines.append(word)
    return [line.strip() for line in lines]


_WORD = re.compile(r"[A-Z]+(?![a-z])[_\-. ]*|[A-Z]?[a-z0-9]+[_\-. ]*|[^A-Za-z0-9]+")


def widest(lines: Sequence[tuple[str, float, bool]]) -> float:
    """The width of the widest of ``(text, size, bold)`` lines."""
    return max((text_width(t, size=s, bold=b) for t, s, b in lines), default=0.0)
