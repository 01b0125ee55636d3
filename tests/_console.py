"""Reading what a command printed whatever the console's width: rich wraps and folds lines."""

from __future__ import annotations


def flat(text: str) -> str:
    """The text with every space and line break removed, so a phrase or a path that a narrow
    console wrapped (or folded mid-word) still matches."""
    return "".join(text.split())


def says(output: str, phrase: str) -> bool:
    """Whether `output` contains `phrase`, ignoring where the console broke its lines."""
    return flat(phrase) in flat(output)
