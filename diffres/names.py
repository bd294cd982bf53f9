"""Names that people see (class names, file names in messages): the one check for characters
that make a name display as something else.

A right-to-left override (U+202E) turns ``"cat\\u202egod"`` into what reads as ``catdog``;
zero-width and other invisible format characters make two different names look the same.
Class names come from folder names, typed bucket names and checkpoint cards, all of which a
stranger can choose, so they are checked before a model or a dataset is built.
"""

from __future__ import annotations

import unicodedata

__all__ = ["unsafe_character", "check_name", "shown"]

#: Format characters that are fine in a name: the zero-width joiner of emoji sequences.
_ALLOWED_FORMAT = {"\u200d"}


def unsafe_character(name: str) -> str | None:
    """The first character of ``name`` that is invisible or reorders text (control, format
    such as the bidi overrides, line or paragraph separators), described as ``U+XXXX NAME``;
    None when there is none.

    Example:
        >>> unsafe_character("cat\\u202egod")
        'U+202E RIGHT-TO-LEFT OVERRIDE'
        >>> unsafe_character("café 1") is None
        True
    """
    for ch in name:
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp", "Co", "Cs", "Cn") or (category == "Cf" and ch not in _ALLOWED_FORMAT):
            return f"U+{ord(ch):04X} {unicodedata.name(ch, 'control character')}"
    return None


def shown(name: str) -> str:
    """``name`` quoted for a message, with invisible characters written as escapes
    (``'cat\\u202egod'``), so a message never displays a spoofed name."""
    return ascii(name) if unsafe_character(name) else repr(name)


def check_name(name: str, what: str, *, max_length: int = 200) -> str | None:
    """Why ``name`` cannot be a label (empty, too long, an invisible or reordering character),
    as a sentence naming ``what`` it is; None when it is fine."""
    if not name.strip():
        return f"{what} is empty"
    if len(name) > max_length:
        return f"{what} {shown(name[:40] + '...')} is {len(name)} characters long (at most {max_length})"
    bad = unsafe_character(name)
    if bad:
        return (
            f"{what} {shown(name)} contains {bad}, an invisible character that can make a name display as "
            "another; rename it"
        )
    return None
